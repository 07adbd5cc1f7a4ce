// NVMe/TCP PDU validation: the common header rules, one test per rule, with the exact
// fatal error status (FES) and field offset (FEI) the termination request must carry,
// the lowest-offset-first order, and the layout reported for valid PDUs.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "support/codec_util.h"
#include "nvmf/spec/tcp.h"
#include "tcp/pdu_codec.h"

namespace nvmf::tcp {
namespace {

// FEI values: byte offsets in the common header.
constexpr uint32_t kType = 0, kFlags = 1, kHlen = 2, kPdo = 3, kPlen = 4;
constexpr uint16_t kInvalidField = wire::kFesInvalidHeaderField;

wire::CommonHeader Ch(uint8_t type, uint8_t flags, uint8_t hlen, uint8_t pdo, uint32_t plen) {
  return wire::CommonHeader{type, flags, hlen, pdo, plen};
}

RxConfig Ctrl(bool hd = false, bool dd = false, uint32_t pda = 4) { return Cfg(true, hd, dd, pda); }
RxConfig Host(bool hd = false, bool dd = false, uint32_t pda = 4) {
  return Cfg(false, hd, dd, pda);
}

PduError Check(const wire::CommonHeader& ch, const RxConfig& cfg, PduLayout* out = nullptr) {
  PduLayout scratch;
  return CheckCommonHeader(ch, cfg, out != nullptr ? out : &scratch);
}


void ExpectLayout(const wire::CommonHeader& ch, const RxConfig& cfg, uint32_t header_len,
                  uint32_t data_offset, uint32_t data_len, bool data_digest) {
  PduLayout l;
  PduError e = CheckCommonHeader(ch, cfg, &l);
  ASSERT_FALSE(e) << "FES " << e.fes << " FEI " << e.fei << " drop " << e.drop;
  EXPECT_EQ(l.header_len, header_len);
  EXPECT_EQ(l.data_offset, data_offset);
  EXPECT_EQ(l.data_len, data_len);
  EXPECT_EQ(l.data_digest, data_digest);
}

// ------------------------------------------------------------------ valid layouts

TEST(PduCodecCheck, LayoutOfValidControllerSidePdus) {
  ExpectLayout(Ch(wire::kIcReq, 0, 128, 0, 128), Cfg(true, false, false, 4, true), 128, 0, 0,
               false);
  ExpectLayout(Ch(wire::kCapsuleCmd, 0, 72, 0, 72), Ctrl(), 72, 0, 0, false);
  ExpectLayout(Ch(wire::kCapsuleCmd, 0, 72, 72, 72 + 512), Ctrl(), 72, 72, 512, false);
  ExpectLayout(Ch(wire::kCapsuleCmd, 3, 72, 76, 76 + 512 + 4), Ctrl(true, true), 76, 76, 512,
               true);
  ExpectLayout(Ch(wire::kCapsuleCmd, 1, 72, 80, 80 + 512), Ctrl(true, false, 16), 76, 80, 512,
               false);
  ExpectLayout(Ch(wire::kCapsuleCmd, 3, 72, 128, 128 + 1 + 4), Ctrl(true, true, 128), 76, 128,
               1, true);
  // Data digest negotiated, but no data: no DDGSTF needed.
  ExpectLayout(Ch(wire::kCapsuleCmd, 1, 72, 0, 76), Ctrl(true, true), 76, 0, 0, false);
  ExpectLayout(Ch(wire::kH2CData, 4, 24, 24, 24 + 4096), Ctrl(), 24, 24, 4096, false);
  ExpectLayout(Ch(wire::kH2CData, 7, 24, 32, 32 + 100 + 4), Ctrl(true, true, 32), 28, 32, 100,
               true);
  // Termination requests carry no digests, whatever was negotiated, and no PDO.
  ExpectLayout(Ch(wire::kH2CTermReq, 0, 24, 0, 24 + 8), Ctrl(true, true), 24, 24, 8, false);
  ExpectLayout(Ch(wire::kH2CTermReq, 0, 24, 0, 24), Ctrl(), 24, 24, 0, false);
  ExpectLayout(Ch(wire::kH2CTermReq, 0, 24, 0, 152), Ctrl(), 24, 24, 128, false);
  // A termination request is also accepted during the handshake.
  ExpectLayout(Ch(wire::kH2CTermReq, 0, 24, 0, 40), Cfg(true, false, false, 4, true), 24, 24,
               16, false);
}

TEST(PduCodecCheck, LayoutOfValidHostSidePdus) {
  ExpectLayout(Ch(wire::kIcResp, 0, 128, 0, 128), Cfg(false, false, false, 4, true), 128, 0, 0,
               false);
  ExpectLayout(Ch(wire::kCapsuleResp, 0, 24, 0, 24), Host(), 24, 0, 0, false);
  ExpectLayout(Ch(wire::kCapsuleResp, 1, 24, 0, 28), Host(true, true), 28, 0, 0, false);
  ExpectLayout(Ch(wire::kR2T, 0, 24, 0, 24), Host(false, true), 24, 0, 0, false);
  ExpectLayout(Ch(wire::kR2T, 1, 24, 0, 28), Host(true), 28, 0, 0, false);
  ExpectLayout(Ch(wire::kC2HData, 0x0C, 24, 24, 24 + 512), Host(), 24, 24, 512, false);
  ExpectLayout(Ch(wire::kC2HData, 0x0F, 24, 28, 28 + 512 + 4), Host(true, true), 28, 28, 512,
               true);
  ExpectLayout(Ch(wire::kC2HData, 0x06, 24, 32, 32 + 5 + 4), Host(false, true, 16), 24, 32, 5,
               true);
  ExpectLayout(Ch(wire::kC2HTermReq, 0, 24, 0, 24 + 128), Host(true), 24, 24, 128, false);
}

// What the builders produce, the checker accepts with the matching layout.
TEST(PduCodecCheck, BuiltPdusRoundTrip) {
  alignas(8) uint8_t buf[kMaxHeaderBytes];
  const uint32_t pdas[] = {4, 8, 16, 32, 128};
  for (int d = 0; d < 4; d++) {
    for (uint32_t pda : pdas) {
      TxConfig tx{(d & 1) != 0, (d & 2) != 0, pda};
      RxConfig ctrl = Cfg(true, tx.header_digest, tx.data_digest, pda);
      RxConfig host = Cfg(false, tx.header_digest, tx.data_digest, pda);
      const uint32_t hd = tx.header_digest ? 4 : 0, dd = tx.data_digest ? 4 : 0;
      auto ch = [&] { return *reinterpret_cast<const wire::CommonHeader*>(buf); };
      SCOPED_TRACE(testing::Message() << "dgst " << d << " pda " << pda);

      uint32_t n = BuildCapsuleCmd(buf, spec::Sqe{}, 1000, tx);
      ExpectLayout(ch(), ctrl, 72 + hd, n, 1000, tx.data_digest);
      EXPECT_EQ(ch().plen, n + 1000 + dd);
      n = BuildCapsuleCmd(buf, spec::Sqe{}, 0, tx);
      ExpectLayout(ch(), ctrl, 72 + hd, 0, 0, false);
      n = BuildH2CData(buf, 1, 2, 0, 4096, true, tx);
      ExpectLayout(ch(), ctrl, 24 + hd, n, 4096, tx.data_digest);
      n = BuildC2HData(buf, 1, 0, 7, true, true, tx);
      ExpectLayout(ch(), host, 24 + hd, n, 7, tx.data_digest);
      n = BuildCapsuleResp(buf, spec::Cqe{}, tx);
      ExpectLayout(ch(), host, 24 + hd, 0, 0, false);
      n = BuildR2T(buf, 1, 2, 0, 8192, tx);
      ExpectLayout(ch(), host, 24 + hd, 0, 0, false);
      if (tx.header_digest) {
        EXPECT_TRUE(HeaderDigestOk(buf, 24));
      }
    }
  }
  BuildIcReq(buf, 0, true, true, 0);
  ExpectLayout(*reinterpret_cast<const wire::CommonHeader*>(buf), Cfg(true, 0, 0, 4, true), 128,
               0, 0, false);
  BuildIcResp(buf, 0, true, true, 8192);
  ExpectLayout(*reinterpret_cast<const wire::CommonHeader*>(buf), Cfg(false, 0, 0, 4, true), 128,
               0, 0, false);
  uint8_t quote[8] = {};
  BuildTermReq(buf, true, 1, 0, quote, 8);
  ExpectLayout(*reinterpret_cast<const wire::CommonHeader*>(buf), Ctrl(true, true), 24, 24, 8,
               false);
}

// ------------------------------------------------------------------- PDU-Type

TEST(PduCodecCheck, UnknownType) {
  for (uint8_t t : {0x08, 0x0A, 0x0B, 0x10, 0x80, 0xFF}) {
    EXPECT_PDU_ERR(Check(Ch(t, 0, 24, 0, 24), Ctrl()), kInvalidField, kType) << int(t);
    EXPECT_PDU_ERR(Check(Ch(t, 0, 24, 0, 24), Host()), kInvalidField, kType) << int(t);
  }
}

TEST(PduCodecCheck, TypeFromTheWrongDirection) {
  // A controller receives only host-to-controller PDUs.
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleResp, 0, 24, 0, 24), Ctrl()), kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kC2HData, 4, 24, 24, 28), Ctrl()), kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kR2T, 0, 24, 0, 24), Ctrl()), kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kC2HTermReq, 0, 24, 0, 24), Ctrl()), kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kIcResp, 0, 128, 0, 128), Cfg(true, 0, 0, 4, true)),
                 kInvalidField, kType);
  // And a host only controller-to-host ones.
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 0, 72, 0, 72), Host()), kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 4, 24, 24, 28), Host()), kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CTermReq, 0, 24, 0, 24), Host()), kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kIcReq, 0, 128, 0, 128), Cfg(false, 0, 0, 4, true)),
                 kInvalidField, kType);
}

