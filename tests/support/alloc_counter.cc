#include "support/alloc_counter.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_allocs{0};
std::atomic<int> g_fail_left{0};
std::atomic<int> g_failed{0};
std::atomic<size_t> g_fail_lo{0}, g_fail_hi{0};
}  // namespace

void* operator new(size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (g_fail_left.load(std::memory_order_relaxed) > 0 && n >= g_fail_lo.load() &&
      n <= g_fail_hi.load() && g_fail_left.fetch_sub(1) > 0) {
    g_failed++;
    throw std::bad_alloc();
  }
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](size_t n) { return operator new(n); }
// The nothrow forms too, so that every allocation is counted (and may be failed) and
// pairs with the delete below (a sanitizer's own nothrow new would not).
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  try {
    return operator new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return operator new(n, std::nothrow);
}
// The replaced operator new hands out malloc memory, so free is the matching release.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace nvmf::test {

void StartCountingAllocations() {
  g_allocs = 0;
  g_counting = true;
}

uint64_t StopCountingAllocations() {
  g_counting = false;
  return g_allocs.load();
}

void FailAllocations(size_t lo, size_t hi, int count) {
  g_fail_lo = lo;
  g_fail_hi = hi;
  g_failed = 0;
  g_fail_left = count;
}

int FailedAllocations() { return g_failed.load(); }

}  // namespace nvmf::test
