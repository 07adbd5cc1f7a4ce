// CidTable: command identifier to object, for the commands a queue pair has in flight.
// Open addressing sized once from the queue size, so lookups and updates never allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nvmf {

template <class T>
class CidTable {
 public:
  void Init(size_t entries) {
    size_t cap = 16;
    while (cap < entries * 2) cap *= 2;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    count_ = 0;
  }

  // False when cid is already present or the table is full.
  bool Insert(uint16_t cid, T* v) {
    if (count_ + 1 >= slots_.size()) return false;
    for (size_t i = Hash(cid);; i = (i + 1) & mask_) {
      if (slots_[i].v == nullptr) {
        slots_[i] = {cid, v};
        count_++;
        return true;
      }
      if (slots_[i].cid == cid) return false;
    }
  }

  T* Find(uint16_t cid) const {
    for (size_t i = Hash(cid); slots_[i].v != nullptr; i = (i + 1) & mask_) {
      if (slots_[i].cid == cid) return slots_[i].v;
    }
    return nullptr;
  }

  T* Remove(uint16_t cid) {
    size_t i = Hash(cid);
    for (; slots_[i].v != nullptr; i = (i + 1) & mask_) {
      if (slots_[i].cid == cid) break;
    }
    T* v = slots_[i].v;
    if (v == nullptr) return nullptr;
    // Backward-shift deletion keeps every probe chain unbroken without tombstones.
    size_t hole = i;
    for (size_t j = (i + 1) & mask_; slots_[j].v != nullptr; j = (j + 1) & mask_) {
      size_t home = Hash(slots_[j].cid);
      bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
      if (movable) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = Slot{};
    count_--;
    return v;
  }

  template <class F>
  void ForEach(F f) const {
    for (const Slot& s : slots_) {
      if (s.v != nullptr) f(s.v);
    }
  }
  size_t size() const { return count_; }

 private:
  struct Slot {
    uint16_t cid = 0;
    T* v = nullptr;
  };
  // The low bits as they are: hosts number commands by slot (SPDK, ours; Linux keeps a
  // generation in the top four bits), so the entries of a queue share a few cache lines.
  size_t Hash(uint16_t cid) const { return cid & mask_; }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

}  // namespace nvmf
