// TcpQpair life cycle, pools, and the transport operations of both roles.
#include "tcp/tcp_qpair.h"

#include "tcp/tcp_transport.h"
#include "tcp/tls.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace nvmf::tcp {

namespace {
constexpr uint32_t kRxBufferMin = 4 * 1024;  // headers; a busy queue grows it
constexpr uint32_t kRxBufferMax = 64 * 1024;
constexpr size_t kTransferChunk = 32;
}  // namespace

void TcpCapsule::Reset(TcpQpair* qp, bool command) {
  ResetBase(qp, command);
  refs = 1;
  in_table = false;
  data_pending = aborted = icd = digest_error = false;
  requested = r2t_outstanding = sent = received = 0;
  icd_len = 0;
  icd_digest_error = cid_conflict = false;
  r2ts_active = transfers = 0;
  r2t_wait_head = r2t_wait_tail = nullptr;
  c2h_queued = 0;
}

Status TcpQpair::Create(EventLoop* loop, Role role, const QpairParams& params,
                        ErrorCallback on_error, ReceiveCallback on_receive, Qpair** out) {
  auto* conn = static_cast<TcpConnection*>(params.connection.get());
  TcpQpairParams tp = conn->params;
  if (tp.fd < 0) return Status::InvalidArgument("TCP queue pair needs a connected socket");
  if (role == Role::kHost) tp.max_icd = params.max_icd;
  auto* qp = new TcpQpair(loop, role, params, tp, on_error, on_receive);
  qp->values_ = conn->has_values ? conn->values : TcpControllerValues(tp.max_icd, 0);
  Status s = loop->Add(qp->fd_, EPOLLIN, [qp](uint32_t ev) { qp->OnEvents(ev); });
  if (!s.ok()) {
    qp->fd_ = -1;  // the caller keeps the socket on failure
    qp->freed_ = true;
    qp->Unref();
    return s;
  }
  conn->params.fd = -1;  // the queue pair owns the socket now
  conn->params.tls.reset();
  if (qp->tls_ != nullptr && qp->tls_->HasBuffered()) qp->ResumeTlsRead();
  *out = qp;
  return Status::OK();
}

TcpQpair::TcpQpair(EventLoop* loop, Role role, const QpairParams& params,
                   const TcpQpairParams& tp, ErrorCallback on_error, ReceiveCallback on_receive)
    : Qpair(TransportType::kTcp, role, params.admin),
      loop_(loop),
      fd_(tp.fd),
      tcp_(tp),
      qsize_(params.qsize),
      on_error_(on_error),
      on_receive_(on_receive) {
  txcfg_ = {tcp_.header_digest, tcp_.data_digest, tcp_.tx_pda};
  rxcfg_ = {role == Role::kController, tcp_.header_digest, tcp_.data_digest, tcp_.rx_pda, false};
  if (tcp_.maxr2t == 0) tcp_.maxr2t = 1;
  tls_ = std::move(tcp_.tls);
  if (tls_ != nullptr) tls_stage_.reset(new uint8_t[kTlsRecord]);

  // Commands in flight plus the responses that travel with them, and a little slack for
  // a response the owner has not freed yet.
  size_t ncaps = static_cast<size_t>(qsize_) * 2 + 4;
  capsules_ = std::vector<TcpCapsule>(ncaps);
  for (size_t i = ncaps; i-- > 0;) {
    capsules_[i].next_free = free_capsules_;
    free_capsules_ = &capsules_[i];
  }
  // In-capsule data buffers are made when a slot first carries data (OnCapsuleCmd), the
  // PDU pool grows by chunks and the receive buffer doubles when reads fill it: an idle
  // or admin-only connection stays small.
  cids_.Init(ncaps);
  if (controller()) icd_free_.reserve(ncaps);
  // A host has few queues, each busy: it starts at full size.
  rx_cap_ = controller() ? kRxBufferMin : kRxBufferMax;
  rx_buf_.reset(new uint8_t[rx_cap_]);
  iov_.resize(IOV_MAX > 256 ? 256 : IOV_MAX);
  GrowPduPool();
}

bool TcpQpair::GrowRxBuffer() {
  if (rx_cap_ >= kRxBufferMax) return false;
  std::unique_ptr<uint8_t[]> bigger(new (std::nothrow) uint8_t[rx_cap_ * 2]);
  if (!bigger) return false;  // stay as we are: correct, only slower
  rx_buf_ = std::move(bigger);
  rx_cap_ *= 2;
  return true;
}

