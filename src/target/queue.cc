// QueueHandler: queue life cycle, Connect, properties, keep-alive and completions.
#include "target/queue.h"


#include <algorithm>
#include <cstring>

#include "nvmf/spec/auth.h"
#include "nvmf/spec/fabrics.h"

namespace nvmf::target {
namespace {

constexpr uint16_t Generic(uint8_t sc, bool dnr = true) {
  return spec::MakeStatus(spec::kSctGeneric, sc, dnr);
}
constexpr uint16_t Fabrics(uint8_t sc) {
  return spec::MakeStatus(spec::kSctCommandSpecific, sc, true);
}

std::string NqnField(const char* f) { return std::string(f, strnlen(f, spec::kNqnSize)); }

}  // namespace

QueueHandler::~QueueHandler() {
  pool_->Cancel(this);
  for (auto& r : requests_) ReleaseIoBuffer(r.get());
}

Status QueueHandler::Attach(Connection conn) {
  QpairParams qp;
  qp.qsize = tc_->config.max_queue_size;
  const TransportType trtype = ConnectionTransport(conn);
  qp.connection = std::move(conn);
  QueueHandler* self = this;
  Status s = AllocateQpair(
      loop_, trtype, Role::kController, qp,
      [self](const Status& st) { self->OnError(st); }, [self](Capsule* c) { self->OnReceive(c); },
      &qp_);
  if (!s.ok()) return s;
  peer_ = std::string(TransportTypeName(trtype)) + " " + QpairPeerName(qp_);
  // A connection costs memory and a descriptor: one that never sends Connect is closed.
  if (tc_->config.connect_timeout.count() > 0) {
    connect_timer_ = loop_->AddTimer(tc_->config.connect_timeout, [self] {
      self->connect_timer_ = {};
      if (!self->connected_ || self->AuthPending()) {
        self->Close(std::string(self->connected_ ? "not authenticated" : "no Connect") + " within " +
                    std::to_string(self->tc_->config.connect_timeout.count()) + " ms of the connection");
      }
    });
  }
  return s;
}

Request* QueueHandler::TakeRequest() {
  // The transport bounds commands in flight by the queue size; requests are made as the
  // host first needs them (a few for an admin or idle queue, up to the queue size).
  if (free_ == nullptr && requests_.size() < tc_->config.max_queue_size + 8u) {
    for (int i = 0; i < 8; i++) {
      auto nr = std::make_unique<Request>();
      nr->queue = this;
      nr->next_free = free_;
      free_ = nr.get();
      requests_.push_back(std::move(nr));
    }
  }
  Request* r = free_;
  if (r == nullptr) return nullptr;
  free_ = r->next_free;
  r->next_free = nullptr;
  r->holds = 1;
  r->ns = nullptr;
  r->parts_left = 0;
  r->part_status = 0;
  inflight_++;
  return r;
}

void QueueHandler::Release(Request* r) {
  if (--r->holds > 0) return;
  if (r->ns != nullptr) {
    r->ns->Exit();
    r->ns = nullptr;
  }
  ReleaseIoBuffer(r);
  if (r->capsule != nullptr) FreeCapsule(r->capsule);
  r->capsule = nullptr;
  r->next_free = free_;
  free_ = r;
  inflight_--;
  MaybeRelease();
}

const NamespaceMap& QueueHandler::Namespaces() {
  const Subsystem* sub = ctrl_->subsystem;
  const uint64_t e = sub->epoch();
  if (e != ns_epoch_) {  // the subsystem changed: take its new snapshot
    ns_ = sub->Namespaces();
    ns_epoch_ = e;
  }
  return *ns_;
}

Namespace* QueueHandler::EnterNamespace(uint32_t nsid) {
  const NamespaceMap& all = Namespaces();
  auto it = all.find(nsid);
  if (it == all.end() || !it->second->Enter()) return nullptr;
  return it->second.get();
}

void QueueHandler::MaybeRelease() {
  if (closed_ && inflight_ == 0 && !released_) {
    released_ = true;
    auto fn = release_;
    QueueHandler* self = this;
    // Not from inside our own call stack: the loop destroys us in a later turn.
    loop_->Post([fn, self] { fn(self); });
  }
}

void QueueHandler::OnError(const Status& s) {
  Close(s.ok() ? "host closed the connection" : s.ToString());
}

void QueueHandler::Close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  std::string who = ctrl_ != nullptr ? "controller " + std::to_string(ctrl_->cntlid) + " qid " +
                                           std::to_string(qid_)
                                     : "unconnected queue";
  tc_->Log(who + " from " + peer_ + " closed: " + why);
  if (qp_ != nullptr) FreeQpair(qp_);
  qp_ = nullptr;
  loop_->CancelTimer(kato_timer_);
  loop_->CancelTimer(connect_timer_);
  for (Request* r : aers_) Release(r);
  aers_.clear();
  // Commands waiting for an I/O buffer never started: nothing to answer, nothing to undo.
  pool_->Cancel(this);
  while (Request* w = wait_head_) {
    wait_head_ = w->next_wait;
    w->next_wait = nullptr;
    Release(w);
  }
  wait_tail_ = nullptr;
  if (ctrl_ != nullptr) {
    if (qid_ == 0) {
      TearDownController(why);
    } else {
      ctrl_->UnregisterIoQueue(qid_);
    }
  }
  MaybeRelease();
}

