// NVMe/TCP PDU building: every PDU type the codec builds, byte for byte.
//
// The expected bytes are written out by hand from the NVMe/TCP layout (common header:
// PDU-Type, FLAGS, HLEN, PDO, PLEN little-endian; then the type's fields). Header
// digests are computed with the slow bitwise CRC32C below, which shares no code with
// the library's ISA-L based implementation.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "support/codec_util.h"
#include "nvmf/spec/nvme.h"
#include "nvmf/spec/tcp.h"
#include "tcp/crc32c.h"
#include "tcp/pdu_codec.h"

namespace nvmf::tcp {
namespace {

using Bytes = std::vector<uint8_t>;

// push_back rather than insert: GCC 12 warns falsely on inserting an initializer_list.
void Put(Bytes& v, std::initializer_list<uint8_t> b) {
  for (uint8_t x : b) v.push_back(x);
}
void Zeros(Bytes& v, size_t n) { v.insert(v.end(), n, 0); }
// Appends the little-endian reference CRC32C of every byte so far (the header).
void Digest(Bytes& v) {
  uint32_t c = RefCrc32c(v.data(), v.size());
  Put(v, {uint8_t(c), uint8_t(c >> 8), uint8_t(c >> 16), uint8_t(c >> 24)});
}

// Runs a builder on a buffer poisoned with 0xAA; checks that it wrote nothing past the
// length it returned and returns the bytes it reports.
template <class F>
Bytes Build(F build) {
  alignas(8) uint8_t buf[kMaxHeaderBytes + 64];
  std::memset(buf, 0xAA, sizeof(buf));
  uint32_t n = build(buf);
  EXPECT_LE(n, kMaxHeaderBytes);
  for (size_t i = n; i < sizeof(buf); i++) {
    if (buf[i] != 0xAA) {
      ADD_FAILURE() << "builder wrote byte " << i << " past its length " << n;
      break;
    }
  }
  return Bytes(buf, buf + n);
}

TxConfig Tx(bool hd, bool dd, uint32_t pda = 4) {
  TxConfig c;
  c.header_digest = hd;
  c.data_digest = dd;
  c.tx_pda = pda;
  return c;
}

// The digests below come from RefCrc32c: check it against the published vector first
// (crc32c_test.cc checks the library's implementation the same way).
TEST(PduCodecBuild, ReferenceDigestKnownVector) {
  const uint8_t s[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  EXPECT_EQ(RefCrc32c(s, sizeof(s)), 0xE3069283u);
  EXPECT_EQ(Crc32c(s, sizeof(s)), 0xE3069283u);
}

// -------------------------------------------------------------------- ICReq / ICResp

TEST(PduCodecBuild, IcReq) {
  for (int d = 0; d < 4; d++) {
    bool hd = d & 1, dd = d & 2;
    Bytes want;
    Put(want, {0x00, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00});  // type, flags, hlen 128, pdo, plen 128
    Put(want, {0x00, 0x00, 0x03, uint8_t(d)});                      // pfv 0, hpda 3, dgst
    Put(want, {0x01, 0x02, 0x03, 0x04});                            // maxr2t
    Zeros(want, 112);
    EXPECT_EQ(Build([&](uint8_t* o) { return BuildIcReq(o, 3, hd, dd, 0x04030201u); }), want)
        << "dgst " << d;
  }
}

TEST(PduCodecBuild, IcResp) {
  for (int d = 0; d < 4; d++) {
    bool hd = d & 1, dd = d & 2;
    Bytes want;
    Put(want, {0x01, 0x00, 0x80, 0x00, 0x80, 0x00, 0x00, 0x00});
    Put(want, {0x00, 0x00, 0x07, uint8_t(d)});  // pfv 0, cpda 7, dgst
    Put(want, {0x00, 0x00, 0x02, 0x00});        // maxh2cdata 128 KiB
    Zeros(want, 112);
    EXPECT_EQ(Build([&](uint8_t* o) { return BuildIcResp(o, 7, hd, dd, 0x20000u); }), want)
        << "dgst " << d;
  }
}

// ------------------------------------------------------------------------- TermReq

const uint8_t kBadHeader[8] = {0x04, 0x05, 0x48, 0x00, 0x48, 0x00, 0x00, 0x00};

TEST(PduCodecBuild, H2CTermReqQuotesHeader) {
  Bytes want;
  Put(want, {0x02, 0x00, 0x18, 0x00, 0x20, 0x00, 0x00, 0x00});  // plen 24 + 8
  Put(want, {0x01, 0x00});                                      // fes 1
  Put(want, {0x44, 0x33, 0x22, 0x11});                          // fei at offset 10
  Zeros(want, 10);
  want.insert(want.end(), kBadHeader, kBadHeader + 8);
  EXPECT_EQ(Build([](uint8_t* o) { return BuildTermReq(o, true, 1, 0x11223344u, kBadHeader, 8); }),
            want);
}

TEST(PduCodecBuild, C2HTermReqWithoutQuote) {
  Bytes want;
  Put(want, {0x03, 0x00, 0x18, 0x00, 0x18, 0x00, 0x00, 0x00});
  Put(want, {0x06, 0x00, 0x0A, 0x00, 0x00, 0x00});  // fes 6 (unsupported parameter), fei 10
  Zeros(want, 10);
  EXPECT_EQ(Build([](uint8_t* o) { return BuildTermReq(o, false, 6, 10, nullptr, 0); }), want);
}

TEST(PduCodecBuild, TermReqQuoteIsLimitedTo128Bytes) {
  uint8_t bad[200];
  for (int i = 0; i < 200; i++) bad[i] = static_cast<uint8_t>(i + 1);
  Bytes want;
  Put(want, {0x03, 0x00, 0x18, 0x00, 0x98, 0x00, 0x00, 0x00});  // plen 152
  Put(want, {0x02, 0x00, 0x00, 0x00, 0x00, 0x00});              // fes 2, fei 0
  Zeros(want, 10);
  want.insert(want.end(), bad, bad + 128);
  EXPECT_EQ(Build([&](uint8_t* o) { return BuildTermReq(o, false, 2, 0, bad, 200); }), want);
}

// ---------------------------------------------------------------------- CapsuleCmd

spec::Sqe TestSqe() {
  spec::Sqe s{};
  s.opc = spec::kNvmWrite;
  s.fuse_psdt = 0x40;
  s.cid = 0x1234;
  s.nsid = 1;
  s.sgl1.length = 0x200;
  s.sgl1.type = spec::kSglInCapsule;
  s.cdw10 = 0x89ABCDEFu;
  s.cdw12 = 7;
  return s;
}

// The 64 SQE bytes of TestSqe().
void PutSqe(Bytes& v) {
  Put(v, {0x01, 0x40, 0x34, 0x12, 0x01, 0x00, 0x00, 0x00});  // opc, psdt, cid, nsid
  Zeros(v, 24);                                              // cdw2, cdw3, mptr, sgl address
  Put(v, {0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01});  // sgl length 512, type 0x01
  Put(v, {0xEF, 0xCD, 0xAB, 0x89, 0x00, 0x00, 0x00, 0x00});  // cdw10, cdw11
  Put(v, {0x07, 0x00, 0x00, 0x00});                          // cdw12
  Zeros(v, 12);
}

TEST(PduCodecBuild, CapsuleCmdNoData) {
  Bytes want;
  Put(want, {0x04, 0x00, 0x48, 0x00, 0x48, 0x00, 0x00, 0x00});
  PutSqe(want);
  ASSERT_EQ(want.size(), 72u);
  EXPECT_EQ(Build([](uint8_t* o) { return BuildCapsuleCmd(o, TestSqe(), 0, Tx(false, false)); }),
            want);
  // No data: no DDGST flag, no padding, PDO 0, whatever the data digest and alignment.
  EXPECT_EQ(
      Build([](uint8_t* o) { return BuildCapsuleCmd(o, TestSqe(), 0, Tx(false, true, 32)); }),
      want);
}

TEST(PduCodecBuild, CapsuleCmdNoDataHeaderDigest) {
  Bytes want;
  Put(want, {0x04, 0x01, 0x48, 0x00, 0x4C, 0x00, 0x00, 0x00});  // HDGSTF, plen 76
  PutSqe(want);
  Digest(want);
  EXPECT_EQ(Build([](uint8_t* o) { return BuildCapsuleCmd(o, TestSqe(), 0, Tx(true, true, 16)); }),
            want);
}

TEST(PduCodecBuild, CapsuleCmdInCapsuleData) {
  Bytes want;
  Put(want, {0x04, 0x00, 0x48, 0x48, 0x48, 0x02, 0x00, 0x00});  // pdo 72, plen 72 + 512
  PutSqe(want);
  EXPECT_EQ(
      Build([](uint8_t* o) { return BuildCapsuleCmd(o, TestSqe(), 512, Tx(false, false)); }),
      want);
  // tx_pda 8: 72 is already aligned, no padding.
  EXPECT_EQ(
      Build([](uint8_t* o) { return BuildCapsuleCmd(o, TestSqe(), 512, Tx(false, false, 8)); }),
      want);
}

TEST(PduCodecBuild, CapsuleCmdInCapsuleDataBothDigests) {
  Bytes want;
  Put(want, {0x04, 0x03, 0x48, 0x4C, 0x50, 0x02, 0x00, 0x00});  // pdo 76, plen 76+512+4
  PutSqe(want);
  Digest(want);
  EXPECT_EQ(
      Build([](uint8_t* o) { return BuildCapsuleCmd(o, TestSqe(), 512, Tx(true, true, 4)); }),
      want);
}

TEST(PduCodecBuild, CapsuleCmdHeaderDigestPadTo16) {
  Bytes want;
  Put(want, {0x04, 0x01, 0x48, 0x50, 0x50, 0x02, 0x00, 0x00});  // pdo 80, plen 80 + 512
  PutSqe(want);
  Digest(want);
  Zeros(want, 4);  // 76 -> 80
  EXPECT_EQ(
      Build([](uint8_t* o) { return BuildCapsuleCmd(o, TestSqe(), 512, Tx(true, false, 16)); }),
      want);
  // tx_pda 8 gives the same PDO.
  EXPECT_EQ(
      Build([](uint8_t* o) { return BuildCapsuleCmd(o, TestSqe(), 512, Tx(true, false, 8)); }),
      want);
}

TEST(PduCodecBuild, CapsuleCmdDataDigestPadTo32) {
  Bytes want;
  Put(want, {0x04, 0x02, 0x48, 0x60, 0x64, 0x02, 0x00, 0x00});  // pdo 96, plen 96+512+4
  PutSqe(want);
  Zeros(want, 24);  // 72 -> 96
  EXPECT_EQ(
      Build([](uint8_t* o) { return BuildCapsuleCmd(o, TestSqe(), 512, Tx(false, true, 32)); }),
      want);
}

TEST(PduCodecBuild, CapsuleCmdBothDigestsPadTo128) {
  Bytes want;
  Put(want, {0x04, 0x03, 0x48, 0x80, 0x84, 0x02, 0x00, 0x00});  // pdo 128, plen 128+512+4
  PutSqe(want);
  Digest(want);
  Zeros(want, 52);  // 76 -> 128 (HPDA 31)
  EXPECT_EQ(
      Build([](uint8_t* o) { return BuildCapsuleCmd(o, TestSqe(), 512, Tx(true, true, 128)); }),
      want);
}

// --------------------------------------------------------------------- CapsuleResp

spec::Cqe TestCqe() {
  spec::Cqe c{};
  c.cdw0 = 0x11223344u;
  c.sqhd = 5;
  c.sqid = 1;
  c.cid = 0x1234;
  spec::SetStatus(c, spec::MakeStatus(spec::kSctGeneric, spec::kScInvalidField, true));
  return c;
}

void PutCqe(Bytes& v) {
  Put(v, {0x44, 0x33, 0x22, 0x11, 0x00, 0x00, 0x00, 0x00});  // cdw0, cdw1
  Put(v, {0x05, 0x00, 0x01, 0x00, 0x34, 0x12, 0x04, 0x80});  // sqhd, sqid, cid, status (DNR)
}

TEST(PduCodecBuild, CapsuleResp) {
  Bytes want;
  Put(want, {0x05, 0x00, 0x18, 0x00, 0x18, 0x00, 0x00, 0x00});
  PutCqe(want);
  EXPECT_EQ(Build([](uint8_t* o) { return BuildCapsuleResp(o, TestCqe(), Tx(false, false)); }),
            want);
  // Never a DDGSTF or padding: a response carries no data.
  EXPECT_EQ(Build([](uint8_t* o) { return BuildCapsuleResp(o, TestCqe(), Tx(false, true, 32)); }),
            want);
}

TEST(PduCodecBuild, CapsuleRespHeaderDigest) {
  Bytes want;
  Put(want, {0x05, 0x01, 0x18, 0x00, 0x1C, 0x00, 0x00, 0x00});
  PutCqe(want);
  Digest(want);
  EXPECT_EQ(Build([](uint8_t* o) { return BuildCapsuleResp(o, TestCqe(), Tx(true, true, 16)); }),
            want);
}

// ------------------------------------------------------------------------- H2CData

void PutH2CFields(Bytes& v) {
  Put(v, {0x34, 0x12, 0x07, 0x00});  // cccid, ttag
  Put(v, {0x00, 0x20, 0x00, 0x00});  // datao 8192
  Put(v, {0x00, 0x10, 0x00, 0x00});  // datal 4096
  Zeros(v, 4);
}

TEST(PduCodecBuild, H2CDataLast) {
  Bytes want;
  Put(want, {0x06, 0x04, 0x18, 0x18, 0x18, 0x10, 0x00, 0x00});  // LAST_PDU, pdo 24, plen 4120
  PutH2CFields(want);
  EXPECT_EQ(Build([](uint8_t* o) {
              return BuildH2CData(o, 0x1234, 7, 0x2000, 0x1000, true, Tx(false, false));
            }),
            want);
}

TEST(PduCodecBuild, H2CDataBothDigests) {
  Bytes want;
  Put(want, {0x06, 0x07, 0x18, 0x1C, 0x20, 0x10, 0x00, 0x00});  // pdo 28, plen 28+4096+4
  PutH2CFields(want);
  Digest(want);
  EXPECT_EQ(Build([](uint8_t* o) {
              return BuildH2CData(o, 0x1234, 7, 0x2000, 0x1000, true, Tx(true, true));
            }),
            want);
}

TEST(PduCodecBuild, H2CDataHeaderDigestPadTo32NotLast) {
  Bytes want;
  Put(want, {0x06, 0x01, 0x18, 0x20, 0x20, 0x10, 0x00, 0x00});  // pdo 32, plen 32+4096
  PutH2CFields(want);
  Digest(want);
  Zeros(want, 4);
  EXPECT_EQ(Build([](uint8_t* o) {
              return BuildH2CData(o, 0x1234, 7, 0x2000, 0x1000, false, Tx(true, false, 32));
            }),
            want);
}

// ------------------------------------------------------------------------- C2HData

void PutC2HFields(Bytes& v) {
  Put(v, {0xCD, 0xAB, 0x00, 0x00});  // cccid, reserved
  Put(v, {0x00, 0x00, 0x01, 0x00});  // datao 65536
  Put(v, {0x00, 0x02, 0x00, 0x00});  // datal 512
  Zeros(v, 4);
}

TEST(PduCodecBuild, C2HDataFlags) {
  struct Case {
    bool last, success;
    uint8_t flags;
  } cases[] = {{false, false, 0x00}, {true, false, 0x04}, {true, true, 0x0C}};
  for (const Case& c : cases) {
    Bytes want;
    Put(want, {0x07, c.flags, 0x18, 0x18, 0x18, 0x02, 0x00, 0x00});  // pdo 24, plen 536
    PutC2HFields(want);
    EXPECT_EQ(Build([&](uint8_t* o) {
                return BuildC2HData(o, 0xABCD, 0x10000, 0x200, c.last, c.success,
                                    Tx(false, false));
              }),
              want)
        << "flags " << int(c.flags);
  }
}

TEST(PduCodecBuild, C2HDataBothDigestsSuccess) {
  Bytes want;
  Put(want, {0x07, 0x0F, 0x18, 0x1C, 0x20, 0x02, 0x00, 0x00});  // pdo 28, plen 28+512+4
  PutC2HFields(want);
  Digest(want);
  EXPECT_EQ(Build([](uint8_t* o) {
              return BuildC2HData(o, 0xABCD, 0x10000, 0x200, true, true, Tx(true, true));
            }),
            want);
}

TEST(PduCodecBuild, C2HDataPadTo16) {
  Bytes want;
  Put(want, {0x07, 0x04, 0x18, 0x20, 0x20, 0x02, 0x00, 0x00});  // pdo 32, plen 32+512
  PutC2HFields(want);
  Zeros(want, 8);
  EXPECT_EQ(Build([](uint8_t* o) {
              return BuildC2HData(o, 0xABCD, 0x10000, 0x200, true, false, Tx(false, false, 16));
            }),
            want);
}

TEST(PduCodecBuild, C2HDataHeaderDigestPadTo8WithDataDigest) {
  Bytes want;
  Put(want, {0x07, 0x03, 0x18, 0x20, 0x24, 0x02, 0x00, 0x00});  // pdo 32, plen 32+512+4
  PutC2HFields(want);
  Digest(want);
  Zeros(want, 4);  // 28 -> 32
  EXPECT_EQ(Build([](uint8_t* o) {
              return BuildC2HData(o, 0xABCD, 0x10000, 0x200, false, false, Tx(true, true, 8));
            }),
            want);
}

// ----------------------------------------------------------------------------- R2T

void PutR2TFields(Bytes& v) {
  Put(v, {0x34, 0x12, 0x03, 0x00});  // cccid, ttag
  Put(v, {0x00, 0x10, 0x00, 0x00});  // r2to 4096
  Put(v, {0x00, 0x30, 0x00, 0x00});  // r2tl 12288
  Zeros(v, 4);
}

TEST(PduCodecBuild, R2T) {
  Bytes want;
  Put(want, {0x09, 0x00, 0x18, 0x00, 0x18, 0x00, 0x00, 0x00});
  PutR2TFields(want);
  EXPECT_EQ(Build([](uint8_t* o) { return BuildR2T(o, 0x1234, 3, 0x1000, 0x3000, Tx(false, false)); }),
            want);
  EXPECT_EQ(
      Build([](uint8_t* o) { return BuildR2T(o, 0x1234, 3, 0x1000, 0x3000, Tx(false, true, 32)); }),
      want);
}

TEST(PduCodecBuild, R2THeaderDigest) {
  Bytes want;
  Put(want, {0x09, 0x01, 0x18, 0x00, 0x1C, 0x00, 0x00, 0x00});
  PutR2TFields(want);
  Digest(want);
  EXPECT_EQ(
      Build([](uint8_t* o) { return BuildR2T(o, 0x1234, 3, 0x1000, 0x3000, Tx(true, true, 16)); }),
      want);
}

// The builders and HeaderDigestOk agree with the reference digest, and a corrupted header
// or digest is caught.
TEST(PduCodecBuild, HeaderDigestOkOnBuiltHeaders) {
  alignas(8) uint8_t buf[kMaxHeaderBytes];
  uint32_t n = BuildCapsuleCmd(buf, TestSqe(), 0, Tx(true, false));
  ASSERT_EQ(n, 76u);
  uint32_t got;
  std::memcpy(&got, buf + 72, 4);
  EXPECT_EQ(got, RefCrc32c(buf, 72));
  EXPECT_TRUE(HeaderDigestOk(buf, 72));
  for (uint32_t i = 0; i < 76; i++) {
    for (int bit = 0; bit < 8; bit += 3) {
      buf[i] ^= static_cast<uint8_t>(1 << bit);
      EXPECT_FALSE(HeaderDigestOk(buf, 72)) << "byte " << i << " bit " << bit;
      buf[i] ^= static_cast<uint8_t>(1 << bit);
    }
  }
  EXPECT_TRUE(HeaderDigestOk(buf, 72));
}

}  // namespace
}  // namespace nvmf::tcp