TEST(PduCodecCheck, InitializationPdusOnlyDuringTheHandshake) {
  EXPECT_PDU_ERR(Check(Ch(wire::kIcReq, 0, 128, 0, 128), Ctrl()), kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kIcResp, 0, 128, 0, 128), Host()), kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 0, 72, 0, 72), Cfg(true, 0, 0, 4, true)),
                 kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 4, 24, 24, 28), Cfg(true, 0, 0, 4, true)),
                 kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleResp, 0, 24, 0, 24), Cfg(false, 0, 0, 4, true)),
                 kInvalidField, kType);
  EXPECT_PDU_ERR(Check(Ch(wire::kR2T, 0, 24, 0, 24), Cfg(false, 0, 0, 4, true)), kInvalidField,
                 kType);
}

// ---------------------------------------------------------------------- FLAGS

TEST(PduCodecCheck, FlagsNotDefinedForTheType) {
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 0x04, 72, 0, 72), Ctrl()), kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 0x0C, 24, 24, 28), Ctrl()), kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 0x14, 24, 24, 28), Ctrl()), kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleResp, 0x08, 24, 0, 24), Host()), kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kR2T, 0x04, 24, 0, 24), Host()), kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kC2HData, 0x84, 24, 24, 28), Host()), kInvalidField, kFlags);
  // Initialization PDUs have no flags at all, not even the digest ones.
  EXPECT_PDU_ERR(Check(Ch(wire::kIcReq, 0x01, 128, 0, 128), Cfg(true, 0, 0, 4, true)),
                 kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kIcResp, 0x02, 128, 0, 128), Cfg(false, 0, 0, 4, true)),
                 kInvalidField, kFlags);
}

