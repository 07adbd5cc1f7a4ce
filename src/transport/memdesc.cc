#include "nvmf/memdesc.h"

#include <cassert>
#include <cstring>

namespace nvmf {

MemDesc MemDesc::Buffer(void* base, size_t len) {
  MemDesc m;
  m.single_ = {base, len};
  m.length_ = len;
  return m;
}

MemDesc MemDesc::Vector(const struct iovec* iov, int iovcnt) {
  MemDesc m;
  m.iov_ = iov;
  m.iovcnt_ = iovcnt;
  for (int i = 0; i < iovcnt; i++) m.length_ += iov[i].iov_len;
  return m;
}

int MemDesc::Locate(size_t offset, size_t* skip) const {
  const struct iovec* v = iovs();
  int n = count();
  for (int i = 0; i < n; i++) {
    if (offset < v[i].iov_len) {
      *skip = offset;
      return i;
    }
    offset -= v[i].iov_len;
  }
  *skip = 0;
  return n;
}

int MemDesc::Slice(size_t offset, size_t len, struct iovec* out, int max) const {
  if (offset > length_ || len > length_ - offset) return -1;
  if (len == 0) return 0;
  size_t skip;
  int i = Locate(offset, &skip);
  const struct iovec* v = iovs();
  int used = 0;
  for (; len > 0; i++) {
    if (used == max) return -1;
    size_t take = v[i].iov_len - skip;
    if (take > len) take = len;
    if (take == 0) {  // empty element
      skip = 0;
      continue;
    }
    out[used++] = {static_cast<char*>(v[i].iov_base) + skip, take};
    len -= take;
    skip = 0;
  }
  return used;
}

void MemDesc::CopyIn(size_t offset, const void* src, size_t len) const {
  assert(offset <= length_ && len <= length_ - offset);
  const auto* s = static_cast<const uint8_t*>(src);
  ForEach(offset, len, [&s](uint8_t* p, size_t n) {
    std::memcpy(p, s, n);
    s += n;
  });
}

void MemDesc::CopyOut(size_t offset, void* dst, size_t len) const {
  assert(offset <= length_ && len <= length_ - offset);
  auto* d = static_cast<uint8_t*>(dst);
  ForEach(offset, len, [&d](const uint8_t* p, size_t n) {
    std::memcpy(d, p, n);
    d += n;
  });
}

}  // namespace nvmf
