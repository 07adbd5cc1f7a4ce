#include <algorithm>
#include <cstring>
#include <string>

#include "host/util_internal.h"
#include "nvmf/host_sync.h"

namespace nvmf::host {

SyncController::SyncController()
    : own_loop_(std::make_unique<EventLoop>()),
      loop_(own_loop_.get()),
      ctrl_(std::make_unique<Controller>(loop_)) {}

SyncController::SyncController(EventLoop* loop)
    : loop_(loop), ctrl_(std::make_unique<Controller>(loop_)) {}

SyncController::~SyncController() {
  Close();
  ctrl_.reset();
  loop_->RunOnce();  // lets the transport finish its deferred clean-up
}

std::chrono::milliseconds SyncController::Backstop() const {
  const ConnectOptions& o = ctrl_->options();
  return std::max(o.admin_timeout, o.io_timeout) + std::chrono::milliseconds(10000);
}

Status SyncController::Wait(const bool* done, std::chrono::milliseconds limit) {
  if (loop_->RunUntil([done] { return *done; }, limit)) return Status::OK();
  // The controller's own timeouts should have fired long before: give up on the
  // association, which completes (and so unhooks) every pending callback.
  ctrl_->Close();
  return Status::TimedOut("no answer within " + std::to_string(limit.count()) + " ms");
}

Status SyncController::Connect(const ConnectOptions& opts) {
  bool done = false;
  Status result;
  ctrl_->Connect(opts, [&done, &result](const Status& s) {
    result = s;
    done = true;
  });
  // TCP connections, CAP.TO for readiness, and a handful of admin commands.
  auto limit = opts.connect_timeout * (2 + static_cast<int64_t>(opts.nr_io_queues)) +
               opts.admin_timeout * 2 + std::chrono::milliseconds(130000);
  Status w = Wait(&done, limit);
  if (!done) return w;
  return result;
}

void SyncController::Close() {
  bool done = false;
  ctrl_->Disconnect([&done](const Status&) { done = true; });
  // The controller bounds the clean close itself (shutdown_timeout); this is a backstop.
  if (!done) Wait(&done, ctrl_->options().shutdown_timeout + std::chrono::milliseconds(1000));
  loop_->RunOnce();  // lets the transport finish its deferred clean-up
}

namespace {
struct One {
  bool done = false;
  Status status;
  spec::Cqe cqe{};
};
}  // namespace

Status SyncController::RunOne(const std::function<Status(CommandCallback)>& submit) {
  One one;
  One* p = &one;
  Status s = submit([p](const Status& st, const spec::Cqe& cqe) {
    p->status = st;
    p->cqe = cqe;
    p->done = true;
  });
  if (!s.ok()) return s;
  Status w = Wait(&one.done, Backstop());
  if (!one.done) return w;
  last_cqe_ = one.cqe;
  return one.status;
}

Status SyncController::Identify(uint8_t cns, uint32_t nsid, void* buf4096) {
  return RunOne([&](CommandCallback cb) { return ctrl_->Identify(cns, nsid, buf4096, cb); });
}

Status SyncController::IdentifyController(spec::IdentifyController* out) {
  return Identify(spec::kCnsController, 0, out);
}

Status SyncController::IdentifyNamespace(uint32_t nsid, spec::IdentifyNamespace* out) {
  return Identify(spec::kCnsNamespace, nsid, out);
}

Status SyncController::ActiveNamespaces(std::vector<uint32_t>* out) {
  out->clear();
  uint32_t after = 0;
  std::vector<uint32_t> page(1024);
  for (;;) {
    Status s = Identify(spec::kCnsActiveNamespaces, after, page.data());
    if (!s.ok()) return s;
    size_t n = 0;
    while (n < page.size() && page[n] != 0) {
      // IDs must grow; a controller that repeats itself would loop forever.
      if (page[n] <= after) return Status::ProtocolError("active namespace list out of order");
      out->push_back(page[n]);
      after = page[n];
      n++;
    }
    if (n < page.size() || after >= 0xFFFFFFFEu) return Status::OK();
  }
}

Status SyncController::PropertyGet(uint32_t offset, bool eight_bytes, uint64_t* value) {
  Status s = RunOne([&](CommandCallback cb) { return ctrl_->PropertyGet(offset, eight_bytes, cb); });
  if (s.ok()) *value = eight_bytes ? PropertyValue(last_cqe_) : last_cqe_.cdw0;
  return s;
}

Status SyncController::GetLogPage(uint8_t lid, uint32_t nsid, void* buf, size_t len,
                                  uint64_t offset) {
  return RunOne(
      [&](CommandCallback cb) { return ctrl_->GetLogPage(lid, nsid, offset, buf, len, cb); });
}

Status SyncController::GetFeatures(uint8_t fid, uint32_t cdw11, uint32_t* cdw0) {
  Status s = RunOne([&](CommandCallback cb) { return ctrl_->GetFeatures(fid, cdw11, cb); });
  if (s.ok()) *cdw0 = last_cqe_.cdw0;
  return s;
}

Status SyncController::Discovery(DiscoveryLog* out) {
  bool done = false;
  Status result;
  ctrl_->GetDiscoveryLog([&](const Status& s, const DiscoveryLog& log) {
    result = s;
    if (s.ok()) *out = log;
    done = true;
  });
  // A few header reads and the body, each bounded by the admin timeout.
  Status w = Wait(&done, Backstop() * 4);
  if (!done) return w;
  return result;
}

Status SyncController::Flush(uint32_t nsid) {
  uint16_t qid = ctrl_->io_queue_count() > 0 ? 1 : 0;
  if (qid == 0) return Status::InvalidArgument("the association has no I/O queue");
  return RunOne([&](CommandCallback cb) { return ctrl_->Flush(qid, nsid, cb); });
}

namespace {

// A block transfer split into commands, kept a window deep across the I/O queues.
struct BlockJob {
  Controller* ctrl;
  bool write;
  uint32_t nsid;
  uint64_t slba;
  uint64_t nlb;
  uint32_t bs;
  uint8_t* buf;
  uint64_t per_cmd;        // blocks per command
  uint64_t next = 0;       // next block to submit
  uint32_t outstanding = 0;
  uint32_t queue_rr = 0;
  Status error;
  bool done = false;