// The session goes with the socket: it must never write to a descriptor number that may
// be reused.
void TcpQpair::CloseSocket() {
  if (fd_ < 0) return;
  loop_->Remove(fd_);
  close(fd_);
  fd_ = -1;
  tls_.reset();
}

TcpQpair::~TcpQpair() {
  loop_->CancelFlush(this);
  if (fd_ >= 0) {
    loop_->Remove(fd_);
    close(fd_);
  }
}

void TcpQpair::Unref() {
  if (--refs_ == 0) delete this;
}

void TcpQpair::Free() {
  Hold hold(this);
  if (!dead_ && fd_ >= 0 && tx_head_ != nullptr) {
    WriteSome();  // what is queued (a last response) leaves if the socket takes it now
  }
  freed_ = true;
  if (!dead_) {
    dead_ = true;
    DropUnsent(Status::Aborted("queue pair freed"));
    FailAllTransfers(Status::Aborted("queue pair freed"));
    CloseSocket();
    // A PDU half written stayed at the head while the socket was open; with the socket
    // gone it is dropped too, so that it holds no capsule and its callback runs.
    DropUnsent(Status::Aborted("queue pair freed"));
  }
  refs_--;  // the owner's reference; Hold keeps us alive until this returns
}

// ---------------------------------------------------------------- capsules

TcpCapsule* TcpQpair::Take(bool command) {
  TcpCapsule* c = free_capsules_;
  if (c == nullptr) return nullptr;
  free_capsules_ = c->next_free;
  c->Reset(this, command);
  refs_++;
  return c;
}

Capsule* TcpQpair::AllocateCapsule(bool command) {
  if (!alive()) return nullptr;
  return Take(command);
}

void TcpQpair::FreeCapsule(Capsule* cap) {
  auto* c = static_cast<TcpCapsule*>(cap);
  if (c->transfers > 0) CancelTransfers(c, Status::Aborted("command capsule freed"));
  UnrefCapsule(c);
}

void TcpQpair::UnrefCapsule(TcpCapsule* c) {
  if (--c->refs > 0) return;
  if (c->in_table) {
    cids_.Remove(c->is_command() ? c->sqe().cid : c->cqe().cid);
    c->in_table = false;
  }
  if (c->icd_buf) icd_free_.push_back(std::move(c->icd_buf));  // reserved: never allocates
  c->next_free = free_capsules_;
  free_capsules_ = c;
  Unref();
}

void TcpQpair::DeliverCapsule(TcpCapsule* c) {
  if (freed_) {
    UnrefCapsule(c);
    return;
  }
  on_receive_(c);
}

// ---------------------------------------------------------------- host

Status TcpQpair::Transmit(Capsule* cap) {
  auto* c = static_cast<TcpCapsule*>(cap);
  if (!alive()) return Status::IoError("queue pair is not connected");
  if (c->is_command() == controller()) {
    return Status::InvalidArgument(controller() ? "a controller transmits responses"
                                                : "a host transmits commands");
  }
  TxPdu* p = TakePdu();
  if (!c->is_command()) {
    // Controller: the command this answers is done as far as the transport goes; its CID
    // may come back in a new command as soon as the host sees this response.
    if (TcpCapsule* cmd = cids_.Find(c->cqe().cid); cmd != nullptr) {
      cids_.Remove(c->cqe().cid);
      cmd->in_table = false;
    }
    p->hdr_len = BuildCapsuleResp(p->hdr, c->cqe(), txcfg_);
    Queue(p);
    return Status::OK();
  }

  spec::Sqe& sqe = c->mutable_sqe();
  sqe.fuse_psdt = static_cast<uint8_t>((sqe.fuse_psdt & 0x3F) | spec::kPsdtSglMptrContig << 6);
  const auto len = static_cast<uint32_t>(c->data_len());
  c->icd = c->data_send() && len > 0 && len <= tcp_.max_icd;
  sqe.sgl1 = {};
  sqe.sgl1.length = len;
  sqe.sgl1.type = c->icd ? spec::kSglInCapsule : spec::kSglTransport;
  if (len > MaxTransferSize()) {
    ReleasePdu(p, Status::OK());
    return Status::InvalidArgument("data longer than the queue pair's largest transfer");
  }
  if (!cids_.Insert(sqe.cid, c)) {
    ReleasePdu(p, Status::OK());
    return Status::InvalidArgument("a command with this CID is already in flight");
  }
  c->in_table = true;
  c->refs++;  // the table's reference, dropped when the response arrives
  c->data_pending = len > 0;
  c->requested = c->r2t_outstanding = c->sent = c->received = 0;
  c->aborted = c->digest_error = false;

  p->hdr_len = BuildCapsuleCmd(p->hdr, sqe, c->icd ? len : 0, txcfg_);
  if (c->icd) {
    p->data = c->data();
    p->data_off = 0;
    p->data_len = len;
    p->capsule = c;
    c->refs++;
    p->done = TxPdu::Done::kHostData;
    SetDataDigest(p);
  }
  Queue(p);
  return Status::OK();
}

