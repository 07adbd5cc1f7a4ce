// Test support: a TCP proxy on loopback between a host and a target that misbehaves on
// purpose. It runs on its own thread and relays each accepted connection to the target's
// port, and can
//  - relay in small random-sized pieces with random pauses, through small socket buffers,
//    so that both ends see short reads, short writes and EAGAIN;
//  - cut a connection after exactly N bytes of host-to-target traffic: either a reset (RST
//    both ways at once), or a close (FIN to the target after the N bytes, whatever the
//    target still sends is relayed to the host, then the host's side closes too);
//  - flip the bits of one host-to-target byte (to make a digest fail).
// Byte counts are per connection, from its first byte (the ICReq).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "nvmf/status.h"

namespace nvmf::test {

struct FaultProxyOptions {
  uint16_t target_port = 0;
  // Largest piece one relay write carries (0: whatever one read gave, up to 64 KiB); each
  // piece is 1..max_chunk bytes, picked at random.
  size_t max_chunk = 0;
  // Longest random pause before a piece (0: none).
  std::chrono::microseconds max_delay{0};
  // Socket buffer size of the proxy's sockets (0: the system's), to make the peers' writes
  // come up short.
  int sockbuf = 0;
  uint32_t seed = 1;
};

// kReset: RST both ways. kClose: FIN to the target, its last bytes relayed, then the
// host's side closes. kHold: nothing more goes to the target, the connection stays open
// (a host that stops sending in the middle of a command).
enum class CutMode { kReset, kClose, kHold };

class FaultProxy {
 public:
  explicit FaultProxy(const FaultProxyOptions& opts);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // Listens on a free loopback port and starts the relay thread.
  Status Start();
  void Stop();
  uint16_t port() const { return port_; }

  // Cuts every connection (present and future) once it has relayed `bytes` bytes from the
  // host (counted from the connection's first byte); -1: no cut.
  void SetCut(int64_t bytes, CutMode mode) {
    cut_mode_.store(mode);
    cut_at_.store(bytes);
  }
  // Flips the bits of host-to-target byte `offset` of every connection; -1: none.
  void SetCorrupt(int64_t offset) { corrupt_at_.store(offset); }

  // Host-to-target bytes relayed on the newest connection so far.
  uint64_t upstream_bytes() const { return upstream_.load(); }
  // How many connections have been cut, and how many have ended altogether (both sockets
  // closed, whatever the reason).
  int cuts() const { return cuts_.load(); }
  int ended() const { return ended_.load(); }
  int accepted() const { return accepted_.load(); }
  // Waits (polling) until ended() >= n.
  bool WaitEnded(int n, std::chrono::milliseconds t) const;

 private:
  struct Conn;
  void Run();
  bool Pump(Conn* c, bool up);
  void Cut(Conn* c);
  void Finish(Conn* c);

  FaultProxyOptions opts_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> cut_at_{-1};
  std::atomic<CutMode> cut_mode_{CutMode::kReset};
  std::atomic<int64_t> corrupt_at_{-1};
  std::atomic<uint64_t> upstream_{0};
  std::atomic<int> cuts_{0};
  std::atomic<int> ended_{0};
  std::atomic<int> accepted_{0};
  std::vector<std::unique_ptr<Conn>> conns_;  // relay thread only
  uint64_t rng_ = 0;
};

}  // namespace nvmf::test
