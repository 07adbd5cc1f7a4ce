// RdmaQpair life cycle, pools, completions and the transport operations of both roles.
#include "rdma/rdma_qpair.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace nvmf::rdma {
namespace {

constexpr uint16_t Generic(uint8_t sc, bool dnr = true) {
  return spec::MakeStatus(spec::kSctGeneric, sc, dnr);
}

Status SetNonBlocking(int fd, const char* what) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    return Status::IoError(ErrnoText(what, errno));
  }
  return Status::OK();
}

std::string WcText(const ibv_wc& wc) {
  return std::string("RDMA work completion failed: ") + ibv_wc_status_str(wc.status) +
         " (vendor error 0x" + [&] {
           char b[16];
           std::snprintf(b, sizeof(b), "%x", wc.vendor_err);
           return std::string(b);
         }() + ")";
}

}  // namespace

Status MakeCmChannel(rdma_event_channel** out) {
  rdma_event_channel* ch = rdma_create_event_channel();
  if (ch == nullptr) {
    int err = errno;
    if (err == ENODEV || err == ENOENT) {
      return Status::NotSupported(
          "no RDMA device: /dev/infiniband/rdma_cm is missing (load rdma_ucm and configure an "
          "RDMA NIC or Soft-RoCE, e.g. rdma link add rxe0 type rxe netdev eth0)");
    }
    return Status::IoError(ErrnoText("rdma_create_event_channel", err));
  }
  Status s = SetNonBlocking(ch->fd, "RDMA CM channel");
  if (!s.ok()) {
    rdma_destroy_event_channel(ch);
    return s;
  }
  *out = ch;
  return Status::OK();
}

// ---------------------------------------------------------------- resources

QueueResources::~QueueResources() {
  if (id != nullptr) {
    if (id->qp != nullptr) rdma_destroy_qp(id);
    rdma_destroy_id(id);
  }
  if (cq != nullptr) ibv_destroy_cq(cq);
  if (comp != nullptr) ibv_destroy_comp_channel(comp);
  if (channel != nullptr) rdma_destroy_event_channel(channel);
  recv_buf.Release();
}

Status QueueResources::Create(uint32_t recvs, uint32_t recv_bytes, uint32_t sends,
                              bool own) {
  rdma_cm_id* cm_id = id;
  if (cm_id == nullptr || cm_id->verbs == nullptr) {
    return Status::IoError("RDMA CM identifier has no device");
  }
  Status s;
  dev = GetDevice(cm_id->verbs, &s);
  if (dev == nullptr) return s;
  pd = dev->pd;
  if (own) {
    ibv_pd* p = ibv_alloc_pd(cm_id->verbs);
    if (p == nullptr) return Status::ResourceExhausted(ErrnoText("ibv_alloc_pd", errno));
    own_pd = std::make_shared<OwnedPd>(p);
    pd = p;
  }
  const auto max_wr = static_cast<uint32_t>(std::max(dev->attr.max_qp_wr, 2));
  recv_count = std::min(recvs, max_wr);
  send_depth = std::min(sends, max_wr);
  recv_size = recv_bytes;
  if (recv_count < recvs) {
    return Status::ResourceExhausted("the RDMA device takes at most " + std::to_string(max_wr) +
                                     " work requests per queue");
  }
  comp = ibv_create_comp_channel(cm_id->verbs);
  if (comp == nullptr) return Status::ResourceExhausted(ErrnoText("ibv_create_comp_channel", errno));
  s = SetNonBlocking(comp->fd, "completion channel");
  if (!s.ok()) return s;
  const int cqe = static_cast<int>(std::min<uint32_t>(recv_count + send_depth + 1,
                                                      static_cast<uint32_t>(dev->attr.max_cqe)));
  cq = ibv_create_cq(cm_id->verbs, cqe, nullptr, comp, 0);
  if (cq == nullptr) return Status::ResourceExhausted(ErrnoText("ibv_create_cq", errno));
  ibv_qp_init_attr qa{};
  qa.send_cq = cq;
  qa.recv_cq = cq;
  qa.qp_type = IBV_QPT_RC;
  qa.cap.max_send_wr = send_depth;
  qa.cap.max_recv_wr = recv_count;
  qa.cap.max_send_sge = 1;
  qa.cap.max_recv_sge = 1;
  qa.sq_sig_all = 0;
  // Capsules without data fit inline (a 64-byte SQE, a 16-byte CQE): they skip the DMA
  // read of the send buffer. A device that takes no inline data gets a QP without.
  qa.cap.max_inline_data = kInlineWanted;
  if (rdma_create_qp(cm_id, pd, &qa) != 0) {
    qa.cap.max_inline_data = 0;
    if (rdma_create_qp(cm_id, pd, &qa) != 0) {
      return Status::ResourceExhausted(ErrnoText("rdma_create_qp", errno));
    }
  }
  max_inline = qa.cap.max_inline_data;
  s = recv_buf.Ensure(pd, static_cast<size_t>(recv_count) * recv_size, IBV_ACCESS_LOCAL_WRITE,
                      false);
  if (!s.ok()) return s;
  std::vector<ibv_recv_wr> wrs(recv_count);
  std::vector<ibv_sge> sges(recv_count);
  for (uint32_t i = 0; i < recv_count; i++) {
    sges[i] = {reinterpret_cast<uint64_t>(recv_buf.data() + static_cast<size_t>(i) * recv_size),
               recv_size, recv_buf.lkey()};
    wrs[i].wr_id = kRecvTag | i;
    wrs[i].sg_list = &sges[i];
    wrs[i].num_sge = 1;
    wrs[i].next = i + 1 < recv_count ? &wrs[i + 1] : nullptr;
  }
  ibv_recv_wr* bad = nullptr;
  if (int rc = ibv_post_recv(id->qp, wrs.data(), &bad); rc != 0) {
    return Status::IoError(ErrnoText("ibv_post_recv", rc));
  }
  return Status::OK();
}