  Status SubmitNext() {
    const uint64_t n = std::min(per_cmd, nlb - next);
    const uint16_t qid = static_cast<uint16_t>(1 + queue_rr++ % ctrl->io_queue_count());
    const size_t len = static_cast<size_t>(n * bs);
    MemDesc mem = MemDesc::Buffer(buf + next * bs, len);
    BlockJob* self = this;
    CommandCallback cb = [self](const Status& s, const spec::Cqe&) { self->OnDone(s); };
    Status s = write ? ctrl->Write(qid, nsid, slba + next, static_cast<uint32_t>(n), mem, len, cb)
                     : ctrl->Read(qid, nsid, slba + next, static_cast<uint32_t>(n), mem, len, cb);
    if (!s.ok()) return s;
    next += n;
    outstanding++;
    return Status::OK();
  }

  uint64_t completed = 0;

  void OnDone(const Status& s) {
    outstanding--;
    completed++;
    if (!s.ok() && error.ok()) error = s;
    if (error.ok() && next < nlb) {
      Status st = SubmitNext();
      if (!st.ok()) error = st;
    }
    if (outstanding == 0 && (next >= nlb || !error.ok())) done = true;
  }
};

}  // namespace

Status SyncController::BlockIo(bool write, uint32_t nsid, uint64_t slba, uint64_t nlb,
                               uint32_t block_size, uint8_t* buf) {
  if (nlb == 0) return Status::OK();
  if (block_size == 0) return Status::InvalidArgument("block size 0");
  if (ctrl_->io_queue_count() == 0) return Status::InvalidArgument("the association has no I/O queue");
  uint64_t per_cmd = std::min<uint64_t>(ctrl_->max_transfer_size() / block_size, 65536);
  if (per_cmd == 0) return Status::InvalidArgument("block size larger than the largest transfer");
  BlockJob job{ctrl_.get(), write, nsid, slba, nlb, block_size, buf, per_cmd};
  uint32_t window = 0;
  for (uint32_t q = 1; q <= ctrl_->io_queue_count(); q++) window += ctrl_->queue_depth(static_cast<uint16_t>(q));
  window = std::max<uint32_t>(1, std::min<uint32_t>(window, 64));
  while (job.outstanding < window && job.next < nlb) {
    Status s = job.SubmitNext();
    if (!s.ok()) {
      job.error = s;
      break;
    }
  }
  if (job.outstanding == 0) return job.error;
  // The controller times every command out itself; the backstop only catches no progress.
  while (!job.done) {
    const uint64_t before = job.completed;
    BlockJob* j = &job;
    if (!loop_->RunUntil([j, before] { return j->done || j->completed != before; }, Backstop())) {
      ctrl_->Close();
      return Status::TimedOut("block transfer made no progress within " +
                              std::to_string(Backstop().count()) + " ms");
    }
  }
  return job.error;
}

Status SyncController::Read(uint32_t nsid, uint64_t slba, uint64_t nlb, uint32_t block_size,
                            void* buf) {
  return BlockIo(false, nsid, slba, nlb, block_size, static_cast<uint8_t*>(buf));
}

Status SyncController::Write(uint32_t nsid, uint64_t slba, uint64_t nlb, uint32_t block_size,
                             const void* buf) {
  return BlockIo(true, nsid, slba, nlb, block_size,
                 const_cast<uint8_t*>(static_cast<const uint8_t*>(buf)));
}

Status SyncController::Command(uint16_t qid, const spec::Sqe& sqe, void* buf, size_t len, bool to_controller) {
  if (len == 0) return RunOne([&](CommandCallback cb) { return ctrl_->Submit(qid, sqe, cb); });
  return RunOne([&](CommandCallback cb) {
    return ctrl_->Submit(qid, sqe, MemDesc::Buffer(static_cast<uint8_t*>(buf), len), len, to_controller, cb);
  });
}

}  // namespace nvmf::host
