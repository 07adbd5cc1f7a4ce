// Request: one command a queue handler is working on, from its capsule's arrival to the
// last callback that touches it. Requests come from a per-queue pool sized by the queue
// size; their buffers grow to the largest size used and are kept, so that steady state
// allocates nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "nvmf/transport.h"
#include "target/subsystem.h"

namespace nvmf::target {

class QueueHandler;

struct Request {
  Request* next_free = nullptr;
  QueueHandler* queue = nullptr;
  Capsule* capsule = nullptr;
  spec::Cqe cqe{};
  const Namespace* ns = nullptr;
  uint64_t offset = 0;  // bytes into the namespace
  size_t length = 0;    // bytes of data
  uint64_t slba = 0;
  // Parts still to finish before the request returns to the pool: the completion, and
  // for reads from a bounce buffer the data still being sent.
  int holds = 0;
  uint32_t parts_left = 0;  // Dataset Management ranges in flight
  uint16_t part_status = 0;
  std::vector<uint8_t> buffer;  // bounce, admin and DSM data

  uint8_t* Buffer(size_t n) {
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
  }
  const spec::Sqe& sqe() const { return CapsuleSqe(capsule); }
};

}  // namespace nvmf::target