// ---------------------------------------------------------------- life cycle

void RdmaCapsule::Reset(RdmaQpair* qp, bool command) {
  ResetBase(qp, command);
  refs = 1;
  in_use = true;
  in_table = data_pending = aborted = false;
  icd_len = 0;
  ops_active = 0;
  send_wr.wr_id = 0;
  for (DataOp& d : ops) {
    d.active = false;
    d.cb = nullptr;
    d.wr.wr_id = 0;
  }
}

Status RdmaQpair::Create(EventLoop* loop, Role role, const QpairParams& params,
                         ErrorCallback on_error, ReceiveCallback on_receive, Qpair** out) {
  auto* conn = static_cast<RdmaConnection*>(params.connection.get());
  if (conn->res == nullptr) return Status::InvalidArgument("RDMA connection already used");
  auto* qp = new RdmaQpair(loop, role, params, conn, on_error, on_receive);
  Status s = qp->Start();
  if (!s.ok()) {
    qp->freed_ = true;
    qp->dead_ = true;
    qp->Teardown();
    qp->Unref();
    return s;
  }
  *out = qp;
  return Status::OK();
}

RdmaQpair::RdmaQpair(EventLoop* loop, Role role, const QpairParams& params, RdmaConnection* conn,
                     ErrorCallback on_error, ReceiveCallback on_receive)
    : Qpair(TransportType::kRdma, role, params.admin),
      loop_(loop),
      own_pd_(conn->res->own_pd),
      pd_(conn->res->pd),
      res_(std::move(conn->res)),
      qp_(res_->id->qp),
      staging_(res_->dev->staging.get()),
      qsize_(role == Role::kController ? conn->entries : params.qsize),
      max_icd_(role == Role::kController ? conn->max_icd : (params.admin ? 0 : params.max_icd)),
      max_transfer_(conn->max_transfer),
      peer_(conn->peer),
      on_error_(on_error),
      on_receive_(on_receive) {}

Status RdmaQpair::Start() {
  // Commands in flight plus slack for ones whose SEND has not completed yet; as many
  // responses. Only the sending pool (host commands, controller responses) gets SEND slots.
  const size_t per_pool = static_cast<size_t>(qsize_) + 4;
  capsules_ = std::vector<RdmaCapsule>(per_pool * 2);
  send_slot_ = controller() ? sizeof(spec::Cqe) : sizeof(spec::Sqe) + max_icd_;
  send_slot_ = (send_slot_ + 63) & ~63u;
  Status s = send_region_.Ensure(pd_, per_pool * send_slot_, IBV_ACCESS_LOCAL_WRITE, false);
  if (!s.ok()) return s;
  for (size_t i = 0; i < capsules_.size(); i++) {
    RdmaCapsule& c = capsules_[i];
    const bool command = i < per_pool;
    c.pool_command = command;
    c.send_op = {Op::kSend, 0, &c};
    for (int k = 0; k < RdmaCapsule::kDataOps; k++) {
      c.ops[k].op = {k == 0 ? Op::kRead : Op::kWrite, static_cast<uint8_t>(k), &c};
    }
    if (command == !controller()) {
      size_t slot = command ? i : i - per_pool;
      c.send_buf = send_region_.data() + slot * send_slot_;
    }
    RdmaCapsule** list = command ? &free_commands_ : &free_responses_;
    c.next_free = *list;
    *list = &c;
  }
  cids_.Init(per_pool);
  recv_wrs_.resize(res_->recv_count);
  recv_sges_.resize(res_->recv_count);
  for (uint32_t i = 0; i < res_->recv_count; i++) {
    recv_sges_[i] = {reinterpret_cast<uint64_t>(res_->recv_buf.data() +
                                                static_cast<size_t>(i) * res_->recv_size),
                     res_->recv_size, res_->recv_buf.lkey()};
    recv_wrs_[i].wr_id = kRecvTag | i;
    recv_wrs_[i].sg_list = &recv_sges_[i];
    recv_wrs_[i].num_sge = 1;
  }
  RdmaQpair* self = this;
  s = loop_->Add(res_->channel->fd, EPOLLIN, [self](uint32_t) { self->OnCmEvents(); });
  if (!s.ok()) return s;
  s = loop_->Add(res_->comp->fd, EPOLLIN, [self](uint32_t) { self->OnCompChannel(); });
  if (!s.ok()) {
    loop_->Remove(res_->channel->fd);
    return s;
  }
  polling_ = loop_->mode() == EventLoop::Mode::kPoll;
  if (polling_) {
    loop_->AddPoller(this);
  } else if (int rc = ibv_req_notify_cq(res_->cq, 0); rc != 0) {
    return Status::IoError(ErrnoText("ibv_req_notify_cq", rc));
  }
  // Completions that arrived before the queue pair existed (a command right after the
  // accept) are taken now; the loop has not run yet, so deliver them from a timer.
  refs_++;  // the timer's
  loop_->AddTimer(std::chrono::nanoseconds(0), [self] {
    if (self->alive()) self->Poll();
    self->Unref();
  });
  return Status::OK();
}

