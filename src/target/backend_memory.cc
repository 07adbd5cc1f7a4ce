// MemoryBackend: the namespace's bytes in one anonymous private mapping. MAP_NORESERVE and
// the kernel's zero-filled pages make a large namespace cost nothing until it is written.
//
// The same class serves a file on a memory file system (tmpfs, ramfs) through a shared
// mapping of it: io_uring cannot read such a file without blocking, so it would hand every
// request to a kernel worker thread, and a read or write system call per I/O costs more
// than the copy. The file is allocated in full before it is mapped, so that a write never
// meets a hole that a full file system cannot fill (which would be SIGBUS, not ENOSPC), and
// zeroing writes zeroes rather than punching holes, for the same reason.
//
// Threads: the only shared state is the bytes themselves, so any number of loops may call
// at once; what concurrent writes to the same bytes leave is the hosts' business, as on a
// disk. Every call completes before it returns.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "target/backend_internal.h"

namespace nvmf::target {
namespace {

// Zeroing at least this much hands whole pages back to the kernel (madvise) instead of
// writing zeroes into them: cheaper for large ranges, and it frees the memory.
constexpr uint64_t kMadviseMin = 64 * 1024;

class MemoryBackend final : public Backend {
 public:
  MemoryBackend(uint8_t* base, uint64_t size) : base_(base), size_(size) {}
  // A mapped file: fd is closed with the mapping.
  MemoryBackend(uint8_t* base, uint64_t size, int fd, std::string path)
      : base_(base), size_(size), fd_(fd), path_(std::move(path)) {}
  ~MemoryBackend() override {
    munmap(base_, size_);
    if (fd_ >= 0) close(fd_);
  }

  std::string Describe() const override {
    return fd_ >= 0 ? "file:" + path_ : "mem:" + FormatSize(size_);
  }
  uint64_t size() const override { return size_; }

  uint8_t* Direct(uint64_t offset, uint64_t len) override {
    return InRange(offset, len, size_) ? base_ + offset : nullptr;
  }

  void Read(EventLoop*, uint64_t offset, const MemDesc& dst, size_t len, IoCallback cb) override {
    if (len > dst.length() || !InRange(offset, len, size_)) {
      cb(RangeError("read", offset, len, size_));
      return;
    }
    dst.CopyIn(0, base_ + offset, len);
    cb(Status::OK());
  }

  void Write(EventLoop*, uint64_t offset, const MemDesc& src, size_t len, IoCallback cb) override {
    if (len > src.length() || !InRange(offset, len, size_)) {
      cb(RangeError("write", offset, len, size_));
      return;
    }
    src.CopyOut(0, base_ + offset, len);
    cb(Status::OK());
  }

  void Flush(EventLoop*, IoCallback cb) override { cb(Status::OK()); }

  void WriteZeroes(EventLoop*, uint64_t offset, uint64_t len, IoCallback cb) override {
    Zero("write zeroes", offset, len, cb);
  }
  void Deallocate(EventLoop*, uint64_t offset, uint64_t len, IoCallback cb) override {
    Zero("deallocate", offset, len, cb);
  }

 private:
  void Zero(const char* what, uint64_t offset, uint64_t len, const IoCallback& cb) {
    if (!InRange(offset, len, size_)) {
      cb(RangeError(what, offset, len, size_));
      return;
    }
    uint8_t* p = base_ + offset;
    uint8_t* end = p + len;
    if (len >= kMadviseMin && fd_ < 0) {  // a file's pages would not read as zeroes
      // The mapping starts on a page boundary, so page-aligned addresses are page-aligned
      // offsets. Whole pages inside the range go back to the kernel and read as zeroes.
      static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
      auto* lo =
          reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1));
      auto* hi = reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(end) & ~(page - 1));
      if (lo < hi && madvise(lo, static_cast<size_t>(hi - lo), MADV_DONTNEED) == 0) {
        std::memset(p, 0, static_cast<size_t>(lo - p));
        std::memset(hi, 0, static_cast<size_t>(end - hi));
        cb(Status::OK());
        return;
      }
    }
    std::memset(p, 0, len);
    cb(Status::OK());
  }

  uint8_t* const base_;
  const uint64_t size_;
  const int fd_ = -1;
  const std::string path_;
};

}  // namespace

bool OnMemoryFileSystem(int fd) {
  struct statfs fs {};
  if (fstatfs(fd, &fs) != 0) return false;
  return fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC;
}

bool MapMemoryFile(int fd, const std::string& path, uint64_t size, std::unique_ptr<Backend>* out) {
  // The holes, before allocating them: tmpfs leaves allocated-but-never-written pages "not
  // up to date", and every access through a mapping to such a page is several times
  // slower than to a written one. Writing their zeroes once, after the allocation has
  // succeeded (so the writes cannot fault for want of space), makes them ordinary pages.
  std::vector<std::pair<uint64_t, uint64_t>> holes;  // [start, end)
  for (off_t pos = 0; static_cast<uint64_t>(pos) < size;) {
    off_t hole = lseek(fd, pos, SEEK_HOLE);
    if (hole < 0 || static_cast<uint64_t>(hole) >= size) break;
    off_t data = lseek(fd, hole, SEEK_DATA);
    uint64_t end = data < 0 ? size : std::min<uint64_t>(static_cast<uint64_t>(data), size);
    holes.emplace_back(static_cast<uint64_t>(hole), end);
    pos = static_cast<off_t>(end);
  }
  if (fallocate(fd, 0, 0, static_cast<off_t>(size)) != 0) return false;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) return false;
  auto* base = static_cast<uint8_t*>(p);
  for (auto [start, end] : holes) std::memset(base + start, 0, end - start);
  *out = std::make_unique<MemoryBackend>(base, size, fd, path);
  return true;
}

Status NewMemoryBackend(uint64_t size, std::unique_ptr<Backend>* out) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) {
    return Status::ResourceExhausted("backend 'mem:" + FormatSize(size) +
                                     "': cannot map memory: " + strerror(errno));
  }
  *out = std::make_unique<MemoryBackend>(static_cast<uint8_t*>(p), size);
  return Status::OK();
}

}  // namespace nvmf::target
