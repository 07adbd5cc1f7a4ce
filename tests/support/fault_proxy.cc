#include "support/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace nvmf::test {

struct FaultProxy::Conn {
  int host = -1;
  int tgt = -1;
  std::vector<uint8_t> up;    // from the host, not yet written to the target
  std::vector<uint8_t> down;  // from the target, not yet written to the host
  uint64_t up_read = 0;       // host bytes read (for the corruption offset)
  uint64_t up_sent = 0;       // host bytes written to the target
  bool host_eof = false;      // the host closed its sending side
  bool tgt_eof = false;       // the target closed its sending side
  bool up_shut = false;       // we closed the target's receiving side (FIN)
  bool cut = false;           // kClose cut: only target-to-host traffic remains
  bool done = false;
};

namespace {

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void SetBufs(int fd, int size) {
  if (size <= 0) return;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

void Abort(int fd) {  // close with a reset
  if (fd < 0) return;
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

}  // namespace

FaultProxy::FaultProxy(const FaultProxyOptions& opts) : opts_(opts) {}
FaultProxy::~FaultProxy() { Stop(); }

Status FaultProxy::Start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  SetBufs(listen_fd_, opts_.sockbuf);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      listen(listen_fd_, 16) != 0) {
    return Status::IoError(std::string("proxy listen: ") + strerror(errno));
  }
  socklen_t len = sizeof(sa);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  port_ = ntohs(sa.sin_port);
  if (pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0) return Status::IoError("proxy pipe");
  rng_ = opts_.seed * 0x9E3779B97F4A7C15ull + 1;
  thread_ = std::thread([this] { Run(); });
  return Status::OK();
}

