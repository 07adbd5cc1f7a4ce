// NVMe/TCP transport PDUs (NVM Express TCP Transport Specification): the common header
// and all nine PDU types, as packed little-endian structs. No logic.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nvmf/spec/nvme.h"

namespace nvmf::spec::tcp {

inline constexpr uint16_t kDefaultPort = 4420;
inline constexpr uint16_t kDiscoveryPort = 8009;
inline constexpr uint32_t kDigestLen = 4;
inline constexpr uint32_t kMinMaxH2CData = 4096;
inline constexpr uint32_t kAdminInCapsuleSize = 8192;  // admin queues always take 8 KiB ICD
inline constexpr uint16_t kPfv10 = 0;

enum PduType : uint8_t {
  kIcReq = 0x00,
  kIcResp = 0x01,
  kH2CTermReq = 0x02,
  kC2HTermReq = 0x03,
  kCapsuleCmd = 0x04,
  kCapsuleResp = 0x05,
  kH2CData = 0x06,
  kC2HData = 0x07,
  kR2T = 0x09,
};

enum PduFlags : uint8_t {
  kFlagHdgst = 0x01,
  kFlagDdgst = 0x02,
  kFlagLastPdu = 0x04,  // H2CData, C2HData
  kFlagSuccess = 0x08,  // C2HData only, requires kFlagLastPdu
};

// ICReq/ICResp DGST byte.
enum DigestBits : uint8_t { kDgstHeader = 0x01, kDgstData = 0x02 };

// Fatal error status in termination requests.
enum Fes : uint16_t {
  kFesInvalidHeaderField = 0x01,
  kFesPduSequenceError = 0x02,
  kFesHeaderDigestError = 0x03,
  kFesDataOutOfRange = 0x04,
  kFesR2TLimitExceeded = 0x05,  // also "data transfer limit exceeded"
  kFesUnsupportedParameter = 0x06,
};

struct CommonHeader {
  uint8_t pdu_type;
  uint8_t flags;
  uint8_t hlen;
  uint8_t pdo;
  uint32_t plen;
};
static_assert(sizeof(CommonHeader) == 8);
static_assert(offsetof(CommonHeader, pdu_type) == 0);
static_assert(offsetof(CommonHeader, flags) == 1);
static_assert(offsetof(CommonHeader, hlen) == 2);
static_assert(offsetof(CommonHeader, pdo) == 3);
static_assert(offsetof(CommonHeader, plen) == 4);

struct IcReq {
  CommonHeader ch;
  uint16_t pfv;
  uint8_t hpda;  // host PDU data alignment, 0's based dwords
  uint8_t dgst;
  uint32_t maxr2t;  // 0's based outstanding R2Ts per command
  uint8_t reserved[112];
};
static_assert(sizeof(IcReq) == 128);
static_assert(offsetof(IcReq, pfv) == 8);
static_assert(offsetof(IcReq, hpda) == 10);
static_assert(offsetof(IcReq, dgst) == 11);
static_assert(offsetof(IcReq, maxr2t) == 12);

struct IcResp {
  CommonHeader ch;
  uint16_t pfv;
  uint8_t cpda;  // controller PDU data alignment, 0's based dwords
  uint8_t dgst;
  uint32_t maxh2cdata;  // bytes
  uint8_t reserved[112];
};
static_assert(sizeof(IcResp) == 128);
static_assert(offsetof(IcResp, pfv) == 8);
static_assert(offsetof(IcResp, cpda) == 10);
static_assert(offsetof(IcResp, dgst) == 11);
static_assert(offsetof(IcResp, maxh2cdata) == 12);

// H2CTermReq and C2HTermReq share a layout; the header of the PDU in error follows.
struct TermReq {
  CommonHeader ch;
  uint16_t fes;
  uint32_t fei;  // unaligned on the wire: offset 10
  uint8_t reserved[10];
} __attribute__((packed));
static_assert(sizeof(TermReq) == 24);
static_assert(offsetof(TermReq, fes) == 8);
static_assert(offsetof(TermReq, fei) == 10);
inline constexpr uint32_t kTermReqMaxData = 128;
inline constexpr uint32_t kTermReqMaxPlen = sizeof(TermReq) + kTermReqMaxData;

struct CapsuleCmd {
  CommonHeader ch;
  Sqe sqe;
};
static_assert(sizeof(CapsuleCmd) == 72);
static_assert(offsetof(CapsuleCmd, sqe) == 8);

struct CapsuleResp {
  CommonHeader ch;
  Cqe cqe;
};
static_assert(sizeof(CapsuleResp) == 24);
static_assert(offsetof(CapsuleResp, cqe) == 8);

struct H2CData {
  CommonHeader ch;
  uint16_t cccid;
  uint16_t ttag;
  uint32_t datao;
  uint32_t datal;
  uint8_t reserved[4];
};
static_assert(sizeof(H2CData) == 24);
static_assert(offsetof(H2CData, cccid) == 8);
static_assert(offsetof(H2CData, ttag) == 10);
static_assert(offsetof(H2CData, datao) == 12);
static_assert(offsetof(H2CData, datal) == 16);

struct C2HData {
  CommonHeader ch;
  uint16_t cccid;
  uint8_t reserved1[2];
  uint32_t datao;
  uint32_t datal;
  uint8_t reserved2[4];
};
static_assert(sizeof(C2HData) == 24);
static_assert(offsetof(C2HData, cccid) == 8);
static_assert(offsetof(C2HData, datao) == 12);
static_assert(offsetof(C2HData, datal) == 16);

struct R2T {
  CommonHeader ch;
  uint16_t cccid;
  uint16_t ttag;
  uint32_t r2to;
  uint32_t r2tl;
  uint8_t reserved[4];
};
static_assert(sizeof(R2T) == 24);
static_assert(offsetof(R2T, cccid) == 8);
static_assert(offsetof(R2T, ttag) == 10);
static_assert(offsetof(R2T, r2to) == 12);
static_assert(offsetof(R2T, r2tl) == 16);

// The largest PDU header: ICReq/ICResp. Others are at most a CapsuleCmd plus its digest.
inline constexpr uint32_t kMaxHeaderLen = 128;

}  // namespace nvmf::spec::tcp