TEST(PduCodecCheck, HeaderDigestFlagMustMatchNegotiation) {
  // Negotiated but missing.
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 0, 72, 0, 72), Ctrl(true)), kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleResp, 0, 24, 0, 24), Host(true)), kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kR2T, 0, 24, 0, 24), Host(true)), kInvalidField, kFlags);
  // Present but not negotiated.
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 1, 72, 0, 76), Ctrl()), kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 5, 24, 28, 32), Ctrl()), kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kC2HData, 5, 24, 28, 32), Host()), kInvalidField, kFlags);
}

TEST(PduCodecCheck, DataDigestFlagWithoutNegotiation) {
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 2, 72, 72, 72 + 8 + 4), Ctrl()), kInvalidField,
                 kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 6, 24, 24, 24 + 8 + 4), Ctrl()), kInvalidField,
                 kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 7, 24, 28, 28 + 8 + 4), Ctrl(true, false)),
                 kInvalidField, kFlags);
  // Types without data never carry DDGSTF, even with data digests negotiated.
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleResp, 2, 24, 0, 24), Host(false, true)), kInvalidField,
                 kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kR2T, 3, 24, 0, 28), Host(true, true)), kInvalidField, kFlags);
}

TEST(PduCodecCheck, DataWithoutTheNegotiatedDataDigest) {
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 0, 72, 72, 72 + 8), Ctrl(false, true)),
                 kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kC2HData, 4, 24, 24, 24 + 8), Host(false, true)), kInvalidField,
                 kFlags);
}

