#include "target/uring.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

namespace nvmf::target {
namespace {

constexpr unsigned kSqEntries = 256;
constexpr uint32_t kSubmitBatch = 32;   // queued SQEs that go out at once, mid-turn
constexpr uint32_t kMaxReqsPerOp = 16;  // SQEs one operation has out at a time
constexpr size_t kPoolChunk = 64;

std::atomic<bool> g_disabled{false};

struct ThreadRings {
  std::vector<std::unique_ptr<Uring>> rings;
  bool unavailable = false;  // io_uring setup failed on this thread: use the fallback
};
thread_local ThreadRings t_rings;

}  // namespace

struct Uring::Op {
  Op* next_free = nullptr;
  FileOp kind = FileOp::kRead;
  FileHandle* file = nullptr;
  IoCallback cb;
  MemDesc mem;
  uint64_t offset = 0;  // file offset of the operation's first byte
  uint64_t len = 0;
  uint64_t issued = 0;  // bytes handed to Reqs so far
  uint32_t reqs = 0;    // Reqs out
  bool sent = false;    // the one Req of a flush or fallocate went out
  int zero_method = kZeroPunchHole;
  int err = 0;  // the first error
  uint64_t err_offset = 0;

  bool Writes() const {
    return kind == FileOp::kWrite || kind == FileOp::kWriteDurable ||
           (kind == FileOp::kZero && zero_method == kZeroWrite);
  }
  bool Transfers() const { return kind == FileOp::kRead || Writes(); }
};

struct Uring::Req {
  Req* next = nullptr;  // free list or backlog
  Op* op = nullptr;
  uint64_t start = 0;  // first byte, from the operation's start
  uint64_t len = 0;
  uint64_t done = 0;  // bytes transferred
  int iovcnt = 0;
  struct iovec iov[kMaxIov];
};

void Uring::DisableForTesting(bool disabled) { g_disabled.store(disabled); }

Uring* Uring::For(EventLoop* loop) {
  if (g_disabled.load(std::memory_order_relaxed)) return nullptr;
  ThreadRings& t = t_rings;
  if (t.unavailable) return nullptr;
  for (auto& r : t.rings) {
    if (r->loop_ != loop) continue;
    // Busy: the loop is alive (it owes callbacks). Idle: the loop may be a new one at a
    // dead one's address.
    if (r->ops_ > 0 || r->Watched()) return r.get();
    return r->Bind(loop) ? r.get() : nullptr;
  }
  for (auto& r : t.rings) {
    if (r->ops_ == 0) return r->Bind(loop) ? r.get() : nullptr;
  }
  std::unique_ptr<Uring> r(new Uring);
  if (!r->Init()) {
    t.unavailable = true;
    return nullptr;
  }
  Uring* u = r.get();
  t.rings.push_back(std::move(r));
  return u->Bind(loop) ? u : nullptr;
}

Uring::Uring() = default;

Uring::~Uring() {
  // The bound loop may be gone: it is not called. Closing the eventfd takes it out of the
  // loop's epoll set if the loop is still there. Operations still out are abandoned.
  if (ring_ok_) io_uring_queue_exit(&ring_);
  if (efd_ >= 0) close(efd_);
}

bool Uring::Init() {
  struct io_uring_params p {};
  p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CLAMP;
  int e = io_uring_queue_init_params(kSqEntries, &ring_, &p);
  if (e == -EINVAL) {  // a kernel older than the flags
    p = {};
    e = io_uring_queue_init_params(kSqEntries, &ring_, &p);
  }
  if (e < 0) return false;
  ring_ok_ = true;
  max_in_kernel_ = p.cq_entries;
  struct io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  bool ops = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_READV) &&
             io_uring_opcode_supported(probe, IORING_OP_WRITEV) &&
             io_uring_opcode_supported(probe, IORING_OP_FSYNC) &&
             io_uring_opcode_supported(probe, IORING_OP_FALLOCATE);
  if (probe != nullptr) io_uring_free_probe(probe);
  return ops;
}

// Edge-triggered: each completion the kernel posts signals the eventfd, which makes a new
// edge, so the counter never needs reading (a system call per wake-up saved).
constexpr uint32_t kEfdEvents = EPOLLIN | EPOLLET;

bool Uring::Watched() { return loop_->Modify(efd_, kEfdEvents).ok(); }