RdmaQpair::~RdmaQpair() { Teardown(); }

// Stops everything the loop watches and destroys the QP, so that no completion refers to a
// capsule again. Idempotent.
void RdmaQpair::Teardown() {
  loop_->CancelFlush(this);
  if (polling_) {
    loop_->RemovePoller(this);
    polling_ = false;
  }
  if (res_ == nullptr) return;
  if (res_->channel != nullptr) loop_->Remove(res_->channel->fd);
  if (res_->comp != nullptr) loop_->Remove(res_->comp->fd);
  if (res_->id != nullptr && res_->id->qp != nullptr) {
    if (cq_events_unacked_ > 0) ibv_ack_cq_events(res_->cq, cq_events_unacked_);
    cq_events_unacked_ = 0;
    rdma_disconnect(res_->id);
    rdma_destroy_qp(res_->id);
    qp_ = nullptr;
  }
  // Work requests will never complete now: drop their references.
  send_head_ = send_tail_ = nullptr;
  recv_head_ = recv_tail_ = nullptr;
  sends_outstanding_ = 0;
  std::unique_ptr<QueueResources> res = std::move(res_);
  for (RdmaCapsule& c : capsules_) {
    if (!c.in_use) continue;
    int wr_refs = 0;
    if (c.send_op.cap != nullptr && c.send_wr.wr_id != 0) {
      wr_refs++;
      c.send_wr.wr_id = 0;
    }
    for (DataOp& d : c.ops) {
      if (d.wr.wr_id != 0) {
        wr_refs++;
        d.wr.wr_id = 0;
      }
      d.active = false;
    }
    c.ops_active = 0;
    ReleaseTransferBuffer(&c);  // the QP is gone: nothing reaches the buffer any more
    // Releasing may delete this queue pair only from the last Unref, which the caller's
    // reference (or Hold) prevents here.
    for (int i = 0; i < wr_refs; i++) UnrefCapsule(&c);
  }
  res.reset();
}

void RdmaQpair::Unref() {
  if (--refs_ == 0) delete this;
}

void RdmaQpair::Free() {
  Hold hold(this);
  freed_ = true;
  if (!dead_) {
    dead_ = true;
    FailTransfers(Status::Aborted("queue pair freed"));
    // What is queued (a last response, such as a refused Connect's) still goes out: the
    // QP lives until its sends complete, for at most kDrainTime.
    PostQueued();
    if (qp_ != nullptr && sends_outstanding_ > 0) {
      draining_ = true;
      refs_++;  // the drain's, dropped by FinishDrain
      RdmaQpair* self = this;
      drain_timer_ = loop_->AddTimer(kDrainTime, [self] {
        self->drain_timer_ = {};
        self->FinishDrain();
      });
    }
  }
  if (!draining_) Teardown();
  refs_--;  // the owner's reference; Hold keeps us alive until this returns
}

void RdmaQpair::FinishDrain() {
  if (!draining_) return;
  Hold hold(this);
  draining_ = false;
  if (drain_timer_) loop_->CancelTimer(drain_timer_);
  drain_timer_ = {};
  Teardown();
  refs_--;
}

// ---------------------------------------------------------------- capsules

RdmaCapsule* RdmaQpair::Take(bool command) {
  RdmaCapsule** list = command ? &free_commands_ : &free_responses_;
  RdmaCapsule* c = *list;
  if (c == nullptr) return nullptr;
  *list = c->next_free;
  c->Reset(this, command);
  refs_++;
  return c;
}

