// NVMe/TCP PDU validation past the common header: the header digest, ICReq/ICResp
// parameters, and H2CData / C2HData / R2T against the transfer they belong to. Each
// rule has a test asserting the exact FES and FEI.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <utility>

#include "support/codec_util.h"
#include "nvmf/spec/tcp.h"
#include "tcp/pdu_codec.h"

namespace nvmf::tcp {
namespace {

constexpr uint16_t kInvalidField = wire::kFesInvalidHeaderField;
constexpr uint16_t kSequence = wire::kFesPduSequenceError;
constexpr uint16_t kOutOfRange = wire::kFesDataOutOfRange;
constexpr uint16_t kLimit = wire::kFesR2TLimitExceeded;
constexpr uint16_t kUnsupported = wire::kFesUnsupportedParameter;


// ---------------------------------------------------------------- header digest

TEST(PduCodecCheck, HeaderDigestKnownAnswer) {
  // An R2T with HDGSTF and its CRC32C, computed outside this code base.
  alignas(8) uint8_t pdu[28] = {0x09, 0x01, 0x18, 0x00, 0x1C, 0x00, 0x00, 0x00, 0x34, 0x12,
                                0x03, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00,
                                0x00, 0x00, 0x00, 0x00, 0xA2, 0xBE, 0xAB, 0xFC};
  EXPECT_TRUE(HeaderDigestOk(pdu, 24));
  pdu[13] ^= 0x01;  // r2to
  EXPECT_FALSE(HeaderDigestOk(pdu, 24));
  pdu[13] ^= 0x01;
  pdu[27] ^= 0x80;  // the digest itself
  EXPECT_FALSE(HeaderDigestOk(pdu, 24));
  pdu[27] ^= 0x80;
  // The digest is little-endian: the byte-swapped value does not match.
  std::swap(pdu[24], pdu[27]);
  std::swap(pdu[25], pdu[26]);
  EXPECT_FALSE(HeaderDigestOk(pdu, 24));
}

// ------------------------------------------------------------------------ ICReq

wire::IcReq GoodIcReq() {
  alignas(8) uint8_t buf[kMaxHeaderBytes];
  BuildIcReq(buf, 0, true, true, 15);
  wire::IcReq r;
  std::memcpy(&r, buf, sizeof(r));
  return r;
}

TEST(PduCodecCheck, IcReqValid) {
  wire::IcReq r = GoodIcReq();
  EXPECT_PDU_OK(CheckIcReq(r));
  r.hpda = 31;
  r.dgst = 0;
  EXPECT_PDU_OK(CheckIcReq(r));
}

TEST(PduCodecCheck, IcReqPfv) {
  wire::IcReq r = GoodIcReq();
  r.pfv = 1;
  EXPECT_PDU_ERR(CheckIcReq(r), kUnsupported, 8);
  r.pfv = 0x0100;
  EXPECT_PDU_ERR(CheckIcReq(r), kUnsupported, 8);
}

TEST(PduCodecCheck, IcReqHpdaAbove31) {
  wire::IcReq r = GoodIcReq();
  r.hpda = 32;
  EXPECT_PDU_ERR(CheckIcReq(r), kUnsupported, 10);
  r.hpda = 0xFF;
  EXPECT_PDU_ERR(CheckIcReq(r), kUnsupported, 10);
}

TEST(PduCodecCheck, IcReqReservedDigestBits) {
  wire::IcReq r = GoodIcReq();
  for (uint8_t bit = 0x04; bit != 0; bit = static_cast<uint8_t>(bit << 1)) {
    r.dgst = static_cast<uint8_t>(0x03 | bit);
    EXPECT_PDU_ERR(CheckIcReq(r), kInvalidField, 11) << int(bit);
  }
}

TEST(PduCodecCheck, IcReqLowestFieldFirst) {
  wire::IcReq r = GoodIcReq();
  r.pfv = 2;
  r.hpda = 40;
  r.dgst = 0xFF;
  EXPECT_PDU_ERR(CheckIcReq(r), kUnsupported, 8);
  r.pfv = 0;
  EXPECT_PDU_ERR(CheckIcReq(r), kUnsupported, 10);
}

// ----------------------------------------------------------------------- ICResp

wire::IcResp GoodIcResp(bool hd, bool dd, uint32_t maxh2cdata = 0x20000) {
  alignas(8) uint8_t buf[kMaxHeaderBytes];
  BuildIcResp(buf, 0, hd, dd, maxh2cdata);
  wire::IcResp r;
  std::memcpy(&r, buf, sizeof(r));
  return r;
}

TEST(PduCodecCheck, IcRespValid) {
  EXPECT_PDU_OK(CheckIcResp(GoodIcResp(true, true), true, true));
  // The controller may turn off what the host asked for.
  EXPECT_PDU_OK(CheckIcResp(GoodIcResp(false, false), true, true));
  EXPECT_PDU_OK(CheckIcResp(GoodIcResp(true, false), true, true));
  EXPECT_PDU_OK(CheckIcResp(GoodIcResp(false, true), false, true));
  EXPECT_PDU_OK(CheckIcResp(GoodIcResp(false, false, 4096), false, false));
  wire::IcResp r = GoodIcResp(false, false);
  r.cpda = 31;
  EXPECT_PDU_OK(CheckIcResp(r, false, false));
}

TEST(PduCodecCheck, IcRespPfv) {
  wire::IcResp r = GoodIcResp(false, false);
  r.pfv = 1;
  EXPECT_PDU_ERR(CheckIcResp(r, false, false), kUnsupported, 8);
}

TEST(PduCodecCheck, IcRespCpdaAbove31) {
  wire::IcResp r = GoodIcResp(false, false);
  r.cpda = 32;
  EXPECT_PDU_ERR(CheckIcResp(r, false, false), kUnsupported, 10);
}

TEST(PduCodecCheck, IcRespDigestNotAskedFor) {
  EXPECT_PDU_ERR(CheckIcResp(GoodIcResp(true, false), false, false), kInvalidField, 11);
  EXPECT_PDU_ERR(CheckIcResp(GoodIcResp(false, true), true, false), kInvalidField, 11);
  EXPECT_PDU_ERR(CheckIcResp(GoodIcResp(true, true), false, true), kInvalidField, 11);
  wire::IcResp r = GoodIcResp(true, true);
  r.dgst = 0x07;  // a reserved bit
  EXPECT_PDU_ERR(CheckIcResp(r, true, true), kInvalidField, 11);
}

TEST(PduCodecCheck, IcRespMaxH2CData) {
  for (uint32_t bad : {0u, 4u, 4092u, 4095u, 4097u, 4098u, 8190u, 0x20001u}) {
    EXPECT_PDU_ERR(CheckIcResp(GoodIcResp(false, false, bad), false, false), kInvalidField, 12)
        << bad;
  }
  for (uint32_t good : {4096u, 4100u, 8192u, 0xFFFFFFFCu}) {
    EXPECT_PDU_OK(CheckIcResp(GoodIcResp(false, false, good), false, false)) << good;
  }
}

TEST(PduCodecCheck, IcRespLowestFieldFirst) {
  wire::IcResp r = GoodIcResp(true, true, 100);
  r.cpda = 99;
  EXPECT_PDU_ERR(CheckIcResp(r, false, false), kUnsupported, 10);
  r.cpda = 0;
  EXPECT_PDU_ERR(CheckIcResp(r, false, false), kInvalidField, 11);
}

// ---------------------------------------------------------------------- H2CData

wire::H2CData H2C(uint8_t flags, uint32_t datao, uint32_t datal) {
  wire::H2CData p{};
  p.ch = {wire::kH2CData, flags, 24, 24, 24 + datal};
  p.cccid = 5;
  p.ttag = 2;
  p.datao = datao;
  p.datal = datal;
  return p;
}

// An R2T for bytes [4096, 12288) of a command, 4096 bytes per H2CData at most.
H2CExpect R2TWindow(uint32_t received = 0) {
  H2CExpect e;
  e.cccid_known = true;
  e.ttag_known = true;
  e.r2t_offset = 4096;
  e.r2t_length = 8192;
  e.received = received;
  e.maxh2cdata = 4096;
  return e;
}

TEST(PduCodecCheck, H2CDataValidSequence) {
  EXPECT_PDU_OK(CheckH2CData(H2C(0, 4096, 4096), 4096, R2TWindow(0)));
  EXPECT_PDU_OK(CheckH2CData(H2C(4, 8192, 4096), 4096, R2TWindow(4096)));
  EXPECT_PDU_OK(CheckH2CData(H2C(0, 4096, 1), 1, R2TWindow(0)));
  EXPECT_PDU_OK(CheckH2CData(H2C(4, 12287, 1), 1, R2TWindow(8191)));
}

TEST(PduCodecCheck, H2CDataUnknownCccid) {
  H2CExpect e = R2TWindow();
  e.cccid_known = false;
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 4096, 4096), 4096, e), kInvalidField, 8);
  e.ttag_known = false;  // both unknown: CCCID has the lower offset
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 4096, 4096), 4096, e), kInvalidField, 8);
}

