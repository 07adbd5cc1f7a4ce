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
#include <string>

#include "nvmf/status.h"

namespace nvmf::rdma {

struct Device {
  ibv_context* verbs = nullptr;
  ibv_pd* pd = nullptr;
  ibv_device_attr attr{};
  std::string name;
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