TEST(PduCodecCheck, SuccessWithoutLastPdu) {
  EXPECT_PDU_ERR(Check(Ch(wire::kC2HData, 0x08, 24, 24, 24 + 8), Host()), kInvalidField, kFlags);
  EXPECT_PDU_OK(Check(Ch(wire::kC2HData, 0x0C, 24, 24, 24 + 8), Host()));
}

// ----------------------------------------------------------------------- HLEN

TEST(PduCodecCheck, WrongHlenForEachType) {
  struct Case {
    uint8_t type;
    uint8_t hlen;
    RxConfig cfg;
  } cases[] = {
      {wire::kIcReq, 128, Cfg(true, 0, 0, 4, true)},
      {wire::kIcResp, 128, Cfg(false, 0, 0, 4, true)},
      {wire::kCapsuleCmd, 72, Ctrl()},
      {wire::kCapsuleResp, 24, Host()},
      {wire::kH2CData, 24, Ctrl()},
      {wire::kC2HData, 24, Host()},
      {wire::kR2T, 24, Host()},
  };
  for (const Case& c : cases) {
    const uint8_t flags = (c.type == wire::kH2CData || c.type == wire::kC2HData) ? 4 : 0;
    EXPECT_PDU_OK(Check(Ch(c.type, flags, c.hlen, 0, c.hlen), c.cfg)) << int(c.type);
    for (int delta : {-8, -4, -1, 1, 4, 8}) {
      const uint8_t bad = static_cast<uint8_t>(c.hlen + delta);
      EXPECT_PDU_ERR(Check(Ch(c.type, flags, bad, 0, c.hlen), c.cfg), kInvalidField, kHlen)
          << "type " << int(c.type) << " hlen " << int(bad);
    }
  }
}

// ------------------------------------------------------------------------ PDO

TEST(PduCodecCheck, PdoNonzeroWhereNoDataIsAllowed) {
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleResp, 0, 24, 24, 24), Host()), kInvalidField, kPdo);
  EXPECT_PDU_ERR(Check(Ch(wire::kR2T, 1, 24, 28, 28), Host(true)), kInvalidField, kPdo);
  EXPECT_PDU_ERR(Check(Ch(wire::kIcReq, 0, 128, 128, 128), Cfg(true, 0, 0, 4, true)),
                 kInvalidField, kPdo);
  EXPECT_PDU_ERR(Check(Ch(wire::kIcResp, 0, 128, 4, 128), Cfg(false, 0, 0, 4, true)),
                 kInvalidField, kPdo);
}

// A termination request is never answered with another: one with a bad header field
// just closes the connection.
TEST(PduCodecCheck, TermReqWithBadHeaderFieldIsDropped) {
  for (uint8_t type : {wire::kH2CTermReq, wire::kC2HTermReq}) {
    RxConfig cfg = type == wire::kH2CTermReq ? Ctrl() : Host();
    EXPECT_PDU_OK(Check(Ch(type, 0, 24, 0, 32), cfg));
    EXPECT_TRUE(Check(Ch(type, 0, 24, 24, 32), cfg).drop) << "PDO";
    EXPECT_TRUE(Check(Ch(type, 0, 20, 0, 32), cfg).drop) << "HLEN";
    EXPECT_TRUE(Check(Ch(type, 1, 24, 0, 32), cfg).drop) << "FLAGS";
    EXPECT_EQ(Check(Ch(type, 0, 20, 0, 32), cfg).fes, 0);
  }
}

