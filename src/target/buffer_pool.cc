#include "target/buffer_pool.h"

#include <algorithm>
#include <cstdlib>
#include <new>

namespace nvmf::target {

BufferPool::~BufferPool() {
  for (auto& cls : free_) {
    for (uint8_t* p : cls) std::free(p);
  }
}

int BufferPool::ClassOf(size_t n) {
  int c = 0;
  for (size_t size = kMinBuffer; size < n; size <<= 1) c++;
  return c;
}

bool BufferPool::MakeRoom(size_t n) {
  // Largest classes first: one free gives back the most.
  for (size_t c = free_.size(); c-- > 0 && in_use_ + cached_ + n > budget_;) {
    auto& cls = free_[c];
    while (!cls.empty() && in_use_ + cached_ + n > budget_) {
      std::free(cls.back());
      cls.pop_back();
      cached_ -= kMinBuffer << c;
    }
  }
  return in_use_ + cached_ + n <= budget_;
}

uint8_t* BufferPool::Get(size_t n, size_t* cap) {
  const int c = ClassOf(n);
  const size_t size = kMinBuffer << c;
  if (static_cast<size_t>(c) < free_.size() && !free_[c].empty()) {
    uint8_t* p = free_[c].back();
    free_[c].pop_back();
    cached_ -= size;
    in_use_ += size;
    *cap = size;
    return p;
  }
  if (!MakeRoom(size)) {
    exhausted_++;
    return nullptr;
  }
  // 4 KiB alignment keeps buffers usable for O_DIRECT files later.
  void* p = std::aligned_alloc(kMinBuffer, size);
  if (p == nullptr) {
    exhausted_++;
    return nullptr;
  }
  in_use_ += size;
  *cap = size;
  return static_cast<uint8_t*>(p);
}

void BufferPool::Put(uint8_t* p, size_t cap) {
  if (p == nullptr) return;
  const auto c = static_cast<size_t>(ClassOf(cap));
  in_use_ -= cap;
  if (free_.size() <= c) free_.resize(c + 1);
  free_[c].push_back(p);
  cached_ += cap;
  if (waiters_.empty()) return;
  std::vector<Waiter*> ready;
  ready.swap(waiters_);
  for (Waiter* w : ready) w->OnBufferRoom();
}

void BufferPool::Wait(Waiter* w) {
  if (std::find(waiters_.begin(), waiters_.end(), w) == waiters_.end()) waiters_.push_back(w);
}

void BufferPool::Cancel(Waiter* w) {
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), w), waiters_.end());
}

}  // namespace nvmf::target