void TcpQpair::FinishHostData(TcpCapsule* c, const Status& s) {
  if (!c->data_pending) return;
  c->data_pending = false;
  size_t moved = c->data_send() ? c->sent : c->received;
  DataCallback cb = c->data_done();
  if (cb) cb(moved, s);
}

void TcpQpair::AbortData(Capsule* cap) {
  auto* c = static_cast<TcpCapsule*>(cap);
  if (controller()) {
    if (c->transfers > 0) CancelTransfers(c, Status::Aborted("data transfer aborted"));
    return;
  }
  if (!c->data_pending) return;
  c->aborted = true;
  WithdrawHostData(c);
  FinishHostData(c, Status::Aborted("data transfer aborted"));
}

// Takes a host command's unsent H2CData out of the send queue; one already half written
// is finished from a private copy. Afterwards the caller's buffer is no longer read.
void TcpQpair::WithdrawHostData(TcpCapsule* c) {
  TxPdu** link = &tx_head_;
  TxPdu* prev = nullptr;
  while (*link != nullptr) {
    TxPdu* p = *link;
    if (p->capsule == c && p->done == TxPdu::Done::kHostData && p->data_len > 0) {
      if (p->written == 0) {
        *link = p->next;
        if (tx_tail_ == p) tx_tail_ = prev;
        p->done = TxPdu::Done::kNone;  // its callback is the caller's to run, not ours
        ReleasePdu(p, Status::OK());
        continue;
      }
      p->rescued.reset(new uint8_t[p->data_len]);
      p->data.CopyOut(p->data_off, p->rescued.get(), p->data_len);
      p->data = MemDesc::Buffer(p->rescued.get(), p->data_len);
      p->data_off = 0;
      p->done = TxPdu::Done::kNone;
    }
    prev = p;
    link = &p->next;
  }
}

std::string TcpQpair::PeerName() const { return SocketPeerName(fd_); }

bool TcpQpair::SecureChannelNqns(std::string* hostnqn, std::string* subnqn) const {
  PskIdentityParts parts;
  if (tcp_.tls_identity.empty() || !ParsePskIdentity(tcp_.tls_identity, &parts)) return false;
  *hostnqn = parts.hostnqn;
  *subnqn = parts.subnqn;
  return true;
}

ControllerTransportValues TcpQpair::ControllerValues() const {
  return values_;
}

uint64_t TcpQpair::MaxTransferSize() const {
  // 4 MiB, the largest transfer Linux's host issues and its nvmet-tcp target accepts
  // (that target reports MDTS 0, no limit, yet refuses larger commands).
  return 4u << 20;
}

// ---------------------------------------------------------------- controller

uint8_t TcpQpair::ValidateCommand(const Capsule* cap) const {
  const auto* c = static_cast<const TcpCapsule*>(cap);
  const spec::Sqe& sqe = c->sqe();
  if (c->cid_conflict) return spec::kScCommandIdConflict;
  if (spec::Psdt(sqe) != spec::kPsdtSglMptrContig) return spec::kScInvalidField;
  const spec::SglDescriptor& sgl = sqe.sgl1;
  if (c->icd_len > 0) {
    if (sgl.type != spec::kSglInCapsule) return spec::kScSglDescriptorTypeInvalid;
    if (sgl.address != 0) return spec::kScSglOffsetInvalid;
    if (sgl.length != c->icd_len) return spec::kScDataSglLengthInvalid;
    if (c->icd_digest_error) return spec::kScTransientTransportError;
    return spec::kScSuccess;
  }
  if (sgl.type == spec::kSglInCapsule) {
    // In-capsule data named but none came (a zero-length in-capsule SGL is harmless).
    return sgl.length == 0 ? spec::kScSuccess : spec::kScDataSglLengthInvalid;
  }
  if (sgl.type != spec::kSglTransport) return spec::kScSglDescriptorTypeInvalid;
  if (sgl.address != 0) return spec::kScInvalidField;
  return spec::kScSuccess;
}

