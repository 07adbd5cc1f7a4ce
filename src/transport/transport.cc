// The public transport API: thin dispatch to the transport-internal interface, and the
// registry of transports.
#include <algorithm>
#include <mutex>
#include <vector>

#include "tcp/tcp_transport.h"
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
    reg->entries.push_back({TransportType::kTcp, 0, tcp::BuiltinTransport()});
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

Status AllocateQpair(EventLoop* loop, TransportType type, Role role, const QpairParams& params,
                     ErrorCallback on_error, ReceiveCallback on_receive, Qpair** out) {
  *out = nullptr;
  if (params.qsize < 2) return Status::InvalidArgument("queue size must be at least 2");
  Transport* t = FindTransport(type);
  if (t == nullptr) return Status::NotSupported("no transport registered for this type");
  return t->AllocateQpair(loop, role, params, on_error, on_receive, out);
}

void FreeQpair(Qpair* qp) {
  if (qp != nullptr) qp->Free();
}
TransportType QpairTransport(const Qpair* qp) { return qp->type(); }
Role QpairRole(const Qpair* qp) { return qp->role(); }
bool QpairIsAdmin(const Qpair* qp) { return qp->admin(); }

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