TEST(PduCodecCheck, H2CDataUnknownTtag) {
  H2CExpect e = R2TWindow();
  e.ttag_known = false;
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 4096, 4096), 4096, e), kInvalidField, 10);
  // TTAG (offset 10) before DATAL (offset 16).
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 4096, 4096), 100, e), kInvalidField, 10);
}

TEST(PduCodecCheck, H2CDataOutsideTheR2T) {
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 0, 4096), 4096, R2TWindow()), kOutOfRange, 0);
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 4095, 1), 1, R2TWindow()), kOutOfRange, 0);
  EXPECT_PDU_ERR(CheckH2CData(H2C(4, 12288, 4), 4, R2TWindow(8192)), kOutOfRange, 0);
  EXPECT_PDU_ERR(CheckH2CData(H2C(4, 8192, 4097), 4097, R2TWindow(4096)), kOutOfRange, 0);
  // No 32-bit wrap-around: DATAO + DATAL overflowing must not look in range.
  EXPECT_PDU_ERR(CheckH2CData(H2C(4, 8192, 0xFFFFF000u), 4096, R2TWindow(4096)), kOutOfRange, 0);
}

TEST(PduCodecCheck, H2CDataNotTheNextExpectedOffset) {
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 5120, 1024), 1024, R2TWindow(0)), kSequence, 0);
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 4096, 1024), 1024, R2TWindow(2048)), kSequence, 0);
}