size_t TcpQpair::DataLength(const Capsule* cap) const { return cap->sqe().sgl1.length; }

Transfer* TcpQpair::TakeTransfer() {
  if (free_transfers_ == nullptr) {
    if (transfers_.size() + kTransferChunk > 0xFFFF) return nullptr;  // TTAG is 16 bits
    auto chunk = std::make_unique<Transfer[]>(kTransferChunk);
    for (size_t i = 0; i < kTransferChunk; i++) {
      chunk[i].ttag = static_cast<uint16_t>(transfers_.size());
      transfers_.push_back(&chunk[i]);
      ReleaseTransfer(&chunk[i]);
    }
    transfer_chunks_.push_back(std::move(chunk));
  }
  Transfer* t = free_transfers_;
  free_transfers_ = t->next;
  t->next = nullptr;
  return t;
}

void TcpQpair::ReleaseTransfer(Transfer* t) {
  if (t->active) t->capsule->transfers--;
  t->active = false;
  t->capsule = nullptr;
  t->on_done = nullptr;
  t->next = free_transfers_;
  free_transfers_ = t;
}

void TcpQpair::ReceiveData(Capsule* cap, uint32_t offset, const MemDesc& mem, size_t len,
                           DataCallback on_done) {
  auto* c = static_cast<TcpCapsule*>(cap);
  const uint64_t data_len = c->sqe().sgl1.length;
  if (len == 0 || offset + static_cast<uint64_t>(len) > data_len || len > mem.length()) {
    on_done(0, Status::InvalidArgument("receive range outside the command's data"));
    return;
  }
  if (spec::OpcodeDirection(c->sqe().opc) == spec::kXferControllerToHost) {
    on_done(0, Status::InvalidArgument("the command does not send data to the controller"));
    return;
  }
  if (c->icd_len > 0) {
    if (c->icd_digest_error) {
      on_done(0, Status::DataDigestError("in-capsule data digest mismatch"));
      return;
    }
    mem.CopyIn(0, c->icd_buf.get() + offset, len);
    on_done(len, Status::OK());
    return;
  }
  if (!alive()) {
    on_done(0, Status::IoError("queue pair is not connected"));
    return;
  }
  Transfer* t = TakeTransfer();
  if (t == nullptr) {
    on_done(0, Status::ResourceExhausted("too many data transfers in flight"));
    return;
  }
  t->capsule = c;
  t->mem = mem;
  t->offset = offset;
  t->length = static_cast<uint32_t>(len);
  t->received = 0;
  t->on_done = on_done;
  t->active = true;
  t->digest_error = false;
  c->refs++;  // the transfer's reference
  c->transfers++;
  if (c->r2ts_active < tcp_.maxr2t) {
    StartR2T(t);
  } else if (c->r2t_wait_tail != nullptr) {
    c->r2t_wait_tail->next = t;
    c->r2t_wait_tail = t;
  } else {
    c->r2t_wait_head = c->r2t_wait_tail = t;
  }
}

void TcpQpair::StartR2T(Transfer* t) {
  t->capsule->r2ts_active++;
  TxPdu* p = TakePdu();
  p->hdr_len = BuildR2T(p->hdr, t->capsule->sqe().cid, t->ttag, t->offset, t->length, txcfg_);
  Queue(p);
}

void TcpQpair::CancelTransfers(TcpCapsule* c, const Status& s) {
  for (Transfer* t : transfers_) {
    if (!t->active || t->capsule != c) continue;
    if (rx_transfer_ == t) {  // its payload is arriving now: let it land nowhere
      rx_transfer_ = nullptr;
      rx_discard_ = true;
    }
    DataCallback cb = t->on_done;
    size_t got = t->received;
    ReleaseTransfer(t);
    cb(got, s);
    UnrefCapsule(c);
  }
  c->r2t_wait_head = c->r2t_wait_tail = nullptr;
  c->r2ts_active = 0;
}

