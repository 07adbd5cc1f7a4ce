// The NVMe/RDMA binding's wire structures, without a device: CM private data (request,
// accept, reject) and the checks on a request, keyed and in-capsule SGL descriptors, and
// the discovery entry's RDMA fields.
#include "rdma/rdma_wire.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <vector>

namespace nvmf::rdma {
namespace {

std::vector<uint8_t> Bytes(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  return std::vector<uint8_t>(b, b + n);
}

TEST(RdmaWire, PrivateDataLayout) {
  EXPECT_EQ(offsetof(CmRequest, qid), 2u);
  EXPECT_EQ(offsetof(CmRequest, hrqsize), 4u);
  EXPECT_EQ(offsetof(CmRequest, hsqsize), 6u);
  EXPECT_EQ(offsetof(CmRequest, cntlid), 8u);
  EXPECT_EQ(offsetof(CmAccept, crqsize), 2u);
  EXPECT_EQ(offsetof(CmReject, sts), 2u);
  // What Linux's host sends for an I/O queue 3 of 128 entries, byte by byte.
  CmRequest r{};
  r.qid = 3;
  r.hrqsize = 128;
  r.hsqsize = 127;
  r.cntlid = 0xFFFF;
  std::vector<uint8_t> want(32, 0);
  want[2] = 3;
  want[4] = 128;
  want[6] = 127;
  want[8] = 0xFF;
  want[9] = 0xFF;
  EXPECT_EQ(Bytes(&r, sizeof(r)), want);
}

CmRequest Request(uint16_t qid, uint16_t hrqsize, uint16_t hsqsize) {
  CmRequest r{};
  r.qid = qid;
  r.hrqsize = hrqsize;
  r.hsqsize = hsqsize;
  return r;
}

TEST(RdmaWire, CheckRequestAcceptsWhatFits) {
  CmRequest in = Request(1, 128, 127), out{};
  uint16_t entries = 0;
  EXPECT_EQ(CheckRequest(&in, sizeof(in), 128, 32, &out, &entries), 0);
  EXPECT_EQ(entries, 128);
  EXPECT_EQ(out.qid, 1);
  // The admin queue has its own limit.
  in = Request(0, 32, 31);
  EXPECT_EQ(CheckRequest(&in, sizeof(in), 128, 32, &out, &entries), 0);
  EXPECT_EQ(entries, 32);
  // Private data padded by the CM beyond 32 bytes is fine.
  uint8_t padded[56] = {};
  in = Request(2, 16, 15);
  std::memcpy(padded, &in, sizeof(in));
  EXPECT_EQ(CheckRequest(padded, sizeof(padded), 128, 32, &out, &entries), 0);
  EXPECT_EQ(entries, 16);
}

TEST(RdmaWire, CheckRequestRejectsWithTheBindingsStatus) {
  CmRequest in = Request(1, 128, 127), out{};
  uint16_t entries = 0;
  EXPECT_EQ(CheckRequest(nullptr, 0, 128, 32, &out, &entries), kRejInvalidLength);
  EXPECT_EQ(CheckRequest(&in, 31, 128, 32, &out, &entries), kRejInvalidLength);
  in.recfmt = 1;
  EXPECT_EQ(CheckRequest(&in, sizeof(in), 128, 32, &out, &entries), kRejInvalidRecfmt);
  in = Request(1, 256, 255);  // 256 entries, over the limit of 128
  EXPECT_EQ(CheckRequest(&in, sizeof(in), 128, 32, &out, &entries), kRejInvalidHsqsize);
  in = Request(1, 1, 0);  // a queue of one entry holds no command
  EXPECT_EQ(CheckRequest(&in, sizeof(in), 128, 32, &out, &entries), kRejInvalidHsqsize);
  in = Request(0, 64, 63);  // an admin queue over its limit
  EXPECT_EQ(CheckRequest(&in, sizeof(in), 128, 32, &out, &entries), kRejInvalidHsqsize);
  in = Request(1, 64, 127);  // fewer receives than commands the host may have out
  EXPECT_EQ(CheckRequest(&in, sizeof(in), 128, 32, &out, &entries), kRejInvalidHrqsize);
}

TEST(RdmaWire, RejectStatusNames) {
  EXPECT_EQ(RejectStatusName(kRejInvalidHsqsize), "invalid HSQSIZE");
  EXPECT_EQ(RejectStatusName(kRejNoResources), "no resources");
  EXPECT_EQ(RejectStatusName(kRejInvalidIrd), "invalid IRD");
  EXPECT_EQ(RejectStatusName(0x77), "status 0x77");
  CmReject rej{0, kRejInvalidQid};
  EXPECT_EQ(Bytes(&rej, sizeof(rej)), (std::vector<uint8_t>{0, 0, 3, 0}));
}

TEST(RdmaWire, KeyedSglLayout) {
  KeyedSgl k{0x1122334455667788ull, 0xABCDEF, 0xDEADBEEF, false};
  spec::SglDescriptor d = EncodeKeyed(k);
  // Address (8, little endian), length (3), key (4), type 0x40.
  EXPECT_EQ(Bytes(&d, sizeof(d)),
            (std::vector<uint8_t>{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xEF, 0xCD, 0xAB,
                                  0xEF, 0xBE, 0xAD, 0xDE, 0x40}));
  EXPECT_TRUE(IsKeyed(d));
  KeyedSgl back = DecodeKeyed(d);
  EXPECT_EQ(back.address, k.address);
  EXPECT_EQ(back.length, k.length);
  EXPECT_EQ(back.key, k.key);
  EXPECT_FALSE(back.invalidate);
}

TEST(RdmaWire, KeyedSglInvalidateSubtypeAndLimits) {
  // Linux's host sends subtype F (invalidate) from fast-registered memory.
  spec::SglDescriptor d = EncodeKeyed({4096, kKeyedMaxLength, 7, true});
  EXPECT_EQ(d.type, kSglKeyedInvalidate);
  EXPECT_TRUE(IsKeyed(d));
  KeyedSgl k = DecodeKeyed(d);
  EXPECT_TRUE(k.invalidate);
  EXPECT_EQ(k.length, 0xFFFFFFu);
  EXPECT_EQ(k.key, 7u);
  // No data: all zero but the type, as Linux's target wants.
  d = EncodeKeyed({});
  EXPECT_EQ(Bytes(&d, 15), std::vector<uint8_t>(15, 0));
  EXPECT_EQ(d.type, kSglKeyed);
}

TEST(RdmaWire, InCapsuleAndOtherDescriptors) {
  spec::SglDescriptor d = EncodeInCapsule(0, 4096);
  EXPECT_EQ(d.type, 0x01);
  EXPECT_EQ(d.address, 0u);
  EXPECT_EQ(d.length, 4096u);
  EXPECT_FALSE(IsKeyed(d));
  d.type = spec::kSglTransport;  // NVMe/TCP's descriptor means nothing here
  EXPECT_FALSE(IsKeyed(d));
}

TEST(RdmaWire, DiscoveryEntry) {
  spec::DiscoveryLogEntry e{};
  FillRdmaDiscoveryEntry("10.0.2.15", &e);
  EXPECT_EQ(e.trtype, 1);
  EXPECT_EQ(e.adrfam, spec::kAdrfamIpv4);
  EXPECT_EQ(e.treq, 0x2);
  EXPECT_EQ(e.tsas[0], kQptypeConnected);
  EXPECT_EQ(e.tsas[1], kPrtypeNotSpecified);
  EXPECT_EQ(e.tsas[2], kCmsRdmaCm);
  EXPECT_EQ(e.tsas[8], 0);  // P_Key: none
  FillRdmaDiscoveryEntry("fe80::1", &e);
  EXPECT_EQ(e.adrfam, spec::kAdrfamIpv6);
}

}  // namespace
}  // namespace nvmf::rdma