TEST(PduCodecCheck, H2CDataDatalNotMatchingPduData) {
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 4096, 2048), 2044, R2TWindow()), kInvalidField, 16);
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 4096, 2048), 2052, R2TWindow()), kInvalidField, 16);
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 4096, 0), 0, R2TWindow()), kInvalidField, 16);
}

TEST(PduCodecCheck, H2CDataLongerThanMaxH2CData) {
  EXPECT_PDU_ERR(CheckH2CData(H2C(4, 4096, 8192), 8192, R2TWindow()), kLimit, 0);
  H2CExpect e = R2TWindow();
  e.maxh2cdata = 8192;
  EXPECT_PDU_OK(CheckH2CData(H2C(4, 4096, 8192), 8192, e));
}

TEST(PduCodecCheck, H2CDataLastPduFlagWrong) {
  // The PDU that completes the R2T without LAST_PDU.
  EXPECT_PDU_ERR(CheckH2CData(H2C(0, 8192, 4096), 4096, R2TWindow(4096)), kSequence, 0);
  // LAST_PDU on a PDU that leaves part of the R2T outstanding.
  EXPECT_PDU_ERR(CheckH2CData(H2C(4, 4096, 4096), 4096, R2TWindow(0)), kSequence, 0);
}

// ---------------------------------------------------------------------- C2HData

wire::C2HData C2H(uint8_t flags, uint32_t datao, uint32_t datal) {
  wire::C2HData p{};
  p.ch = {wire::kC2HData, flags, 24, 24, 24 + datal};
  p.cccid = 9;
  p.datao = datao;
  p.datal = datal;
  return p;
}

C2HExpect Read(uint32_t received = 0, uint32_t xfer = 8192) {
  C2HExpect e;
  e.cccid_known = true;
  e.xfer_length = xfer;
  e.received = received;
  return e;
}

TEST(PduCodecCheck, C2HDataValidSequence) {
  EXPECT_PDU_OK(CheckC2HData(C2H(0, 0, 4096), 4096, Read(0)));
  // LAST_PDU may end a piece of the transfer; SUCCESS only the whole of it.
  EXPECT_PDU_OK(CheckC2HData(C2H(4, 0, 4096), 4096, Read(0)));
  EXPECT_PDU_OK(CheckC2HData(C2H(4, 4096, 4096), 4096, Read(4096)));
  EXPECT_PDU_OK(CheckC2HData(C2H(0x0C, 4096, 4096), 4096, Read(4096)));
  EXPECT_PDU_OK(CheckC2HData(C2H(0x0C, 0, 8192), 8192, Read(0)));
}

TEST(PduCodecCheck, C2HDataUnknownCccid) {
  C2HExpect e = Read();
  e.cccid_known = false;
  EXPECT_PDU_ERR(CheckC2HData(C2H(0, 0, 4096), 4096, e), kInvalidField, 8);
  EXPECT_PDU_ERR(CheckC2HData(C2H(0, 9999, 4096), 1, e), kInvalidField, 8);
}

