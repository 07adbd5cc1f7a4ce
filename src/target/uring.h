// Uring: the file backend's io_uring engine. One ring per thread and event loop.
//
// Ownership and lifetime: rings are thread_local (each loop runs on its own thread), made
// on first use from a loop and destroyed when the thread exits, which is after the last
// turn any loop runs on that thread: a ring always outlives the use of its loop. A ring
// is bound to one loop at a time: its eventfd, registered with io_uring_register_eventfd,
// is watched by that loop (EventLoop::Add, edge-triggered), so completions are reaped on
// the loop thread, and its submissions go out in the loop's end-of-turn flush (Flushable),
// or at once when kSubmitBatch are queued. The flush also reaps what completed inside the
// submit (page-cache hits), so their callbacks run in the same turn.
//
// Loops come and go on a thread (tests make one per test, often at the same address), and
// EventLoop has no destruction hook, so a ring never touches a loop it is not serving I/O
// for: when a ring with no I/O in flight is asked for by a loop, it checks that the loop
// still watches its eventfd (one epoll_ctl, the price of going from idle to busy), and if
// not, rebinds: a fresh eventfd (closing the old one drops it from the old loop's epoll
// set without calling the old loop, which may be gone) added to the new loop. A busy ring
// is never rebound; a second loop on the same thread gets its own ring. A loop must not
// be destroyed with I/O in flight (the callbacks could never run).
//
// Per-I/O state (Op, and one Req per SQE) comes from free lists grown in chunks and never
// shrunk, so steady state allocates nothing. A read or write is cut into Reqs of at most
// kMaxIov segments and kMaxChunk bytes; short transfers are resubmitted for the rest; a
// read of a regular file that meets its end gets zeroes for the rest. A wake-up reaps only
// the completions already there: buffered I/O that hits the page cache completes inside
// the submit, so callbacks that submit more could otherwise keep the loop in one turn.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "target/backend_file.h"

namespace nvmf::target {

class Uring final : public EventLoop::Flushable {
 public:
  // The calling thread's ring for loop, made or rebound on demand; nullptr when io_uring
  // cannot be used here (the caller falls back to RunOnWorker).
  static Uring* For(EventLoop* loop);
  // Tests: make For() return nullptr (true) so that the worker fallback runs.
  static void DisableForTesting(bool disabled);

  // Starts an operation. cb runs on the loop thread after Start has returned: in this
  // turn's end-of-turn flush at the earliest, never inside Start.
  // len > 0 for reads, writes and zeroing; mem (reads, writes) stays valid until cb.
  void Start(FileOp op, FileHandle* f, uint64_t offset, const MemDesc* mem, uint64_t len,
             IoCallback cb);

  void Flush() override;  // end of turn: submits what the turn queued

  ~Uring() override;

 private:
  struct Op;
  struct Req;

  Uring();
  bool Init();
  bool Bind(EventLoop* loop);
  bool Watched();  // the bound loop still watches efd_
  void Reap();  // runs the completions already in the CQ
  void Pump(Op* op);
  void Finish(Op* op);
  void Queue(Req* r);
  void Drain();
  void Submit();
  void Prep(struct io_uring_sqe* sqe, Req* r);
  void Complete(Req* r, int res);
  void Fill(Req* r);
  Op* NewOp();
  Req* NewReq();
  void FreeReq(Req* r);

  struct io_uring ring_ {};
  bool ring_ok_ = false;
  int efd_ = -1;
  EventLoop* loop_ = nullptr;
  uint32_t max_in_kernel_ = 0;   // the CQ's size: never more SQEs out than it can hold
  uint32_t in_kernel_ = 0;       // SQEs prepared and not yet reaped
  uint32_t queued_ = 0;          // SQEs prepared and not yet submitted
  uint32_t ops_ = 0;             // operations started and not finished
  Req* backlog_head_ = nullptr;  // Reqs waiting for room in the rings
  Req* backlog_tail_ = nullptr;
  Op* free_ops_ = nullptr;
  Req* free_reqs_ = nullptr;
  std::vector<std::unique_ptr<Op[]>> op_chunks_;
  std::vector<std::unique_ptr<Req[]>> req_chunks_;
};

}  // namespace nvmf::target