void TcpQpair::FailAllTransfers(const Status& s) {
  Hold hold(this);
  if (controller()) {
    // A command whose in-capsule data was still arriving will never be delivered: give
    // its capsule back, or it (and the queue pair it holds a reference on) would leak.
    if (rx_capsule_ != nullptr &&
        reinterpret_cast<const wire::CommonHeader*>(rx_hdr_)->pdu_type == wire::kCapsuleCmd) {
      TcpCapsule* partial = rx_capsule_;
      rx_capsule_ = nullptr;
      UnrefCapsule(partial);
    }
    for (Transfer* t : transfers_) {
      if (!t->active) continue;
      TcpCapsule* c = t->capsule;
      DataCallback cb = t->on_done;
      size_t got = t->received;
      ReleaseTransfer(t);
      cb(got, s);
      UnrefCapsule(c);
    }
    return;
  }
  // Host: every command in flight loses its data transfer and its table reference.
  std::vector<TcpCapsule*> inflight;
  inflight.reserve(cids_.size());
  cids_.ForEach([&](TcpCapsule* c) { inflight.push_back(c); });
  for (TcpCapsule* c : inflight) {
    cids_.Remove(c->sqe().cid);
    c->in_table = false;
    FinishHostData(c, s);
    UnrefCapsule(c);
  }
}

uint16_t TcpQpair::SendData(Capsule* cap, uint32_t offset, const MemDesc& mem, size_t len,
                            DataCallback on_sent) {
  auto* c = static_cast<TcpCapsule*>(cap);
  const uint64_t data_len = c->sqe().sgl1.length;
  if (!alive()) return spec::MakeStatus(spec::kSctGeneric, spec::kScTransientTransportError);
  if (len == 0 || offset + static_cast<uint64_t>(len) > data_len || len > mem.length() ||
      c->sqe().sgl1.type != spec::kSglTransport) {
    return spec::MakeStatus(spec::kSctGeneric, spec::kScDataSglLengthInvalid, true);
  }
  const bool last = offset + len == data_len;
  const bool success = last && tcp_.c2h_success;
  // One PDU per 128 KiB keeps digests and the send queue fine-grained.
  constexpr uint32_t kMaxC2H = 128 * 1024;
  uint32_t done = 0;
  while (done < len) {
    uint32_t n = static_cast<uint32_t>(len - done) > kMaxC2H ? kMaxC2H
                                                             : static_cast<uint32_t>(len - done);
    bool final_piece = done + n == len;
    TxPdu* p = TakePdu();
    p->hdr_len = BuildC2HData(p->hdr, c->sqe().cid, offset + done, n, last && final_piece,
                              success && final_piece, txcfg_);
    p->data = mem;
    p->data_off = done;
    p->data_len = n;
    p->capsule = c;
    c->refs++;
    SetDataDigest(p);
    if (final_piece) {
      p->done = TxPdu::Done::kControllerData;
      p->on_sent = on_sent;
    }
    Queue(p);
    done += n;
  }
  c->c2h_queued += static_cast<uint32_t>(len);
  if (success) {
    if (c->in_table) {  // the command is complete: its CID may be reused
      cids_.Remove(c->sqe().cid);
      c->in_table = false;
    }
    return kSendSuccessSent;
  }
  return last ? spec::kStatusSuccess : kSendMore;
}

// ---------------------------------------------------------------- failure

void TcpQpair::Fail(const Status& s, uint16_t fes, uint32_t fei) {
  if (dead_) return;
  Hold hold(this);
  dead_ = true;
  DropUnsent(s.ok() ? Status::IoError("connection closed") : s);
  if (fes != 0) {
    TxPdu* p = TakePdu();
    p->hdr_len = BuildTermReq(p->hdr, !controller(), fes, fei, rx_hdr_,
                              rx_hdr_have_ < rx_layout_.header_len ? rx_hdr_have_
                                                                   : rx_layout_.header_len);
    p->done = TxPdu::Done::kClose;
    Queue(p);
    WriteSome();  // best effort: the socket is closed right after
  }
  if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
  CloseSocket();
  // Transfers still in flight did not complete, even when the peer closed cleanly.
  const Status xfer = s.ok() ? Status::IoError("connection closed with the transfer in flight") : s;
  DropUnsent(xfer);
  FailAllTransfers(xfer);
  if (!freed_) on_error_(s);
}

}  // namespace nvmf::tcp
