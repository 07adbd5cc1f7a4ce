// BufferPool: the I/O buffers of one event loop's queues, under a byte budget.
//
// Why: write data lands in one of these and reaches the namespace only once all of it has
// arrived and verified; reads that go out with a data digest are snapshotted into one so
// that the digest covers exactly the bytes sent. A peer decides how many commands and how
// large (up to MDTS) they are, so these buffers are the memory a peer can make us hold:
// the budget bounds it, and a queue whose command does not fit waits for a buffer instead
// of allocating.
//
// Threads: one pool per event loop; every call on that loop's thread. Buffers are cached
// by power-of-two size class for reuse, so steady state allocates nothing; cached bytes
// count against the budget and are given back when a larger class needs the room.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nvmf::target {

class BufferPool {
 public:
  // Something waiting for room; OnBufferRoom runs (once per Wait) after a later Put.
  class Waiter {
   public:
    virtual void OnBufferRoom() = 0;

   protected:
    ~Waiter() = default;
  };

  static constexpr size_t kMinBuffer = 4096;

  explicit BufferPool(size_t budget) : budget_(budget) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of at least n bytes (its size in *cap), or nullptr when the budget has no
  // room for it now (or the allocation failed). n larger than the budget never fits.
  uint8_t* Get(size_t n, size_t* cap);
  void Put(uint8_t* p, size_t cap);

  // Asks for one OnBufferRoom call after the next Put; Cancel withdraws the request.
  void Wait(Waiter* w);
  void Cancel(Waiter* w);

  size_t budget() const { return budget_; }
  size_t in_use() const { return in_use_; }
  size_t cached() const { return cached_; }
  uint64_t exhausted() const { return exhausted_; }  // Gets refused for want of room

 private:
  static int ClassOf(size_t n);  // smallest class holding n bytes
  bool MakeRoom(size_t n);       // frees cached buffers until n more bytes fit

  size_t budget_;
  size_t in_use_ = 0;
  size_t cached_ = 0;
  uint64_t exhausted_ = 0;
  std::vector<std::vector<uint8_t*>> free_;  // by class
  std::vector<Waiter*> waiters_;
};

}  // namespace nvmf::target
