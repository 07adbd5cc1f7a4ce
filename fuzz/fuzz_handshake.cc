// Fuzzes the ICReq/ICResp exchange (src/tcp/handshake.cc, src/tcp/tcp_connect.cc)
// through the public set-up API: the controller side is a tcp::Listener that a raw socket
// connects to and feeds the fuzzer's bytes (an ICReq, or anything); the host side is a
// tcp::Connect to a raw listening socket that answers its ICReq with the fuzzer's bytes.
// The bytes go out in chunks whose sizes the input chooses, then the raw side stops
// sending (shutdown), so that every handshake ends at once.
//
// Input: [role and options u8][split seed u8][bytes the raw peer sends...]
// A crash means memory misuse, a callback that ran twice, a connection handed over
// without a valid exchange, negotiated parameters that the PDUs did not agree to, an
// ICResp the host must refuse, a descriptor left open, or a handshake that did not end
// in time (a hang).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "nvmf/tcp.h"
#include "support.h"
#include "tcp/pdu_codec.h"

namespace {

using namespace nvmf;
using fuzz::Reader;
namespace wire = nvmf::spec::tcp;

EventLoop* Loop() {
  static EventLoop* loop = new EventLoop(EventLoop::Mode::kWait);
  return loop;
}

int RawConnect(uint16_t port) {
  int fd = fuzz::ConnectLoopback(port);
  FUZZ_CHECK(fd >= 0);
  return fd;
}

// Reads everything the raw side gets until the other end closes or the deadline passes.
void ReadAll(int fd, std::vector<uint8_t>* out) {
  uint8_t buf[4096];
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r > 0) {
      out->insert(out->end(), buf, buf + r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    return;
  }
}

void SendChunks(int fd, const std::vector<uint8_t>& bytes, uint8_t seed) {
  uint32_t split = seed | 1u;
  size_t off = 0;
  while (off < bytes.size()) {
    split = split * 1103515245u + 12345u;
    size_t chunk = std::min(bytes.size() - off, size_t{1} + (split >> 16) % 64);
    ssize_t w = send(fd, bytes.data() + off, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w <= 0) return;  // the other side has closed: fine
    off += static_cast<size_t>(w);
    Loop()->RunOnce(std::chrono::milliseconds(0));
  }
}

// The raw listening socket the host side connects to: one per process.
int HostListener(uint16_t* port_out) {
  static int lfd = -1;
  static uint16_t port = 0;
  if (lfd < 0) {
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_CHECK(bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    FUZZ_CHECK(listen(lfd, 16) == 0);
    socklen_t len = sizeof(sa);
    getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
    port = ntohs(sa.sin_port);
  }
  *port_out = port;
  return lfd;
}

void Controller(uint8_t opt, uint8_t seed, const std::vector<uint8_t>& bytes) {
  EventLoop* loop = Loop();
  tcp::ControllerOptions o;
  o.cpda = static_cast<uint8_t>(opt >> 4 & 7);
  o.allow_header_digest = (opt & 2) != 0;
  o.allow_data_digest = (opt & 4) != 0;
  o.maxh2cdata = 4096u << (opt >> 7);
  o.icreq_timeout = std::chrono::milliseconds(100);
  int accepted = 0;
  TcpQpairParams got;
  std::unique_ptr<tcp::Listener> l;
  Status s = tcp::Listener::Listen(
      loop, "127.0.0.1", 0, o,
      [&](const TcpQpairParams& p) {
        accepted++;
        got = p;
      },
      &l);
  FUZZ_CHECK(s.ok());
  int fd = RawConnect(l->port());
  SendChunks(fd, bytes, seed);
  shutdown(fd, SHUT_WR);
  std::vector<uint8_t> reply;
  // The handshake ends by handing the connection over or by closing it.
  bool closed = false;
  fuzz::RunUntil(
      loop,
      [&] {
        uint8_t b[4096];
        ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        if (r > 0) reply.insert(reply.end(), b, b + r);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) closed = true;
        return closed || (accepted > 0 && reply.size() >= sizeof(wire::IcResp));
      },
      fuzz::After(std::chrono::milliseconds(3000)));
  FUZZ_CHECK(closed || accepted > 0);
  FUZZ_CHECK(accepted <= 1);
  if (accepted == 1) {
    // The ICReq was valid: the reply is an ICResp that a host accepts, and what was
    // negotiated is what it says.
    FUZZ_CHECK(bytes.size() >= sizeof(wire::IcReq));
    wire::IcReq req;
    std::memcpy(&req, bytes.data(), sizeof(req));
    FUZZ_CHECK(!tcp::CheckIcReq(req));
    FUZZ_CHECK(reply.size() >= sizeof(wire::IcResp));
    wire::IcResp resp;
    std::memcpy(&resp, reply.data(), sizeof(resp));
    tcp::RxConfig hc;
    hc.handshake = true;
    tcp::PduLayout lay;
    FUZZ_CHECK(!tcp::CheckCommonHeader(resp.ch, hc, &lay));
    FUZZ_CHECK(!tcp::CheckIcResp(resp, req.dgst & wire::kDgstHeader, req.dgst & wire::kDgstData));
    FUZZ_CHECK(got.header_digest == ((resp.dgst & wire::kDgstHeader) != 0));
    FUZZ_CHECK(got.data_digest == ((resp.dgst & wire::kDgstData) != 0));
    FUZZ_CHECK(got.tx_pda == (req.hpda + 1u) * 4);
    FUZZ_CHECK(got.fd >= 0);
    close(got.fd);
  }
  close(fd);
  l.reset();
  loop->RunOnce(std::chrono::milliseconds(0));
}

void Host(uint8_t opt, uint8_t seed, const std::vector<uint8_t>& bytes) {
  EventLoop* loop = Loop();
  uint16_t port = 0;
  const int lfd = HostListener(&port);
  tcp::HostOptions o;
  o.header_digest = (opt & 2) != 0;
  o.data_digest = (opt & 4) != 0;
  o.hpda = static_cast<uint8_t>(opt >> 4 & 7);
  o.maxr2t = (opt & 8) ? 1 : 0x10000;
  // Long enough for a loaded machine; every input ends the exchange well before it.
  o.timeout = std::chrono::milliseconds(1000);
  int calls = 0;
  Status result;
  TcpQpairParams got;
  tcp::Connect(loop, "127.0.0.1", port, o, [&](const Status& s, const TcpQpairParams& p) {
    calls++;
    result = s;
    got = p;
  });
  int fd = -1;
  fuzz::RunUntil(loop, [&] {
    fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return fd >= 0 || calls > 0;
  }, fuzz::After(std::chrono::milliseconds(2000)));
  FUZZ_CHECK(fd >= 0);
  fuzz::NoLinger(fd);
  // The host's ICReq, valid and as asked.
  std::vector<uint8_t> icreq;
  fuzz::RunUntil(loop, [&] {
    ReadAll(fd, &icreq);
    return icreq.size() >= sizeof(wire::IcReq) || calls > 0;
  }, fuzz::After(std::chrono::milliseconds(2000)));
  if (icreq.size() < sizeof(wire::IcReq)) {
    // Only a host that gave up (its timeout, on a machine too loaded to run it) may
    // have sent less.
    FUZZ_CHECK(calls == 1 && !result.ok());
    close(fd);
    return;
  }
  FUZZ_CHECK(icreq.size() == sizeof(wire::IcReq));
  wire::IcReq req;
  std::memcpy(&req, icreq.data(), sizeof(req));
  FUZZ_CHECK(!tcp::CheckIcReq(req));
  SendChunks(fd, bytes, seed);
  shutdown(fd, SHUT_WR);
  FUZZ_CHECK(fuzz::RunUntil(loop, [&] { return calls > 0; },
                            fuzz::After(std::chrono::milliseconds(3000))));
  loop->RunOnce(std::chrono::milliseconds(0));
  FUZZ_CHECK(calls == 1);
  if (result.ok()) {
    FUZZ_CHECK(bytes.size() >= sizeof(wire::IcResp));
    wire::IcResp resp;
    std::memcpy(&resp, bytes.data(), sizeof(resp));
    FUZZ_CHECK(!tcp::CheckIcResp(resp, o.header_digest, o.data_digest));
    FUZZ_CHECK(!got.header_digest || o.header_digest);
    FUZZ_CHECK(!got.data_digest || o.data_digest);
    FUZZ_CHECK(got.maxh2cdata == resp.maxh2cdata);
    FUZZ_CHECK(got.fd >= 0);
    close(got.fd);
  } else {
    FUZZ_CHECK(got.fd < 0);
  }
  close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint16_t unused_port;
  (void)HostListener(&unused_port);  // the statics first, so that the count is fair
  (void)Loop();
  const int fds_before = fuzz::FdCount();
  Reader in(data, size);
  const uint8_t opt = in.U8();
  const uint8_t seed = in.U8();
  size_t n = 0;
  const uint8_t* rest = in.rest(&n);
  std::vector<uint8_t> bytes(rest, rest + n);
  if (bytes.size() > 4096) bytes.resize(4096);
  if (opt & 1) {
    Host(opt, seed, bytes);
  } else {
    Controller(opt, seed, bytes);
  }
  fuzz::CheckNoFdLeak(Loop(), fds_before);
  return 0;
}
