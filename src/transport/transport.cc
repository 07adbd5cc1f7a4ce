// The public transport API: thin dispatch to the transport-internal interface, and the
// registry of transports.
#include <algorithm>
#include <cctype>
#include <mutex>
#include <vector>

#include "transport/transport_internal.h"

namespace nvmf {
namespace {

struct Entry {
  TransportType type;
  int priority;
  Transport* transport;
};

struct Registry {
  std::mutex mu;
  std::vector<Entry> entries;
};

Registry& GetRegistry() {
  static Registry* r = [] {
    auto* reg = new Registry;  // never destroyed: transports may be used during exit
    if (Transport* t = BuiltinTcpTransport()) reg->entries.push_back({TransportType::kTcp, 0, t});
    if (Transport* t = BuiltinRdmaTransport()) reg->entries.push_back({TransportType::kRdma, 0, t});
    return reg;
  }();
  return *r;
}

}  // namespace

void RegisterTransport(TransportType type, int priority, Transport* t) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.entries.push_back({type, priority, t});
}

void UnregisterTransport(Transport* t) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::erase_if(r.entries, [t](const Entry& e) { return e.transport == t; });
}

Transport* FindTransport(TransportType type) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  const Entry* best = nullptr;
  for (const Entry& e : r.entries) {
    if (e.type == type && (best == nullptr || e.priority > best->priority)) best = &e;
  }
  return best != nullptr ? best->transport : nullptr;
}

const char* TransportTypeName(TransportType t) {
  switch (t) {
    case TransportType::kRdma: return "rdma";
    case TransportType::kFc: return "fc";
    case TransportType::kTcp: return "tcp";
  }
  return "unknown";
}

bool ParseTransportType(std::string_view name, TransportType* out) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "tcp") {
    *out = TransportType::kTcp;
  } else if (lower == "rdma") {
    *out = TransportType::kRdma;
  } else {
    return false;
  }
  return true;
}

TransportType ConnectionTransport(const Connection& c) { return c->type(); }

namespace {

Status NoTransport(TransportType type) {
  return Status::NotSupported(std::string("transport ") + TransportTypeName(type) +
                              " is not built into this program");
}

}  // namespace

Status AllocateQpair(EventLoop* loop, TransportType type, Role role, const QpairParams& params,
                     ErrorCallback on_error, ReceiveCallback on_receive, Qpair** out) {
  *out = nullptr;
  if (params.qsize < 2) return Status::InvalidArgument("queue size must be at least 2");
  if (params.connection == nullptr) return Status::InvalidArgument("a queue pair needs a connection");
  if (params.connection->type() != type) {
    return Status::InvalidArgument("the connection belongs to another transport");
  }
  Transport* t = FindTransport(type);
  if (t == nullptr) return NoTransport(type);
  return t->AllocateQpair(loop, role, params, on_error, on_receive, out);
}

void ConnectTransport(EventLoop* loop, const TransportAddress& addr,
                      const HostConnectParams& params, ConnectCallback cb) {
  Transport* t = FindTransport(addr.trtype);
  if (t == nullptr) {
    Status s = NoTransport(addr.trtype);
    loop->Post([cb, s] { cb(s, nullptr); });
    return;
  }
  t->Connect(loop, addr, params, std::move(cb));
}

Status ListenTransport(EventLoop* loop, const TransportAddress& addr, const ListenParams& params,
                       TransportListener::AcceptCallback cb,
                       std::unique_ptr<TransportListener>* out) {
  Transport* t = FindTransport(addr.trtype);
  if (t == nullptr) return NoTransport(addr.trtype);
  return t->Listen(loop, addr, params, std::move(cb), out);
}

void FreeQpair(Qpair* qp) {
  if (qp != nullptr) qp->Free();
}
TransportType QpairTransport(const Qpair* qp) { return qp->type(); }
Role QpairRole(const Qpair* qp) { return qp->role(); }
bool QpairIsAdmin(const Qpair* qp) { return qp->admin(); }
std::string QpairPeerName(const Qpair* qp) { return qp->PeerName(); }
bool QpairSecureChannelNqns(const Qpair* qp, std::string* hostnqn, std::string* subnqn) {
  return qp->SecureChannelNqns(hostnqn, subnqn);
}
ControllerTransportValues QpairControllerValues(const Qpair* qp) { return qp->ControllerValues(); }

Capsule* AllocateCommand(Qpair* qp, const spec::Sqe& sqe) {
  Capsule* c = qp->AllocateCapsule(true);
  if (c != nullptr) c->sqe_ = sqe;
  return c;
}

Capsule* AllocateResponse(Qpair* qp, const spec::Cqe& cqe) {
  Capsule* c = qp->AllocateCapsule(false);
  if (c != nullptr) c->cqe_ = cqe;
  return c;
}

void FreeCapsule(Capsule* c) {
  if (c != nullptr) c->qpair()->FreeCapsule(c);
}
Qpair* CapsuleQpair(const Capsule* c) { return c->qpair(); }
const spec::Sqe& CapsuleSqe(const Capsule* c) { return c->sqe(); }
const spec::Cqe& CapsuleCqe(const Capsule* c) { return c->cqe(); }
bool CapsuleSqhdValid(const Capsule* c) { return c->sqhd_valid(); }

void AppendData(Capsule* c, const MemDesc& mem, size_t len, bool send, DataCallback on_done) {
  c->data_ = mem;
  c->data_len_ = len;
  c->data_send_ = send;
  c->data_done_ = on_done;
}

Status Transmit(Capsule* c) { return c->qpair()->Transmit(c); }
void AbortCapsuleData(Capsule* c) { c->qpair()->AbortData(c); }
uint64_t MaxTransferSize(const Qpair* qp) { return qp->MaxTransferSize(); }
bool QpairDigestsSentData(const Qpair* qp) { return qp->DigestsSentData(); }
bool QpairHeaderDigests(const Qpair* qp) { return qp->HeaderDigests(); }

uint8_t ValidateCommandCapsule(const Capsule* c) { return c->qpair()->ValidateCommand(c); }
size_t CapsuleDataLength(const Capsule* c) { return c->qpair()->DataLength(c); }

void ReceiveControllerData(Capsule* c, uint32_t offset, const MemDesc& mem, size_t len,
                           DataCallback on_done) {
  c->qpair()->ReceiveData(c, offset, mem, len, on_done);
}

uint16_t SendControllerData(Capsule* c, uint32_t offset, const MemDesc& mem, size_t len,
                            DataCallback on_sent) {
  return c->qpair()->SendData(c, offset, mem, len, on_sent);
}

}  // namespace nvmf
