// Helpers both file engines use: iovec building, zero fill, error text, zero methods.
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "target/backend_file.h"

namespace nvmf::target {
namespace {

// Source of the writes that zero a range where fallocate cannot. Never written.
constexpr size_t kZeroBuf = 64 * 1024;
alignas(4096) const uint8_t g_zeroes[kZeroBuf] = {};

const char* OpName(FileOp op) {
  switch (op) {
    case FileOp::kRead:
      return "read";
    case FileOp::kWrite:
    case FileOp::kWriteDurable:
      return "write";
    case FileOp::kFlush:
      return "flush";
    case FileOp::kZero:
      return "zero";
  }
  return "?";
}

}  // namespace

int FallocateMode(int method) {
  return method == kZeroPunchHole ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                                  : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

void FileHandle::ZeroUnsupported(int method) {
  int cur = method;  // only moves forward; a racing loop may have moved it already
  zero_method.compare_exchange_strong(cur, method + 1, std::memory_order_relaxed);
}

size_t FillIov(const MemDesc* mem, size_t offset, size_t len, struct iovec* iov, int* iovcnt) {
  len = std::min(len, kMaxChunk);
  int n = 0;
  size_t covered = 0;
  if (mem == nullptr) {
    while (n < kMaxIov && covered < len) {
      size_t take = std::min(kZeroBuf, len - covered);
      // writev only reads from it.
      iov[n++] = {const_cast<uint8_t*>(g_zeroes), take};
      covered += take;
    }
  } else {
    // ForEach visits the segments after the limit too; they are few next to the I/O.
    mem->ForEach(offset, len, [&](uint8_t* p, size_t k) {
      if (n < kMaxIov) {
        iov[n++] = {p, k};
        covered += k;
      }
    });
  }
  *iovcnt = n;
  return covered;
}

void ZeroFill(const MemDesc& mem, size_t offset, size_t len) {
  mem.ForEach(offset, len, [](uint8_t* p, size_t n) { std::memset(p, 0, n); });
}

Status FileError(const FileHandle& f, FileOp op, uint64_t offset, int err) {
  std::string m = std::string(OpName(op)) + " " + f.path;
  if (op != FileOp::kFlush) m += " at offset " + std::to_string(offset);
  return Status::IoError(m + ": " + strerror(err));
}

}  // namespace nvmf::target
