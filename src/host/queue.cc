#include "host/queue.h"

#include <string>
#include <vector>

#include "host/util_internal.h"
#include "nvmf/spec/fabrics.h"

namespace nvmf::host::internal {

// ---------------------------------------------------------------- CidPool

void CidPool::Init(uint32_t n) {
  if (n > 65536) n = 65536;
  ring_.resize(n);
  for (uint32_t i = 0; i < n; i++) ring_[i] = static_cast<uint16_t>(i);
  head_ = 0;
  count_ = n;
}

uint16_t CidPool::Take() {
  uint16_t cid = ring_[head_];
  head_ = head_ + 1 == ring_.size() ? 0 : head_ + 1;
  count_--;
  return cid;
}

void CidPool::Put(uint16_t cid) {
  size_t tail = head_ + count_;
  if (tail >= ring_.size()) tail -= ring_.size();
  ring_[tail] = cid;
  count_++;
}

// ---------------------------------------------------------------- HostQueue

HostQueue::~HostQueue() {
  if (qp_ != nullptr) {
    RequestList rest;
    Close(&rest);
    while (Request* r = rest.Pop()) Release(r);
  }
}

Status HostQueue::Open(EventLoop* loop, Connection conn, TransportType trtype, uint32_t max_icd,
                       uint16_t entries, std::chrono::milliseconds timeout) {
  if (entries < 2) return Status::InvalidArgument("a queue needs at least 2 entries");
  QpairParams qp;
  qp.admin = qid_ == 0;
  qp.qsize = entries;
  qp.max_icd = max_icd;
  qp.connection = std::move(conn);
  HostQueue* self = this;
  Status s = AllocateQpair(
      loop, trtype, Role::kHost, qp, [self](const Status& st) { self->OnError(st); },
      [self](Capsule* c) { self->OnResponse(c); }, &qp_);
  if (!s.ok()) {
    qp_ = nullptr;
    return s;
  }
  depth_ = entries - 1u;
  timeout_ = timeout;
  cids_.Init(depth_);
  by_cid_.assign(depth_, nullptr);
  in_flight_ = 0;
  GrowPool(depth_ + 8u);
  return Status::OK();
}

void HostQueue::GrowPool(size_t n) {
  auto chunk = std::make_unique<Request[]>(n);
  for (size_t i = 0; i < n; i++) {
    chunk[i].queue = this;
    chunk[i].next = free_;
    free_ = &chunk[i];
  }
  chunks_.push_back(std::move(chunk));
}

Request* HostQueue::TakeRequest() {
  if (free_ == nullptr) GrowPool(64);  // a burst beyond the pool: grows once, kept after
  Request* r = free_;
  free_ = r->next;
  r->next = nullptr;
  return r;
}

void HostQueue::Release(Request* r) {
  r->cb = nullptr;
  r->capsule = nullptr;
  r->mem = MemDesc();
  r->len = 0;
  if (!r->data_status.ok()) r->data_status = Status();
  r->next = free_;
  free_ = r;
}

Status HostQueue::Submit(const spec::Sqe& sqe, const MemDesc& mem, size_t len, bool send,
                         CommandCallback cb) {
  if (qp_ == nullptr) return Status::IoError("queue " + std::to_string(qid_) + " is not connected");
  if (len > 0 && len > MaxTransferSize(qp_)) {
    return Status::InvalidArgument("data of " + std::to_string(len) +
                                   " bytes exceeds the transport's largest transfer");
  }
  if (len > mem.length()) return Status::InvalidArgument("data length exceeds the buffer");
  Request* r = TakeRequest();
  r->sqe = sqe;
  r->mem = mem;
  r->len = len;
  r->send = send;
  r->cb = cb;
  if (!waiting_.empty() || cids_.empty()) {
    waiting_.Push(r);  // the queue is full: sent when a command completes
    return Status::OK();
  }
  Status s = Start(r);
  if (!s.ok()) Release(r);
  return s;
}

Status HostQueue::Start(Request* r) {
  uint16_t cid = cids_.Take();
  r->sqe.cid = cid;
  r->data_ended = false;
  r->data_bytes = 0;
  Capsule* c = AllocateCommand(qp_, r->sqe);
  if (c == nullptr) {
    cids_.Put(cid);
    return Status::ResourceExhausted("no command capsule available on queue " +
                                     std::to_string(qid_));
  }
  if (r->len > 0) {
    Request* req = r;
    AppendData(c, r->mem, r->len, r->send, [req](size_t bytes, const Status& st) {
      req->data_ended = true;
      req->data_bytes = bytes;
      if (!st.ok()) req->data_status = st;
    });
  }
  r->capsule = c;
  by_cid_[cid] = r;
  in_flight_++;
  // An Asynchronous Event Request completes when an event happens, which may be never:
  // it has no deadline, and a clean close does not wait for it.
  const bool aer = qid_ == 0 && r->sqe.opc == spec::kAdminAsyncEventRequest;
  r->deadline = aer ? EventLoop::Clock::time_point::max() : EventLoop::Clock::now() + timeout_;
  aers_in_flight_ += aer ? 1 : 0;
  Status s = Transmit(c);
  if (!s.ok()) {
    by_cid_[cid] = nullptr;
    in_flight_--;
    aers_in_flight_ -= aer ? 1 : 0;
    r->capsule = nullptr;
    FreeCapsule(c);
    cids_.Put(cid);
    return s;
  }
  return Status::OK();
}

void HostQueue::Pump() {
  while (qp_ != nullptr && !cids_.empty() && !waiting_.empty()) {
    Request* r = waiting_.Pop();
    Status s = Start(r);
    if (!s.ok()) {
      // Only a queue pair that is going down refuses a command; the callback may close the
      // association (which empties this queue and ends the loop).
      CommandCallback cb = r->cb;
      Release(r);
      cb(s, spec::Cqe{});
    }
  }
}

void HostQueue::OnResponse(Capsule* resp) {
  const spec::Cqe cqe = CapsuleCqe(resp);
  FreeCapsule(resp);
  Request* r = cqe.cid < by_cid_.size() ? by_cid_[cqe.cid] : nullptr;
  if (r == nullptr) {
    // The transport only delivers completions of commands it has in flight, so this is
    // a broken invariant rather than bad input; fail safely all the same.
    ctrl_->Fail(Status::ProtocolError("completion for CID " + std::to_string(cqe.cid) +
                                      " with no command in flight on queue " +
                                      std::to_string(qid_)));
    return;
  }
  by_cid_[cqe.cid] = nullptr;
  in_flight_--;
  if (qid_ == 0 && r->sqe.opc == spec::kAdminAsyncEventRequest) aers_in_flight_--;
  FreeCapsule(r->capsule);
  r->capsule = nullptr;
  cids_.Put(cqe.cid);

  Status st;
  // An Authentication Receive's message says its own length, and a controller may send
  // just the message (the lab's reference target does): fewer bytes are not an error.
  const bool short_ok =
      r->sqe.opc == spec::kFabricsCommand &&
      reinterpret_cast<const spec::FabricsSqe&>(r->sqe).fctype == spec::kFctypeAuthReceive &&
      (r->data_status.ok() || r->data_status.code() == Status::Code::kAborted);
  if (spec::StatusOf(cqe) != spec::kStatusSuccess) {
    st = CompletionStatus(r->sqe, cqe, qid_ == 0);
  } else if (short_ok) {
    // st stays OK
  } else if (r->len > 0 && !r->data_status.ok()) {
    st = WithContext(r->data_status, std::string(CommandName(r->sqe, qid_ == 0)) + " data");
  } else if (r->len > 0 && (!r->data_ended || r->data_bytes != r->len)) {
    st = Status::IoError(std::string(CommandName(r->sqe, qid_ == 0)) + ": completed after " +
                         std::to_string(r->data_bytes) + " of " + std::to_string(r->len) +
                         " data bytes");
  }
  CommandCallback cb = r->cb;
  Release(r);
  Pump();
  cb(st, cqe);  // last: the callback may close the association
}

void HostQueue::OnError(const Status& s) {
  std::string where = "queue " + std::to_string(qid_);
  if (disconnecting_) {
    const Status why = s.ok() ? Status::IoError(where + ": closed by the controller") : WithContext(s, where);
    RequestList rest;
    Close(&rest);
    std::vector<CommandCallback> cbs;
    while (Request* r = rest.Pop()) {
      cbs.push_back(r->cb);
      Release(r);
    }
    for (const CommandCallback& cb : cbs) {
      if (cb) cb(why, spec::Cqe{});
    }
    return;
  }
  if (s.ok()) {
    ctrl_->Fail(Status::IoError(where + ": the controller closed the connection"));
  } else {
    ctrl_->Fail(WithContext(s, where));
  }
}

const Request* HostQueue::Expired(EventLoop::Clock::time_point now) const {
  if (in_flight_ == 0) return nullptr;
  for (const Request* r : by_cid_) {
    if (r != nullptr && r->deadline <= now) return r;
  }
  return nullptr;
}

void HostQueue::Close(RequestList* out) {
  if (qp_ != nullptr) {
    // Freeing the queue pair ends every data transfer (their callbacks run now), so the
    // callers' buffers are no longer touched once this returns.
    Qpair* qp = qp_;
    qp_ = nullptr;
    FreeQpair(qp);
  }
  for (Request*& r : by_cid_) {
    if (r == nullptr) continue;
    if (r->capsule != nullptr) FreeCapsule(r->capsule);
    r->capsule = nullptr;
    out->Push(r);
    r = nullptr;
  }
  in_flight_ = 0;
  aers_in_flight_ = 0;
  cids_.Init(depth_);
  while (Request* r = waiting_.Pop()) out->Push(r);
}

}  // namespace nvmf::host::internal
