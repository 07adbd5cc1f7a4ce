// ResilientController: an association that survives losing its connections, with
// nvme-cli's reconnect options.
//
// When the association fails (a transport error on any queue, a command timeout, a Keep
// Alive unanswered for KATO), the controller is connected anew every reconnect_delay until
// it succeeds or ctrl_loss_tmo has passed since the loss. Commands that were in flight,
// and commands submitted meanwhile, wait; once connected again they are submitted again,
// in their order, on the new association (a queue that no longer exists maps onto one
// that does). They are never lost silently: after fast_io_fail_tmo (when set) the waiting
// commands, and new ones until the next connection, fail with Status::IoError; when
// ctrl_loss_tmo passes, every waiting command fails and the controller stays closed.
// Commands are submitted again only after an association failure, never after an NVMe
// error status; writing a block again is harmless, which is why this is safe for reads and
// writes (and the reason commands with side effects beyond their blocks should not be sent
// through it).
//
// Threads, callbacks and the data path: as host::Controller (one loop; each callback runs
// once, on the loop; waiting records come from a pool, so steady state allocates nothing).
// Do not destroy it from inside one of its callbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nvmf/host.h"
#include "nvmf/record_pool.h"

namespace nvmf::host {

struct ReconnectOptions {
  std::chrono::milliseconds reconnect_delay{10000};  // nvme-cli --reconnect-delay
  std::chrono::milliseconds ctrl_loss_tmo{600000};   // --ctrl-loss-tmo; negative: retry forever
  std::chrono::milliseconds fast_io_fail_tmo{-1};    // --fast_io_fail_tmo; negative: off
};

class ResilientController {
 public:
  enum class State { kIdle, kLive, kReconnecting, kLost };

  ResilientController(EventLoop* loop, const ConnectOptions& opts, const ReconnectOptions& ropts);
  ~ResilientController();
  ResilientController(const ResilientController&) = delete;
  ResilientController& operator=(const ResilientController&) = delete;

  // The first connection: no retry (a wrong address should fail at once).
  void Connect(DoneCallback cb);
  // As Controller::Submit; qid 1..io_queue_count() of the first association.
  Status Submit(uint16_t qid, const spec::Sqe& sqe, const MemDesc& mem, size_t len, bool to_controller,
                CommandCallback cb);
  Status Read(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const MemDesc& mem, size_t len,
              CommandCallback cb);
  Status Write(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const MemDesc& mem, size_t len,
               CommandCallback cb);
  // The clean close (Controller::Disconnect); waiting commands fail with Status::Aborted.
  void Disconnect(DoneCallback cb);
  // Closes at once (Controller::Close): every command in flight or waiting fails with
  // Status::Aborted, and no reconnection follows.
  void Close();

  State state() const { return state_; }
  // What happens to the association, for the user: "lost: ...; reconnecting every 1 s",
  // "reconnected after 2.3 s (2 attempts); 16 commands submitted again", "gave up: ...".
  void SetEventCallback(std::function<void(const std::string&)> cb) { on_event_ = std::move(cb); }
  // Called on each change of state() after Connect (live again, reconnecting, lost).
  void SetStateCallback(std::function<void(State)> cb) { on_state_ = std::move(cb); }
  Controller& controller() { return ctrl_; }
  uint32_t io_queue_count() const { return io_queues_; }
  uint64_t reconnects() const { return reconnects_; }
  uint64_t resubmitted() const { return resubmitted_; }

 private:
  struct Pending {
    ResilientController* owner = nullptr;
    Pending* next = nullptr;
    uint16_t qid = 0;
    spec::Sqe sqe{};
    MemDesc mem;
    size_t len = 0;
    bool to_controller = false;
    CommandCallback cb;
  };
  Status Start(Pending* p);
  void OnDone(Pending* p, const Status& s, const spec::Cqe& cqe);
  void Park(Pending* p);
  void FailParked(const Status& s);
  void OnLost(const Status& why);
  void TryReconnect();
  void OnReconnected();
  void Event(const std::string& what);

  EventLoop* loop_;
  ConnectOptions opts_;
  ReconnectOptions ropts_;
  Controller ctrl_;
  State state_ = State::kIdle;
  uint32_t io_queues_ = 0;
  internal::RecordPool<Pending, ResilientController> pool_{this};
  Pending* parked_head_ = nullptr;  // waiting for the next association, oldest first
  Pending* parked_tail_ = nullptr;
  bool fast_failed_ = false;  // fast_io_fail_tmo passed in this loss
  EventLoop::Clock::time_point lost_at_{};
  uint32_t attempts_ = 0;
  EventLoop::TimerId retry_timer_, fast_fail_timer_;
  uint64_t reconnects_ = 0, resubmitted_ = 0;
  std::function<void(const std::string&)> on_event_;
  std::function<void(State)> on_state_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace nvmf::host