TEST(PduCodecCheck, PdoInsideTheHeaderOrDigest) {
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 1, 72, 72, 76 + 512), Ctrl(true)), kInvalidField,
                 kPdo);
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 0, 72, 68, 72 + 512), Ctrl()), kInvalidField, kPdo);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 4, 24, 20, 24 + 8), Ctrl()), kInvalidField, kPdo);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 4, 24, 0, 24 + 8), Ctrl()), kInvalidField, kPdo);
  EXPECT_PDU_ERR(Check(Ch(wire::kC2HData, 5, 24, 24, 28 + 8), Host(true)), kInvalidField, kPdo);
}

TEST(PduCodecCheck, PdoMisalignedToRxPda) {
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 1, 72, 76, 76 + 512), Ctrl(true, false, 16)),
                 kInvalidField, kPdo);
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 0, 72, 72, 72 + 512), Ctrl(false, false, 16)),
                 kInvalidField, kPdo);
  EXPECT_PDU_ERR(Check(Ch(wire::kC2HData, 5, 24, 28, 28 + 8), Host(true, false, 8)),
                 kInvalidField, kPdo);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 4, 24, 48, 48 + 8), Ctrl(false, false, 32)),
                 kInvalidField, kPdo);
  EXPECT_PDU_OK(Check(Ch(wire::kH2CData, 4, 24, 64, 64 + 8), Ctrl(false, false, 32)));
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 4, 24, 26, 26 + 8), Ctrl()), kInvalidField, kPdo);
}

TEST(PduCodecCheck, PdoBeyondPlen) {
  EXPECT_PDU_ERR(Check(Ch(wire::kC2HData, 4, 24, 32, 28), Host()), kInvalidField, kPdo);
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 0, 72, 128, 100), Ctrl()), kInvalidField, kPdo);
}

// Padding after the header but no data: PDO == PLEN. The layout would report no data,
// and a receiver that trusts it would read the padding as the next PDU. It must be
// refused, on PDO or on PLEN.
TEST(PduCodecCheck, PaddingWithoutDataIsRefused) {
  PduLayout l;
  PduError e = Check(Ch(wire::kCapsuleCmd, 0, 72, 80, 80), Ctrl(false, false, 16), &l);
  EXPECT_TRUE(static_cast<bool>(e)) << "accepted: header_len " << l.header_len
                                    << " data_offset " << l.data_offset << " data_len "
                                    << l.data_len << " of PLEN 80";
  EXPECT_EQ(e.fes, kInvalidField);
  EXPECT_TRUE(e.fei == kPdo || e.fei == kPlen) << "FEI " << e.fei;
  e = Check(Ch(wire::kC2HData, 4, 24, 32, 32), Host(false, false, 16), &l);
  EXPECT_TRUE(static_cast<bool>(e)) << "accepted C2HData with 8 pad bytes and no data";
  EXPECT_TRUE(e.fei == kPdo || e.fei == kPlen) << "FEI " << e.fei;
}

// ----------------------------------------------------------------------- PLEN

TEST(PduCodecCheck, PlenShorterThanTheHeader) {
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 0, 72, 0, 71), Ctrl()), kInvalidField, kPlen);
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 1, 72, 0, 72), Ctrl(true)), kInvalidField, kPlen);
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleResp, 1, 24, 0, 24), Host(true)), kInvalidField, kPlen);
  EXPECT_PDU_ERR(Check(Ch(wire::kIcReq, 0, 128, 0, 127), Cfg(true, 0, 0, 4, true)),
                 kInvalidField, kPlen);
  EXPECT_PDU_ERR(Check(Ch(wire::kR2T, 0, 24, 0, 0), Host()), kInvalidField, kPlen);
}