Capsule* RdmaQpair::AllocateCapsule(bool command) {
  if (!alive()) return nullptr;
  return Take(command);
}

void RdmaQpair::FreeCapsule(Capsule* cap) {
  auto* c = static_cast<RdmaCapsule*>(cap);
  // A transfer still running keeps the capsule (its memory is the staging buffer) but its
  // callback is the owner's no more.
  for (DataOp& d : c->ops) {
    if (d.active && d.cb) {
      DataCallback cb = d.cb;
      d.cb = nullptr;
      d.mem = MemDesc();
      cb(0, Status::Aborted("command capsule freed"));
    }
  }
  UnrefCapsule(c);
}

void RdmaQpair::UnrefCapsule(RdmaCapsule* c) {
  if (--c->refs > 0) return;
  if (c->in_table) {
    cids_.Remove(c->sqe().cid);
    c->in_table = false;
  }
  ReleaseTransferBuffer(c);
  RdmaCapsule** list = c->pool_command ? &free_commands_ : &free_responses_;
  c->next_free = *list;
  *list = c;
  c->in_use = false;
  Unref();
}

void RdmaQpair::Deliver(RdmaCapsule* c) {
  if (freed_) return UnrefCapsule(c);
  on_receive_(c);
}

ControllerTransportValues RdmaControllerValues(uint32_t max_icd, uint64_t max_transfer) {
  ControllerTransportValues v;
  v.ioccsz = (sizeof(spec::Sqe) + max_icd) / 16;
  v.iorcsz = 1;
  v.icdoff = 0;
  v.sgls = 1u | 1u << 2 | 1u << 20;  // SGLs, keyed SGL data blocks, offsets (in-capsule data)
  v.msdbd = 1;
  v.max_transfer = max_transfer;
  return v;
}

ControllerTransportValues RdmaQpair::ControllerValues() const {
  return RdmaControllerValues(max_icd_, max_transfer_);
}

// ---------------------------------------------------------------- posting

void RdmaQpair::QueueSend(ibv_send_wr* wr) {
  wr->next = nullptr;
  if (send_tail_ != nullptr) {
    send_tail_->next = wr;
  } else {
    send_head_ = wr;
  }
  send_tail_ = wr;
  loop_->RequestFlush(this);
}

void RdmaQpair::Repost(uint32_t slot) {
  ibv_recv_wr* wr = &recv_wrs_[slot];
  wr->next = nullptr;
  if (recv_tail_ != nullptr) {
    recv_tail_->next = wr;
  } else {
    recv_head_ = wr;
  }
  recv_tail_ = wr;
  loop_->RequestFlush(this);
}

void RdmaQpair::Flush() {
  Hold hold(this);
  PostQueued();
}

// Posts the receives and sends queued this turn, one call each; sends beyond the send
// queue's depth wait for completions.
void RdmaQpair::PostQueued() {
  if (qp_ == nullptr) return;
  if (recv_head_ != nullptr) {
    ibv_recv_wr* bad = nullptr;
    ibv_recv_wr* head = recv_head_;
    recv_head_ = recv_tail_ = nullptr;
    if (int rc = ibv_post_recv(qp_, head, &bad); rc != 0) {
      return Fail(Status::IoError(ErrnoText("ibv_post_recv", rc)));
    }
  }
  if (send_head_ == nullptr || sends_outstanding_ >= res_->send_depth) return;
  ibv_send_wr* head = send_head_;
  ibv_send_wr* last = head;
  uint32_t n = 1;
  while (last->next != nullptr && sends_outstanding_ + n < res_->send_depth) {
    last = last->next;
    n++;
  }
  send_head_ = last->next;
  if (send_head_ == nullptr) send_tail_ = nullptr;
  last->next = nullptr;
  ibv_send_wr* bad = nullptr;
  if (int rc = ibv_post_send(qp_, head, &bad); rc != 0) {
    // The ones from bad on were not posted: they hold references that no completion will
    // drop. Put them back in front; Fail's teardown releases them. A provider that does
    // not say which failed: count none as posted.
    if (bad == nullptr) bad = head;
    last->next = send_head_;
    send_head_ = bad;
    if (send_tail_ == nullptr) send_tail_ = last;
    for (ibv_send_wr* w = head; w != bad; w = w->next) sends_outstanding_++;
    return Fail(Status::IoError(ErrnoText("ibv_post_send", rc)));
  }
  sends_outstanding_ += n;
}

// ---------------------------------------------------------------- completions

