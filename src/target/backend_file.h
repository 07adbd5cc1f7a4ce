// What the file backend's two I/O engines share: the io_uring engine (uring.h), and the
// worker-thread fallback for where io_uring is unavailable (backend_file_worker.cc).
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "target/backend.h"

namespace nvmf::target {

enum class FileOp : uint8_t {
  kRead,
  kWrite,
  kWriteDurable,  // a write that is on stable storage when it completes (RWF_DSYNC)
  kFlush,  // fdatasync
  kZero,   // the range reads as zeroes afterwards (write zeroes, deallocate)
};

// How a range is zeroed. fallocate modes first; a file system or device that supports
// neither (EOPNOTSUPP) gets zeroes written.
enum ZeroMethod : int {
  kZeroPunchHole = 0,  // FALLOC_FL_PUNCH_HOLE | KEEP_SIZE: frees the blocks
  kZeroRange = 1,      // FALLOC_FL_ZERO_RANGE | KEEP_SIZE
  kZeroWrite = 2,      // writes of zeroes
};
int FallocateMode(int method);

// An open file or block device as the engines see it. The FileBackend owns it and outlives
// its I/O (destroying a backend with I/O in flight is a caller error).
struct FileHandle {
  int fd = -1;
  bool regular = true;  // a regular file; false: a block device
  std::string path;
  // The first ZeroMethod worth trying, learned from EOPNOTSUPP; shared by all loops.
  std::atomic<int> zero_method{kZeroPunchHole};

  // Records that method is unsupported here.
  void ZeroUnsupported(int method);
};

// Most iovecs, and bytes, one readv/writev is given. A larger transfer is split.
constexpr int kMaxIov = 64;
constexpr size_t kMaxChunk = size_t{1} << 20;

// Fills iov[0..*iovcnt) with bytes [offset, offset + len) of mem, or with a shared buffer
// of zeroes when mem is null, stopping at kMaxIov entries or kMaxChunk bytes; returns the
// bytes covered (len, or less when a limit stopped it).
size_t FillIov(const MemDesc* mem, size_t offset, size_t len, struct iovec* iov, int* iovcnt);

// Zeroes bytes [offset, offset + len) of mem (a read that met the end of the file).
void ZeroFill(const MemDesc& mem, size_t offset, size_t len);

// "read /path at offset 4096: Input/output error".
Status FileError(const FileHandle& f, FileOp op, uint64_t offset, int err);

// The fallback engine, for threads where io_uring cannot be set up (some sandboxes forbid
// it): runs the operation with blocking calls on a small pool of worker threads and posts
// cb to loop. It allocates per call (a std::function for the job and one for the Post), so
// the no-allocation rule of the data path holds only with io_uring.
void RunOnWorker(EventLoop* loop, FileOp op, FileHandle* f, uint64_t offset, const MemDesc& mem,
                 uint64_t len, IoCallback cb);

// Tests: makes the file backend b start zeroing with method (as if the ones before it had
// failed with EOPNOTSUPP). False if b is not a file backend.
bool SetZeroMethodForTesting(Backend* b, int method);

}  // namespace nvmf::target
