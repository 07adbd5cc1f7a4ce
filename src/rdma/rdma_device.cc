#include "rdma/rdma_device.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

namespace nvmf::rdma {

std::string ErrnoText(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

Device* GetDevice(ibv_context* verbs, Status* s) {
  static std::mutex mu;
  static auto* devices = new std::map<ibv_context*, std::unique_ptr<Device>>;  // kept until exit
  std::lock_guard<std::mutex> lock(mu);
  auto it = devices->find(verbs);
  if (it != devices->end()) return it->second.get();
  auto d = std::make_unique<Device>();
  d->verbs = verbs;
  d->name = ibv_get_device_name(verbs->device);
  if (int rc = ibv_query_device(verbs, &d->attr); rc != 0) {
    *s = Status::IoError(ErrnoText(("ibv_query_device " + d->name).c_str(), rc));
    return nullptr;
  }
  d->pd = ibv_alloc_pd(verbs);
  if (d->pd == nullptr) {
    *s = Status::ResourceExhausted(ErrnoText(("ibv_alloc_pd " + d->name).c_str(), errno));
    return nullptr;
  }
  d->staging = std::make_unique<StagingPool>(d->pd);
  Device* out = d.get();
  devices->emplace(verbs, std::move(d));
  return out;
}

Status RegisteredBuffer::Ensure(ibv_pd* pd, size_t size, int access, bool grow_pow2) {
  if (data_ != nullptr && size_ >= size) return Status::OK();
  size_t want = 4096;
  if (grow_pow2) {
    while (want < size) want *= 2;
  } else {
    want = (size + 4095) & ~static_cast<size_t>(4095);
  }
  Release();
  void* p = std::aligned_alloc(4096, want);
  if (p == nullptr) return Status::ResourceExhausted("out of memory for an RDMA buffer");
  ibv_mr* mr = ibv_reg_mr(pd, p, want, access);
  if (mr == nullptr) {
    int err = errno;
    std::free(p);
    return Status::ResourceExhausted(
        ErrnoText("ibv_reg_mr (raise the locked-memory limit, ulimit -l?)", err));
  }
  data_ = static_cast<uint8_t*>(p);
  size_ = want;
  mr_ = mr;
  return Status::OK();
}

StagingPool::~StagingPool() {
  for (auto& list : free_) {
    for (RegisteredBuffer* b : list) delete b;
  }
}

RegisteredBuffer* StagingPool::Take(size_t size, Status* s) {
  int c = 0;
  while (c + 1 < kClasses && (size_t{4096} << c) < size) c++;
  const size_t bytes = size_t{4096} << c;
  if (bytes < size) {
    *s = Status::InvalidArgument("transfer too large for an RDMA staging buffer");
    return nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_[c].empty()) {
      RegisteredBuffer* b = free_[c].back();
      free_[c].pop_back();
      retained_ -= b->size();
      return b;
    }
  }
  auto* b = new (std::nothrow) RegisteredBuffer;
  if (b == nullptr) {
    *s = Status::ResourceExhausted("out of memory for an RDMA staging buffer");
    return nullptr;
  }
  *s = b->Ensure(pd_, bytes, IBV_ACCESS_LOCAL_WRITE);
  if (!s->ok()) {
    delete b;
    return nullptr;
  }
  return b;
}

void StagingPool::Give(RegisteredBuffer* b) {
  if (b == nullptr) return;
  int c = 0;
  while (c + 1 < kClasses && (size_t{4096} << c) < b->size()) c++;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (retained_ + b->size() <= kRetainBytes) {
      free_[c].push_back(b);
      retained_ += b->size();
      return;
    }
  }
  delete b;  // over what we keep: deregistered and freed
}

size_t StagingPool::retained() const {
  std::lock_guard<std::mutex> lock(mu_);
  return retained_;
}

void RegisteredBuffer::Release() {
  if (mr_ != nullptr) ibv_dereg_mr(mr_);
  std::free(data_);
  mr_ = nullptr;
  data_ = nullptr;
  size_ = 0;
}

}  // namespace nvmf::rdma