bool Uring::Bind(EventLoop* loop) {
  if (loop_ != nullptr) {
    // Leave the old loop without calling it: its eventfd goes, a fresh one comes.
    io_uring_unregister_eventfd(&ring_);
    close(efd_);
    efd_ = -1;
    loop_ = nullptr;
  }
  if (efd_ < 0) {
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) return false;
    if (io_uring_register_eventfd(&ring_, efd_) != 0) {
      close(efd_);
      efd_ = -1;
      return false;
    }
  }
  if (!loop->Add(efd_, kEfdEvents, [this](uint32_t) { Reap(); }).ok()) return false;
  loop_ = loop;
  return true;
}

void Uring::Start(FileOp kind, FileHandle* f, uint64_t offset, const MemDesc* mem, uint64_t len,
                  IoCallback cb) {
  Op* op = NewOp();
  op->kind = kind;
  op->file = f;
  op->cb = cb;
  op->mem = mem != nullptr ? *mem : MemDesc();
  op->offset = offset;
  op->len = len;
  op->issued = 0;
  op->reqs = 0;
  op->sent = false;
  op->zero_method = f->zero_method.load(std::memory_order_relaxed);
  op->err = 0;
  ops_++;
  Pump(op);
}

// Sends what the operation has left to send, within its limit; finishes it when nothing
// is left out.
void Uring::Pump(Op* op) {
  if (op->err == 0) {
    if (!op->Transfers()) {
      if (!op->sent) {  // one Req: fsync, or fallocate of the whole range
        op->sent = true;
        Req* r = NewReq();
        r->op = op;
        r->start = r->done = 0;
        r->len = op->len;
        op->reqs++;
        Queue(r);
      }
    } else {
      while (op->issued < op->len && op->reqs < kMaxReqsPerOp) {
        Req* r = NewReq();
        r->op = op;
        r->start = op->issued;
        r->done = 0;
        r->len = op->len - op->issued;
        Fill(r);
        op->issued += r->len;
        op->reqs++;
        Queue(r);
      }
    }
  }
  if (op->reqs == 0) Finish(op);
}

// Builds r's iovecs for the bytes it has left; trims r->len to what they cover.
void Uring::Fill(Req* r) {
  Op* op = r->op;
  size_t left = r->len - r->done;
  size_t n = FillIov(op->kind == FileOp::kZero ? nullptr : &op->mem, r->start + r->done, left,
                     r->iov, &r->iovcnt);
  r->len = r->done + n;  // a resubmitted rest always fits: it is part of what fitted
}

void Uring::Finish(Op* op) {
  IoCallback cb = op->cb;
  Status s = op->err == 0 ? Status::OK() : FileError(*op->file, op->kind, op->err_offset, op->err);
  op->next_free = free_ops_;
  free_ops_ = op;
  ops_--;
  cb(s);
}

void Uring::Queue(Req* r) {
  r->next = nullptr;
  if (backlog_tail_ != nullptr) {
    backlog_tail_->next = r;
  } else {
    backlog_head_ = r;
  }
  backlog_tail_ = r;
  Drain();
  if (queued_ >= kSubmitBatch) Submit();
  if (queued_ > 0 || backlog_head_ != nullptr) loop_->RequestFlush(this);
}

// Moves backlogged Reqs into SQEs while the rings have room.
void Uring::Drain() {
  while (backlog_head_ != nullptr && in_kernel_ < max_in_kernel_) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {  // the SQ is full: send it and retry
      Submit();
      sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) return;
    }
    Req* r = backlog_head_;
    backlog_head_ = r->next;
    if (backlog_head_ == nullptr) backlog_tail_ = nullptr;
    Prep(sqe, r);
    in_kernel_++;
    queued_++;
  }
}

void Uring::Submit() {
  if (queued_ == 0) return;
  int n = io_uring_submit(&ring_);
  // On an error (EAGAIN, EBUSY, EINTR) the SQEs stay queued; Flush asks for another round.
  if (n >= 0) queued_ = io_uring_sq_ready(&ring_);
}

void Uring::Flush() {
  Drain();
  Submit();
  // Buffered I/O that hits the page cache has completed inside the submit: take it now,
  // so that its callbacks (a response to send) run in this turn's later flush rounds
  // rather than a turn later, after a wake-up.
  if (in_kernel_ > 0 && io_uring_cq_ready(&ring_) > 0) Reap();
  if (queued_ > 0 || (backlog_head_ != nullptr && in_kernel_ < max_in_kernel_)) {
    loop_->RequestFlush(this);
  }
}

