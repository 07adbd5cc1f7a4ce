#include "tcp/pdu_codec.h"

#include <cstring>

#include "tcp/crc32c.h"

namespace nvmf::tcp {
namespace {

constexpr uint32_t kChFlags = offsetof(wire::CommonHeader, flags);
constexpr uint32_t kChHlen = offsetof(wire::CommonHeader, hlen);
constexpr uint32_t kChPdo = offsetof(wire::CommonHeader, pdo);
constexpr uint32_t kChPlen = offsetof(wire::CommonHeader, plen);
constexpr uint32_t kChType = offsetof(wire::CommonHeader, pdu_type);

struct TypeRule {
  bool known;
  bool from_host;       // direction: sent by the host
  uint8_t hlen;
  uint8_t valid_flags;  // besides the digest flags, which follow the negotiation
  bool digests;         // the type may carry a header digest
  bool data;            // the type may carry data
};

TypeRule RuleFor(uint8_t type) {
  using namespace wire;
  switch (type) {
    case kIcReq: return {true, true, sizeof(IcReq), 0, false, false};
    case kIcResp: return {true, false, sizeof(IcResp), 0, false, false};
    case kH2CTermReq: return {true, true, sizeof(TermReq), 0, false, true};
    case kC2HTermReq: return {true, false, sizeof(TermReq), 0, false, true};
    case kCapsuleCmd: return {true, true, sizeof(CapsuleCmd), 0, true, true};
    case kCapsuleResp: return {true, false, sizeof(CapsuleResp), 0, true, false};
    case kH2CData: return {true, true, sizeof(H2CData), kFlagLastPdu, true, true};
    case kC2HData: return {true, false, sizeof(C2HData), kFlagLastPdu | kFlagSuccess, true, true};
    case kR2T: return {true, false, sizeof(R2T), 0, true, false};
    default: return {false, false, 0, 0, false, false};
  }
}

bool IsTermReq(uint8_t t) { return t == wire::kH2CTermReq || t == wire::kC2HTermReq; }
bool IsInit(uint8_t t) { return t == wire::kIcReq || t == wire::kIcResp; }

uint32_t AlignUp(uint32_t v, uint32_t a) { return a <= 1 ? v : (v + a - 1) / a * a; }

void PutU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// Fills in the common header and returns the header bytes (with digest and padding).
uint32_t FinishHeader(uint8_t* out, uint8_t type, uint8_t flags, uint8_t hlen, uint32_t datal,
                      const TxConfig& cfg) {
  auto* ch = reinterpret_cast<wire::CommonHeader*>(out);
  ch->pdu_type = type;
  ch->flags = flags;
  ch->hlen = hlen;
  uint32_t full = hlen;
  if (cfg.header_digest) {
    ch->flags |= wire::kFlagHdgst;
    full += wire::kDigestLen;
  }
  uint32_t pdo = 0;
  uint32_t plen = full;
  if (datal > 0) {
    pdo = AlignUp(full, cfg.tx_pda);
    plen = pdo + datal;
    if (cfg.data_digest) {
      ch->flags |= wire::kFlagDdgst;
      plen += wire::kDigestLen;
    }
  }
  ch->pdo = static_cast<uint8_t>(pdo);
  ch->plen = plen;
  if (cfg.header_digest) PutU32(out + hlen, Crc32c(out, hlen));
  if (pdo > full) std::memset(out + full, 0, pdo - full);
  return datal > 0 ? pdo : full;
}

}  // namespace

PduError CheckCommonHeader(const wire::CommonHeader& ch, const RxConfig& cfg, PduLayout* out) {
  const uint8_t type = ch.pdu_type;
  const TypeRule rule = RuleFor(type);
  const uint32_t plen = ch.plen;

  // PDU-Type: known, sent in our direction, and expected at this point of the connection.
  if (!rule.known || rule.from_host != cfg.controller) return PduError::Field(kChType);
  if (IsInit(type) != cfg.handshake && !IsTermReq(type)) return PduError::Field(kChType);
  if (IsTermReq(type) && (plen < sizeof(wire::TermReq) || plen > wire::kTermReqMaxPlen)) {
    return PduError{0, 0, true};  // a malformed termination request: just close
  }

  // A termination request is never answered with one: a bad one just closes.
  if (IsTermReq(type) && (ch.flags != 0 || ch.hlen != rule.hlen || ch.pdo != 0)) {
    return PduError{0, 0, true};
  }

  // FLAGS: only the type's own flags, and digest flags exactly as negotiated.
  const uint8_t digest_mask = wire::kFlagHdgst | wire::kFlagDdgst;
  uint8_t want_digests = 0;
  if (rule.digests && cfg.header_digest) want_digests |= wire::kFlagHdgst;
  if (rule.data && rule.digests && cfg.data_digest) want_digests |= wire::kFlagDdgst;
  const uint8_t allowed = rule.valid_flags | (rule.digests ? digest_mask : 0);
  if ((ch.flags & ~allowed) != 0) return PduError::Field(kChFlags);
  if ((ch.flags & wire::kFlagHdgst) != (want_digests & wire::kFlagHdgst)) {
    return PduError::Field(kChFlags);
  }
  if ((ch.flags & wire::kFlagDdgst) != 0 && (want_digests & wire::kFlagDdgst) == 0) {
    return PduError::Field(kChFlags);
  }
  if (type == wire::kC2HData && (ch.flags & wire::kFlagSuccess) != 0 &&
      (ch.flags & wire::kFlagLastPdu) == 0) {
    return PduError::Field(kChFlags);
  }
  // Data (PLEN past the fixed header) without the negotiated data digest flag.
  const uint32_t fixed = rule.hlen + ((ch.flags & wire::kFlagHdgst) ? wire::kDigestLen : 0);
  if (rule.data && !IsTermReq(type) && (want_digests & wire::kFlagDdgst) != 0 &&
      (ch.flags & wire::kFlagDdgst) == 0 && plen > fixed) {
    return PduError::Field(kChFlags);
  }

  // HLEN: fixed per type.
  if (ch.hlen != rule.hlen) return PduError::Field(kChHlen);

  // PDO: zero without data; otherwise past the header, aligned, and inside the PDU.
  const uint32_t full = ch.hlen + ((ch.flags & wire::kFlagHdgst) ? wire::kDigestLen : 0);
  const bool has_data = plen > full;
  if (!rule.data || IsTermReq(type)) {
    if (ch.pdo != 0) return PduError::Field(kChPdo);
  } else if (has_data || ch.pdo != 0) {
    // PDO == PLEN with PLEN past the header would be padding without data.
    if (ch.pdo < full || ch.pdo >= plen || ch.pdo % cfg.rx_pda != 0) {
      return PduError::Field(kChPdo);
    }
  }

  // PLEN: at least the header; data only where the type carries it; room for the digest.
  if (plen < full) return PduError::Field(kChPlen);
  uint32_t data_len = 0;
  if (IsTermReq(type)) {
    data_len = plen - full;
  } else if (has_data) {
    if (!rule.data) return PduError::Field(kChPlen);
    data_len = plen - ch.pdo;
    if (ch.flags & wire::kFlagDdgst) {
      if (data_len <= wire::kDigestLen) return PduError::Field(kChPlen);
      data_len -= wire::kDigestLen;
    }
  }

  out->header_len = full;
  out->data_offset = IsTermReq(type) ? full : (has_data ? ch.pdo : 0);
  out->data_len = data_len;
  out->data_digest = data_len > 0 && !IsTermReq(type) && (ch.flags & wire::kFlagDdgst) != 0;
  return {};
}

bool HeaderDigestOk(const uint8_t* header, uint32_t hlen) {
  uint32_t got;
  std::memcpy(&got, header + hlen, 4);
  return got == Crc32c(header, hlen);
}

PduError CheckIcReq(const wire::IcReq& req) {
  if (req.pfv != wire::kPfv10) return {wire::kFesUnsupportedParameter, offsetof(wire::IcReq, pfv)};
  if (req.hpda > 31) return {wire::kFesUnsupportedParameter, offsetof(wire::IcReq, hpda)};
  if ((req.dgst & ~(wire::kDgstHeader | wire::kDgstData)) != 0) {
    return PduError::Field(offsetof(wire::IcReq, dgst));
  }
  return {};
}

PduError CheckIcResp(const wire::IcResp& resp, bool asked_header, bool asked_data) {
  if (resp.pfv != wire::kPfv10) {
    return {wire::kFesUnsupportedParameter, offsetof(wire::IcResp, pfv)};
  }
  if (resp.cpda > 31) return {wire::kFesUnsupportedParameter, offsetof(wire::IcResp, cpda)};
  uint8_t asked = (asked_header ? wire::kDgstHeader : 0) | (asked_data ? wire::kDgstData : 0);
  if ((resp.dgst & ~asked) != 0) return PduError::Field(offsetof(wire::IcResp, dgst));
  if (resp.maxh2cdata < wire::kMinMaxH2CData || resp.maxh2cdata % 4 != 0) {
    return PduError::Field(offsetof(wire::IcResp, maxh2cdata));
  }
  return {};
}

PduError CheckH2CData(const wire::H2CData& pdu, uint32_t data_len, const H2CExpect& e) {
  if (!e.cccid_known) return PduError::Field(offsetof(wire::H2CData, cccid));
  if (!e.ttag_known) return PduError::Field(offsetof(wire::H2CData, ttag));
  const uint64_t end = static_cast<uint64_t>(pdu.datao) + pdu.datal;
  if (pdu.datao < e.r2t_offset || end > static_cast<uint64_t>(e.r2t_offset) + e.r2t_length) {
    return PduError::Of(wire::kFesDataOutOfRange);
  }
  if (pdu.datao != e.r2t_offset + e.received) return PduError::Of(wire::kFesPduSequenceError);
  if (pdu.datal != data_len || data_len == 0) {
    return PduError::Field(offsetof(wire::H2CData, datal));
  }
  if (pdu.datal > e.maxh2cdata) return PduError::Of(wire::kFesR2TLimitExceeded);
  const bool last = e.received + pdu.datal == e.r2t_length;
  if (last != ((pdu.ch.flags & wire::kFlagLastPdu) != 0)) {
    return PduError::Of(wire::kFesPduSequenceError);
  }
  return {};
}

PduError CheckC2HData(const wire::C2HData& pdu, uint32_t data_len, const C2HExpect& e) {
  if (!e.cccid_known) return PduError::Field(offsetof(wire::C2HData, cccid));
  const uint64_t end = static_cast<uint64_t>(pdu.datao) + pdu.datal;
  if (end > e.xfer_length) return PduError::Of(wire::kFesDataOutOfRange);
  if (pdu.datao != e.received) return PduError::Of(wire::kFesPduSequenceError);
  if (pdu.datal != data_len || data_len == 0) {
    return PduError::Field(offsetof(wire::C2HData, datal));
  }
  // LAST_PDU closes a piece of the transfer; SUCCESS needs the whole transfer done.
  if ((pdu.ch.flags & wire::kFlagSuccess) != 0 && end != e.xfer_length) {
    return PduError::Of(wire::kFesPduSequenceError);
  }
  return {};
}

PduError CheckR2T(const wire::R2T& pdu, const R2TExpect& e) {
  if (!e.cccid_known) return PduError::Field(offsetof(wire::R2T, cccid));
  const uint64_t end = static_cast<uint64_t>(pdu.r2to) + pdu.r2tl;
  if (end > e.xfer_length) return PduError::Of(wire::kFesDataOutOfRange);
  if (pdu.r2to != e.requested) return PduError::Of(wire::kFesPduSequenceError);
  if (pdu.r2tl == 0) return PduError::Field(offsetof(wire::R2T, r2tl));
  if (e.outstanding >= e.maxr2t) return PduError::Of(wire::kFesR2TLimitExceeded);
  return {};
}

uint32_t BuildIcReq(uint8_t* out, uint8_t hpda, bool hdgst, bool ddgst, uint32_t maxr2t_0based) {
  auto* p = reinterpret_cast<wire::IcReq*>(out);
  std::memset(p, 0, sizeof(*p));
  p->ch = {wire::kIcReq, 0, sizeof(wire::IcReq), 0, sizeof(wire::IcReq)};
  p->pfv = wire::kPfv10;
  p->hpda = hpda;
  p->dgst = static_cast<uint8_t>((hdgst ? wire::kDgstHeader : 0) | (ddgst ? wire::kDgstData : 0));
  p->maxr2t = maxr2t_0based;
  return sizeof(*p);
}

uint32_t BuildIcResp(uint8_t* out, uint8_t cpda, bool hdgst, bool ddgst, uint32_t maxh2cdata) {
  auto* p = reinterpret_cast<wire::IcResp*>(out);
  std::memset(p, 0, sizeof(*p));
  p->ch = {wire::kIcResp, 0, sizeof(wire::IcResp), 0, sizeof(wire::IcResp)};
  p->pfv = wire::kPfv10;
  p->cpda = cpda;
  p->dgst = static_cast<uint8_t>((hdgst ? wire::kDgstHeader : 0) | (ddgst ? wire::kDgstData : 0));
  p->maxh2cdata = maxh2cdata;
  return sizeof(*p);
}

uint32_t BuildCapsuleCmd(uint8_t* out, const spec::Sqe& sqe, uint32_t icd_len,
                         const TxConfig& cfg) {
  auto* p = reinterpret_cast<wire::CapsuleCmd*>(out);
  p->sqe = sqe;
  return FinishHeader(out, wire::kCapsuleCmd, 0, sizeof(wire::CapsuleCmd), icd_len, cfg);
}

uint32_t BuildCapsuleResp(uint8_t* out, const spec::Cqe& cqe, const TxConfig& cfg) {
  auto* p = reinterpret_cast<wire::CapsuleResp*>(out);
  p->cqe = cqe;
  return FinishHeader(out, wire::kCapsuleResp, 0, sizeof(wire::CapsuleResp), 0, cfg);
}

uint32_t BuildH2CData(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t datao,
                      uint32_t datal, bool last, const TxConfig& cfg) {
  auto* p = reinterpret_cast<wire::H2CData*>(out);
  std::memset(p, 0, sizeof(*p));
  p->cccid = cccid;
  p->ttag = ttag;
  p->datao = datao;
  p->datal = datal;
  return FinishHeader(out, wire::kH2CData, last ? wire::kFlagLastPdu : 0, sizeof(*p), datal, cfg);
}

uint32_t BuildC2HData(uint8_t* out, uint16_t cccid, uint32_t datao, uint32_t datal, bool last,
                      bool success, const TxConfig& cfg) {
  auto* p = reinterpret_cast<wire::C2HData*>(out);
  std::memset(p, 0, sizeof(*p));
  p->cccid = cccid;
  p->datao = datao;
  p->datal = datal;
  uint8_t flags = static_cast<uint8_t>((last ? wire::kFlagLastPdu : 0) |
                                       (success ? wire::kFlagSuccess : 0));
  return FinishHeader(out, wire::kC2HData, flags, sizeof(*p), datal, cfg);
}

uint32_t BuildR2T(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t r2to, uint32_t r2tl,
                  const TxConfig& cfg) {
  auto* p = reinterpret_cast<wire::R2T*>(out);
  std::memset(p, 0, sizeof(*p));
  p->cccid = cccid;
  p->ttag = ttag;
  p->r2to = r2to;
  p->r2tl = r2tl;
  return FinishHeader(out, wire::kR2T, 0, sizeof(*p), 0, cfg);
}

uint32_t BuildTermReq(uint8_t* out, bool from_host, uint16_t fes, uint32_t fei,
                      const uint8_t* bad_header, uint32_t bad_len) {
  if (bad_len > wire::kTermReqMaxData) bad_len = wire::kTermReqMaxData;
  auto* p = reinterpret_cast<wire::TermReq*>(out);
  std::memset(p, 0, sizeof(*p));
  p->ch.pdu_type = from_host ? wire::kH2CTermReq : wire::kC2HTermReq;
  p->ch.hlen = sizeof(wire::TermReq);
  p->ch.plen = sizeof(wire::TermReq) + bad_len;
  p->fes = fes;
  p->fei = fei;
  if (bad_len > 0) std::memcpy(out + sizeof(wire::TermReq), bad_header, bad_len);
  return p->ch.plen;
}

}  // namespace nvmf::tcp
