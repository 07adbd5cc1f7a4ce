// ResilientController: reconnection and resubmission around a host::Controller.
#include "nvmf/host_resilient.h"

#include <cstdio>

namespace nvmf::host {
namespace {

std::string Seconds(std::chrono::milliseconds d) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return b;
}

}  // namespace

ResilientController::ResilientController(EventLoop* loop, const ConnectOptions& opts,
                                         const ReconnectOptions& ropts)
    : loop_(loop), opts_(opts), ropts_(ropts), ctrl_(loop) {
  ctrl_.SetFailureCallback([this](const Status& s) { OnLost(s); });
}

ResilientController::~ResilientController() {
  *alive_ = false;
  loop_->CancelTimer(retry_timer_);
  loop_->CancelTimer(fast_fail_timer_);
  state_ = State::kLost;  // what completes now is not parked
  ctrl_.Close();
  FailParked(Status::Aborted("association closed"));
}

// ---------------------------------------------------------------- records

void ResilientController::Park(Pending* p) {
  p->next = nullptr;
  if (parked_tail_ != nullptr) {
    parked_tail_->next = p;
  } else {
    parked_head_ = p;
  }
  parked_tail_ = p;
}

void ResilientController::FailParked(const Status& s) {
  Pending* p = parked_head_;
  parked_head_ = parked_tail_ = nullptr;
  while (p != nullptr) {
    Pending* next = p->next;
    CommandCallback cb = p->cb;
    pool_.Give(p);
    cb(s, spec::Cqe{});
    p = next;
  }
}

// ---------------------------------------------------------------- commands

Status ResilientController::Submit(uint16_t qid, const spec::Sqe& sqe, const MemDesc& mem, size_t len,
                                   bool to_controller, CommandCallback cb) {
  switch (state_) {
    case State::kIdle:
      return Status::InvalidArgument("not connected");
    case State::kLost:
      return Status::IoError("the controller is lost (ctrl_loss_tmo passed, or closed)");
    case State::kReconnecting:
      if (fast_failed_) return Status::IoError("no connection to the controller (fast_io_fail_tmo passed)");
      break;
    case State::kLive:
      break;
  }
  if (qid > io_queues_) return Status::InvalidArgument("no queue " + std::to_string(qid));
  Pending* p = pool_.Take();
  p->qid = qid;
  p->sqe = sqe;
  p->mem = mem;
  p->len = len;
  p->to_controller = to_controller;
  p->cb = cb;
  if (state_ == State::kReconnecting) {
    Park(p);
    return Status::OK();
  }
  Status s = Start(p);
  if (!s.ok()) {
    if (ctrl_.failed()) {  // the association just went; the command waits for the next
      Park(p);
      return Status::OK();
    }
    pool_.Give(p);
  }
  return s;
}

Status ResilientController::Start(Pending* p) {
  uint16_t qid = p->qid;
  const uint32_t now = ctrl_.io_queue_count();
  if (qid > now && now > 0) qid = static_cast<uint16_t>(1 + (qid - 1) % now);
  return ctrl_.Submit(qid, p->sqe, p->mem, p->len, p->to_controller,
                      [p](const Status& s, const spec::Cqe& cqe) { p->owner->OnDone(p, s, cqe); });
}

void ResilientController::OnDone(Pending* p, const Status& s, const spec::Cqe& cqe) {
  // The association failed under the command (not an NVMe status): it waits for the next
  // one, unless the controller is being given up or closed.
  if (!s.ok() && s.code() != Status::Code::kNvmeError && ctrl_.failed() &&
      (state_ == State::kLive || state_ == State::kReconnecting) && !fast_failed_) {
    Park(p);
    return;
  }
  CommandCallback cb = p->cb;
  pool_.Give(p);
  cb(s, cqe);
}

Status ResilientController::Read(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const MemDesc& mem,
                                 size_t len, CommandCallback cb) {
  if (nlb == 0 || nlb > 65536) return Status::InvalidArgument("block count must be 1 to 65536");
  return Submit(qid, spec::LbaSqe(spec::kNvmRead, nsid, slba, nlb), mem, len, false, cb);
}

Status ResilientController::Write(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const MemDesc& mem,
                                  size_t len, CommandCallback cb) {
  if (nlb == 0 || nlb > 65536) return Status::InvalidArgument("block count must be 1 to 65536");
  return Submit(qid, spec::LbaSqe(spec::kNvmWrite, nsid, slba, nlb), mem, len, true, cb);
}

// ---------------------------------------------------------------- the association

void ResilientController::Connect(DoneCallback cb) {
  ctrl_.Connect(opts_, [this, cb](const Status& s) {
    if (s.ok()) {
      state_ = State::kLive;
      io_queues_ = ctrl_.io_queue_count();
    }
    if (cb) cb(s);
  });
}

