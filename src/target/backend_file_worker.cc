// The file backend's fallback engine, for threads where io_uring cannot be set up: blocking
// preadv/pwritev/fdatasync/fallocate on a small pool of worker threads, the callback
// posted back to the calling loop. Each call allocates (the job, the posted task): this
// path is for sandboxes that forbid io_uring, not for speed.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "target/backend_file.h"

namespace nvmf::target {
namespace {

constexpr int kWorkers = 4;  // blocking I/O: a few more threads than the 2 cores

class WorkerPool {
 public:
  // Never destroyed: a worker may still be in a job while the process exits.
  static WorkerPool& Get() {
    static WorkerPool* pool = new WorkerPool();
    return *pool;
  }

  void Run(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  WorkerPool() {
    for (int i = 0; i < kWorkers; i++) std::thread([this] { Work(); }).detach();
  }

  void Work() {
    for (;;) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !jobs_.empty(); });
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
};

// Reads or writes [offset, offset + len) of the file from or into mem (zeroes when mem is
// null). Returns 0 or an errno, with *where the file offset it failed at.
int Transfer(bool write, const FileHandle& f, uint64_t offset, const MemDesc* mem, uint64_t len,
             uint64_t* where, int rwf = 0) {
  struct iovec iov[kMaxIov];
  uint64_t done = 0;
  while (done < len) {
    int cnt;
    FillIov(mem, done, len - done, iov, &cnt);
    off_t pos = static_cast<off_t>(offset + done);
    ssize_t r = write ? pwritev2(f.fd, iov, cnt, pos, rwf) : preadv(f.fd, iov, cnt, pos);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    *where = offset + done;
    if (r < 0) return errno;
    if (r == 0) {
      if (write || !f.regular) return EIO;
      ZeroFill(*mem, done, len - done);  // the end of the file: zeroes from there
      return 0;
    }
    done += static_cast<uint64_t>(r);
  }
  return 0;
}

int Zero(FileHandle& f, uint64_t offset, uint64_t len, uint64_t* where) {
  *where = offset;
  for (int m = f.zero_method.load(std::memory_order_relaxed); m < kZeroWrite; m++) {
    if (fallocate(f.fd, FallocateMode(m), static_cast<off_t>(offset), static_cast<off_t>(len)) ==
        0) {
      return 0;
    }
    if (errno != EOPNOTSUPP && errno != ENOSYS) return errno;
    f.ZeroUnsupported(m);
  }
  return Transfer(true, f, offset, nullptr, len, where);
}

int Blocking(FileOp op, FileHandle& f, uint64_t offset, const MemDesc& mem, uint64_t len,
             uint64_t* where) {
  *where = offset;
  switch (op) {
    case FileOp::kRead:
      return Transfer(false, f, offset, &mem, len, where);
    case FileOp::kWrite:
      return Transfer(true, f, offset, &mem, len, where);
    case FileOp::kWriteDurable:
      return Transfer(true, f, offset, &mem, len, where, RWF_DSYNC);
    case FileOp::kFlush:
      return fdatasync(f.fd) == 0 ? 0 : errno;
    case FileOp::kZero:
      return Zero(f, offset, len, where);
  }
  return EINVAL;
}

}  // namespace

void RunOnWorker(EventLoop* loop, FileOp op, FileHandle* f, uint64_t offset, const MemDesc& mem,
                 uint64_t len, IoCallback cb) {
  WorkerPool::Get().Run([=] {
    uint64_t where = offset;
    int err = Blocking(op, *f, offset, mem, len, &where);
    Status s = err == 0 ? Status::OK() : FileError(*f, op, where, err);
    loop->Post([cb, s] { cb(s); });
  });
}

}  // namespace nvmf::target
