// RecordPool<T>: the per-command records of the host's wrappers (ResilientController,
// MultipathController), from chunks that grow with use and are kept, so that steady state
// allocates nothing. T has a `T* next` and an `owner` pointer set once per record.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "nvmf/memdesc.h"

namespace nvmf::host::internal {

template <class T, class Owner>
class RecordPool {
 public:
  explicit RecordPool(Owner* owner) : owner_(owner) {}
  T* Take() {
    if (free_ == nullptr) Grow(chunks_.empty() ? 64 : 256);
    T* r = free_;
    free_ = r->next;
    r->next = nullptr;
    return r;
  }
  // The record's callback and memory descriptor are dropped; the rest is overwritten by
  // the next Take's user.
  void Give(T* r) {
    r->cb = nullptr;
    r->mem = MemDesc();
    r->next = free_;
    free_ = r;
  }

 private:
  void Grow(size_t n) {
    auto chunk = std::make_unique<T[]>(n);
    for (size_t i = 0; i < n; i++) {
      chunk[i].owner = owner_;
      chunk[i].next = free_;
      free_ = &chunk[i];
    }
    chunks_.push_back(std::move(chunk));
  }
  Owner* owner_;
  std::vector<std::unique_ptr<T[]>> chunks_;
  T* free_ = nullptr;
};

}  // namespace nvmf::host::internal
