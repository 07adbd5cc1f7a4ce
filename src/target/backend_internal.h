// What the backend files share: the factories Backend::Open calls, and small helpers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "target/backend.h"

namespace nvmf::target {

// size is a non-zero multiple of 512 (Backend::Open checks).
Status NewMemoryBackend(uint64_t size, std::unique_ptr<Backend>* out);
// A regular file on tmpfs or ramfs, served as memory through a shared mapping (see
// backend_memory.cc). False, with fd still the caller's, when the file cannot be allocated
// in full or mapped: the caller serves it as an ordinary file. On success the backend owns
// fd. Truncating the file while it is served is not supported (the mapping would fault).
bool OnMemoryFileSystem(int fd);
bool MapMemoryFile(int fd, const std::string& path, uint64_t size, std::unique_ptr<Backend>* out);
std::unique_ptr<Backend> NewNullBackend(uint64_t size);
// path names a regular file or a block device.
Status OpenFileBackend(const std::string& path, std::unique_ptr<Backend>* out);

// "64MiB", "1GiB", "4KiB", "1536B": the largest unit that divides the size exactly.
std::string FormatSize(uint64_t bytes);

// True when [offset, offset + len) lies inside a store of size bytes, without overflow.
inline bool InRange(uint64_t offset, uint64_t len, uint64_t size) {
  return offset <= size && len <= size - offset;
}

// The error a call gets for a range outside the namespace or a MemDesc shorter than len.
Status RangeError(const char* what, uint64_t offset, uint64_t len, uint64_t size);

}  // namespace nvmf::target
