// Test support: counts heap allocations (global operator new) between Start and Stop.
// Linking a test that calls these replaces the binary's operator new and delete.
#pragma once

#include <cstdint>

namespace nvmf::test {

void StartCountingAllocations();
// Stops counting; returns the allocations made since StartCountingAllocations.
uint64_t StopCountingAllocations();

}  // namespace nvmf::test
