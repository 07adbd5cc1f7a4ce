// The host's Connect and the controller's Listener: TCP sockets up to a negotiated
// NVMe/TCP connection.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <string>

#include "nvmf/tcp.h"
#include "tcp/handshake.h"
#include "tcp/tcp_transport.h"
#include "tcp/tls.h"

namespace nvmf::tcp {
namespace {

Status Resolve(const std::string& host, uint16_t port, bool passive, addrinfo** out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  std::string svc = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), svc.c_str(), &hints, out);
  if (rc != 0) return Status::InvalidArgument("cannot resolve " + host + ": " + gai_strerror(rc));
  return Status::OK();
}

std::string Errno(const char* what) { return std::string(what) + ": " + strerror(errno); }

// Waits for a non-blocking connect to finish, then runs the host handshake.
struct Connecting {
  EventLoop* loop;
  int fd;
  HostOptions opts;
  ConnectCallback cb;
  EventLoop::TimerId timer;

  void Done(const Status& s) {
    loop->CancelTimer(timer);
    loop->Remove(fd);
    if (!s.ok()) {
      close(fd);
      ConnectCallback c = std::move(cb);
      delete this;
      c(s, TcpQpairParams{});
      return;
    }
    StartHostHandshake(loop, fd, opts, std::move(cb));
    delete this;
  }
};

class TcpListener final : public Listener {
 public:
  TcpListener(EventLoop* loop, int fd, const ControllerOptions& opts, AcceptCallback cb)
      : loop_(loop), fd_(fd), opts_(opts), cb_(std::move(cb)) {
    // Handshakes die with the listener (see the destructor), so they may call back here.
    auto user = opts_.on_tls_failure;
    opts_.on_tls_failure = [this, user](const std::string& host, const std::string& peer,
                                        const Status& s) {
      const std::string who = host.empty() ? "address " + peer.substr(0, peer.rfind(':')) : host;
      uint64_t n = ++tls_failures_[who];
      Log("tls: connection from " + peer + (host.empty() ? "" : " (host " + host + ")") +
          " closed: " + s.message() + "; " + std::to_string(n) + " failure" +
          (n == 1 ? "" : "s") + " for " + who);
      if (user) user(host, peer, s);
    };
  }
  ~TcpListener() override {
    loop_->CancelTimer(timer_);
    // Connections still in their ICReq exchange die with the listener.
    for (Handshake* h : pending_) CancelHandshake(h);
    loop_->Remove(fd_);
    close(fd_);
  }
  uint16_t port() const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  Status Start() {
    return loop_->Add(fd_, EPOLLIN, [this](uint32_t) { OnAccept(); });
  }

 private:
  void Log(const std::string& line) {
    if (opts_.log) opts_.log(line);
  }

  // Out of descriptors or memory: a level-triggered listener would be woken again at
  // once, so stop listening for a while and try again later.
  void BackOff(int err) {
    backoff_ = backoff_.count() == 0 ? std::chrono::milliseconds(50)
                                     : std::min(backoff_ * 2, std::chrono::milliseconds(2000));
    Log(std::string("accept: ") + strerror(err) + "; not accepting for " +
        std::to_string(backoff_.count()) + " ms");
    loop_->Modify(fd_, 0);
    timer_ = loop_->AddTimer(backoff_, [this] {
      timer_ = {};
      loop_->Modify(fd_, EPOLLIN);
    });
  }

  void OnAccept() {
    for (int i = 0; i < 64; i++) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          BackOff(errno);
        }
        return;  // EAGAIN, or a connection that vanished before accept
      }
      backoff_ = std::chrono::milliseconds(0);
      if (pending_.size() >= opts_.max_handshakes) {
        close(c);
        Log("limit handshakes: " + std::to_string(pending_.size()) +
            " connections are in their ICReq exchange; a new one was closed");
        continue;
      }
      if (opts_.admit && !opts_.admit()) {
        close(c);
        continue;
      }
      TuneSocket(c);
      if (opts_.keepalive_s > 0) {
        // Finds peers that vanished without a FIN: idle, then 3 probes keepalive_s/3 apart.
        int on = 1, idle = static_cast<int>(opts_.keepalive_s);
        int intvl = std::max(1, idle / 3), cnt = 3;
        setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
        setsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(c, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(c, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
      }
      struct Slot {
        Handshake* h = nullptr;
        bool done = false;
      };
      auto slot = std::make_shared<Slot>();
      TcpListener* self = this;
      Handshake* h = StartControllerHandshake(
          loop_, c, opts_, [self, slot](const Status& s, const TcpQpairParams& p) {
            slot->done = true;
            if (slot->h != nullptr) self->pending_.erase(slot->h);
            if (!s.ok()) return;
            if (p.tls != nullptr) {
              self->Log("tls: connection from " + SocketPeerName(p.fd) + " secured (" +
                        TlsDescription(p) + ")");
            }
            self->cb_(p);
          });
      if (!slot->done) {  // a handshake that failed at once is gone already
        slot->h = h;
        pending_.insert(h);
      }
    }
  }

  EventLoop* loop_;
  int fd_;
  ControllerOptions opts_;
  AcceptCallback cb_;
  std::set<Handshake*> pending_;
  std::map<std::string, uint64_t> tls_failures_;  // by host NQN, or peer address
  std::chrono::milliseconds backoff_{0};
  EventLoop::TimerId timer_;
};

}  // namespace

void Connect(EventLoop* loop, const std::string& host, uint16_t port, const HostOptions& opts,
             ConnectCallback cb) {
  addrinfo* ai = nullptr;
  Status s = Resolve(host, port, false, &ai);
  if (!s.ok()) return cb(s, TcpQpairParams{});
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(ai);
    return cb(Status::IoError(Errno("socket")), TcpQpairParams{});
  }
  TuneSocket(fd);
  int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);
  if (rc != 0 && errno != EINPROGRESS) {
    Status err = Status::IoError(Errno("connect"));
    close(fd);
    return cb(err, TcpQpairParams{});
  }
  auto* c = new Connecting{loop, fd, opts, std::move(cb), {}};
  c->timer = loop->AddTimer(opts.timeout, [c] { c->Done(Status::TimedOut("TCP connect timed out")); });
  Status ws = loop->Add(fd, EPOLLOUT, [c](uint32_t) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      c->Done(Status::IoError(std::string("connect: ") + strerror(err)));
    } else {
      c->Done(Status::OK());
    }
  });
  if (!ws.ok()) c->Done(ws);
}

Status Listener::Listen(EventLoop* loop, const std::string& addr, uint16_t port,
                        const ControllerOptions& opts, AcceptCallback cb,
                        std::unique_ptr<Listener>* out) {
  addrinfo* ai = nullptr;
  Status s = Resolve(addr, port, true, &ai);
  if (!s.ok()) return s;
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(ai);
    return Status::IoError(Errno("socket"));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    Status err = Status::IoError(Errno(("listen on " + addr + ":" + std::to_string(port)).c_str()));
    freeaddrinfo(ai);
    close(fd);
    return err;
  }
  freeaddrinfo(ai);
  auto l = std::make_unique<TcpListener>(loop, fd, opts, std::move(cb));
  s = l->Start();
  if (!s.ok()) return s;
  *out = std::move(l);
  return Status::OK();
}

}  // namespace nvmf::tcp
