// The NVMe/TCP PDU codec: validation and building of PDUs. Pure code, no I/O and no
// state beyond what the caller passes in, so that it can be unit tested and fuzzed alone.
//
// Validation follows the specification's rule that the lowest offending field is
// reported: CheckCommonHeader validates the common header (type, flags, HLEN, PDO,
// PLEN, in that order) and the Check* functions validate one PDU type's own fields in
// offset order against what the receiver expects. A failure names the fatal error status
// (FES) and field offset (FEI) for the termination request to send.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nvmf/spec/tcp.h"

namespace nvmf::tcp {

namespace wire = nvmf::spec::tcp;

// What a validation found. fes == 0: valid. drop: close without a termination request
// (the specification's rule for a malformed termination request).
struct PduError {
  uint16_t fes = 0;
  uint32_t fei = 0;
  bool drop = false;
  explicit operator bool() const { return fes != 0 || drop; }
  static PduError Field(uint32_t fei) { return {wire::kFesInvalidHeaderField, fei, false}; }
  static PduError Of(uint16_t fes) { return {fes, 0, false}; }
};

struct RxConfig {
  bool controller = false;  // we are the controller: we receive host-to-controller PDUs
  bool header_digest = false;
  bool data_digest = false;
  uint32_t rx_pda = 4;      // data alignment we asked for, bytes
  bool handshake = false;   // only ICReq (controller) or ICResp (host) are expected
};

// The layout of a PDU whose common header passed CheckCommonHeader.
struct PduLayout {
  uint32_t header_len = 0;  // HLEN plus the header digest
  uint32_t data_offset = 0; // PDO, or 0 without data
  uint32_t data_len = 0;    // payload bytes, without padding or data digest
  bool data_digest = false; // a data digest follows the payload
};

PduError CheckCommonHeader(const wire::CommonHeader& ch, const RxConfig& cfg, PduLayout* out);

// True when the header digest that follows hlen header bytes matches.
bool HeaderDigestOk(const uint8_t* header, uint32_t hlen);

PduError CheckIcReq(const wire::IcReq& req);
// asked_*: what the host put in its ICReq; the controller may not turn on more.
PduError CheckIcResp(const wire::IcResp& resp, bool asked_header, bool asked_data);

// Controller side: an H2CData against the transfer its TTAG names.
struct H2CExpect {
  bool cccid_known = false;  // CCCID names a command with an R2T outstanding
  bool ttag_known = false;   // TTAG names an R2T of that command
  uint32_t r2t_offset = 0;   // the R2T's range
  uint32_t r2t_length = 0;
  uint32_t received = 0;     // bytes of the R2T already received
  uint32_t maxh2cdata = 0;
};
PduError CheckH2CData(const wire::H2CData& pdu, uint32_t data_len, const H2CExpect& e);

// Host side: a C2HData for a command reading xfer_length bytes.
struct C2HExpect {
  bool cccid_known = false;  // CCCID names an outstanding command that reads data
  uint32_t xfer_length = 0;
  uint32_t received = 0;     // bytes already received, in order
};
PduError CheckC2HData(const wire::C2HData& pdu, uint32_t data_len, const C2HExpect& e);

// Host side: an R2T for a command writing xfer_length bytes.
struct R2TExpect {
  bool cccid_known = false;  // CCCID names an outstanding command that writes data
  uint32_t xfer_length = 0;
  uint32_t requested = 0;    // bytes already asked for by earlier R2Ts, in order
  uint32_t outstanding = 0;  // R2Ts of this command not yet answered in full
  uint32_t maxr2t = 1;       // the most we declared in ICReq (1-based)
};
PduError CheckR2T(const wire::R2T& pdu, const R2TExpect& e);

// Host side: a CapsuleResp whose CID names no outstanding command.
inline PduError UnknownResponseCid() {
  return PduError::Field(offsetof(wire::CapsuleResp, cqe) + offsetof(spec::Cqe, cid));
}

// Building. Each Build* writes a PDU header into out (which must hold kMaxHeaderLen + 4
// + alignment padding: kMaxHeaderBytes), including the header digest and the padding up
// to PDO when the PDU carries data, and returns the number of header bytes written. The
// payload and its digest (DataDigest over the payload) follow on the wire.
inline constexpr uint32_t kMaxHeaderBytes = 256;

struct TxConfig {
  bool header_digest = false;
  bool data_digest = false;
  uint32_t tx_pda = 4;  // data alignment the peer asked for, bytes
};

uint32_t BuildIcReq(uint8_t* out, uint8_t hpda, bool hdgst, bool ddgst, uint32_t maxr2t_0based);
uint32_t BuildIcResp(uint8_t* out, uint8_t cpda, bool hdgst, bool ddgst, uint32_t maxh2cdata);
uint32_t BuildCapsuleCmd(uint8_t* out, const spec::Sqe& sqe, uint32_t icd_len,
                         const TxConfig& cfg);
uint32_t BuildCapsuleResp(uint8_t* out, const spec::Cqe& cqe, const TxConfig& cfg);
uint32_t BuildH2CData(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t datao,
                      uint32_t datal, bool last, const TxConfig& cfg);
uint32_t BuildC2HData(uint8_t* out, uint16_t cccid, uint32_t datao, uint32_t datal, bool last,
                      bool success, const TxConfig& cfg);
uint32_t BuildR2T(uint8_t* out, uint16_t cccid, uint16_t ttag, uint32_t r2to, uint32_t r2tl,
                  const TxConfig& cfg);
// A termination request (H2C when from the host) quoting up to 128 bytes of the
// offending PDU's header. Returns the whole PDU's length (it carries no digests).
uint32_t BuildTermReq(uint8_t* out, bool from_host, uint16_t fes, uint32_t fei,
                      const uint8_t* bad_header, uint32_t bad_len);

}  // namespace nvmf::tcp
