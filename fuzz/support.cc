#include "support.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "nvmf/spec/tcp.h"
#include "tcp/crc32c.h"
#include "tcp/pdu_codec.h"

namespace nvmf::fuzz {

bool SocketPair(int fds[2]) {
  return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0;
}

int FdCount() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') n++;
  }
  closedir(d);
  return n - 1;  // the directory's own descriptor
}

void CheckNoFdLeak(EventLoop* loop, int before) {
  static bool first = true;
  if (first) {
    first = false;
    return;
  }
  if (RunUntil(loop, [&] { return FdCount() <= before; }, After(std::chrono::seconds(3)))) {
    return;
  }
  std::fprintf(stderr, "%d descriptors open after the input, %d before\n", FdCount(), before);
  Die("the input leaked a file descriptor");
}

int ConnectLoopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  NoLinger(fd);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    if (errno != EINPROGRESS) {
      close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    const auto deadline = After(std::chrono::seconds(2));
    for (;;) {
      int r = poll(&p, 1, 100);
      if (r > 0) break;
      if ((r == 0 || errno == EINTR) && EventLoop::Clock::now() < deadline) continue;
      close(fd);
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      close(fd);
      errno = err;
      return -1;
    }
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) & ~O_NONBLOCK);
  return fd;
}

void NoLinger(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

bool WriteAll(EventLoop* loop, int fd, const uint8_t* p, size_t n,
              EventLoop::Clock::time_point deadline) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = send(fd, p + off, n - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (EventLoop::Clock::now() >= deadline) return false;
      loop->RunOnce(std::chrono::milliseconds(1));
      continue;
    }
    return false;
  }
  return true;
}

long Drain(int fd) { return DrainInto(fd, nullptr); }

long DrainInto(int fd, TxStreamChecker* check) {
  uint8_t buf[16384];
  long total = 0;
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r > 0) {
      total += r;
      if (check != nullptr) check->Feed(buf, static_cast<size_t>(r));
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return total;
    return -1;  // closed or failed
  }
}

bool RunUntil(EventLoop* loop, const std::function<bool()>& pred,
              EventLoop::Clock::time_point deadline) {
  for (;;) {
    if (pred()) return true;
    auto now = EventLoop::Clock::now();
    if (now >= deadline) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    loop->RunOnce(std::min(left + std::chrono::milliseconds(1), std::chrono::milliseconds(2)));
  }
}

void FixDigests(uint8_t* p, size_t n) {
  namespace wire = nvmf::spec::tcp;
  size_t off = 0;
  while (off + sizeof(wire::CommonHeader) <= n) {
    wire::CommonHeader ch;
    std::memcpy(&ch, p + off, sizeof(ch));
    if (ch.plen < sizeof(ch) || ch.plen > n - off) return;
    uint8_t* pdu = p + off;
    if ((ch.flags & wire::kFlagHdgst) != 0 && ch.hlen >= sizeof(ch) &&
        ch.hlen + wire::kDigestLen <= ch.plen) {
      uint32_t d = tcp::Crc32c(pdu, ch.hlen);
      std::memcpy(pdu + ch.hlen, &d, 4);
    }
    if ((ch.flags & wire::kFlagDdgst) != 0 && ch.pdo > 0 &&
        static_cast<uint64_t>(ch.pdo) + wire::kDigestLen < ch.plen) {
      uint32_t d = tcp::Crc32c(pdu + ch.pdo, ch.plen - ch.pdo - wire::kDigestLen);
      std::memcpy(pdu + ch.plen - wire::kDigestLen, &d, 4);
    }
    off += ch.plen;
  }
}

TxStreamChecker::TxStreamChecker(bool controller_rx, bool hdgst, bool ddgst, uint32_t pda)
    : controller_rx_(controller_rx), hdgst_(hdgst), ddgst_(ddgst), pda_(pda) {}

void TxStreamChecker::Feed(const uint8_t* p, size_t n) {
  namespace wire = nvmf::spec::tcp;
  if (n == 0) return;
  FUZZ_CHECK(!ended_);  // bytes after a termination request
  buf_.insert(buf_.end(), p, p + n);
  size_t off = 0;
  while (buf_.size() - off >= sizeof(wire::CommonHeader)) {
    wire::CommonHeader ch;
    std::memcpy(&ch, buf_.data() + off, sizeof(ch));
    tcp::RxConfig cfg;
    cfg.controller = controller_rx_;
    cfg.header_digest = hdgst_;
    cfg.data_digest = ddgst_;
    cfg.rx_pda = pda_;
    tcp::PduLayout l;
    tcp::PduError e = tcp::CheckCommonHeader(ch, cfg, &l);
    if (e) {
      std::fprintf(stderr, "sent PDU type %u flags %#x hlen %u pdo %u plen %u: FES %u FEI %u\n",
                   ch.pdu_type, ch.flags, ch.hlen, ch.pdo, ch.plen, e.fes, e.fei);
      Die("a queue pair sent a PDU its peer must refuse");
    }
    if (buf_.size() - off < ch.plen) break;
    const uint8_t* pdu = buf_.data() + off;
    if (ch.flags & wire::kFlagHdgst) FUZZ_CHECK(tcp::HeaderDigestOk(pdu, ch.hlen));
    if (l.data_digest) {
      uint32_t got;
      std::memcpy(&got, pdu + l.data_offset + l.data_len, 4);
      FUZZ_CHECK(got == tcp::Crc32c(pdu + l.data_offset, l.data_len));
    }
    if (ch.pdu_type == wire::kH2CTermReq || ch.pdu_type == wire::kC2HTermReq) ended_ = true;
    pdus_++;
    off += ch.plen;
    if (ended_) FUZZ_CHECK(off == buf_.size());
  }
  buf_.erase(buf_.begin(), buf_.begin() + static_cast<long>(off));
}

}  // namespace nvmf::fuzz
