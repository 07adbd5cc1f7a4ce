// MemoryBackend: the namespace's bytes in one anonymous private mapping. MAP_NORESERVE and
// the kernel's zero-filled pages make a large namespace cost nothing until it is written.
//
// Threads: the only shared state is the bytes themselves, so any number of loops may call
// at once; what concurrent writes to the same bytes leave is the hosts' business, as on a
// disk. Every call completes before it returns.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "target/backend_internal.h"

namespace nvmf::target {
namespace {

// Zeroing at least this much hands whole pages back to the kernel (madvise) instead of
// writing zeroes into them: cheaper for large ranges, and it frees the memory.
constexpr uint64_t kMadviseMin = 64 * 1024;

class MemoryBackend final : public Backend {
 public:
  MemoryBackend(uint8_t* base, uint64_t size) : base_(base), size_(size) {}
  ~MemoryBackend() override { munmap(base_, size_); }

  std::string Describe() const override { return "mem:" + FormatSize(size_); }
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
    if (len >= kMadviseMin) {
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
};

}  // namespace

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