TEST(PduCodecCheck, C2HDataOutOfRange) {
  EXPECT_PDU_ERR(CheckC2HData(C2H(0, 4096, 4097), 4097, Read(4096)), kOutOfRange, 0);
  EXPECT_PDU_ERR(CheckC2HData(C2H(0, 8192, 1), 1, Read(8192)), kOutOfRange, 0);
  EXPECT_PDU_ERR(CheckC2HData(C2H(0, 0xFFFFFFFFu, 2), 2, Read(0)), kOutOfRange, 0);
}

TEST(PduCodecCheck, C2HDataNotTheNextExpectedOffset) {
  EXPECT_PDU_ERR(CheckC2HData(C2H(0, 4096, 4096), 4096, Read(0)), kSequence, 0);
  EXPECT_PDU_ERR(CheckC2HData(C2H(0, 0, 4096), 4096, Read(4096)), kSequence, 0);
}

TEST(PduCodecCheck, C2HDataDatalNotMatchingPduData) {
  EXPECT_PDU_ERR(CheckC2HData(C2H(0, 0, 4096), 4095, Read()), kInvalidField, 16);
  EXPECT_PDU_ERR(CheckC2HData(C2H(0, 0, 0), 0, Read()), kInvalidField, 16);
}

TEST(PduCodecCheck, C2HDataSuccessBeforeTheEnd) {
  EXPECT_PDU_ERR(CheckC2HData(C2H(0x0C, 0, 4096), 4096, Read(0)), kSequence, 0);
}

// -------------------------------------------------------------------------- R2T

wire::R2T MakeR2T(uint32_t r2to, uint32_t r2tl) {
  wire::R2T p{};
  p.ch = {wire::kR2T, 0, 24, 0, 24};
  p.cccid = 3;
  p.ttag = 1;
  p.r2to = r2to;
  p.r2tl = r2tl;
  return p;
}

R2TExpect Write(uint32_t requested = 0, uint32_t outstanding = 0, uint32_t maxr2t = 1) {
  R2TExpect e;
  e.cccid_known = true;
  e.xfer_length = 16384;
  e.requested = requested;
  e.outstanding = outstanding;
  e.maxr2t = maxr2t;
  return e;
}

TEST(PduCodecCheck, R2TValid) {
  EXPECT_PDU_OK(CheckR2T(MakeR2T(0, 16384), Write()));
  EXPECT_PDU_OK(CheckR2T(MakeR2T(0, 8192), Write()));
  EXPECT_PDU_OK(CheckR2T(MakeR2T(8192, 8192), Write(8192, 1, 2)));
}

TEST(PduCodecCheck, R2TUnknownCccid) {
  R2TExpect e = Write();
  e.cccid_known = false;
  EXPECT_PDU_ERR(CheckR2T(MakeR2T(0, 4096), e), kInvalidField, 8);
}

TEST(PduCodecCheck, R2TOutOfRange) {
  EXPECT_PDU_ERR(CheckR2T(MakeR2T(0, 16385), Write()), kOutOfRange, 0);
  EXPECT_PDU_ERR(CheckR2T(MakeR2T(16384, 1), Write(16384)), kOutOfRange, 0);
  EXPECT_PDU_ERR(CheckR2T(MakeR2T(8192, 0xFFFFF000u), Write(8192)), kOutOfRange, 0);
}

TEST(PduCodecCheck, R2TNotTheNextOffset) {
  EXPECT_PDU_ERR(CheckR2T(MakeR2T(4096, 4096), Write(0)), kSequence, 0);
  EXPECT_PDU_ERR(CheckR2T(MakeR2T(0, 4096), Write(8192, 0, 4)), kSequence, 0);
}

TEST(PduCodecCheck, R2TZeroLength) {
  EXPECT_PDU_ERR(CheckR2T(MakeR2T(0, 0), Write()), kInvalidField, 16);
}

TEST(PduCodecCheck, R2TLimitExceeded) {
  EXPECT_PDU_ERR(CheckR2T(MakeR2T(8192, 4096), Write(8192, 1, 1)), kLimit, 0);
  EXPECT_PDU_ERR(CheckR2T(MakeR2T(8192, 4096), Write(8192, 4, 4)), kLimit, 0);
  EXPECT_PDU_OK(CheckR2T(MakeR2T(8192, 4096), Write(8192, 3, 4)));
}

TEST(PduCodecCheck, UnknownResponseCid) {
  PduError e = UnknownResponseCid();
  EXPECT_TRUE(static_cast<bool>(e));
  EXPECT_EQ(e.fes, kInvalidField);
  EXPECT_EQ(e.fei, 20u);  // CapsuleResp: 8-byte common header + CQE CID at 12
  EXPECT_FALSE(e.drop);
}

}  // namespace
}  // namespace nvmf::tcp
