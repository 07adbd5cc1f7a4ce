// Fuzzes the pure NVMe/TCP PDU codec (src/tcp/pdu_codec.*): CheckCommonHeader,
// HeaderDigestOk and the per-type checkers (CheckIcReq, CheckIcResp, CheckH2CData,
// CheckC2HData, CheckR2T) on arbitrary header bytes under a receive configuration and
// expectations taken from the input; and the builders, whose output must pass the
// checkers under the matching configuration.
//
// Input: [cfg u8][r1 u32][r2 u32][r3 u32][r4 u32][bits u8][build u8][header bytes...]
// A crash means an out-of-bounds read or UB, or an invariant broke: an accepted header
// whose layout does not add up to PLEN, an error that a termination request cannot carry
// (FEI naming no field, FES out of range), or a built PDU the checkers refuse.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "support.h"
#include "tcp/pdu_codec.h"

namespace {

using namespace nvmf::tcp;
using nvmf::fuzz::Reader;

constexpr uint32_t kPdas[8] = {4, 8, 16, 32, 64, 128, 4, 4};

void CheckLayout(const wire::CommonHeader& ch, const PduLayout& l) {
  const bool hd = (ch.flags & wire::kFlagHdgst) != 0;
  const bool term = ch.pdu_type == wire::kH2CTermReq || ch.pdu_type == wire::kC2HTermReq;
  FUZZ_CHECK(l.header_len == ch.hlen + (hd ? 4u : 0u));
  FUZZ_CHECK(l.header_len <= wire::kMaxHeaderLen + wire::kDigestLen);
  FUZZ_CHECK(l.header_len <= ch.plen);
  FUZZ_CHECK(!(l.data_digest && l.data_len == 0));
  if (term) FUZZ_CHECK(ch.plen <= wire::kTermReqMaxPlen);
  if (l.data_len > 0) {
    FUZZ_CHECK(l.data_offset >= l.header_len);
    const uint64_t end = uint64_t(l.data_offset) + l.data_len + (l.data_digest ? 4 : 0);
    FUZZ_CHECK(end == ch.plen);
    if (!term) FUZZ_CHECK(l.data_offset == ch.pdo);
    // The receive path copies a header of header_len bytes into kMaxHeaderBytes.
    FUZZ_CHECK(l.data_offset <= 255);
  } else {
    FUZZ_CHECK(l.header_len == ch.plen || (term && ch.plen == l.header_len));
  }
}

// An error of a type checker: a FES a termination request can carry, FEI naming one of
// the fields when the FES is about a field.
void CheckError(const PduError& e, std::initializer_list<uint32_t> feis) {
  if (!e) return;
  FUZZ_CHECK(!e.drop);
  FUZZ_CHECK(e.fes >= wire::kFesInvalidHeaderField && e.fes <= wire::kFesUnsupportedParameter);
  if (e.fes == wire::kFesInvalidHeaderField || e.fes == wire::kFesUnsupportedParameter) {
    bool found = false;
    for (uint32_t f : feis) found |= f == e.fei;
    FUZZ_CHECK(found);
  } else {
    FUZZ_CHECK(e.fei == 0);
  }
}

template <class T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

void CheckParsed(const uint8_t* buf, const RxConfig& cfg, uint32_t r1, uint32_t r2,
                 uint32_t r3, uint32_t r4, uint8_t bits) {
  const auto ch = Load<wire::CommonHeader>(buf);
  PduLayout l;
  PduError e = CheckCommonHeader(ch, cfg, &l);
  if (e) {
    const bool term = ch.pdu_type == wire::kH2CTermReq || ch.pdu_type == wire::kC2HTermReq;
    if (e.drop) FUZZ_CHECK(term && e.fes == 0);
    else FUZZ_CHECK(e.fes == wire::kFesInvalidHeaderField && e.fei <= 4);
    return;
  }
  CheckLayout(ch, l);
  if (ch.flags & wire::kFlagHdgst) (void)HeaderDigestOk(buf, ch.hlen);
  const bool b1 = bits & 1, b2 = bits & 2, b3 = bits & 4;
  switch (ch.pdu_type) {
    case wire::kIcReq: CheckError(CheckIcReq(Load<wire::IcReq>(buf)), {8, 10, 11}); break;
    case wire::kIcResp:
      CheckError(CheckIcResp(Load<wire::IcResp>(buf), b1, b2), {8, 10, 11, 12});
      break;
    case wire::kH2CData: {
      H2CExpect x{b1, b2, r1, r2, r3, r4};
      CheckError(CheckH2CData(Load<wire::H2CData>(buf), l.data_len, x), {8, 10, 16});
      break;
    }
    case wire::kC2HData: {
      C2HExpect x{b1 || b3, r1, r2};
      CheckError(CheckC2HData(Load<wire::C2HData>(buf), l.data_len, x), {8, 16});
      break;
    }
    case wire::kR2T: {
      R2TExpect x{b1 || b3, r1, r2, r3 & 0xff, r4};
      CheckError(CheckR2T(Load<wire::R2T>(buf), x), {8, 16});
      break;
    }
    default: break;
  }
}

// Builds a PDU from the input's numbers and checks that the receiver accepts it.
void CheckBuilt(uint8_t which, const RxConfig& in_cfg, uint32_t r1, uint32_t r2, uint32_t r3,
                uint32_t r4) {
  alignas(8) uint8_t buf[kMaxHeaderBytes + 64] = {};
  TxConfig tx{in_cfg.header_digest, in_cfg.data_digest, in_cfg.rx_pda};
  RxConfig rx = in_cfg;
  rx.handshake = false;
  uint32_t n = 0;
  uint32_t datal = r2 % (1u << 20);
  switch (which % 8) {
    case 0: {
      nvmf::spec::Sqe sqe{};
      sqe.cid = static_cast<uint16_t>(r1);
      n = BuildCapsuleCmd(buf, sqe, r2 % 65536, tx);
      datal = r2 % 65536;
      rx.controller = true;
      break;
    }
    case 1:
      n = BuildCapsuleResp(buf, nvmf::spec::Cqe{}, tx);
      datal = 0;
      rx.controller = false;
      break;
    case 2: {
      datal = datal == 0 ? 1 : datal;
      n = BuildH2CData(buf, static_cast<uint16_t>(r1), static_cast<uint16_t>(r3), r4 % (1u << 24),
                       datal, true, tx);
      rx.controller = true;
      H2CExpect x{true, true, r4 % (1u << 24), datal, 0, datal};
      FUZZ_CHECK(!CheckH2CData(Load<wire::H2CData>(buf), datal, x));
      break;
    }
    case 3: {
      datal = datal == 0 ? 1 : datal;
      const uint32_t off = r4 % (1u << 24);
      n = BuildC2HData(buf, static_cast<uint16_t>(r1), off, datal, true, (r3 & 1) != 0, tx);
      rx.controller = false;
      C2HExpect x{true, off + datal, off};
      FUZZ_CHECK(!CheckC2HData(Load<wire::C2HData>(buf), datal, x));
      break;
    }
    case 4: {
      const uint32_t len = datal == 0 ? 1 : datal;
      n = BuildR2T(buf, static_cast<uint16_t>(r1), static_cast<uint16_t>(r3), 0, len, tx);
      datal = 0;
      rx.controller = false;
      R2TExpect x{true, len, 0, 0, 1};
      FUZZ_CHECK(!CheckR2T(Load<wire::R2T>(buf), x));
      break;
    }
    case 5: {
      n = BuildIcReq(buf, static_cast<uint8_t>(r1 % 32), r2 & 1, r2 & 2, r3);
      FUZZ_CHECK(!CheckIcReq(Load<wire::IcReq>(buf)));
      rx = RxConfig{true, false, false, 4, true};
      datal = 0;
      break;
    }
    case 6: {
      n = BuildIcResp(buf, static_cast<uint8_t>(r1 % 32), r2 & 1, r2 & 2,
                      (r3 % 1024 + 1) * 4096);
      FUZZ_CHECK(!CheckIcResp(Load<wire::IcResp>(buf), r2 & 1, r2 & 2));
      rx = RxConfig{false, false, false, 4, true};
      datal = 0;
      break;
    }
    default: {
      uint8_t quote[128];
      for (size_t i = 0; i < sizeof(quote); i++) quote[i] = static_cast<uint8_t>(r4 + i);
      uint32_t len = BuildTermReq(buf, r1 & 1, static_cast<uint16_t>(1 + r2 % 6), r3, quote,
                                  r4 % 200);
      FUZZ_CHECK(len <= wire::kTermReqMaxPlen);
      rx.controller = (r1 & 1) != 0;
      PduLayout l;
      FUZZ_CHECK(!CheckCommonHeader(Load<wire::CommonHeader>(buf), rx, &l));
      FUZZ_CHECK(l.header_len + l.data_len == len);
      return;
    }
  }
  FUZZ_CHECK(n <= kMaxHeaderBytes);
  auto ch = Load<wire::CommonHeader>(buf);
  PduLayout l;
  FUZZ_CHECK(!CheckCommonHeader(ch, rx, &l));
  FUZZ_CHECK(l.data_len == datal);
  FUZZ_CHECK(l.data_len == 0 || l.data_offset == n);
  if (ch.flags & wire::kFlagHdgst) FUZZ_CHECK(HeaderDigestOk(buf, ch.hlen));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  const uint8_t c = in.U8();
  RxConfig cfg;
  cfg.controller = c & 1;
  cfg.header_digest = c & 2;
  cfg.data_digest = c & 4;
  cfg.handshake = c & 8;
  cfg.rx_pda = kPdas[(c >> 4) & 7];
  const uint32_t r1 = in.U32(), r2 = in.U32(), r3 = in.U32(), r4 = in.U32();
  const uint8_t bits = in.U8();
  const uint8_t build = in.U8();
  alignas(8) uint8_t buf[kMaxHeaderBytes + 8] = {};
  in.Bytes(buf, in.left() < sizeof(buf) ? in.left() : sizeof(buf));
  CheckParsed(buf, cfg, r1, r2, r3, r4, bits);
  if (build & 0x80) CheckBuilt(build, cfg, r1, r2, r3, r4);
  return 0;
}
