// The NVMe/TCP transport behind the registry: AllocateQpair, and the transport-neutral
// set-up (ConnectTransport, ListenTransport) mapped onto tcp::Connect and tcp::Listener.
#include "tcp/tcp_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "nvmf/spec/tcp.h"
#include "tcp/tcp_qpair.h"
#include "tcp/tls.h"

namespace nvmf::tcp {

std::string SocketPeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sa->sin_addr, host, sizeof(host));
    port = ntohs(sa->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sa->sin6_addr, host, sizeof(host));
    port = ntohs(sa->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

std::string TlsDescription(const TcpQpairParams& p) {
  if (p.tls == nullptr) return "no TLS";
  // The identity names NQNs and a digest of the key, never the key.
  return "TLS 1.3 " + p.tls->CipherName() + ", identity " + p.tls_identity;
}

Connection WrapConnection(const TcpQpairParams& params) {
  return std::make_shared<TcpConnection>(params);
}

namespace {

// Parses a TCP service id: a decimal port.
bool ParsePort(const std::string& s, uint16_t* out) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

class TcpListenerAdapter : public TransportListener {
 public:
  TcpListenerAdapter(std::unique_ptr<Listener> l, const TransportAddress& addr,
                     const ListenParams& p)
      : l_(std::move(l)), addr_(addr), params_(p) {}
  TransportType trtype() const override { return TransportType::kTcp; }
  uint16_t port() const override { return l_->port(); }
  ControllerTransportValues ControllerValues() const override {
    return TcpControllerValues(params_.max_icd, params_.max_transfer);
  }
  void FillDiscoveryEntry(spec::DiscoveryLogEntry* e) const override {
    e->trtype = static_cast<uint8_t>(TransportType::kTcp);
    e->adrfam = addr_.traddr.find(':') != std::string::npos ? spec::kAdrfamIpv6 : spec::kAdrfamIpv4;
    // TREQ bits 1:0: 01b secure channel required, 10b not required. TSAS for TCP: byte 0
    // is SECTYPE, 0 none, 2 TLS 1.3.
    const SecureChannel sc = params_.tls.channel;
    e->treq = sc == SecureChannel::kRequired ? 0x1 : 0x2;
    std::memset(e->tsas, 0, sizeof(e->tsas));
    if (sc != SecureChannel::kNone) e->tsas[0] = 2;
  }

 private:
  std::unique_ptr<Listener> l_;
  TransportAddress addr_;
  ListenParams params_;
};

class TcpTransport : public Transport {
 public:
  Status AllocateQpair(EventLoop* loop, Role role, const QpairParams& params,
                       ErrorCallback on_error, ReceiveCallback on_receive, Qpair** out) override {
    return TcpQpair::Create(loop, role, params, on_error, on_receive, out);
  }

  void Connect(EventLoop* loop, const TransportAddress& addr, const HostConnectParams& params,
               nvmf::ConnectCallback cb) override {
    uint16_t port = 0;
    if (!ParsePort(addr.trsvcid, &port)) {
      Status s = Status::InvalidArgument("TCP service id '" + addr.trsvcid + "' is not a port");
      loop->Post([cb, s] { cb(s, nullptr); });
      return;
    }
    HostOptions ho;
    ho.header_digest = params.header_digest;
    ho.data_digest = params.data_digest;
    ho.timeout = params.timeout;
    ho.tls = params.tls;
    ho.hostnqn = params.hostnqn;
    ho.subnqn = params.subnqn;
    tcp::Connect(loop, addr.traddr, port, ho, [cb](const Status& s, const TcpQpairParams& p) {
      if (!s.ok()) return cb(s, nullptr);
      cb(s, WrapConnection(p));
    });
  }

  Status Listen(EventLoop* loop, const TransportAddress& addr, const ListenParams& params,
                TransportListener::AcceptCallback cb,
                std::unique_ptr<TransportListener>* out) override {
    uint16_t port = 0;
    if (!ParsePort(addr.trsvcid, &port)) {
      return Status::InvalidArgument("TCP service id '" + addr.trsvcid + "' is not a port");
    }
    ControllerOptions opts;
    opts.maxh2cdata = params.maxh2cdata;
    opts.max_icd = params.max_icd;
    opts.allow_header_digest = params.allow_header_digest;
    opts.allow_data_digest = params.allow_data_digest;
    opts.c2h_success = params.c2h_success;
    opts.icreq_timeout = params.handshake_timeout;
    opts.max_handshakes = params.max_handshakes;
    opts.admit = params.admit;
    opts.log = params.log;
    opts.keepalive_s = params.keepalive_s;
    opts.tls = params.tls;
    const ControllerTransportValues values =
        TcpControllerValues(params.max_icd, params.max_transfer);
    std::unique_ptr<Listener> l;
    Status s = Listener::Listen(loop, addr.traddr, port, opts,
                                [cb, values](const TcpQpairParams& p) {
                                  auto c = std::make_shared<TcpConnection>(p);
                                  c->has_values = true;
                                  c->values = values;
                                  cb(c);
                                },
                                &l);
    if (!s.ok()) return s;
    *out = std::make_unique<TcpListenerAdapter>(std::move(l), addr, params);
    return Status::OK();
  }
};

}  // namespace

Transport* NewTcpTransport() { return new TcpTransport; }

ControllerTransportValues TcpControllerValues(uint32_t max_icd, uint64_t max_transfer) {
  ControllerTransportValues v;
  v.ioccsz = (64 + max_icd) / 16;
  v.iorcsz = 1;
  v.icdoff = 0;
  v.sgls = 1u | 1u << 2 | 1u << 20;  // SGLs, transport data blocks, offsets (in-capsule data)
  v.msdbd = 1;
  v.max_transfer = max_transfer;
  return v;
}

}  // namespace nvmf::tcp

namespace nvmf {

Transport* BuiltinTcpTransport() {
  static Transport* t = tcp::NewTcpTransport();  // never destroyed: used until exit
  return t;
}

}  // namespace nvmf