void RdmaQpair::OnCompChannel() {
  Hold hold(this);
  if (res_ == nullptr) return;
  ibv_cq* cq = nullptr;
  void* ctx = nullptr;
  while (ibv_get_cq_event(res_->comp, &cq, &ctx) == 0) {
    // Acknowledged in batches: each ack takes a lock in the library.
    if (++cq_events_unacked_ >= 64) {
      ibv_ack_cq_events(res_->cq, cq_events_unacked_);
      cq_events_unacked_ = 0;
    }
  }
  if (res_ == nullptr) return;
  // Re-arm before draining, so that a completion that lands after the drain still wakes us.
  if (int rc = ibv_req_notify_cq(res_->cq, 0); rc != 0) {
    return Fail(Status::IoError(ErrnoText("ibv_req_notify_cq", rc)));
  }
  while (PollCq() > 0) {
  }
}

bool RdmaQpair::Poll() {
  Hold hold(this);
  bool found = false;
  while (PollCq() > 0) found = true;
  return found;
}

int RdmaQpair::PollCq() {
  if (res_ == nullptr) return 0;
  ibv_wc wcs[32];
  int n = ibv_poll_cq(res_->cq, 32, wcs);
  if (n < 0) {
    Fail(Status::IoError("ibv_poll_cq failed"));
    return 0;
  }
  for (int i = 0; i < n && res_ != nullptr; i++) OnCompletion(wcs[i]);
  return n;
}

void RdmaQpair::OnCompletion(const ibv_wc& wc) {
  if (wc.wr_id & kRecvTag) {
    if (wc.status != IBV_WC_SUCCESS) {
      if (wc.status != IBV_WC_WR_FLUSH_ERR) Fail(Status::IoError(WcText(wc)));
      return;
    }
    return OnRecv(static_cast<uint32_t>(wc.wr_id & ~kRecvTag), wc.byte_len);
  }
  Op* op = reinterpret_cast<Op*>(wc.wr_id);
  RdmaCapsule* c = op->cap;
  if (sends_outstanding_ > 0) sends_outstanding_--;
  const Status st = wc.status == IBV_WC_SUCCESS ? Status::OK() : Status::IoError(WcText(wc));
  if (op->kind == Op::kSend) {
    c->send_wr.wr_id = 0;
  } else {
    DataOp* d = &c->ops[op->index];
    d->wr.wr_id = 0;
    FinishDataOp(c, d, st);
  }
  UnrefCapsule(c);
  if (draining_) {
    // What waited beyond the send depth still goes out before the QP does.
    if (st.ok() && send_head_ != nullptr) PostQueued();
    if ((sends_outstanding_ == 0 && send_head_ == nullptr) || !st.ok()) FinishDrain();
    return;
  }
  if (!st.ok() && wc.status != IBV_WC_WR_FLUSH_ERR) Fail(st);
  if (send_head_ != nullptr) loop_->RequestFlush(this);  // room for what waited
}

void RdmaQpair::OnRecv(uint32_t slot, uint32_t len) {
  if (!alive() || res_ == nullptr || slot >= res_->recv_count) return;
  const uint8_t* buf = res_->recv_buf.data() + static_cast<size_t>(slot) * res_->recv_size;
  if (controller()) {
    if (len < sizeof(spec::Sqe)) {
      return Fail(Status::ProtocolError("a command capsule of " + std::to_string(len) +
                                        " bytes, shorter than an SQE"));
    }
    RdmaCapsule* c = Take(true);
    if (c == nullptr) {
      return Fail(Status::ProtocolError("the host sent more commands than its queue size"));
    }
    std::memcpy(&c->mutable_sqe(), buf, sizeof(spec::Sqe));
    c->icd_len = len - static_cast<uint32_t>(sizeof(spec::Sqe));
    if (c->icd_len > 0) {
      if (!c->icd_buf) c->icd_buf.reset(new (std::nothrow) uint8_t[max_icd_]);
      if (!c->icd_buf) {
        UnrefCapsule(c);
        return Fail(Status::ResourceExhausted("out of memory for in-capsule data"));
      }
      std::memcpy(c->icd_buf.get(), buf + sizeof(spec::Sqe), c->icd_len);
    }
    Repost(slot);
    return Deliver(c);
  }
  if (len < sizeof(spec::Cqe)) {
    return Fail(Status::ProtocolError("a response capsule of " + std::to_string(len) + " bytes"));
  }
  RdmaCapsule* c = Take(false);
  if (c == nullptr) return Fail(Status::ProtocolError("response capsules exhausted"));
  std::memcpy(&c->mutable_cqe(), buf, sizeof(spec::Cqe));
  Repost(slot);
  if (RdmaCapsule* cmd = cids_.Find(c->cqe().cid); cmd != nullptr) {
    cids_.Remove(c->cqe().cid);
    cmd->in_table = false;
    if (cmd->data_pending) {
      size_t bytes = cmd->data_len();
      // A read's data arrived by RDMA WRITE before this response (the send queue keeps
      // them in order); a failed command's data is not copied.
      if (!cmd->data_send() && spec::StatusOf(c->cqe()) == 0) {
        cmd->data().CopyIn(0, cmd->staging.data(), bytes);
      } else if (!cmd->data_send()) {
        bytes = 0;
      }
      FinishHostData(cmd, Status::OK(), bytes);
    }
    UnrefCapsule(cmd);  // the table's reference
  }
  Deliver(c);
}