void QueueHandler::TearDownController(const std::string& why) {
  if (!ctrl_->BeginTearDown()) return;
  tc_->controllers.Remove(ctrl_->cntlid);
  for (QueueRef& ref : ctrl_->TakeIoQueues()) {
    std::weak_ptr<QueueHandler> w = ref.handler;
    std::string reason = "controller " + std::to_string(ctrl_->cntlid) + " torn down: " + why;
    ref.loop->Post([w, reason] {
      if (auto q = w.lock()) q->Close(reason);
    });
  }
}

void QueueHandler::OnReceive(Capsule* c) {
  Request* r = TakeRequest();
  if (r == nullptr) {  // the transport bounds commands by the queue size; this is a bug guard
    FreeCapsule(c);
    Close("more commands than requests");
    return;
  }
  r->capsule = c;
  r->cqe = spec::Cqe{};
  r->cqe.cid = CapsuleSqe(c).cid;
  r->cqe.sqid = qid_;
  if (sqsize_ > 0) sqhd_ = static_cast<uint16_t>((sqhd_ + 1) % sqsize_);
  Dispatch(r);
}

void QueueHandler::Dispatch(Request* r) {
  uint8_t st = ValidateCommandCapsule(r->capsule);
  // A digest error is the transport's fault: the host may retry the command.
  if (st != spec::kScSuccess) return Complete(r, Generic(st, st != spec::kScTransientTransportError));
  const spec::Sqe& sqe = r->sqe();
  if (sqe.opc == spec::kFabricsCommand) return HandleFabrics(r);
  if (!connected_) return Complete(r, Generic(spec::kScCommandSequenceError));
  if (AuthPending()) return Complete(r, Fabrics(spec::kScAuthRequired));
  if (qid_ == 0) {
    // What a peer asks for is bounded before anything is allocated for it: no admin
    // command moves more than MDTS (the NVM commands check their own lengths).
    if (CapsuleDataLength(r->capsule) > tc_->MaxDataBytes()) {
      return Complete(r, Generic(spec::kScDataSglLengthInvalid));
    }
    return HandleAdmin(r);
  }
  if (spec::CcEn(ctrl_->cc.load()) == 0) return Complete(r, Generic(spec::kScCommandSequenceError));
  HandleIo(r);
}

// ---------------------------------------------------------------- completions

void QueueHandler::Complete(Request* r, uint16_t status) {
  spec::SetStatus(r->cqe, status);
  r->cqe.sqhd = sqhd_;
  if (status != spec::kStatusSuccess && ctrl_ != nullptr) {
    ctrl_->RecordError(qid_, r->cqe.cid, status, r->sqe().nsid, r->slba);
  }
  if (qp_ != nullptr) {
    if (Capsule* rsp = AllocateResponse(qp_, r->cqe); rsp != nullptr) {
      Transmit(rsp);
      FreeCapsule(rsp);
    }
  }
  Release(r);
}