void Uring::Prep(struct io_uring_sqe* sqe, Req* r) {
  Op* op = r->op;
  int fd = op->file->fd;
  uint64_t pos = op->offset + r->start + r->done;
  if (op->kind == FileOp::kRead) {
    io_uring_prep_readv(sqe, fd, r->iov, static_cast<unsigned>(r->iovcnt), pos);
  } else if (op->Writes()) {
    // FUA: RWF_DSYNC makes each write durable before it completes, like O_DSYNC.
    io_uring_prep_writev2(sqe, fd, r->iov, static_cast<unsigned>(r->iovcnt), pos,
                          op->kind == FileOp::kWriteDurable ? RWF_DSYNC : 0);
  } else if (op->kind == FileOp::kFlush) {
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
  } else {
    io_uring_prep_fallocate(sqe, fd, FallocateMode(op->zero_method), static_cast<off_t>(op->offset),
                            static_cast<off_t>(op->len));
  }
  io_uring_sqe_set_data(sqe, r);
}

void Uring::Reap() {
  struct Done {
    Req* r;
    int res;
  };
  Done batch[64];
  // Only what is there now: callbacks submit, and buffered I/O that hits the page cache
  // completes inside the submit, so reaping until the CQ is empty could go on forever
  // and starve the loop. Later completions have signalled the eventfd again.
  unsigned budget = io_uring_cq_ready(&ring_);
  while (budget > 0) {
    // Copy a batch out and free its CQ slots before running callbacks, which may submit.
    unsigned n = 0;
    unsigned head;
    struct io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (n == 64 || n == budget) break;
      batch[n++] = {static_cast<Req*>(io_uring_cqe_get_data(cqe)), cqe->res};
    }
    if (n == 0) break;
    budget -= n;
    io_uring_cq_advance(&ring_, n);
    in_kernel_ -= n;
    for (unsigned i = 0; i < n; i++) Complete(batch[i].r, batch[i].res);
  }
  Drain();
  if (queued_ > 0) loop_->RequestFlush(this);
}

void Uring::Complete(Req* r, int res) {
  Op* op = r->op;
  if (res == -EINTR || res == -EAGAIN) {
    Queue(r);  // again, as it was
    return;
  }
  if (op->Transfers()) {
    if (res < 0) {
      if (op->err == 0) {
        op->err = -res;
        op->err_offset = op->offset + r->start + r->done;
      }
    } else {
      r->done += static_cast<uint64_t>(res);
      if (r->done < r->len) {
        if (res > 0) {  // short: the rest again
          Fill(r);
          Queue(r);
          return;
        }
        if (op->kind == FileOp::kRead && op->file->regular) {
          ZeroFill(op->mem, r->start + r->done, r->len - r->done);  // end of file
        } else if (op->err == 0) {
          op->err = EIO;  // a device that ends early, or a write that wrote nothing
          op->err_offset = op->offset + r->start + r->done;
        }
      }
    }
  } else if (op->kind == FileOp::kZero && (res == -EOPNOTSUPP || res == -ENOSYS) &&
             op->zero_method < kZeroWrite) {
    op->file->ZeroUnsupported(op->zero_method);
    op->zero_method++;  // the next method, from the start
    op->sent = false;
    op->issued = 0;
  } else if (res < 0 && op->err == 0) {
    op->err = -res;
    op->err_offset = op->offset;
  }
  FreeReq(r);
  op->reqs--;
  Pump(op);
}

// Takes an object from a free list linked through its Link member, growing the pool by a
// chunk when the list is empty (the pool never shrinks: steady state allocates nothing).
template <class T, T* T::*Link>
static T* TakeFromPool(T*& free, std::vector<std::unique_ptr<T[]>>& chunks) {
  if (free == nullptr) {
    auto chunk = std::make_unique<T[]>(kPoolChunk);
    for (size_t i = 0; i < kPoolChunk; i++) {
      chunk[i].*Link = i + 1 < kPoolChunk ? &chunk[i + 1] : nullptr;
    }
    free = &chunk[0];
    chunks.push_back(std::move(chunk));
  }
  T* t = free;
  free = t->*Link;
  return t;
}

Uring::Op* Uring::NewOp() { return TakeFromPool<Op, &Op::next_free>(free_ops_, op_chunks_); }

Uring::Req* Uring::NewReq() { return TakeFromPool<Req, &Req::next>(free_reqs_, req_chunks_); }

void Uring::FreeReq(Req* r) {
  r->next = free_reqs_;
  free_reqs_ = r;
}

}  // namespace nvmf::target