void RdmaQpair::OnCmEvents() {
  Hold hold(this);
  rdma_cm_event* ev = nullptr;
  while (res_ != nullptr && rdma_get_cm_event(res_->channel, &ev) == 0) {
    const rdma_cm_event_type type = ev->event;
    rdma_ack_cm_event(ev);
    if (draining_ && (type == RDMA_CM_EVENT_DISCONNECTED || type == RDMA_CM_EVENT_DEVICE_REMOVAL)) {
      FinishDrain();
      continue;
    }
    switch (type) {
      case RDMA_CM_EVENT_DISCONNECTED:
        // Between commands a disconnect is the peer's clean close.
        Fail(Idle() ? Status::OK() : Status::IoError("the peer disconnected with commands in flight"));
        break;
      case RDMA_CM_EVENT_DEVICE_REMOVAL:
        Fail(Status::IoError("the RDMA device was removed"));
        break;
      default:  // ESTABLISHED, TIMEWAIT_EXIT: nothing to do
        break;
    }
  }
}

bool RdmaQpair::Idle() const {
  if (cids_.size() > 0) return false;
  for (const RdmaCapsule& c : capsules_) {
    if (c.in_use && c.ops_active > 0) return false;
  }
  return true;
}

// ---------------------------------------------------------------- failure

void RdmaQpair::Fail(const Status& s) {
  if (dead_) return;
  Hold hold(this);
  dead_ = true;
  FailTransfers(s.ok() ? Status::IoError("connection closed") : s);
  Teardown();
  if (!freed_) {
    ErrorCallback cb = on_error_;
    cb(s);
  }
}

void RdmaQpair::FailTransfers(const Status& s) {
  const Status err = s.ok() ? Status::IoError("connection closed") : s;
  for (RdmaCapsule& c : capsules_) {
    if (!c.in_use) continue;
    for (DataOp& d : c.ops) {
      if (d.active && d.cb) {
        DataCallback cb = d.cb;
        d.cb = nullptr;
        d.mem = MemDesc();
        cb(0, err);
      }
    }
  }
  // Host: every command in flight loses its data transfer and its table reference.
  std::vector<RdmaCapsule*> inflight;
  inflight.reserve(cids_.size());
  cids_.ForEach([&](RdmaCapsule* c) { inflight.push_back(c); });
  for (RdmaCapsule* c : inflight) {
    cids_.Remove(c->sqe().cid);
    c->in_table = false;
    FinishHostData(c, err, 0);
    UnrefCapsule(c);
  }
}

// ---------------------------------------------------------------- host

Status RdmaQpair::Transmit(Capsule* cap) {
  auto* c = static_cast<RdmaCapsule*>(cap);
  if (!alive()) return Status::IoError("queue pair is not connected");
  if (c->is_command() == controller()) {
    return Status::InvalidArgument(controller() ? "a controller transmits responses"
                                                : "a host transmits commands");
  }
  if (!c->is_command()) {
    std::memcpy(c->send_buf, &c->cqe(), sizeof(spec::Cqe));
    c->send_sge = {reinterpret_cast<uint64_t>(c->send_buf), sizeof(spec::Cqe), send_region_.lkey()};
  } else {
    spec::Sqe& sqe = c->mutable_sqe();
    // Refused before any data is copied for it.
    if (cids_.Find(sqe.cid) != nullptr) {
      return Status::InvalidArgument("a command with this CID is already in flight");
    }
    sqe.fuse_psdt = static_cast<uint8_t>((sqe.fuse_psdt & 0x3F) | spec::kPsdtSglMptrContig << 6);
    const auto len = static_cast<uint32_t>(c->data_len());
    if (len > max_transfer_ || len > kKeyedMaxLength) {
      return Status::InvalidArgument("data longer than the queue pair's largest transfer");
    }
    uint32_t bytes = sizeof(spec::Sqe);
    if (c->data_send() && len > 0 && len <= max_icd_) {
      sqe.sgl1 = EncodeInCapsule(0, len);
      c->data().CopyOut(0, c->send_buf + sizeof(spec::Sqe), len);
      bytes += len;
    } else if (len > 0) {
      Status s = c->staging.Ensure(pd_, len,
                                   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
                                       IBV_ACCESS_REMOTE_WRITE);
      if (!s.ok()) return s;
      if (c->data_send()) c->data().CopyOut(0, c->staging.data(), len);
      sqe.sgl1 = EncodeKeyed({reinterpret_cast<uint64_t>(c->staging.data()), len,
                              c->staging.rkey(), false});
    } else {
      sqe.sgl1 = EncodeKeyed({});  // no data: a keyed SGL of length 0, as Linux expects
    }
    if (!cids_.Insert(sqe.cid, c)) {
      return Status::InvalidArgument("a command with this CID is already in flight");
    }
    std::memcpy(c->send_buf, &sqe, sizeof(spec::Sqe));
    c->send_sge = {reinterpret_cast<uint64_t>(c->send_buf), bytes, send_region_.lkey()};
    c->in_table = true;
    c->refs++;  // the table's, dropped when the response arrives
    c->data_pending = len > 0;
    c->aborted = false;
  }
  c->send_wr = {};
  c->send_wr.wr_id = reinterpret_cast<uint64_t>(&c->send_op);
  c->send_wr.sg_list = &c->send_sge;
  c->send_wr.num_sge = 1;
  c->send_wr.opcode = IBV_WR_SEND;
  c->send_wr.send_flags = IBV_SEND_SIGNALED;
  if (c->send_sge.length <= res_->max_inline) c->send_wr.send_flags |= IBV_SEND_INLINE;
  c->refs++;  // the work request's
  QueueSend(&c->send_wr);
  return Status::OK();
}

