// MemDesc: where a command's data lives, without owning it. Either one contiguous buffer
// or a scatter-gather list (an iovec array owned by the caller). Transports read from and
// write into the described memory directly; the memory and, for a list, the iovec array
// must stay valid until the callback of the operation that was given the MemDesc runs.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace nvmf {

class MemDesc {
 public:
  MemDesc() = default;
  static MemDesc Buffer(void* base, size_t len);
  static MemDesc Vector(const struct iovec* iov, int iovcnt);

  size_t length() const { return length_; }
  bool empty() const { return length_ == 0; }

  // Writes iovecs covering bytes [offset, offset + len) into out[0..max) and returns
  // how many it wrote, or -1 when the range is outside the descriptor or needs more than
  // max entries.
  int Slice(size_t offset, size_t len, struct iovec* out, int max) const;

  // Copies len bytes from src into the described memory at offset (CopyIn), or from the
  // described memory at offset into dst (CopyOut). The range must lie inside length().
  void CopyIn(size_t offset, const void* src, size_t len) const;
  void CopyOut(size_t offset, void* dst, size_t len) const;

  // Calls f(uint8_t* segment, size_t n) for each contiguous piece of bytes
  // [offset, offset + len), in order. The range must lie inside length().
  template <class F>
  void ForEach(size_t offset, size_t len, F&& f) const {
    size_t skip;
    const struct iovec* v = iovs();
    for (int i = Locate(offset, &skip); len > 0; i++, skip = 0) {
      size_t take = v[i].iov_len - skip;
      if (take > len) take = len;
      if (take > 0) f(static_cast<uint8_t*>(v[i].iov_base) + skip, take);
      len -= take;
    }
  }

 private:
  const struct iovec* iovs() const { return iov_ != nullptr ? iov_ : &single_; }
  int count() const { return iov_ != nullptr ? iovcnt_ : 1; }
  // Finds the iovec holding byte offset; *skip is the offset inside it.
  int Locate(size_t offset, size_t* skip) const;

  struct iovec single_ = {nullptr, 0};
  const struct iovec* iov_ = nullptr;  // null: the single buffer
  int iovcnt_ = 0;
  size_t length_ = 0;
};

}  // namespace nvmf
