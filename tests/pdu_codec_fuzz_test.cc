// A small deterministic fuzz of the PDU codec's validation: random and mutated 8..256
// byte headers through CheckCommonHeader and the per-type checkers, under every receive
// configuration. It must never crash (run it under NVMF_SANITIZE=ON to catch reads out of
// bounds), and every accepted header must describe a layout that adds up to PLEN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <vector>

#include "support/codec_util.h"
#include "nvmf/spec/nvme.h"
#include "nvmf/spec/tcp.h"
#include "tcp/pdu_codec.h"

namespace nvmf::tcp {
namespace {

using Bytes = std::vector<uint8_t>;

// A valid PDU header and the receive configuration it is valid under.
struct Seed {
  Bytes bytes;
  RxConfig cfg;
};

std::vector<Seed> Seeds() {
  std::vector<Seed> seeds;
  alignas(8) uint8_t buf[kMaxHeaderBytes];
  auto add = [&](uint32_t n, const RxConfig& c) { seeds.push_back({Bytes(buf, buf + n), c}); };
  add(BuildIcReq(buf, 3, true, true, 7), Cfg(true, false, false, 4, true));
  add(BuildIcResp(buf, 1, true, false, 0x20000), Cfg(false, false, false, 4, true));
  uint8_t quote[24] = {0x04, 0x00, 0x48};
  add(BuildTermReq(buf, true, 1, 2, quote, sizeof(quote)), Cfg(true, true, true, 4, false));
  add(BuildTermReq(buf, false, 4, 0, quote, 8), Cfg(false, false, true, 8, false));
  for (uint32_t pda : {4u, 8u, 16u, 32u, 128u}) {
    for (int d = 0; d < 4; d++) {
      const bool hd = (d & 1) != 0, dd = (d & 2) != 0;
      TxConfig tx{hd, dd, pda};
      const RxConfig ctrl = Cfg(true, hd, dd, pda, false), host = Cfg(false, hd, dd, pda, false);
      spec::Sqe sqe{};
      sqe.cid = 77;
      add(BuildCapsuleCmd(buf, sqe, 0, tx), ctrl);
      add(BuildCapsuleCmd(buf, sqe, 4096, tx), ctrl);
      add(BuildCapsuleResp(buf, spec::Cqe{}, tx), host);
      add(BuildH2CData(buf, 77, 1, 0, 8192, true, tx), ctrl);
      add(BuildC2HData(buf, 77, 4096, 512, true, true, tx), host);
      add(BuildR2T(buf, 77, 1, 0, 65536, tx), host);
    }
  }
  return seeds;
}

std::vector<RxConfig> Configs() {
  std::vector<RxConfig> v;
  for (int controller = 0; controller < 2; controller++)
    for (int hd = 0; hd < 2; hd++)
      for (int dd = 0; dd < 2; dd++)
        for (uint32_t pda : {4u, 8u, 16u, 32u, 128u})
          for (int hs = 0; hs < 2; hs++) v.push_back(Cfg(controller, hd, dd, pda, hs));
  return v;
}

std::string Describe(const uint8_t* p, size_t n, const RxConfig& c) {
  std::ostringstream os;
  os << "cfg{controller " << c.controller << " hd " << c.header_digest << " dd "
     << c.data_digest << " pda " << c.rx_pda << " handshake " << c.handshake << "} bytes:";
  for (size_t i = 0; i < n && i < 32; i++) os << ' ' << std::hex << int(p[i]);
  return os.str();
}

// The layout invariants of an accepted common header; returns an error text or "".
std::string LayoutProblem(const wire::CommonHeader& ch, const PduLayout& l) {
  const bool hd = (ch.flags & wire::kFlagHdgst) != 0;
  const bool term = ch.pdu_type == wire::kH2CTermReq || ch.pdu_type == wire::kC2HTermReq;
  if (l.header_len != ch.hlen + (hd ? 4u : 0u)) return "header_len != hlen + digest";
  if (l.header_len > wire::kMaxHeaderLen + wire::kDigestLen) return "header_len too large";
  if (l.header_len > ch.plen) return "header_len > plen";
  if (l.data_digest && l.data_len == 0) return "data digest without data";
  if (term && ch.plen > wire::kTermReqMaxPlen) return "termination request too long";
  if (l.data_len > 0) {
    if (l.data_offset < l.header_len) return "data inside the header";
    uint64_t end = uint64_t(l.data_offset) + l.data_len + (l.data_digest ? 4 : 0);
    if (end != ch.plen) return "data_offset + data_len (+ digest) != plen";
    if (!term && l.data_offset != ch.pdo) return "data_offset != pdo";
  }
  return "";
}

// Any error a checker returns must be one a termination request can carry.
std::string ErrorProblem(const PduError& e, std::initializer_list<uint32_t> field_feis) {
  if (!e) return "";
  if (e.drop) return "type checker asked to drop";
  if (e.fes < wire::kFesInvalidHeaderField || e.fes > wire::kFesUnsupportedParameter) {
    return "FES out of range";
  }
  if (e.fes == wire::kFesInvalidHeaderField || e.fes == wire::kFesUnsupportedParameter) {
    for (uint32_t f : field_feis) {
      if (e.fei == f) return "";
    }
    return "FEI " + std::to_string(e.fei) + " names no checked field";
  }
  return e.fei == 0 ? "" : "FEI set for a status without a field";
}

TEST(PduCodecFuzz, RandomAndMutatedHeaders) {
  const std::vector<Seed> seeds = Seeds();
  const std::vector<RxConfig> configs = Configs();
  std::mt19937 rng(0x5eed1234u);
  size_t accepted = 0, accepted_with_data = 0, type_checked = 0;
  int failures = 0;
  auto fail = [&](const std::string& what, const uint8_t* p, size_t n, const RxConfig& c) {
    if (failures++ < 5) ADD_FAILURE() << what << ": " << Describe(p, n, c);
  };

  for (int iter = 0; iter < 200000; iter++) {
    alignas(8) uint8_t buf[kMaxHeaderBytes + 8] = {};
    const size_t len = 8 + rng() % 249;  // 8..256
    const int mode = static_cast<int>(rng() % 4);
    const RxConfig* cfgp = &configs[rng() % configs.size()];
    if (mode == 0) {
      for (size_t i = 0; i < len; i++) buf[i] = static_cast<uint8_t>(rng());
    } else {
      const Seed& seed = seeds[rng() % seeds.size()];
      if (mode != 1) cfgp = &seed.cfg;  // mostly the configuration the seed is valid under
      const Bytes& s = seed.bytes;
      std::memcpy(buf, s.data(), std::min(len, s.size()));
      const int flips = static_cast<int>(rng() % 4);  // 0..3 mutations; 0 keeps it valid
      for (int f = 0; f < flips; f++) {
        // Mostly the common header, where the interesting checks are.
        size_t at = (rng() % 3 != 0) ? rng() % 8 : rng() % len;
        switch (rng() % 3) {
          case 0: buf[at] = static_cast<uint8_t>(rng()); break;
          case 1: buf[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
          default: buf[at] = static_cast<uint8_t>(buf[at] + (rng() % 9) - 4); break;
        }
      }
    }
    const RxConfig& cfg = *cfgp;
    wire::CommonHeader ch;
    std::memcpy(&ch, buf, sizeof(ch));
    PduLayout l;
    PduError e = CheckCommonHeader(ch, cfg, &l);
    if (e) {
      const bool term = ch.pdu_type == wire::kH2CTermReq || ch.pdu_type == wire::kC2HTermReq;
      if (e.drop && !(term && e.fes == 0)) fail("drop for a non-termination PDU", buf, len, cfg);
      if (!e.drop && (e.fes != wire::kFesInvalidHeaderField || e.fei > 4)) {
        fail("common header error outside the common header", buf, len, cfg);
      }
      continue;
    }
    accepted++;
    if (l.data_len > 0) accepted_with_data++;
    std::string p = LayoutProblem(ch, l);
    if (!p.empty()) fail(p, buf, len, cfg);
    if (ch.flags & wire::kFlagHdgst) (void)HeaderDigestOk(buf, ch.hlen);

    // The type's own checker, against random expectations.
    const uint32_t r1 = static_cast<uint32_t>(rng()), r2 = static_cast<uint32_t>(rng());
    const bool b1 = rng() & 1, b2 = rng() & 1;
    std::string q;
    switch (ch.pdu_type) {
      case wire::kIcReq: {
        wire::IcReq pdu;
        std::memcpy(&pdu, buf, sizeof(pdu));
        q = ErrorProblem(CheckIcReq(pdu), {8, 10, 11});
        break;
      }
      case wire::kIcResp: {
        wire::IcResp pdu;
        std::memcpy(&pdu, buf, sizeof(pdu));
        q = ErrorProblem(CheckIcResp(pdu, b1, b2), {8, 10, 11, 12});
        break;
      }
      case wire::kH2CData: {
        wire::H2CData pdu;
        std::memcpy(&pdu, buf, sizeof(pdu));
        H2CExpect x{b1, b2, r1 % 65536, r2 % 65536, r1 % 4096, 4096u << (r2 % 4)};
        q = ErrorProblem(CheckH2CData(pdu, l.data_len, x), {8, 10, 16});
        break;
      }
      case wire::kC2HData: {
        wire::C2HData pdu;
        std::memcpy(&pdu, buf, sizeof(pdu));
        C2HExpect x{b1, r1 % 65536, r2 % 65536};
        q = ErrorProblem(CheckC2HData(pdu, l.data_len, x), {8, 16});
        break;
      }
      case wire::kR2T: {
        wire::R2T pdu;
        std::memcpy(&pdu, buf, sizeof(pdu));
        R2TExpect x{b1, r1 % 65536, r2 % 65536, r1 % 4, 1 + r2 % 4};
        q = ErrorProblem(CheckR2T(pdu, x), {8, 16});
        break;
      }
      default:
        break;
    }
    if (ch.pdu_type == wire::kIcReq || ch.pdu_type == wire::kIcResp ||
        ch.pdu_type == wire::kH2CData || ch.pdu_type == wire::kC2HData ||
        ch.pdu_type == wire::kR2T) {
      type_checked++;
    }
    if (!q.empty()) fail(q, buf, len, cfg);
  }
  EXPECT_EQ(failures, 0);
  RecordProperty("accepted", static_cast<int>(accepted));
  RecordProperty("accepted_with_data", static_cast<int>(accepted_with_data));
  RecordProperty("type_checked", static_cast<int>(type_checked));
  // The fuzz must reach past the common header often enough to mean something.
  EXPECT_GT(accepted, 10000u);
  EXPECT_GT(accepted_with_data, 2000u);
  EXPECT_GT(type_checked, 5000u);
}

// Valid seeds stay valid under the configuration they were built for, and every
// single-byte change of their common header either keeps a consistent layout or is
// refused: exhaustive over all 8 x 256 values.
TEST(PduCodecFuzz, EverySingleByteChangeOfTheCommonHeader) {
  alignas(8) uint8_t buf[kMaxHeaderBytes];
  TxConfig tx{true, true, 8};
  spec::Sqe sqe{};
  BuildCapsuleCmd(buf, sqe, 100, tx);
  RxConfig cfg;
  cfg.controller = true;
  cfg.header_digest = true;
  cfg.data_digest = true;
  cfg.rx_pda = 8;
  wire::CommonHeader orig;
  std::memcpy(&orig, buf, sizeof(orig));
  PduLayout l;
  ASSERT_FALSE(CheckCommonHeader(orig, cfg, &l));
  int accepted = 0;
  for (int at = 0; at < 8; at++) {
    for (int v = 0; v < 256; v++) {
      uint8_t b[8];
      std::memcpy(b, &orig, 8);
      b[at] = static_cast<uint8_t>(v);
      wire::CommonHeader ch;
      std::memcpy(&ch, b, 8);
      if (CheckCommonHeader(ch, cfg, &l)) continue;
      accepted++;
      EXPECT_EQ(LayoutProblem(ch, l), "") << "byte " << at << " = " << v;
    }
  }
  EXPECT_GT(accepted, 8);  // at least the original value at each position
}

}  // namespace
}  // namespace nvmf::tcp