void QueueHandler::SendAndComplete(Request* r, size_t have) {
  SendBytesAndComplete(r, r->buffer.data(), have);
}

void QueueHandler::SendBytesAndComplete(Request* r, const uint8_t* p, size_t have) {
  const size_t want = CapsuleDataLength(r->capsule);
  if (want == 0) return CompleteSuccess(r);
  have = std::min(have, want);
  // The request (and its memory) is held until the last piece has left; pieces leave in
  // order, so the last one's callback covers the first.
  r->holds++;
  Request* req = r;
  auto on_sent = [req](size_t, const Status&) { req->queue->Release(req); };
  uint16_t st = spec::kStatusSuccess;
  if (have > 0) {
    st = SendControllerData(r->capsule, 0, MemDesc::Buffer(const_cast<uint8_t*>(p), have), have,
                            have == want ? DataCallback(on_sent) : DataCallback());
  }
  if (have < want && (have == 0 || st == kSendMore)) {
    st = SendControllerData(r->capsule, static_cast<uint32_t>(have),
                            MemDesc::Buffer(const_cast<uint8_t*>(ZeroRegion(want - have)), want - have),
                            want - have, on_sent);
  }
  if (st == kSendSuccessSent) return Release(r);
  if (st != spec::kStatusSuccess) Release(r);  // nothing was queued: on_sent will not run
  Complete(r, st);
}

// ---------------------------------------------------------------- I/O buffers

bool QueueHandler::TryIoBuffer(Request* r) {
  // A queue may always hold one buffer, so that its share never deadlocks it.
  if (io_bytes_ > 0 && io_bytes_ + r->length > tc_->config.max_queue_buffer) return false;
  size_t cap = 0;
  uint8_t* p = pool_->Get(r->length, &cap);
  if (p == nullptr) return false;
  r->io = p;
  r->io_cap = cap;
  io_bytes_ += cap;
  return true;
}

void QueueHandler::ReleaseIoBuffer(Request* r) {
  if (r->io == nullptr) return;
  io_bytes_ -= r->io_cap;
  pool_->Put(r->io, r->io_cap);
  r->io = nullptr;
  r->io_cap = 0;
}

void QueueHandler::WithIoBuffer(Request* r, void (QueueHandler::*step)(Request*)) {
  if (wait_head_ == nullptr && TryIoBuffer(r)) return (this->*step)(r);
  if (wait_head_ == nullptr) {
    tc_->LogLimit("I/O buffers", "controller " + std::to_string(ctrl_->cntlid) + " qid " +
                                     std::to_string(qid_) + " waits for I/O buffer memory (" +
                                     std::to_string(io_bytes_ >> 10) + " KiB held by the queue, " +
                                     std::to_string(pool_->in_use() >> 10) + " KiB by its thread)");
  }
  r->after_buffer = step;
  r->next_wait = nullptr;
  if (wait_tail_ != nullptr) {
    wait_tail_->next_wait = r;
  } else {
    wait_head_ = r;
  }
  wait_tail_ = r;
  pool_->Wait(this);
}

void QueueHandler::OnBufferRoom() {
  // Called from inside a Put, deep in someone's callback: continue in a turn of our own.
  if (room_posted_) return;
  room_posted_ = true;
  std::weak_ptr<QueueHandler> w = weak_from_this();
  loop_->Post([w] {
    if (auto q = w.lock()) q->RunBufferWaiters();
  });
}

void QueueHandler::RunBufferWaiters() {
  room_posted_ = false;
  while (Request* r = wait_head_) {
    if (closed_ || !TryIoBuffer(r)) break;
    wait_head_ = r->next_wait;
    if (wait_head_ == nullptr) wait_tail_ = nullptr;
    r->next_wait = nullptr;
    (this->*(r->after_buffer))(r);
  }
  if (wait_head_ != nullptr && !closed_) pool_->Wait(this);
}