void FaultProxy::Stop() {
  if (thread_.joinable()) {
    stop_.store(true);
    char b = 1;
    (void)!write(wake_[1], &b, 1);
    thread_.join();
  }
  for (auto& c : conns_) {
    if (!c->done) {
      if (c->host >= 0) close(c->host);
      if (c->tgt >= 0) close(c->tgt);
      c->done = true;
    }
  }
  conns_.clear();
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
  for (int& fd : wake_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

bool FaultProxy::WaitEnded(int n, std::chrono::milliseconds t) const {
  auto deadline = std::chrono::steady_clock::now() + t;
  while (ended_.load() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void FaultProxy::Finish(Conn* c) {
  if (c->done) return;
  if (c->host >= 0) close(c->host);
  if (c->tgt >= 0) close(c->tgt);
  c->host = c->tgt = -1;
  c->done = true;
  ended_++;
}

void FaultProxy::Cut(Conn* c) {
  cuts_++;
  if (cut_mode_.load() == CutMode::kReset) {
    Abort(c->host);
    Abort(c->tgt);
    c->host = c->tgt = -1;
    c->done = true;
    ended_++;
    return;
  }
  c->cut = true;
  c->up.clear();
  if (cut_mode_.load() == CutMode::kHold) return;
  shutdown(c->tgt, SHUT_WR);
  c->up_shut = true;
}

// Moves bytes one way; false when the connection ended.
bool FaultProxy::Pump(Conn* c, bool up) {
  int from = up ? c->host : c->tgt;
  int to = up ? c->tgt : c->host;
  std::vector<uint8_t>& buf = up ? c->up : c->down;
  bool& eof = up ? c->host_eof : c->tgt_eof;
  // Read what is there (bounded, so that a slow side pushes back).
  if (!eof && !(up && c->cut) && buf.size() < (256u << 10)) {
    uint8_t tmp[65536];
    ssize_t n = recv(from, tmp, sizeof(tmp), MSG_DONTWAIT);
    if (n > 0) {
      if (up) {
        int64_t k = corrupt_at_.load();
        if (k >= 0 && static_cast<uint64_t>(k) >= c->up_read &&
            static_cast<uint64_t>(k) < c->up_read + static_cast<uint64_t>(n)) {
          tmp[k - static_cast<int64_t>(c->up_read)] ^= 0xFF;
        }
        c->up_read += static_cast<uint64_t>(n);
      }
      buf.insert(buf.end(), tmp, tmp + n);
    } else if (n == 0) {
      eof = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      // A reset from one side: pass it on to the other.
      Abort(to);
      close(from);
      c->host = c->tgt = -1;
      c->done = true;
      ended_++;
      return false;
    }
  }
  // Write in pieces.
  while (!buf.empty()) {
    size_t piece = buf.size();
    if (opts_.max_chunk > 0) {
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      piece = std::min(piece, static_cast<size_t>(1 + rng_ % opts_.max_chunk));
    }
    if (up) {
      int64_t cut = cut_at_.load();
      if (cut >= 0) {
        if (c->up_sent >= static_cast<uint64_t>(cut)) {
          Cut(c);
          return !c->done;
        }
        piece = std::min<size_t>(piece, static_cast<uint64_t>(cut) - c->up_sent);
      }
    }
    if (opts_.max_delay.count() > 0) {
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      auto us = static_cast<long>(rng_ % static_cast<uint64_t>(opts_.max_delay.count() + 1));
      if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
    }
    ssize_t w = send(to, buf.data(), piece, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    if (w <= 0) {
      Abort(from);
      close(to);
      c->host = c->tgt = -1;
      c->done = true;
      ended_++;
      return false;
    }
    buf.erase(buf.begin(), buf.begin() + w);
    if (up) {
      c->up_sent += static_cast<uint64_t>(w);
      upstream_.store(c->up_sent);
    }
    if (opts_.max_chunk > 0) break;  // one piece per turn: the other side reads short
  }
  if (up && !c->cut) {
    int64_t cut = cut_at_.load();
    if (cut >= 0 && c->up_sent >= static_cast<uint64_t>(cut)) {
      Cut(c);
      return !c->done;
    }
  }
  // Pass a clean close on once its bytes are through.
  if (up && c->host_eof && buf.empty() && !c->up_shut) {
    shutdown(c->tgt, SHUT_WR);
    c->up_shut = true;
  }
  if (!up && c->tgt_eof && buf.empty()) {
    Finish(c);  // the target closed: so does the host's side
    return false;
  }
  return true;
}

void FaultProxy::Run() {
  while (!stop_.load()) {
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    std::vector<Conn*> live;
    for (auto& c : conns_) {
      if (c->done) continue;
      live.push_back(c.get());
      short hev = 0, tev = 0;
      if (!c->host_eof && !c->cut) hev |= POLLIN;
      if (!c->down.empty()) hev |= POLLOUT;
      if (!c->tgt_eof) tev |= POLLIN;
      if (!c->up.empty()) tev |= POLLOUT;
      fds.push_back({c->host, hev, 0});
      fds.push_back({c->tgt, tev, 0});
    }
    // A short timeout: a cut set from the test thread is noticed without traffic, and
    // pieces held back by the chunking go out.
    poll(fds.data(), fds.size(), 2);
    if (fds[0].revents & POLLIN) {
      char b[16];
      while (read(wake_[0], b, sizeof(b)) > 0) {
      }
    }
    if (fds[1].revents & POLLIN) {
      int h = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (h >= 0) {
        int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        SetBufs(t, opts_.sockbuf);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(opts_.target_port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(t, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
          close(t);
          close(h);
        } else {
          int one = 1;
          setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          setsockopt(h, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          SetNonBlocking(t);
          auto c = std::make_unique<Conn>();
          c->host = h;
          c->tgt = t;
          upstream_.store(0);
          conns_.push_back(std::move(c));
          accepted_++;
        }
      }
    }
    for (Conn* c : live) {
      if (c->done) continue;
      if (!Pump(c, true)) continue;
      if (c->done) continue;
      Pump(c, false);
    }
  }
}

}  // namespace nvmf::test
