// Request: one command a queue handler is working on, from its capsule's arrival to the
// last callback that touches it. Requests come from a per-queue pool that grows to the
// queue size. Two kinds of memory: `buffer`, small and bounded by what an admin command
// returns (Connect data, Identify, DSM ranges, a log page window), kept for reuse; and
// `io`, an I/O buffer of up to MDTS bytes lent by the loop's BufferPool for the command's
// lifetime and returned with the request.
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
  // The namespace the command works on, entered (Namespace::Enter) until the request
  // returns to the pool.
  Namespace* ns = nullptr;
  uint64_t offset = 0;  // bytes into the namespace
  size_t length = 0;    // bytes of data
  uint64_t slba = 0;
  // Parts still to finish before the request returns to the pool: the completion, and
  // for reads from a bounce buffer the data still being sent.
  int holds = 0;
  uint32_t parts_left = 0;  // Dataset Management ranges in flight
  uint16_t part_status = 0;
  std::vector<uint8_t> buffer;  // admin and DSM data (bounded; see above)
  uint8_t* io = nullptr;        // from the BufferPool: NVM read/write data
  size_t io_cap = 0;
  Request* next_wait = nullptr;  // the queue's list of requests waiting for an I/O buffer
  void (QueueHandler::*after_buffer)(Request*) = nullptr;  // what runs once io is lent

  uint8_t* Buffer(size_t n) {
    if (buffer.size() < n) buffer.resize(n);
    return buffer.data();
  }
  const spec::Sqe& sqe() const { return CapsuleSqe(capsule); }
};

}  // namespace nvmf::target
