// Test support: a synchronous host queue pair made from the transport API alone, to
// drive a target command by command and look at every status it returns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nvmf/event_loop.h"
#include "nvmf/spec/fabrics.h"
#include "nvmf/transport.h"
#include "support/loopback.h"

namespace nvmf::test {

inline constexpr const char* kTestHostNqn = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001";

class TestQueue {
 public:
  explicit TestQueue(EventLoop* loop) : loop_(loop) {}
  ~TestQueue() { Close(); }

  // TCP connect and ICReq/ICResp.
  Status Open(uint16_t port, bool hdgst = false, bool ddgst = false, uint32_t max_icd = 8192,
              uint16_t qsize = 32);
  // The same with every host option (TLS among them).
  Status Open(uint16_t port, const tcp::HostOptions& o, uint32_t max_icd = 8192, uint16_t qsize = 32);
  // Sends one command (with data to send or to receive) and waits for its response.
  // A transport failure or timeout gives a CQE with status 0xFFFF and sets failed().
  spec::Cqe Run(spec::Sqe sqe, void* data = nullptr, size_t len = 0, bool write = false,
                std::chrono::milliseconds timeout = kWait);
  // Fabrics Connect; returns the CQE (cdw0 holds the CNTLID on success).
  spec::Cqe Connect(const std::string& subnqn, uint16_t qid, uint16_t cntlid = 0xFFFF,
                    uint16_t sqsize = 31, uint32_t kato_ms = 0,
                    const std::string& hostnqn = kTestHostNqn);
  spec::Cqe PropertyGet(uint32_t ofst, bool eight);
  spec::Cqe PropertySet(uint32_t ofst, uint64_t value);
  // Connect, CC.EN = 1 (returns the CNTLID, or 0 on failure).
  uint16_t ConnectAdmin(const std::string& subnqn, uint32_t kato_ms = 0,
                        const std::string& hostnqn = kTestHostNqn);
  // Sends a command without waiting; Wait collects its response.
  uint16_t Submit(spec::Sqe sqe, void* data, size_t len, bool write);
  bool WaitResponses(size_t n, std::chrono::milliseconds timeout = kWait);
  std::vector<spec::Cqe> TakeResponses();

  void Close();
  bool failed() const { return ep_.failed; }
  const Status& error() const { return ep_.error; }
  // Waits until the target closes the connection.
  bool WaitClosed(std::chrono::milliseconds timeout);
  Qpair* qpair() { return ep_.qp; }

 private:
  EventLoop* loop_;
  Endpoint ep_;
  uint16_t next_cid_ = 1;
  std::vector<Capsule*> inflight_;
};

// The Status field of a CQE.
inline uint16_t St(const spec::Cqe& c) { return spec::StatusOf(c); }
inline uint8_t Sc(const spec::Cqe& c) { return spec::StatusSc(spec::StatusOf(c)); }
inline uint8_t Sct(const spec::Cqe& c) { return spec::StatusSct(spec::StatusOf(c)); }

inline spec::Sqe IoSqe(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb) {
  return spec::LbaSqe(opc, nsid, slba, nlb);
}

}  // namespace nvmf::test
