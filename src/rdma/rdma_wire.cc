#include "rdma/rdma_wire.h"

#include <cstdio>
#include <cstring>

namespace nvmf::rdma {

std::string RejectStatusName(uint16_t sts) {
  switch (sts) {
    case kRejInvalidLength: return "invalid private data length";
    case kRejInvalidRecfmt: return "invalid RECFMT";
    case kRejInvalidQid: return "invalid QID";
    case kRejInvalidHsqsize: return "invalid HSQSIZE";
    case kRejInvalidHrqsize: return "invalid HRQSIZE";
    case kRejNoResources: return "no resources";
    case kRejInvalidIrd: return "invalid IRD";
    case kRejInvalidOrd: return "invalid ORD";
    case kRejInvalidCntlid: return "invalid CNTLID";
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "status 0x%x", sts);
  return buf;
}

uint16_t CheckRequest(const void* data, size_t len, uint16_t max_queue_size, uint16_t admin_max,
                      CmRequest* req, uint16_t* entries) {
  // Linux's host sends exactly 32 bytes; the CM may pad private data to its own size, so
  // longer is fine and shorter is not.
  if (data == nullptr || len < sizeof(CmRequest)) return kRejInvalidLength;
  std::memcpy(req, data, sizeof(*req));
  if (req->recfmt != 0) return kRejInvalidRecfmt;
  const uint32_t n = static_cast<uint32_t>(req->hsqsize) + 1;
  const uint32_t limit = req->qid == 0 ? admin_max : max_queue_size;
  if (n < 2 || n > limit) return kRejInvalidHsqsize;
  if (req->hrqsize < n) return kRejInvalidHrqsize;
  *entries = static_cast<uint16_t>(n);
  return 0;
}

bool IsKeyed(const spec::SglDescriptor& d) { return (d.type >> 4) == 0x4; }

KeyedSgl DecodeKeyed(const spec::SglDescriptor& d) {
  const auto* b = reinterpret_cast<const uint8_t*>(&d);
  KeyedSgl k;
  std::memcpy(&k.address, b, 8);
  k.length = static_cast<uint32_t>(b[8]) | static_cast<uint32_t>(b[9]) << 8 |
             static_cast<uint32_t>(b[10]) << 16;
  std::memcpy(&k.key, b + 11, 4);
  k.invalidate = (d.type & 0x0F) == 0x0F;
  return k;
}

spec::SglDescriptor EncodeKeyed(const KeyedSgl& k) {
  spec::SglDescriptor d{};
  auto* b = reinterpret_cast<uint8_t*>(&d);
  std::memcpy(b, &k.address, 8);
  b[8] = static_cast<uint8_t>(k.length);
  b[9] = static_cast<uint8_t>(k.length >> 8);
  b[10] = static_cast<uint8_t>(k.length >> 16);
  std::memcpy(b + 11, &k.key, 4);
  b[15] = k.invalidate ? kSglKeyedInvalidate : kSglKeyed;
  return d;
}

spec::SglDescriptor EncodeInCapsule(uint32_t offset, uint32_t length) {
  spec::SglDescriptor d{};
  d.address = offset;
  d.length = length;
  d.type = spec::kSglInCapsule;
  return d;
}

void FillRdmaDiscoveryEntry(const std::string& traddr, spec::DiscoveryLogEntry* e) {
  e->trtype = 1;  // RDMA
  e->adrfam = traddr.find(':') != std::string::npos ? spec::kAdrfamIpv6 : spec::kAdrfamIpv4;
  e->treq = 0x2;  // secure channel not required
  RdmaTsas t{};
  t.qptype = kQptypeConnected;
  t.prtype = kPrtypeNotSpecified;
  t.cms = kCmsRdmaCm;
  static_assert(sizeof(t) == sizeof(e->tsas));
  std::memcpy(e->tsas, &t, sizeof(t));
}

}  // namespace nvmf::rdma