TEST(PduCodecCheck, DataOnATypeThatCarriesNone) {
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleResp, 0, 24, 0, 28), Host()), kInvalidField, kPlen);
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleResp, 1, 24, 0, 32), Host(true)), kInvalidField, kPlen);
  EXPECT_PDU_ERR(Check(Ch(wire::kR2T, 0, 24, 0, 32), Host()), kInvalidField, kPlen);
  EXPECT_PDU_ERR(Check(Ch(wire::kIcReq, 0, 128, 0, 132), Cfg(true, 0, 0, 4, true)),
                 kInvalidField, kPlen);
  EXPECT_PDU_ERR(Check(Ch(wire::kIcResp, 0, 128, 0, 129), Cfg(false, 0, 0, 4, true)),
                 kInvalidField, kPlen);
}

TEST(PduCodecCheck, DataTooShortForItsDigest) {
  // Four bytes after PDO: all digest, no data.
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 2, 72, 72, 76), Ctrl(false, true)), kInvalidField,
                 kPlen);
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 6, 24, 24, 27), Ctrl(false, true)), kInvalidField,
                 kPlen);
  EXPECT_PDU_ERR(Check(Ch(wire::kC2HData, 7, 24, 28, 32), Host(true, true)), kInvalidField,
                 kPlen);
  EXPECT_PDU_OK(Check(Ch(wire::kC2HData, 7, 24, 28, 33), Host(true, true)));
}

TEST(PduCodecCheck, MalformedTermReqIsDroppedWithoutFes) {
  for (uint32_t plen : {0u, 8u, 23u, 153u, 1000u, 0xFFFFFFFFu}) {
    PduError e = Check(Ch(wire::kH2CTermReq, 0, 24, 0, plen), Ctrl());
    EXPECT_TRUE(e.drop) << "H2CTermReq plen " << plen;
    EXPECT_EQ(e.fes, 0) << plen;
    EXPECT_TRUE(static_cast<bool>(e));
    e = Check(Ch(wire::kC2HTermReq, 0, 24, 0, plen), Host());
    EXPECT_TRUE(e.drop) << "C2HTermReq plen " << plen;
    EXPECT_EQ(e.fes, 0) << plen;
  }
  EXPECT_PDU_OK(Check(Ch(wire::kC2HTermReq, 0, 24, 0, 24), Host()));
  EXPECT_PDU_OK(Check(Ch(wire::kC2HTermReq, 0, 24, 0, 152), Host()));
}

// ---------------------------------------------------------------------- order

TEST(PduCodecCheck, LowestOffsetFieldIsReported) {
  // Type and everything else wrong.
  EXPECT_PDU_ERR(Check(Ch(0x0F, 0xFF, 0, 7, 1), Ctrl()), kInvalidField, kType);
  // Flags and HLEN.
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 0x08, 70, 0, 70), Ctrl()), kInvalidField, kFlags);
  // HLEN and PDO.
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleResp, 0, 20, 4, 20), Host()), kInvalidField, kHlen);
  // HLEN and PLEN.
  EXPECT_PDU_ERR(Check(Ch(wire::kR2T, 0, 28, 0, 4), Host()), kInvalidField, kHlen);
  // PDO and PLEN (data on a type without data).
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleResp, 0, 24, 24, 40), Host()), kInvalidField, kPdo);
  // Header digest flag and PDO.
  EXPECT_PDU_ERR(Check(Ch(wire::kH2CData, 4, 24, 26, 40), Ctrl(true)), kInvalidField, kFlags);
}

// Data digests negotiated, data present without DDGSTF (a FLAGS error), and a misaligned
// PDO: FLAGS has the lower offset.
TEST(PduCodecCheck, MissingDataDigestFlagReportedBeforePdo) {
  EXPECT_PDU_ERR(Check(Ch(wire::kCapsuleCmd, 0, 72, 76, 76 + 512), Ctrl(false, true, 8)),
                 kInvalidField, kFlags);
  EXPECT_PDU_ERR(Check(Ch(wire::kC2HData, 4, 24, 20, 20 + 64), Host(false, true)), kInvalidField,
                 kFlags);
}

}  // namespace
}  // namespace nvmf::tcp
