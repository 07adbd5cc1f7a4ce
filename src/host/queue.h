// HostQueue: one admin or I/O queue of an association, over one transport queue pair.
// It assigns command identifiers from a bounded free list, keeps a FIFO of submissions
// waiting for a free CID, matches completions to commands, and finds commands that
// outlived their timeout. Requests come from a pool that grows in chunks only when a
// burst outruns it, so steady state allocates nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "nvmf/host.h"
#include "nvmf/transport.h"

namespace nvmf::host::internal {

// The free command identifiers of a queue: 0..n-1, handed out oldest-freed first so that a
// CID is not reused sooner than it must be.
class CidPool {
 public:
  void Init(uint32_t n);  // n <= 65536
  bool empty() const { return count_ == 0; }
  size_t available() const { return count_; }
  size_t capacity() const { return ring_.size(); }
  // Precondition: !empty().
  uint16_t Take();
  // Precondition: cid came from Take() and was not given back yet.
  void Put(uint16_t cid);

 private:
  std::vector<uint16_t> ring_;
  size_t head_ = 0;
  size_t count_ = 0;
};

class HostQueue;

struct Request {
  Request* next = nullptr;
  HostQueue* queue = nullptr;
  spec::Sqe sqe{};
  MemDesc mem;
  size_t len = 0;
  bool send = false;
  bool data_ended = false;   // the transport's data callback ran
  size_t data_bytes = 0;
  Status data_status;        // the data transfer's outcome
  CommandCallback cb;
  Capsule* capsule = nullptr;
  EventLoop::Clock::time_point deadline{};
};

// An intrusive FIFO of requests.
class RequestList {
 public:
  bool empty() const { return head_ == nullptr; }
  size_t size() const { return size_; }
  void Push(Request* r) {
    r->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = r;
    } else {
      head_ = r;
    }
    tail_ = r;
    size_++;
  }
  Request* Pop() {
    Request* r = head_;
    if (r == nullptr) return nullptr;
    head_ = r->next;
    if (head_ == nullptr) tail_ = nullptr;
    r->next = nullptr;
    size_--;
    return r;
  }

 private:
  Request* head_ = nullptr;
  Request* tail_ = nullptr;
  size_t size_ = 0;
};

class HostQueue {
 public:
  HostQueue(Controller* ctrl, uint16_t qid) : ctrl_(ctrl), qid_(qid) {}
  ~HostQueue();
  HostQueue(const HostQueue&) = delete;
  HostQueue& operator=(const HostQueue&) = delete;

  uint16_t qid() const { return qid_; }
  bool open() const { return qp_ != nullptr; }
  Qpair* qpair() const { return qp_; }
  uint32_t depth() const { return depth_; }
  uint32_t in_flight() const { return in_flight_; }
  uint32_t aers_in_flight() const { return aers_in_flight_; }  // of in_flight()
  uint32_t waiting() const { return static_cast<uint32_t>(waiting_.size()); }
  std::chrono::milliseconds timeout() const { return timeout_; }
  spec::ConnectData& connect_data() { return connect_data_; }

  // Makes the queue pair over a connection the transport set up (closed on failure).
  // max_icd is the controller's in-capsule data size for this queue. entries is the queue size the controller is told (SQSIZE + 1); at most
  // entries - 1 commands are in flight.
  Status Open(EventLoop* loop, Connection conn, TransportType trtype, uint32_t max_icd,
              uint16_t entries,
              std::chrono::milliseconds timeout);

  Status Submit(const spec::Sqe& sqe, const MemDesc& mem, size_t len, bool send,
                CommandCallback cb);

  // An in-flight command whose deadline passed, or nullptr.
  const Request* Expired(EventLoop::Clock::time_point now) const;

  // Frees the queue pair and moves every request, in flight and waiting, to *out; the
  // caller completes them and gives them back with Release.
  void Close(RequestList* out);
  void Release(Request* r);
  // The queue is being disconnected: the controller may close the connection once it has
  // answered, so the end of the connection is no longer a failure of the association.
  // Commands still in flight then complete with the error.
  void BeginDisconnect() { disconnecting_ = true; }

 private:
  void OnResponse(Capsule* c);
  void OnError(const Status& s);
  Status Start(Request* r);
  void Pump();
  Request* TakeRequest();
  void GrowPool(size_t n);

  Controller* ctrl_;
  uint16_t qid_;
  bool disconnecting_ = false;
  uint32_t aers_in_flight_ = 0;
  Qpair* qp_ = nullptr;
  uint32_t depth_ = 0;
  uint32_t in_flight_ = 0;
  std::chrono::milliseconds timeout_{30000};
  CidPool cids_;
  std::vector<Request*> by_cid_;  // in flight, by CID
  RequestList waiting_;
  Request* free_ = nullptr;
  std::vector<std::unique_ptr<Request[]>> chunks_;
  spec::ConnectData connect_data_{};
};

}  // namespace nvmf::host::internal