void ResilientController::Disconnect(DoneCallback cb) {
  const State was = state_;
  state_ = State::kLost;
  loop_->CancelTimer(retry_timer_);
  loop_->CancelTimer(fast_fail_timer_);
  FailParked(Status::Aborted("association closed"));
  if (was == State::kLive) return ctrl_.Disconnect(std::move(cb));
  ctrl_.Close();
  if (cb) cb(Status::OK());
}

void ResilientController::Close() {
  state_ = State::kLost;
  loop_->CancelTimer(retry_timer_);
  loop_->CancelTimer(fast_fail_timer_);
  ctrl_.Close();
  FailParked(Status::Aborted("association closed"));
}

void ResilientController::OnLost(const Status& why) {
  if (state_ != State::kLive) return;
  state_ = State::kReconnecting;
  lost_at_ = EventLoop::Clock::now();
  attempts_ = 0;
  fast_failed_ = false;
  if (on_state_) on_state_(state_);
  Event("connection lost: " + why.ToString() + "; reconnecting every " + Seconds(ropts_.reconnect_delay) +
        (ropts_.ctrl_loss_tmo.count() >= 0 ? ", for up to " + Seconds(ropts_.ctrl_loss_tmo) : std::string()));
  if (ropts_.fast_io_fail_tmo.count() >= 0) {
    // Timers capture this alone: the destructor cancels both.
    fast_fail_timer_ = loop_->AddTimer(ropts_.fast_io_fail_tmo, [this] {
      fast_fail_timer_ = {};
      if (state_ != State::kReconnecting) return;
      fast_failed_ = true;
      FailParked(Status::IoError("no connection to the controller for fast_io_fail_tmo (" +
                                 Seconds(ropts_.fast_io_fail_tmo) + ")"));
    });
  }
  retry_timer_ = loop_->AddTimer(ropts_.reconnect_delay, [this] {
    retry_timer_ = {};
    TryReconnect();
  });
}

void ResilientController::TryReconnect() {
  if (state_ != State::kReconnecting) return;
  const auto gone = EventLoop::Clock::now() - lost_at_;
  if (ropts_.ctrl_loss_tmo.count() >= 0 && gone >= ropts_.ctrl_loss_tmo) {
    state_ = State::kLost;
    loop_->CancelTimer(fast_fail_timer_);
    FailParked(Status::IoError("controller lost: no connection within ctrl_loss_tmo (" +
                               Seconds(ropts_.ctrl_loss_tmo) + ")"));
    if (on_state_) on_state_(state_);
    Event("gave up after " + std::to_string(attempts_) + " attempts (ctrl_loss_tmo " +
          Seconds(ropts_.ctrl_loss_tmo) + ")");
    return;
  }
  attempts_++;
  std::shared_ptr<bool> alive = alive_;
  ctrl_.Connect(opts_, [this, alive](const Status& s) {
    if (!*alive || state_ != State::kReconnecting) return;
    if (s.ok()) return OnReconnected();
    Event("reconnect attempt " + std::to_string(attempts_) + " failed: " + s.ToString());
    retry_timer_ = loop_->AddTimer(ropts_.reconnect_delay, [this] {
      retry_timer_ = {};
      TryReconnect();
    });
  });
}

void ResilientController::OnReconnected() {
  state_ = State::kLive;
  reconnects_++;
  loop_->CancelTimer(fast_fail_timer_);
  fast_failed_ = false;
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(EventLoop::Clock::now() - lost_at_);
  uint64_t again = 0;
  Pending* p = parked_head_;
  parked_head_ = parked_tail_ = nullptr;
  while (p != nullptr) {
    Pending* next = p->next;
    if (state_ != State::kLive || ctrl_.failed()) {
      Park(p);  // lost again meanwhile: it waits for the next association
    } else if (Status s = Start(p); s.ok()) {
      again++;
    } else if (ctrl_.failed()) {
      Park(p);
    } else {  // this association cannot carry it (a smaller transfer limit): its error
      CommandCallback cb = p->cb;
      pool_.Give(p);
      cb(s, spec::Cqe{});
    }
    p = next;
  }
  resubmitted_ += again;
  if (on_state_) on_state_(state_);
  Event("reconnected after " + Seconds(took) + " (" + std::to_string(attempts_) + " attempt" +
        (attempts_ == 1 ? "" : "s") + "); " + std::to_string(again) + " commands submitted again");
}

void ResilientController::Event(const std::string& what) {
  if (on_event_) on_event_(what);
}

}  // namespace nvmf::host