// ---------------------------------------------------------------- Fabrics

void QueueHandler::HandleFabrics(Request* r) {
  const auto& f = reinterpret_cast<const spec::FabricsSqe&>(r->sqe());
  if (f.fctype == spec::kFctypeConnect) {
    if (connected_) return Complete(r, Generic(spec::kScCommandSequenceError));
    return HandleConnect(r);
  }
  if (!connected_) return Complete(r, Generic(spec::kScCommandSequenceError));
  if (f.fctype == spec::kFctypeAuthSend) return HandleAuthSend(r);
  if (f.fctype == spec::kFctypeAuthReceive) return HandleAuthReceive(r);
  if (AuthPending() && f.fctype != spec::kFctypeDisconnect) {
    return Complete(r, Fabrics(spec::kScAuthRequired));
  }
  switch (f.fctype) {
    case spec::kFctypePropertyGet: return HandlePropertyGet(r);
    case spec::kFctypePropertySet: return HandlePropertySet(r);
    case spec::kFctypeDisconnect: {
      CompleteSuccess(r);
      std::weak_ptr<QueueHandler> w = weak_from_this();
      loop_->Post([w] {  // after the response has been flushed
        if (auto q = w.lock()) q->Close("disconnect");
      });
      return;
    }
    default:
      return Complete(r, Generic(spec::kScInvalidOpcode));
  }
}

void QueueHandler::HandleConnect(Request* r) {
  if (CapsuleDataLength(r->capsule) < sizeof(spec::ConnectData)) {
    return Complete(r, Generic(spec::kScDataSglLengthInvalid));
  }
  Request* req = r;
  ReceiveControllerData(r->capsule, 0, MemDesc::Buffer(r->Buffer(1024), 1024), 1024,
                        [req](size_t, const Status& s) {
                          if (!s.ok()) {
                            req->queue->Complete(req, Generic(spec::kScTransientTransportError, false));
                            return;
                          }
                          req->queue->FinishConnect(req);
                        });
}

