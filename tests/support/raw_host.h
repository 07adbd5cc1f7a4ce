// Test support: a host that speaks raw PDUs on one queue (over RawPeer), so that a test
// chooses digests, cuts and lengths the host library would never produce.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "support/loopback.h"
#include "tcp/pdu_codec.h"

namespace nvmf::test {

class RawHost {
 public:
  RawHost(EventLoop* loop, uint16_t port, bool ddgst = false);
  bool ok() const { return ok_; }

  // Sends a command with icd as in-capsule data; corrupt flips the data digest.
  bool Send(const spec::Sqe& sqe, const std::vector<uint8_t>& icd = {}, bool corrupt = false);
  // Fabrics Connect (dynamic controller for qid 0); true on a success response.
  bool Connect(const std::string& subnqn, uint16_t qid, uint16_t cntlid,
               const std::string& hostnqn);
  // The same, returning Connect's completion (status 0xFFFF when none came).
  spec::Cqe ConnectCqe(const std::string& subnqn, uint16_t qid, uint16_t cntlid,
                       const std::string& hostnqn);
  // The next PDU, if it has the given type (empty otherwise, or on timeout).
  std::vector<uint8_t> Expect(uint8_t type, std::chrono::milliseconds t = kWait);
  // The next response, skipping data PDUs; status 0xFFFF when none comes.
  spec::Cqe Response();
  // H2CData answering an R2T; corrupt flips its digest; cut sends only that many bytes.
  bool SendH2C(uint16_t cid, uint16_t ttag, uint32_t offset, const std::vector<uint8_t>& data,
               bool corrupt = false, size_t cut = SIZE_MAX, bool last = true);
  void Close() { peer_.Close(); }
  RawPeer& peer() { return peer_; }

  // An NVM command on namespace 1 with an SGL: in-capsule or for R2T/C2HData.
  static spec::Sqe LbaCommand(uint8_t opc, uint16_t cid, uint64_t slba, uint32_t len, bool icd);

 private:
  RawPeer peer_;
  tcp::TxConfig cfg_;
  bool ok_ = false;
};

}  // namespace nvmf::test