void RdmaQpair::FinishHostData(RdmaCapsule* c, const Status& s, size_t bytes) {
  if (!c->data_pending) return;
  c->data_pending = false;
  if (c->aborted) return;
  DataCallback cb = c->data_done();
  if (cb) cb(bytes, s);
}

void RdmaQpair::AbortData(Capsule* cap) {
  auto* c = static_cast<RdmaCapsule*>(cap);
  if (controller()) {
    for (DataOp& d : c->ops) {
      if (d.active && d.cb) {
        DataCallback cb = d.cb;
        d.cb = nullptr;
        d.mem = MemDesc();
        cb(0, Status::Aborted("data transfer aborted"));
      }
    }
    return;
  }
  if (!c->data_pending) return;
  // The data was copied into the staging buffer at Transmit (a write) or will be copied
  // out of it only while the transfer is pending (a read): the caller's memory is free.
  c->data_pending = false;
  DataCallback cb = c->data_done();
  if (cb) cb(0, Status::Aborted("data transfer aborted"));
}

// ---------------------------------------------------------------- controller

uint8_t RdmaQpair::ValidateCommand(const Capsule* cap) const {
  const auto* c = static_cast<const RdmaCapsule*>(cap);
  const spec::Sqe& sqe = c->sqe();
  if (spec::Psdt(sqe) != spec::kPsdtSglMptrContig) return spec::kScInvalidField;
  const spec::SglDescriptor& sgl = sqe.sgl1;
  if (sgl.type == spec::kSglInCapsule) {
    if (sgl.address != 0) return spec::kScSglOffsetInvalid;
    if (sgl.length != c->icd_len) return spec::kScDataSglLengthInvalid;
    return spec::kScSuccess;
  }
  if (c->icd_len > 0) return spec::kScDataSglLengthInvalid;  // data the SGL does not name
  if (!IsKeyed(sgl)) return spec::kScSglDescriptorTypeInvalid;
  // Transfer buffers are sized from this length: never more than the largest transfer.
  if (DecodeKeyed(sgl).length > max_transfer_) return spec::kScDataSglLengthInvalid;
  return spec::kScSuccess;
}

size_t RdmaQpair::DataLength(const Capsule* cap) const {
  const spec::SglDescriptor& sgl = cap->sqe().sgl1;
  if (sgl.type == spec::kSglInCapsule) return sgl.length;
  if (IsKeyed(sgl)) return DecodeKeyed(sgl).length;
  return 0;
}

DataOp* RdmaQpair::FreeDataOp(RdmaCapsule* c) {
  for (DataOp& d : c->ops) {
    if (!d.active) return &d;
  }
  return nullptr;
}

void RdmaQpair::ReceiveData(Capsule* cap, uint32_t offset, const MemDesc& mem, size_t len,
                            DataCallback on_done) {
  auto* c = static_cast<RdmaCapsule*>(cap);
  if (!alive()) return on_done(0, Status::IoError("queue pair is not connected"));
  const spec::SglDescriptor& sgl = c->sqe().sgl1;
  if (len > mem.length()) return on_done(0, Status::InvalidArgument("memory shorter than len"));
  if (sgl.type == spec::kSglInCapsule) {
    if (static_cast<uint64_t>(offset) + len > c->icd_len) {
      return on_done(0, Status::InvalidArgument("beyond the in-capsule data"));
    }
    if (len > 0) mem.CopyIn(0, c->icd_buf.get() + offset, len);
    return on_done(len, Status::OK());
  }
  const KeyedSgl k = DecodeKeyed(sgl);
  if (!IsKeyed(sgl) || static_cast<uint64_t>(offset) + len > k.length) {
    return on_done(0, Status::InvalidArgument("beyond the command's data"));
  }
  if (len == 0) return on_done(0, Status::OK());
  DataOp* d = FreeDataOp(c);
  if (d == nullptr) return on_done(0, Status::ResourceExhausted("too many transfers at once"));
  Status s;
  RegisteredBuffer* buf = TransferBuffer(c, k.length, &s);
  if (buf == nullptr) return on_done(0, s);
  d->mem = mem;
  QueueDataOp(c, d, Op::kRead, buf, k, offset, static_cast<uint32_t>(len), on_done);
}

