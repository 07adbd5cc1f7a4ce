// NVMe over Fabrics command formats: Connect (with its 1024-byte data), Property Get and
// Set, Disconnect, and the controller properties they address. Plain little-endian
// structs that overlay spec::Sqe / spec::Cqe; no logic.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nvmf/spec/nvme.h"

namespace nvmf::spec {

enum FabricsType : uint8_t {
  kFctypePropertySet = 0x00,
  kFctypeConnect = 0x01,
  kFctypePropertyGet = 0x04,
  kFctypeAuthSend = 0x05,
  kFctypeAuthReceive = 0x06,
  kFctypeDisconnect = 0x08,
};

// Common head of every Fabrics command SQE.
struct FabricsSqe {
  uint8_t opc;  // kFabricsCommand
  uint8_t reserved1;
  uint16_t cid;
  uint8_t fctype;
  uint8_t reserved2[19];
  SglDescriptor sgl1;
  uint8_t fabrics_specific[24];
};
static_assert(sizeof(FabricsSqe) == 64);
static_assert(offsetof(FabricsSqe, fctype) == 4);
static_assert(offsetof(FabricsSqe, sgl1) == 24);
static_assert(offsetof(FabricsSqe, fabrics_specific) == 40);

struct ConnectSqe {
  uint8_t opc;
  uint8_t reserved1;
  uint16_t cid;
  uint8_t fctype;  // kFctypeConnect
  uint8_t reserved2[19];
  SglDescriptor sgl1;
  uint16_t recfmt;  // record format, 0
  uint16_t qid;
  uint16_t sqsize;  // 0's based
  uint8_t cattr;
  uint8_t reserved3;
  uint32_t kato;  // milliseconds
  uint8_t reserved4[12];
};
static_assert(sizeof(ConnectSqe) == 64);
static_assert(offsetof(ConnectSqe, recfmt) == 40);
static_assert(offsetof(ConnectSqe, qid) == 42);
static_assert(offsetof(ConnectSqe, sqsize) == 44);
static_assert(offsetof(ConnectSqe, cattr) == 46);
static_assert(offsetof(ConnectSqe, kato) == 48);

inline constexpr uint16_t kDynamicControllerId = 0xFFFF;
inline constexpr size_t kNqnSize = 256;

// The 1024 bytes of data that accompany Connect.
struct ConnectData {
  uint8_t hostid[16];
  uint16_t cntlid;
  uint8_t reserved1[238];
  char subnqn[kNqnSize];
  char hostnqn[kNqnSize];
  uint8_t reserved2[256];
};
static_assert(sizeof(ConnectData) == 1024);
static_assert(offsetof(ConnectData, cntlid) == 16);
static_assert(offsetof(ConnectData, subnqn) == 256);
static_assert(offsetof(ConnectData, hostnqn) == 512);

// Connect's completion: CQE dword 0 holds the controller ID on success, or the offset
// of the invalid parameter on "Connect Invalid Parameters".
struct ConnectCqe {
  union {
    struct {
      uint16_t cntlid;
      uint16_t authreq;
    } success;
    struct {
      uint16_t ipo;  // invalid parameter offset
      uint8_t iattr;  // bit 0: 0 = in the SQE, 1 = in the Connect data
      uint8_t reserved;
    } invalid;
  };
  uint32_t cdw1;
  uint16_t sqhd;
  uint16_t reserved2;
  uint16_t cid;
  uint16_t status;
};
static_assert(sizeof(ConnectCqe) == sizeof(Cqe));
static_assert(offsetof(ConnectCqe, sqhd) == offsetof(Cqe, sqhd));
static_assert(offsetof(ConnectCqe, status) == offsetof(Cqe, status));

// Property size in the attrib byte: 0 = 4 bytes, 1 = 8 bytes.
enum PropertySize : uint8_t { kProperty4Bytes = 0, kProperty8Bytes = 1 };

struct PropertyGetSqe {
  uint8_t opc;
  uint8_t reserved1;
  uint16_t cid;
  uint8_t fctype;  // kFctypePropertyGet
  uint8_t reserved2[35];
  uint8_t attrib;
  uint8_t reserved3[3];
  uint32_t ofst;
  uint8_t reserved4[16];
};
static_assert(sizeof(PropertyGetSqe) == 64);
static_assert(offsetof(PropertyGetSqe, attrib) == 40);
static_assert(offsetof(PropertyGetSqe, ofst) == 44);

struct PropertySetSqe {
  uint8_t opc;
  uint8_t reserved1;
  uint16_t cid;
  uint8_t fctype;  // kFctypePropertySet
  uint8_t reserved2[35];
  uint8_t attrib;
  uint8_t reserved3[3];
  uint32_t ofst;
  uint64_t value;
  uint8_t reserved4[8];
};
static_assert(sizeof(PropertySetSqe) == 64);
static_assert(offsetof(PropertySetSqe, ofst) == 44);
static_assert(offsetof(PropertySetSqe, value) == 48);

// Property Get returns the value in CQE dwords 0 and 1.
struct PropertyGetCqe {
  uint64_t value;
  uint16_t sqhd;
  uint16_t reserved;
  uint16_t cid;
  uint16_t status;
};
static_assert(sizeof(PropertyGetCqe) == sizeof(Cqe));

struct DisconnectSqe {
  uint8_t opc;
  uint8_t reserved1;
  uint16_t cid;
  uint8_t fctype;  // kFctypeDisconnect
  uint8_t reserved2[19];
  SglDescriptor sgl1;
  uint16_t recfmt;
  uint8_t reserved3[22];
};
static_assert(sizeof(DisconnectSqe) == 64);
static_assert(offsetof(DisconnectSqe, recfmt) == 40);

// Controller property offsets.
enum PropertyOffset : uint32_t {
  kPropCap = 0x00,   // 8 bytes
  kPropVs = 0x08,    // 4 bytes
  kPropCc = 0x14,    // 4 bytes
  kPropCsts = 0x1C,  // 4 bytes
  kPropNssr = 0x20,  // 4 bytes
};

inline constexpr const char* kDiscoveryNqn = "nqn.2014-08.org.nvmexpress.discovery";

}  // namespace nvmf::spec
