// RDMA devices and registered memory for the NVMe/RDMA transport.
//
// Device: one protection domain per verbs context, made on first use and kept for the life
// of the process (rdma_cm hands every identifier on a device the same context), with the
// device's limits, which size every queue pair on it.
//
// RegisteredBuffer: memory allocated and registered once (ibv_reg_mr), reused for every
// I/O. The transport never registers caller memory: data moves through these buffers,
// so no registration happens per I/O and no stale registration can outlive memory the
// caller frees.
#pragma once

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nvmf/status.h"

namespace nvmf::rdma {

class RegisteredBuffer;

// Registered buffers for the controller's transfers (RDMA READ's destination, RDMA WRITE's
// source), shared by every queue pair on a device and every thread: taken when a command's
// transfer starts and given back when it ends, so the memory follows the transfers in
// flight, which the target bounds (it moves data only while it holds an I/O buffer of the
// same size, docs/reliability.md). Of what is given back, at most kRetainBytes stays
// registered for reuse; the rest is freed. Sizes are powers of two from 4 KiB.
class StagingPool {
 public:
  static constexpr size_t kRetainBytes = 64u << 20;
  explicit StagingPool(ibv_pd* pd) : pd_(pd) {}
  ~StagingPool();
  // A buffer of at least size bytes, or nullptr with *s set (out of memory or of
  // registrable memory).
  RegisteredBuffer* Take(size_t size, Status* s);
  void Give(RegisteredBuffer* b);
  size_t retained() const;

 private:
  static constexpr int kClasses = 20;  // 4 KiB .. 2 GiB
  ibv_pd* pd_;
  mutable std::mutex mu_;
  std::vector<RegisteredBuffer*> free_[kClasses];
  size_t retained_ = 0;
};

struct Device {
  ibv_context* verbs = nullptr;
  ibv_pd* pd = nullptr;
  ibv_device_attr attr{};
  std::string name;
  std::unique_ptr<StagingPool> staging;
};

// The device behind a verbs context (thread-safe); nullptr with *s set when the protection
// domain or the device query fails.
Device* GetDevice(ibv_context* verbs, Status* s);

class RegisteredBuffer {
 public:
  RegisteredBuffer() = default;
  ~RegisteredBuffer() { Release(); }
  RegisteredBuffer(const RegisteredBuffer&) = delete;
  RegisteredBuffer& operator=(const RegisteredBuffer&) = delete;

  // Makes the buffer at least `size` bytes (page-aligned, rounded up to a power of two
  // from 4 KiB when grow_pow2), registered on pd with access. Keeps the current one when it
  // is big enough. Contents are not kept.
  Status Ensure(ibv_pd* pd, size_t size, int access, bool grow_pow2 = true);
  void Release();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  uint32_t lkey() const { return mr_ != nullptr ? mr_->lkey : 0; }
  uint32_t rkey() const { return mr_ != nullptr ? mr_->rkey : 0; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  ibv_mr* mr_ = nullptr;
};

// "ibv_post_send: Cannot allocate memory"-style text for an errno.
std::string ErrnoText(const char* what, int err);

}  // namespace nvmf::rdma
