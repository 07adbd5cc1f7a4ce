// NullBackend: a size and no storage, for benchmarks. Reads leave the destination as it is
// (no memset: a benchmark should measure the transport, not the zeroing), writes are
// dropped, and every call completes before it returns.
#include <atomic>

#include "target/backend_internal.h"

namespace nvmf::target {
namespace {

class NullBackend final : public Backend {
 public:
  explicit NullBackend(uint64_t size) : size_(size) {}

  std::string Describe() const override { return "null:" + FormatSize(size()); }
  uint64_t size() const override { return size_.load(std::memory_order_relaxed); }
  Status Resize(uint64_t bytes) override {
    size_.store(bytes, std::memory_order_relaxed);
    return Status::OK();
  }

  void Read(EventLoop*, uint64_t offset, const MemDesc& dst, size_t len, IoCallback cb) override {
    Complete(offset, len, len <= dst.length(), "read", cb);
  }
  void Write(EventLoop*, uint64_t offset, const MemDesc& src, size_t len, IoCallback cb) override {
    Complete(offset, len, len <= src.length(), "write", cb);
  }
  void Flush(EventLoop*, IoCallback cb) override { cb(Status::OK()); }
  void WriteZeroes(EventLoop*, uint64_t offset, uint64_t len, IoCallback cb) override {
    Complete(offset, len, true, "write zeroes", cb);
  }
  void Deallocate(EventLoop*, uint64_t offset, uint64_t len, IoCallback cb) override {
    Complete(offset, len, true, "deallocate", cb);
  }

 private:
  void Complete(uint64_t offset, uint64_t len, bool mem_ok, const char* what,
                const IoCallback& cb) const {
    const uint64_t size = this->size();
    if (mem_ok && InRange(offset, len, size)) {
      cb(Status::OK());
    } else {
      cb(RangeError(what, offset, len, size));
    }
  }

  std::atomic<uint64_t> size_;
};

}  // namespace

std::unique_ptr<Backend> NewNullBackend(uint64_t size) {
  return std::make_unique<NullBackend>(size);
}

}  // namespace nvmf::target
