// Test support: a host and a controller queue pair connected over a real loopback TCP
// socket on one EventLoop, and a RawPeer that speaks raw PDUs to one side, for tests of
// what the transport does with bad or unusual input.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nvmf/event_loop.h"
#include "nvmf/spec/tcp.h"
#include "nvmf/tcp.h"
#include "nvmf/transport.h"

namespace nvmf::test {

inline constexpr std::chrono::milliseconds kWait{10000};

// Records what one queue pair's callbacks saw.
struct Endpoint {
  Qpair* qp = nullptr;
  std::vector<Capsule*> received;
  bool failed = false;
  Status error;

  // Takes the oldest received capsule (the caller frees it), or nullptr.
  Capsule* Pop();
  ErrorCallback OnError();
  ReceiveCallback OnReceive();
  void Close();  // frees held capsules and the queue pair
};

struct PairOptions {
  tcp::HostOptions host;
  tcp::ControllerOptions ctrl;
  uint16_t qsize = 32;
  bool admin = false;
  uint32_t host_max_icd = 8192;  // what the host believes the controller's ICD size is
  ReceiveCallback ctrl_receive;  // serves the controller's commands instead of ctrl.received
};

class LoopbackPair {
 public:
  explicit LoopbackPair(EventLoop::Mode mode = EventLoop::Mode::kWait) : loop(mode) {}
  ~LoopbackPair();

  // Listens on a free port, connects, and allocates both queue pairs.
  Status Open(const PairOptions& opts = PairOptions());
  bool Run(const std::function<bool()>& pred, std::chrono::milliseconds t = kWait) {
    return loop.RunUntil(pred, t);
  }

  EventLoop loop;
  std::unique_ptr<tcp::Listener> listener;
  Endpoint host;
  Endpoint ctrl;
  TcpQpairParams host_params;
  TcpQpairParams ctrl_params;
};

// A peer driven by the test, byte by byte. Its socket is blocking for writes and polled
// through the loop for reads, so that the queue pair on the other side keeps running.
class RawPeer {
 public:
  explicit RawPeer(EventLoop* loop) : loop_(loop) {}
  ~RawPeer();

  // Connects to port (as a host) and, when icreq is true, runs the handshake.
  bool ConnectHost(uint16_t port, bool hdgst = false, bool ddgst = false, bool icreq = true);
  // Accepts one connection on listen_fd (as a controller); answers the ICReq when asked.
  bool AcceptController(int listen_fd, bool hdgst = false, bool ddgst = false,
                        uint32_t maxh2cdata = 131072, bool answer = true);

  bool Send(const void* p, size_t n);
  bool Send(const std::vector<uint8_t>& v) { return Send(v.data(), v.size()); }
  // Receives one whole PDU (common header plus PLEN); empty on timeout or close.
  std::vector<uint8_t> RecvPdu(std::chrono::milliseconds t = kWait);
  // True once the other side closed the connection (reads return 0 or an error).
  bool WaitClosed(std::chrono::milliseconds t = kWait);
  void Close();
  int fd() const { return fd_; }

  bool hdgst = false;
  bool ddgst = false;

 private:
  EventLoop* loop_;
  int fd_ = -1;
  std::vector<uint8_t> buf_;
};

// A listening socket on a free loopback port, for RawPeer::AcceptController.
int ListenAnyPort(uint16_t* port);

// Builds a whole PDU from a header builder's output plus payload and data digest.
std::vector<uint8_t> WithPayload(const uint8_t* hdr, uint32_t hdr_len, const void* data,
                                 uint32_t len, bool ddgst);

// An SQE with the given opcode and CID.
spec::Sqe MakeSqe(uint8_t opc, uint16_t cid);
// Fills a buffer with a pattern derived from seed.
void Fill(std::vector<uint8_t>& v, uint32_t seed);

}  // namespace nvmf::test
