// ControlServer: the Unix socket and its thread. Lines in, HandleControlRequest, lines
// out; what a client can make it hold is bounded (kMaxClients connections, a line of
// kMaxLine bytes, an idle minute).
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "nvmf/target_control.h"

namespace nvmf::target {
namespace {

constexpr size_t kMaxLine = size_t{1} << 20;
constexpr auto kIdle = std::chrono::seconds(60);

Status Errno(const std::string& what) { return Status::IoError(what + ": " + std::strerror(errno)); }

class Server final : public ControlServer {
 public:
  Server(Target* t, std::string path) : target_(t), path_(std::move(path)) {}
  ~Server() override {
    if (thread_.joinable()) {
      uint64_t one = 1;
      ssize_t n = write(stop_fd_, &one, sizeof(one));
      (void)n;
      thread_.join();
    }
    for (Client& c : clients_) close(c.fd);
    if (listen_fd_ >= 0) {
      close(listen_fd_);
      unlink(path_.c_str());
    }
    if (stop_fd_ >= 0) close(stop_fd_);
  }

  Status Listen(mode_t mode) {
    sockaddr_un addr{};
    if (path_.empty() || path_.size() >= sizeof(addr.sun_path)) {
      return Status::InvalidArgument("control socket path must be 1 to " +
                                     std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    struct stat st {};
    if (lstat(path_.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) return Status::AlreadyExists(path_ + " exists and is not a socket");
      int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const bool live = probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
      if (probe >= 0) close(probe);
      if (live) return Status::AlreadyExists(path_ + " is in use by a running process");
      unlink(path_.c_str());  // left by a process that is gone
    }
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd_ < 0) return Errno("control socket");
    // Created with no access for anyone, then given the mode asked for: no window in
    // which another user could connect.
    const mode_t old = umask(0777);
    const int b = bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    umask(old);
    if (b != 0) {
      Status s = Errno("binding the control socket " + path_);
      close(listen_fd_);
      listen_fd_ = -1;
      return s;
    }
    if (chmod(path_.c_str(), mode) != 0 || listen(listen_fd_, 16) != 0) {
      Status s = Errno("control socket " + path_);
      close(listen_fd_);
      listen_fd_ = -1;
      unlink(path_.c_str());
      return s;
    }
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) return Errno("eventfd");
    thread_ = std::thread([this] { Run(); });
    return Status::OK();
  }

 private:
  struct Client {
    int fd;
    std::string in;
    std::string out;
    std::chrono::steady_clock::time_point last;
    bool close_after = false;  // once out is sent (a limit was broken)
  };

  void Run() {
    std::vector<pollfd> fds;
    for (;;) {
      fds.clear();
      fds.push_back({stop_fd_, POLLIN, 0});
      fds.push_back({listen_fd_, static_cast<short>(clients_.size() < kMaxClients ? POLLIN : 0), 0});
      for (const Client& c : clients_) {
        fds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
      }
      if (poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) return;
      if (fds[0].revents != 0) return;
      if ((fds[1].revents & POLLIN) != 0) Accept();
      const auto now = std::chrono::steady_clock::now();
      std::vector<Client> keep;
      for (size_t i = 0; i < clients_.size(); i++) {
        Client& c = clients_[i];
        const short ev = i + 2 < fds.size() ? fds[i + 2].revents : 0;
        bool alive = true;
        if (ev != 0) {
          c.last = now;
          alive = Serve(&c, ev);
        } else if (now - c.last > kIdle) {
          alive = false;
        }
        if (alive) {
          keep.push_back(std::move(c));
        } else {
          close(c.fd);
        }
      }
      clients_ = std::move(keep);
    }
  }

  void Accept() {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) clients_.push_back(Client{fd, {}, {}, std::chrono::steady_clock::now()});
  }

  // False when the client is done (closed, or broke a limit).
  bool Serve(Client* c, short ev) {
    if ((ev & POLLOUT) != 0) {
      ssize_t n = send(c->fd, c->out.data(), c->out.size(), MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      c->out.erase(0, static_cast<size_t>(n));
      if (c->out.empty() && c->close_after) return false;
      if (c->out.empty()) Answer(c);  // requests that waited for the answers to leave
      return true;
    }
    char buf[65536];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c->in.append(buf, static_cast<size_t>(n));
    Answer(c);
    return true;
  }

  // Answers the complete lines received, while the answers waiting to leave stay under
  // kMaxLine (a client that sends and never reads holds no more than that); the socket
  // is not read again until they have left.
  void Answer(Client* c) {
    size_t start = 0;
    for (size_t nl; c->out.size() < kMaxLine && (nl = c->in.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      std::string line = c->in.substr(start, nl - start);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      std::string reply = HandleControlRequest(target_, line);
      if (!reply.empty()) c->out += reply + "\n";
    }
    c->in.erase(0, start);
    if (c->in.size() > kMaxLine && c->in.find('\n') == std::string::npos) {
      c->in.clear();
      c->out += R"({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request longer than 1 MiB"}})";
      c->out += "\n";
      c->close_after = true;
    }
  }

  Target* target_;
  std::string path_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
  std::vector<Client> clients_;
};

}  // namespace

Status ControlServer::Start(Target* target, const std::string& path, mode_t mode,
                            std::unique_ptr<ControlServer>* out) {
  auto s = std::make_unique<Server>(target, path);
  Status st = s->Listen(mode);
  if (!st.ok()) return st;
  *out = std::move(s);
  return Status::OK();
}

}  // namespace nvmf::target
