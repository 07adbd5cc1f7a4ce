// NVMe/RDMA binding wire structures (NVMe over Fabrics, "Transport Specific: RDMA"): the
// RDMA CM private data of a connection request, accept and reject, keyed SGL data block
// descriptors, and the discovery log's RDMA transport-specific address subtype. Plain
// little-endian structs and pure functions: unit-tested without a device
// (tests/rdma_wire_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "nvmf/spec/admin.h"
#include "nvmf/spec/nvme.h"

namespace nvmf::rdma {

// RDMA_CM_REQUEST private data, host to controller.
struct CmRequest {
  uint16_t recfmt;   // record format: 0
  uint16_t qid;      // 0: admin queue
  uint16_t hrqsize;  // host receive queue size (entries)
  uint16_t hsqsize;  // host send queue size, 0's based (the Connect command's SQSIZE)
  uint16_t cntlid;   // controller ID, for I/O queues (0xFFFF: not given)
  uint8_t reserved[22];
};
static_assert(sizeof(CmRequest) == 32);

// RDMA_CM_ACCEPT private data, controller to host.
struct CmAccept {
  uint16_t recfmt;
  uint16_t crqsize;  // controller receive queue size (entries)
  uint8_t reserved[28];
};
static_assert(sizeof(CmAccept) == 32);

// RDMA_CM_REJECT private data, controller to host.
struct CmReject {
  uint16_t recfmt;
  uint16_t sts;  // CmRejectStatus
};
static_assert(sizeof(CmReject) == 4);

enum CmRejectStatus : uint16_t {
  kRejInvalidLength = 0x01,   // private data shorter than CmRequest
  kRejInvalidRecfmt = 0x02,
  kRejInvalidQid = 0x03,
  kRejInvalidHsqsize = 0x04,
  kRejInvalidHrqsize = 0x05,
  kRejNoResources = 0x06,
  kRejInvalidIrd = 0x07,
  kRejInvalidOrd = 0x08,
  kRejInvalidCntlid = 0x09,
};
// "invalid HSQSIZE", ... for messages; unknown values are shown in hex.
std::string RejectStatusName(uint16_t sts);

// Checks a connection request against the controller's limits: the private data's length,
// RECFMT, and queue sizes (HSQSIZE + 1 entries at most max_queue_size, and at least 2 —
// an admin queue at most admin_max; HRQSIZE at least HSQSIZE + 1, as the host must take
// a response for every command it may have outstanding). Returns 0 when acceptable, or the
// reject status; *entries is HSQSIZE + 1.
uint16_t CheckRequest(const void* data, size_t len, uint16_t max_queue_size, uint16_t admin_max,
                      CmRequest* req, uint16_t* entries);

// Keyed SGL data block descriptor (SGL type 4): host memory the controller reaches with
// RDMA READ and WRITE. Byte layout: address (8), length (3), key (4), type (1).
inline constexpr uint8_t kSglKeyed = 0x40;             // subtype 0: address
inline constexpr uint8_t kSglKeyedInvalidate = 0x4F;   // subtype F: invalidate the key
inline constexpr uint32_t kKeyedMaxLength = 0xFFFFFF;  // 24-bit length

struct KeyedSgl {
  uint64_t address = 0;
  uint32_t length = 0;
  uint32_t key = 0;
  bool invalidate = false;
};
// True for type 4 descriptors (either subtype).
bool IsKeyed(const spec::SglDescriptor& d);
KeyedSgl DecodeKeyed(const spec::SglDescriptor& d);
spec::SglDescriptor EncodeKeyed(const KeyedSgl& k);
// In-capsule data at offset `offset` of the capsule's data area (SGL type 0, subtype 1).
spec::SglDescriptor EncodeInCapsule(uint32_t offset, uint32_t length);

// Discovery log entry TSAS for RDMA.
struct RdmaTsas {
  uint8_t qptype;  // 1: reliable connected
  uint8_t prtype;  // 1: not specified, 2: InfiniBand, 3: RoCE, 4: RoCE v2, 5: iWARP
  uint8_t cms;     // 1: RDMA_IP_CM
  uint8_t reserved[5];
  uint16_t pkey;
  uint8_t reserved2[246];
};
static_assert(sizeof(RdmaTsas) == 256);
inline constexpr uint8_t kQptypeConnected = 1;
inline constexpr uint8_t kPrtypeNotSpecified = 1;
inline constexpr uint8_t kCmsRdmaCm = 1;

// A discovery log entry's transport fields for an NVMe/RDMA port at traddr: TRTYPE rdma,
// ADRFAM from the address, TREQ "not required", TSAS reliable connected, provider not
// specified, RDMA CM.
void FillRdmaDiscoveryEntry(const std::string& traddr, spec::DiscoveryLogEntry* e);

}  // namespace nvmf::rdma