void QueueHandler::FinishConnect(Request* r) {
  const auto& sqe = reinterpret_cast<const spec::ConnectSqe&>(r->sqe());
  const auto& data = *reinterpret_cast<const spec::ConnectData*>(r->buffer.data());
  auto invalid = [&](uint16_t ipo, bool in_data, const std::string& why) {
    tc_->Log("connect from " + peer_ + " refused: " + why);
    r->cqe.cdw0 = ipo | (in_data ? 1u : 0u) << 16;
    Complete(r, Fabrics(spec::kScConnectInvalidParameters));
  };
  if (sqe.recfmt != 0) return Complete(r, Fabrics(spec::kScConnectIncompatibleFormat));
  const std::string subnqn = NqnField(data.subnqn);
  const std::string hostnqn = NqnField(data.hostnqn);
  // A secure channel's key names a host and a subsystem: Connect may not claim others.
  if (std::string tls_host, tls_sub; QpairSecureChannelNqns(qp_, &tls_host, &tls_sub) &&
                                     (tls_host != hostnqn || tls_sub != subnqn)) {
    tc_->Log("connect from " + peer_ + " refused: host '" + hostnqn + "' to '" + subnqn +
             "' on a TLS connection whose PSK identity names host '" + tls_host + "' and '" +
             tls_sub + "'");
    return Complete(r, Fabrics(spec::kScConnectInvalidHost));
  }
  const Subsystem* sub = tc_->FindSubsystem(subnqn);
  if (sub == nullptr) {
    return invalid(offsetof(spec::ConnectData, subnqn), true, "unknown subsystem '" + subnqn + "'");
  }
  if (!sub->HostAllowed(hostnqn)) {
    tc_->Log("connect from " + peer_ + " refused: host '" + hostnqn + "' may not access " + subnqn);
    return Complete(r, Fabrics(spec::kScConnectInvalidHost));
  }
  const uint32_t entries = sqe.sqsize + 1u;
  if (sqe.sqsize == 0 || entries > tc_->config.max_queue_size) {
    return invalid(offsetof(spec::ConnectSqe, sqsize), false,
                   "queue size " + std::to_string(entries) + " outside 2.." +
                       std::to_string(tc_->config.max_queue_size));
  }
  if (sqe.qid == 0) {
    if (data.cntlid != spec::kDynamicControllerId) {
      return invalid(offsetof(spec::ConnectData, cntlid), true, "static controller ID asked for");
    }
    if (tc_->controllers.CountHost(hostnqn) >= tc_->config.max_controllers_per_host) {
      tc_->LogLimit("controllers per host", "host '" + hostnqn + "' from " + peer_ + " has " +
                                                std::to_string(tc_->config.max_controllers_per_host) +
                                                " controllers; Connect refused");
      return Complete(r, Fabrics(spec::kScConnectControllerBusy));
    }
    ctrl_ = tc_->controllers.Create(sub, hostnqn);
    if (ctrl_ == nullptr) return Complete(r, Fabrics(spec::kScConnectControllerBusy));
    ctrl_->SetAdminQueue(QueueRef{weak_from_this(), loop_});
    std::memcpy(ctrl_->hostid.data(), data.hostid, 16);
    ctrl_->kato_ms = sqe.kato;
    // A discovery controller that would never time out is a connection held forever:
    // give it Linux's default keep-alive (the host still sends Keep Alive, or reconnects).
    if (sub->discovery && sqe.kato == 0) ctrl_->kato_ms = tc_->config.discovery_kato_ms;
  } else {
    if (sub->discovery) {
      return invalid(offsetof(spec::ConnectSqe, qid), false, "I/O queue on the discovery subsystem");
    }
    std::shared_ptr<Controller> c = tc_->controllers.Find(data.cntlid);
    if (c == nullptr || c->subsystem != sub || c->hostnqn != hostnqn || c->torn_down) {
      return invalid(offsetof(spec::ConnectData, cntlid), true,
                     "I/O queue for unknown controller " + std::to_string(data.cntlid));
    }
    if (spec::CcEn(c->cc.load()) == 0 || (c->csts.load() & spec::kCstsRdy) == 0) {
      return invalid(offsetof(spec::ConnectData, cntlid), true,
                     "I/O queue for a controller that is not enabled");
    }
    const uint16_t granted = c->io_queues.load();
    const uint16_t limit = granted != 0 ? granted : tc_->config.max_io_queues;
    if (!c->RegisterIoQueue(sqe.qid, limit, QueueRef{weak_from_this(), loop_})) {
      return invalid(offsetof(spec::ConnectSqe, qid), false,
                     "queue ID " + std::to_string(sqe.qid) + " taken or not granted");
    }
    ctrl_ = std::move(c);
  }
  qid_ = sqe.qid;
  sqsize_ = static_cast<uint16_t>(entries);
  sqhd_ = static_cast<uint16_t>(1 % sqsize_);
  r->cqe.sqid = qid_;
  connected_ = true;
  r->cqe.cdw0 = ctrl_->cntlid;
  if (!sub->discovery) r->cqe.cdw0 |= StartAuthentication(hostnqn, subnqn);
  tc_->Log("controller " + std::to_string(ctrl_->cntlid) + " qid " + std::to_string(qid_) +
           " connected: " + hostnqn + " from " + peer_ + " to " + subnqn +
           (qid_ == 0 ? " (kato " + std::to_string(ctrl_->kato_ms) + " ms)" : ""));
  if (qid_ == 0) ArmKeepAlive();
  CompleteSuccess(r);
}

