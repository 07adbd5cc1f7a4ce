#include "tcp/handshake.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tcp/pdu_codec.h"
#include "tcp/tcp_transport.h"
#include "tcp/tls.h"

namespace nvmf::tcp {

void TuneSocket(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void Wipe(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
}

// The first byte of a TLS record carrying a handshake message (a ClientHello); an
// NVMe/TCP connection starts with ICReq, PDU type 0.
constexpr uint8_t kTlsHandshakeRecord = 0x16;

// Self-owned: deletes itself once it has called its callback (or is cancelled).
//
// Phases: a controller whose port offers TLS first peeks at the first byte (kDetect); TLS
// then runs its handshake (kTls) and ICReq/ICResp follow inside it (kIc), through the same
// send/receive code with the session in between.
class Handshake {
 public:
  Handshake(EventLoop* loop, int fd, bool controller, HandshakeCallback cb)
      : loop_(loop), fd_(fd), controller_(controller), cb_(std::move(cb)) {}

  void Start(std::chrono::milliseconds timeout, const uint8_t* first, uint32_t len) {
    if (len > 0) {
      std::memcpy(out_, first, len);
      out_len_ = len;
    }
    timer_ = loop_->AddTimer(timeout, [this] { Finish(Status::TimedOut("no ICReq/ICResp in time")); });
    if (controller_ && ctrl.tls.channel != SecureChannel::kNone) phase_ = Phase::kDetect;
    if (!controller_ && host.tls.enabled) {
      Status s = StartHostTls();
      if (!s.ok()) {
        loop_->CancelTimer(timer_);
        pending_error_ = s;  // reported from the loop, not inside the caller's Connect
        timer_ = loop_->AddTimer(std::chrono::nanoseconds(0), [this] { Finish(pending_error_); });
        return;
      }
    }
    Status s = loop_->Add(fd_, EPOLLIN | (out_len_ > 0 || phase_ == Phase::kTls ? EPOLLOUT : 0u),
                          [this](uint32_t ev) { OnEvents(ev); });
    if (!s.ok()) Finish(s);
  }

  HostOptions host;
  ControllerOptions ctrl;

  void Cancel() {
    loop_->CancelTimer(timer_);
    loop_->Remove(fd_);
    close(fd_);
    delete this;
  }

 private:
  enum class Phase : uint8_t { kDetect, kTls, kIc };

  void OnEvents(uint32_t ev) {
    if (phase_ == Phase::kDetect) return Detect();
    if (phase_ == Phase::kTls) return TlsStep();
    if ((ev & EPOLLOUT) != 0 && !Send()) return;
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) Receive();
  }

  Status StartHostTls() {
    tcp::ConfiguredPsk psk;
    Status s = ParsePskInterchange(host.tls.key, &psk);
    if (!s.ok()) return s;
    PskDerivation d;
    if (!ParsePskDerivation(host.tls.derivation, &d)) {
      return Status::InvalidArgument("TLS PSK derivation must be nvme-cli or spec");
    }
    TlsPsk tp;
    s = DeriveTlsPsk(psk, host.hostnqn, host.subnqn, host.tls.identity_version, d, &tp);
    if (!s.ok()) return s;
    std::unique_ptr<TlsSession> t;
    // The nvme-cli derivation is Linux's way throughout, binders included (tls.h).
    s = TlsSession::Client(fd_, tp, d == PskDerivation::kNvmeCli, &t);
    if (!s.ok()) return s;
    tls_ = std::move(t);
    phase_ = Phase::kTls;
    return Status::OK();
  }

  // Controller: TLS or plain, from the first byte (left in the socket).
  void Detect() {
    uint8_t b = 0;
    ssize_t n = recv(fd_, &b, 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n == 0) return Finish(Status::IoError("peer closed the connection before ICReq"));
    if (n < 0) return Finish(Status::IoError(std::string("recv: ") + strerror(errno)));
    if (b != kTlsHandshakeRecord) {
      if (ctrl.tls.channel == SecureChannel::kRequired) {
        return TlsFailed(Status::ProtocolError("TLS is required on this port; a plain ICReq was refused"));
      }
      phase_ = Phase::kIc;
      return Receive();
    }
    const PortTlsConfig port = ctrl.tls;
    std::unique_ptr<TlsSession> t;
    Status s = TlsSession::Server(fd_, [port](std::string_view id, TlsPsk* out) {
      return LookUpPsk(port, id, out);
    }, &t);
    if (!s.ok()) return Finish(s);
    tls_ = std::move(t);
    phase_ = Phase::kTls;
    TlsStep();
  }

  // A port's PSK for a client's identity. A version 1 identity's digest shows which
  // derivation the host used, so both are tried; version 0 takes the port's.
  static bool LookUpPsk(const PortTlsConfig& port, std::string_view id, TlsPsk* out) {
    PskIdentityParts parts;
    if (!ParsePskIdentity(id, &parts) || !port.key_for_host) return false;
    std::string key;
    if (!port.key_for_host(parts.hostnqn, &key)) return false;
    ConfiguredPsk psk;
    Status s = ParsePskInterchange(key, &psk);
    Wipe(&key);
    if (!s.ok() || psk.hash != parts.hash) return false;
    PskDerivation first = PskDerivation::kNvmeCli;
    ParsePskDerivation(port.derivation, &first);
    const PskDerivation other =
        first == PskDerivation::kSpec ? PskDerivation::kNvmeCli : PskDerivation::kSpec;
    for (PskDerivation d : {first, other}) {
      TlsPsk t;
      if (!DeriveTlsPsk(psk, parts.hostnqn, parts.subnqn, parts.version, d, &t).ok()) return false;
      if (t.identity == id) {
        *out = std::move(t);
        return true;
      }
      if (parts.version == 0) return false;  // identical for both: the key decides
    }
    return false;
  }

  void TlsStep() {
    Status err;
    switch (tls_->Handshake(&err)) {
      case TlsSession::Step::kDone:
        phase_ = Phase::kIc;
        if (controller_) {
          loop_->Modify(fd_, EPOLLIN);
          Receive();  // the ICReq may have come with the handshake's last flight
        } else {
          loop_->Modify(fd_, EPOLLIN | EPOLLOUT);
          Send();
        }
        return;
      case TlsSession::Step::kWantRead:
        loop_->Modify(fd_, EPOLLIN);
        return;
      case TlsSession::Step::kWantWrite:
        loop_->Modify(fd_, EPOLLIN | EPOLLOUT);
        return;
      case TlsSession::Step::kError:
        return TlsFailed(err);
    }
  }

  void TlsFailed(const Status& s) {
    if (controller_ && ctrl.on_tls_failure) {
      std::string who = tls_ != nullptr ? tls_->peer_host() : std::string();
      ctrl.on_tls_failure(who, SocketPeerName(fd_), s);
    }
    Finish(s);
  }

  ssize_t RecvSome(void* buf, size_t len) {
    if (tls_ != nullptr) return tls_->Read(buf, len);
    return recv(fd_, buf, len, 0);
  }

  // False when the handshake ended.
  bool Send() {
    if (tls_ != nullptr) {
      if (out_off_ < out_len_ && !tls_->Write(out_ + out_off_, out_len_ - out_off_)) {
        Finish(Status::IoError("TLS: " + tls_->error()));
        return false;
      }
      out_off_ = out_len_;
      int f = tls_->Flush();
      if (f < 0) {
        Finish(Status::IoError("TLS: " + tls_->error()));
        return false;
      }
      if (f == 0) return true;  // EPOLLOUT brings us back
    }
    while (out_off_ < out_len_) {
      ssize_t n = send(fd_, out_ + out_off_, out_len_ - out_off_, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n <= 0) {
        Finish(Status::IoError(std::string("send: ") + strerror(errno)));
        return false;
      }
      out_off_ += static_cast<uint32_t>(n);
    }
    loop_->Modify(fd_, EPOLLIN);
    if (controller_ && answered_) {
      Finish(Status::OK());
      return false;
    }
    return true;
  }

  void Receive() {
    for (;;) {
      // Read exactly one PDU: what follows belongs to the queue pair.
      uint32_t want = in_have_ < sizeof(wire::CommonHeader)
                          ? static_cast<uint32_t>(sizeof(wire::CommonHeader))
                          : layout_.header_len + layout_.data_len;
      ssize_t n = RecvSome(in_ + in_have_, want - in_have_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n == 0) return Finish(Status::IoError("peer closed the connection during ICReq/ICResp"));
      if (n < 0) return Finish(Status::IoError(std::string("recv: ") + strerror(errno)));
      in_have_ += static_cast<uint32_t>(n);
      if (in_have_ < want) continue;
      if (want == sizeof(wire::CommonHeader)) {
        RxConfig cfg;
        cfg.controller = controller_;
        cfg.handshake = true;
        if (PduError e = CheckCommonHeader(*reinterpret_cast<wire::CommonHeader*>(in_), cfg,
                                           &layout_)) {
          return Reject(e, "invalid PDU during connection set-up");
        }
        continue;
      }
      return OnPdu();
    }
  }

  void OnPdu() {
    const auto& ch = *reinterpret_cast<const wire::CommonHeader*>(in_);
    if (ch.pdu_type == wire::kC2HTermReq || ch.pdu_type == wire::kH2CTermReq) {
      const auto& t = *reinterpret_cast<const wire::TermReq*>(in_);
      return Finish(Status::PeerTerminated("termination request during set-up: FES " +
                                           std::to_string(t.fes)));
    }
    if (!controller_) {
      const auto& resp = *reinterpret_cast<const wire::IcResp*>(in_);
      if (PduError e = CheckIcResp(resp, host.header_digest, host.data_digest)) {
        return Reject(e, "invalid ICResp");
      }
      params_.header_digest = (resp.dgst & wire::kDgstHeader) != 0;
      params_.data_digest = (resp.dgst & wire::kDgstData) != 0;
      params_.rx_pda = (host.hpda + 1u) * 4;
      params_.tx_pda = (resp.cpda + 1u) * 4;
      params_.maxr2t = host.maxr2t;
      params_.maxh2cdata = resp.maxh2cdata;
      params_.max_icd = wire::kAdminInCapsuleSize;
      return Finish(Status::OK());
    }
    const auto& req = *reinterpret_cast<const wire::IcReq*>(in_);
    if (PduError e = CheckIcReq(req)) return Reject(e, "invalid ICReq");
    params_.header_digest = ctrl.allow_header_digest && (req.dgst & wire::kDgstHeader) != 0;
    params_.data_digest = ctrl.allow_data_digest && (req.dgst & wire::kDgstData) != 0;
    params_.rx_pda = (ctrl.cpda + 1u) * 4;
    params_.tx_pda = (req.hpda + 1u) * 4;
    params_.maxr2t = req.maxr2t + 1;  // 0's based on the wire
    if (params_.maxr2t == 0) params_.maxr2t = 0xFFFFFFFFu;
    params_.maxh2cdata = ctrl.maxh2cdata;
    params_.max_icd = ctrl.max_icd > wire::kAdminInCapsuleSize ? ctrl.max_icd
                                                               : wire::kAdminInCapsuleSize;
    params_.c2h_success = ctrl.c2h_success;
    out_len_ = BuildIcResp(out_, ctrl.cpda, params_.header_digest, params_.data_digest,
                           ctrl.maxh2cdata);
    out_off_ = 0;
    answered_ = true;
    loop_->Modify(fd_, EPOLLIN | EPOLLOUT);
    Send();
  }

  void Reject(const PduError& e, const char* what) {
    if (!e.drop) {
      uint8_t pdu[kMaxHeaderBytes];
      uint32_t len = BuildTermReq(pdu, !controller_, e.fes, e.fei, in_,
                                  in_have_ < 128 ? in_have_ : 128);
      ssize_t r = send(fd_, pdu, len, MSG_NOSIGNAL | MSG_DONTWAIT);  // best effort
      (void)r;
    }
    Finish(Status::ProtocolError(std::string(what) + " (FES " + std::to_string(e.fes) +
                                 ", FEI " + std::to_string(e.fei) + ")"));
  }

  void Finish(const Status& s) {
    loop_->CancelTimer(timer_);
    loop_->Remove(fd_);
    if (s.ok()) {
      params_.fd = fd_;
      if (tls_ != nullptr) {
        params_.tls_identity = tls_->identity();
        params_.tls = std::move(tls_);
      }
    } else {
      tls_.reset();
      close(fd_);
      params_.fd = -1;
    }
    HandshakeCallback cb = std::move(cb_);
    TcpQpairParams params = params_;
    delete this;
    cb(s, params);
  }

  EventLoop* loop_;
  int fd_;
  bool controller_;
  HandshakeCallback cb_;
  EventLoop::TimerId timer_;
  uint8_t out_[kMaxHeaderBytes];
  uint32_t out_len_ = 0;
  uint32_t out_off_ = 0;
  uint8_t in_[kMaxHeaderBytes];
  uint32_t in_have_ = 0;
  PduLayout layout_;
  bool answered_ = false;
  TcpQpairParams params_;
  Phase phase_ = Phase::kIc;
  std::shared_ptr<TlsSession> tls_;
  Status pending_error_;
};

Handshake* StartHostHandshake(EventLoop* loop, int fd, const HostOptions& opts,
                              HandshakeCallback cb) {
  auto* h = new Handshake(loop, fd, false, std::move(cb));
  h->host = opts;
  uint8_t icreq[sizeof(wire::IcReq)];
  uint32_t maxr2t = opts.maxr2t == 0 ? 0 : opts.maxr2t - 1;
  uint32_t len = BuildIcReq(icreq, opts.hpda, opts.header_digest, opts.data_digest, maxr2t);
  h->Start(opts.timeout, icreq, len);
  return h;
}

Handshake* StartControllerHandshake(EventLoop* loop, int fd, const ControllerOptions& opts,
                                    HandshakeCallback cb) {
  auto* h = new Handshake(loop, fd, true, std::move(cb));
  h->ctrl = opts;
  h->Start(opts.icreq_timeout, nullptr, 0);
  return h;
}

void CancelHandshake(Handshake* h) { h->Cancel(); }

}  // namespace nvmf::tcp
