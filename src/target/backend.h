// Backend: the storage behind a namespace. Memory (the default), a file or block device
// (asynchronous, through io_uring, so that a slow disk never stalls the event loop), and
// null (no storage, for benchmarks).
//
// Threads: a backend is shared by every event loop of the target. Each I/O call is made
// on one loop's thread and passes that loop; its callback runs on the same loop's thread.
// Implementations keep per-loop state (an io_uring per loop) where they need it.
//
// Callbacks may run before the call returns (memory, null). The MemDesc's memory must
// stay valid until the callback runs. No allocation per I/O in steady state.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "nvmf/callback.h"
#include "nvmf/event_loop.h"
#include "nvmf/memdesc.h"
#include "nvmf/status.h"

namespace nvmf::target {

using IoCallback = Callback<void(const Status&)>;

class Backend {
 public:
  virtual ~Backend() = default;

  // Opens a backend from a spec: "mem:SIZE", "null:SIZE" (SIZE like 64M, 1G, 4096, with
  // K/M/G/T suffixes, powers of 1024) or "file:PATH" (a regular file, whose size it keeps,
  // or a block device). A clear message on a bad spec.
  static Status Open(const std::string& spec, std::unique_ptr<Backend>* out);

  virtual std::string Describe() const = 0;  // e.g. "mem:64MiB", "file:/dev/sdb"
  // A path beside which state that must outlive the process may be kept (a regular
  // file's own path; reservations persisting through power loss), or "" for a backend
  // whose contents do not outlive the process either.
  virtual std::string StatePath() const { return {}; }
  virtual uint64_t size() const = 0;         // bytes, a multiple of block_size()
  virtual uint32_t block_size() const { return 512; }
  // Changes size() while the backend serves (the control thread; commands already past
  // their range check may still run against the old size). Not every backend can.
  virtual Status Resize(uint64_t bytes) {
    (void)bytes;
    return Status::NotSupported(Describe() + " cannot be resized while it serves; remove the namespace and add it anew");
  }

  // Memory the backend's bytes [offset, offset + len) live in, when they live in this
  // process's memory (the memory backend), so that the transport can move data straight
  // between the socket and the store; nullptr otherwise.
  virtual uint8_t* Direct(uint64_t offset, uint64_t len) {
    (void)offset;
    (void)len;
    return nullptr;
  }

  virtual void Read(EventLoop* loop, uint64_t offset, const MemDesc& dst, size_t len,
                    IoCallback cb) = 0;
  virtual void Write(EventLoop* loop, uint64_t offset, const MemDesc& src, size_t len,
                     IoCallback cb) = 0;
  // Write whose data is on stable storage when cb runs (Force Unit Access, or any write
  // while the host has the volatile write cache turned off). Backends without a volatile
  // cache of their own (memory, null) need not override it.
  virtual void WriteDurable(EventLoop* loop, uint64_t offset, const MemDesc& src, size_t len,
                            IoCallback cb) {
    Write(loop, offset, src, len, std::move(cb));
  }
  // Makes every completed write durable (fdatasync for files).
  virtual void Flush(EventLoop* loop, IoCallback cb) = 0;
  // Afterwards the range reads as zeroes.
  virtual void WriteZeroes(EventLoop* loop, uint64_t offset, uint64_t len, IoCallback cb) = 0;
  // Deallocate (trim): afterwards the range reads as zeroes (DLFEAT 1).
  virtual void Deallocate(EventLoop* loop, uint64_t offset, uint64_t len, IoCallback cb) = 0;
};

// Test seam: makes Backend::Open accept "KIND:ARG" for a KIND the built-in backends do
// not claim (fault-injecting backends in tests). Register before Target::Start; an empty
// factory removes the kind. Thread-safe.
using BackendFactory =
    std::function<Status(const std::string& arg, std::unique_ptr<Backend>* out)>;
void RegisterBackendKind(const std::string& kind, BackendFactory factory);

// Parses "64M", "1G", "4096", "512K" (powers of 1024). False on garbage or zero.
bool ParseSize(const std::string& s, uint64_t* out);

}  // namespace nvmf::target