void QueueHandler::HandlePropertyGet(Request* r) {
  const auto& sqe = reinterpret_cast<const spec::PropertyGetSqe&>(r->sqe());
  if (qid_ != 0) return Complete(r, Generic(spec::kScInvalidField));
  const bool eight = (sqe.attrib & 7) == spec::kProperty8Bytes;
  uint64_t value;
  switch (sqe.ofst) {
    case spec::kPropCap: {
      if (!eight) return Complete(r, Generic(spec::kScInvalidField));
      uint64_t mqes = tc_->config.max_queue_size - 1u;
      value = mqes | 1ull << 16 /* CQR */ | 30ull << 24 /* TO: 15 s */ | 1ull << 37 /* NVM */;
      break;
    }
    case spec::kPropVs: value = 0x00010400; break;
    case spec::kPropCc: value = ctrl_->cc.load(); break;
    case spec::kPropCsts: value = ctrl_->csts.load(); break;
    default: return Complete(r, Generic(spec::kScInvalidField));
  }
  if (sqe.ofst != spec::kPropCap && eight) return Complete(r, Generic(spec::kScInvalidField));
  r->cqe.cdw0 = static_cast<uint32_t>(value);
  r->cqe.cdw1 = static_cast<uint32_t>(value >> 32);
  CompleteSuccess(r);
}

void QueueHandler::HandlePropertySet(Request* r) {
  const auto& sqe = reinterpret_cast<const spec::PropertySetSqe&>(r->sqe());
  if (qid_ != 0) return Complete(r, Generic(spec::kScInvalidField));
  if (sqe.ofst != spec::kPropCc || (sqe.attrib & 7) != spec::kProperty4Bytes) {
    return Complete(r, Generic(spec::kScInvalidField));
  }
  const auto cc = static_cast<uint32_t>(sqe.value);
  const uint32_t old = ctrl_->cc.exchange(cc);
  uint32_t csts = ctrl_->csts.load();
  if (spec::CcEn(cc) && !spec::CcEn(old)) {
    csts |= spec::kCstsRdy;
  } else if (!spec::CcEn(cc) && spec::CcEn(old)) {
    // A controller reset ends its I/O queues; the host connects new ones.
    csts &= ~spec::kCstsRdy;
    ctrl_->io_queues = 0;
    for (QueueRef& ref : ctrl_->TakeIoQueues()) {
      std::weak_ptr<QueueHandler> w = ref.handler;
      ref.loop->Post([w] {
        if (auto q = w.lock()) q->Close("controller reset");
      });
    }
  }
  if (spec::CcShn(cc) != 0 && spec::CcShn(old) == 0) {
    // A clean shutdown: what the namespaces cache reaches the medium before the host is
    // told the shutdown is complete (SHST goes 01, processing, then 10).
    ctrl_->csts.store((csts & ~(3u << 2)) | 1u << 2);
    std::shared_ptr<Controller> c = ctrl_;
    TargetContext* tc = tc_;
    FlushAll([c, tc](uint16_t status) {
      tc->Log("controller " + std::to_string(c->cntlid) +
              (status == spec::kStatusSuccess ? ": shut down by the host"
                                              : ": flush at shutdown failed"));
      c->csts.store((c->csts.load() & ~(3u << 2)) | spec::kCstsShstComplete);
    });
    return CompleteSuccess(r);
  }
  if (spec::CcShn(cc) == 0) csts &= ~(3u << 2);
  ctrl_->csts.store(csts);
  CompleteSuccess(r);
}

// ---------------------------------------------------------------- keep-alive

void QueueHandler::ArmKeepAlive() {
  loop_->CancelTimer(kato_timer_);
  kato_timer_ = {};
  last_keep_alive_ = EventLoop::Clock::now();
  if (ctrl_->kato_ms == 0) return;
  QueueHandler* self = this;
  kato_timer_ = loop_->AddTimer(std::chrono::milliseconds(ctrl_->kato_ms),
                                [self] { self->OnKeepAliveTimer(); });
}

void QueueHandler::OnKeepAliveTimer() {
  kato_timer_ = {};
  if (closed_) return;
  auto kato = std::chrono::milliseconds(ctrl_->kato_ms);
  auto since = EventLoop::Clock::now() - last_keep_alive_;
  if (since >= kato) {
    Close("keep-alive timeout (" + std::to_string(ctrl_->kato_ms) + " ms without Keep Alive)");
    return;
  }
  QueueHandler* self = this;
  kato_timer_ = loop_->AddTimer(kato - since, [self] { self->OnKeepAliveTimer(); });
}

}  // namespace nvmf::target