void RdmaQpair::QueueDataOp(RdmaCapsule* c, DataOp* d, Op::Kind kind, RegisteredBuffer* buf,
                            const KeyedSgl& k, uint32_t offset, uint32_t len, DataCallback cb) {
  d->active = true;
  d->offset = offset;
  d->len = len;
  d->cb = cb;
  d->op.kind = kind;
  d->sge = {reinterpret_cast<uint64_t>(buf->data() + offset), len, buf->lkey()};
  d->wr = {};
  d->wr.wr_id = reinterpret_cast<uint64_t>(&d->op);
  d->wr.sg_list = &d->sge;
  d->wr.num_sge = 1;
  d->wr.opcode = kind == Op::kRead ? IBV_WR_RDMA_READ : IBV_WR_RDMA_WRITE;
  d->wr.send_flags = IBV_SEND_SIGNALED;
  d->wr.wr.rdma.remote_addr = k.address + offset;
  d->wr.wr.rdma.rkey = k.key;
  c->ops_active++;
  c->refs++;
  QueueSend(&d->wr);
}

uint16_t RdmaQpair::SendData(Capsule* cap, uint32_t offset, const MemDesc& mem, size_t len,
                             DataCallback on_sent) {
  auto* c = static_cast<RdmaCapsule*>(cap);
  if (!alive()) return Generic(spec::kScTransientTransportError, false);
  const spec::SglDescriptor& sgl = c->sqe().sgl1;
  const KeyedSgl k = DecodeKeyed(sgl);
  if (!IsKeyed(sgl) || len == 0 || len > mem.length() ||
      static_cast<uint64_t>(offset) + len > k.length) {
    return Generic(spec::kScDataSglLengthInvalid);
  }
  DataOp* d = FreeDataOp(c);
  if (d == nullptr) return Generic(spec::kScInternalError);
  Status s;
  RegisteredBuffer* buf = TransferBuffer(c, k.length, &s);
  if (buf == nullptr) return Generic(spec::kScInternalError, false);
  // Copied now: the caller's memory may change as soon as this returns.
  mem.CopyOut(0, buf->data() + offset, len);
  d->mem = MemDesc();
  QueueDataOp(c, d, Op::kWrite, buf, k, offset, static_cast<uint32_t>(len), on_sent);
  return offset + len == k.length ? spec::kStatusSuccess : kSendMore;
}

void RdmaQpair::FinishDataOp(RdmaCapsule* c, DataOp* d, const Status& s) {
  if (!d->active) return;
  d->active = false;
  c->ops_active--;
  DataCallback cb = d->cb;
  d->cb = nullptr;
  if (d->op.kind == Op::kRead && s.ok() && cb) {
    d->mem.CopyIn(0, c->xfer->data() + d->offset, d->len);
  }
  d->mem = MemDesc();
  // Given back before the callback, which may start the command's next transfer.
  if (c->ops_active == 0) ReleaseTransferBuffer(c);
  if (cb) cb(s.ok() ? d->len : 0, s);
}

RegisteredBuffer* RdmaQpair::TransferBuffer(RdmaCapsule* c, size_t need, Status* s) {
  if (c->xfer != nullptr && c->xfer->size() >= need) return c->xfer;
  if (c->ops_active > 0) {
    *s = Status::InvalidArgument("transfer larger than the one in progress");
    return nullptr;
  }
  ReleaseTransferBuffer(c);
  c->xfer = res_->dev->staging->Take(need, s);
  return c->xfer;
}

void RdmaQpair::ReleaseTransferBuffer(RdmaCapsule* c) {
  if (c->xfer == nullptr) return;
  // dev outlives every queue pair; res_ may already be gone (teardown).
  staging_->Give(c->xfer);
  c->xfer = nullptr;
}

}  // namespace nvmf::rdma

namespace nvmf::rdma {

std::string CmPeerName(rdma_cm_id* id) {
  sockaddr* sa = rdma_get_peer_addr(id);
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (sa != nullptr && sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
  } else if (sa != nullptr && sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    port = ntohs(in6->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

}  // namespace nvmf::rdma
