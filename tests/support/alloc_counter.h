// Test support: counts heap allocations (global operator new) between Start and Stop.
// Linking a test that calls these replaces the binary's operator new and delete.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nvmf::test {

void StartCountingAllocations();
// Stops counting; returns the allocations made since StartCountingAllocations.
uint64_t StopCountingAllocations();

// Fault injection: the next `count` allocations of n bytes, lo <= n <= hi, on any thread,
// fail (std::bad_alloc, or nullptr from the nothrow forms). Returns how many failed so far.
void FailAllocations(size_t lo, size_t hi, int count);
int FailedAllocations();

}  // namespace nvmf::test
