// Shared pieces of the fuzz targets: a reader that takes typed values off the front of
// the fuzzer's input (so that make_corpus.cc can write seeds in the same layout), a
// socket pair, and a loop pump with a deadline. Nothing here may hang: every wait is
// bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "nvmf/event_loop.h"

namespace nvmf::fuzz {

// Dies with a message: a harness invariant broke (the library did something its
// contract forbids). libFuzzer records the input as a crash.
[[noreturn]] inline void Die(const char* what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}
#define FUZZ_CHECK(cond)                                               \
  do {                                                                 \
    if (!(cond)) ::nvmf::fuzz::Die(#cond " at " __FILE__ ":" FUZZ_STR(__LINE__)); \
  } while (0)
#define FUZZ_STR2(x) #x
#define FUZZ_STR(x) FUZZ_STR2(x)

// Reads little-endian values off the front; past the end it yields zeros.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t left() const { return n_ - off_; }
  bool empty() const { return off_ >= n_; }
  uint8_t U8() { return off_ < n_ ? p_[off_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | U8() << 8); }
  uint32_t U32() { return static_cast<uint32_t>(U16()) | static_cast<uint32_t>(U16()) << 16; }
  uint64_t U64() { return static_cast<uint64_t>(U32()) | static_cast<uint64_t>(U32()) << 32; }
  // Copies up to n bytes into out (zero-filling what the input lacks); returns n.
  size_t Bytes(void* out, size_t n) {
    size_t take = n < left() ? n : left();
    if (take > 0) std::memcpy(out, p_ + off_, take);
    if (take < n) std::memset(static_cast<uint8_t*>(out) + take, 0, n - take);
    off_ += take;
    return n;
  }
  // Takes up to n bytes without copying.
  const uint8_t* Take(size_t n, size_t* got) {
    *got = n < left() ? n : left();
    const uint8_t* p = p_ + off_;
    off_ += *got;
    return p;
  }
  const uint8_t* rest(size_t* n) { return Take(left(), n); }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t off_ = 0;
};

// The writer twin of Reader, for make_corpus.cc.
struct Writer {
  std::vector<uint8_t> out;
  void U8(uint8_t v) { out.push_back(v); }
  void U16(uint16_t v) { U8(static_cast<uint8_t>(v)); U8(static_cast<uint8_t>(v >> 8)); }
  void U32(uint32_t v) { U16(static_cast<uint16_t>(v)); U16(static_cast<uint16_t>(v >> 16)); }
  void U64(uint64_t v) { U32(static_cast<uint32_t>(v)); U32(static_cast<uint32_t>(v >> 32)); }
  void Bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  void Bytes(const std::vector<uint8_t>& v) { Bytes(v.data(), v.size()); }
};

// A connected AF_UNIX stream socket pair, both ends non-blocking.
bool SocketPair(int fds[2]);
// A TCP connection to 127.0.0.1:port (blocking socket, SO_LINGER 0), or -1. Survives the
// signals libFuzzer's timers deliver (a plain blocking connect fails with EINTR).
int ConnectLoopback(uint16_t port);
// Sets SO_LINGER 0 so that close() sends a reset and leaves no TIME_WAIT behind.
void NoLinger(int fd);

// Writes all of p to a non-blocking fd, running loop turns while the socket is full (the
// reader is on the same loop). False if the deadline passed or the socket failed.
bool WriteAll(EventLoop* loop, int fd, const uint8_t* p, size_t n,
              EventLoop::Clock::time_point deadline);
// Reads and throws away whatever fd has; returns the bytes read (-1 once closed/failed).
long Drain(int fd);

// The loop's turns until pred() or the deadline.
bool RunUntil(EventLoop* loop, const std::function<bool()>& pred,
              EventLoop::Clock::time_point deadline);

// Recomputes the header and data digests of every PDU in a byte stream whose PDUs follow
// each other as PLEN says, where the flags ask for them, so that the fuzzer's PDUs get
// past digest checking (it cannot learn CRC32C). Stops at the first PDU whose PLEN
// leaves the stream or is shorter than its header.
void FixDigests(uint8_t* p, size_t n);

// Checks a byte stream one of our queue pairs sent: every PDU must pass the receiving
// side's own checks (CheckCommonHeader under the peer's configuration, the header digest,
// the data digest). Fed in pieces as the bytes arrive.
class TxStreamChecker {
 public:
  // controller_rx: the stream goes to a controller (we check it as the controller would).
  TxStreamChecker(bool controller_rx, bool hdgst, bool ddgst, uint32_t pda);
  void Feed(const uint8_t* p, size_t n);
  size_t pdus() const { return pdus_; }

 private:
  bool controller_rx_;
  bool hdgst_, ddgst_;
  uint32_t pda_;
  std::vector<uint8_t> buf_;
  size_t pdus_ = 0;
  bool ended_ = false;  // a termination request went out: nothing may follow
};
// Drain that feeds what it reads to a checker (may be null).
long DrainInto(int fd, TxStreamChecker* check);

// Open file descriptors of this process.
int FdCount();
// Checks that an input left no descriptor open: runs the loop until the count is back
// at `before` (sockets may close a few turns late), and dies if it never is. The first
// input of a process is not checked: it makes the harness's static sockets and loop.
void CheckNoFdLeak(EventLoop* loop, int before);

// A deadline this far from now.
inline EventLoop::Clock::time_point After(std::chrono::milliseconds ms) {
  return EventLoop::Clock::now() + ms;
}

}  // namespace nvmf::fuzz
