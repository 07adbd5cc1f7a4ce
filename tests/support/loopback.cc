#include "support/loopback.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tcp/crc32c.h"
#include "tcp/pdu_codec.h"

namespace nvmf::test {

Capsule* Endpoint::Pop() {
  if (received.empty()) return nullptr;
  Capsule* c = received.front();
  received.erase(received.begin());
  return c;
}

ErrorCallback Endpoint::OnError() {
  Endpoint* self = this;
  return [self](const Status& s) {
    self->failed = true;
    self->error = s;
  };
}

ReceiveCallback Endpoint::OnReceive() {
  Endpoint* self = this;
  return [self](Capsule* c) { self->received.push_back(c); };
}

void Endpoint::Close() {
  for (Capsule* c : received) FreeCapsule(c);
  received.clear();
  if (qp != nullptr) FreeQpair(qp);
  qp = nullptr;
}

LoopbackPair::~LoopbackPair() {
  host.Close();
  ctrl.Close();
  listener.reset();
  loop.RunOnce();  // lets deferred clean-up finish
}

Status LoopbackPair::Open(const PairOptions& opts) {
  bool have_ctrl = false;
  Status ctrl_status;
  Status s = tcp::Listener::Listen(
      &loop, "127.0.0.1", 0, opts.ctrl,
      [&](const TcpQpairParams& p) {
        ctrl_params = p;
        QpairParams qp;
        qp.qsize = opts.qsize;
        qp.admin = opts.admin;
        qp.connection = tcp::WrapConnection(p);
        ctrl_status = AllocateQpair(&loop, TransportType::kTcp, Role::kController, qp,
                                    ctrl.OnError(),
                                    opts.ctrl_receive ? opts.ctrl_receive : ctrl.OnReceive(),
                                    &ctrl.qp);
        have_ctrl = true;
      },
      &listener);
  if (!s.ok()) return s;
  bool have_host = false;
  Status host_status;
  tcp::Connect(&loop, "127.0.0.1", listener->port(), opts.host,
               [&](const Status& st, const TcpQpairParams& p) {
                 host_status = st;
                 have_host = true;
                 if (!st.ok()) return;
                 host_params = p;
                 host_params.max_icd = opts.host_max_icd;
                 QpairParams qp;
                 qp.qsize = opts.qsize;
                 qp.admin = opts.admin;
                 qp.max_icd = host_params.max_icd;
                 qp.connection = tcp::WrapConnection(host_params);
                 host_status = AllocateQpair(&loop, TransportType::kTcp, Role::kHost, qp,
                                             host.OnError(), host.OnReceive(), &host.qp);
               });
  if (!loop.RunUntil([&] { return have_host && (have_ctrl || !host_status.ok()); }, kWait)) {
    return Status::TimedOut("loopback connection did not come up");
  }
  if (!host_status.ok()) return host_status;
  return ctrl_status;
}

// ---------------------------------------------------------------- RawPeer

RawPeer::~RawPeer() { Close(); }

void RawPeer::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool RawPeer::Send(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    ssize_t w = send(fd_, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      loop_->RunOnce(std::chrono::milliseconds(1));  // let the other side drain
      continue;
    }
    if (w <= 0) return false;
    b += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::vector<uint8_t> RawPeer::RecvPdu(std::chrono::milliseconds t) {
  bool closed = false;
  auto have_pdu = [&] {
    uint8_t tmp[65536];
    ssize_t n = recv(fd_, tmp, sizeof(tmp), MSG_DONTWAIT);
    if (n > 0) buf_.insert(buf_.end(), tmp, tmp + n);
    if (n == 0) closed = true;
    if (buf_.size() < 8) return closed;
    uint32_t plen;
    std::memcpy(&plen, buf_.data() + 4, 4);
    return buf_.size() >= plen || closed;
  };
  loop_->RunUntil(have_pdu, t);
  if (buf_.size() < 8) return {};
  uint32_t plen;
  std::memcpy(&plen, buf_.data() + 4, 4);
  if (buf_.size() < plen) return {};
  std::vector<uint8_t> pdu(buf_.begin(), buf_.begin() + plen);
  buf_.erase(buf_.begin(), buf_.begin() + plen);
  return pdu;
}

bool RawPeer::WaitClosed(std::chrono::milliseconds t) {
  return loop_->RunUntil(
      [&] {
        uint8_t tmp[4096];
        ssize_t n = recv(fd_, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n > 0) buf_.insert(buf_.end(), tmp, tmp + n);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
      },
      t);
}

bool RawPeer::ConnectHost(uint16_t port, bool h, bool d, bool icreq) {
  hdgst = h;
  ddgst = d;
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return false;
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!icreq) return true;
  uint8_t req[128];
  tcp::BuildIcReq(req, 0, h, d, 0);
  if (!Send(req, sizeof(req))) return false;
  std::vector<uint8_t> resp = RecvPdu();
  return resp.size() == 128 && resp[0] == spec::tcp::kIcResp;
}

bool RawPeer::AcceptController(int listen_fd, bool h, bool d, uint32_t maxh2cdata, bool answer) {
  hdgst = h;
  ddgst = d;
  loop_->RunUntil(
      [&] {
        fd_ = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK);
        return fd_ >= 0;
      },
      kWait);
  if (fd_ < 0) return false;
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!answer) return true;
  std::vector<uint8_t> req = RecvPdu();
  if (req.size() != 128 || req[0] != spec::tcp::kIcReq) return false;
  uint8_t resp[128];
  tcp::BuildIcResp(resp, 0, h, d, maxh2cdata);
  return Send(resp, sizeof(resp));
}

int ListenAnyPort(uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || listen(fd, 8) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  *port = ntohs(sa.sin_port);
  return fd;
}

std::vector<uint8_t> WithPayload(const uint8_t* hdr, uint32_t hdr_len, const void* data,
                                 uint32_t len, bool ddgst) {
  std::vector<uint8_t> v(hdr, hdr + hdr_len);
  const auto* d = static_cast<const uint8_t*>(data);
  v.insert(v.end(), d, d + len);
  if (ddgst && len > 0) {
    uint32_t crc = tcp::Crc32c(data, len);
    const auto* c = reinterpret_cast<const uint8_t*>(&crc);
    v.insert(v.end(), c, c + 4);
  }
  return v;
}

spec::Sqe MakeSqe(uint8_t opc, uint16_t cid) {
  spec::Sqe s{};
  s.opc = opc;
  s.cid = cid;
  s.nsid = 1;
  return s;
}

void Fill(std::vector<uint8_t>& v, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
}

}  // namespace nvmf::test
