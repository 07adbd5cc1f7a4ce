// Controller::Disconnect: the clean close of an association, step by step.
//
//   drain     commands already in flight finish (new ones are refused); Asynchronous Event
//             Requests are not waited for
//   queues    a Fabrics Disconnect on each I/O queue; the controller may close each
//             connection once it has answered, which is then no failure
//   shutdown  Property Set CC.SHN = 01b, then Property Get CSTS until SHST = 10b
//   finish    every queue pair is closed, the callback runs
//
// One timer (ConnectOptions::shutdown_timeout) bounds the whole: whatever step is running
// when it fires, the association is closed as Close() would. A failure on the
// way (a queue pair ending, a command timing out) closes it at once. Either way the
// callback runs exactly once.
#include <cstring>

#include "host/queue.h"
#include "host/util_internal.h"
#include "nvmf/host.h"

namespace nvmf::host {

using internal::HostQueue;

namespace {
constexpr auto kStepPoll = std::chrono::milliseconds(1);
}

void Controller::Disconnect(DoneCallback cb) {
  if (disconnecting()) {  // already under way: the first caller's callback wins
    if (cb) cb(Status::Aborted("a disconnect is already under way"));
    return;
  }
  if (!connected()) {
    Close();
    if (cb) cb(Status::OK());
    return;
  }
  disconnect_cb_ = cb ? std::move(cb) : [](const Status&) {};
  loop_->CancelTimer(kato_timer_);  // a Keep Alive in flight is waited for like any command
  kato_timer_ = {};
  Controller* self = this;
  const uint64_t gen = generation_;
  disconnect_timer_ = loop_->AddTimer(opts_.shutdown_timeout, [self, gen] {
    self->disconnect_timer_ = {};
    if (self->Alive(gen)) self->FinishDisconnect();  // a step got no answer in time
  });
  DisconnectDrain();
}

void Controller::DisconnectDrain() {
  bool busy = false;
  for (auto& q : queues_) busy |= q->in_flight() > q->aers_in_flight() || q->waiting() > 0;
  if (!busy) return DisconnectQueues();
  Controller* self = this;
  const uint64_t gen = generation_;
  step_timer_ = loop_->AddTimer(kStepPoll, [self, gen] {
    self->step_timer_ = {};
    if (self->Alive(gen)) self->DisconnectDrain();
  });
}

void Controller::DisconnectQueues() {
  disconnects_pending_ = 0;
  Controller* self = this;
  const uint64_t gen = generation_;
  spec::DisconnectSqe d{};
  d.opc = spec::kFabricsCommand;
  d.fctype = spec::kFctypeDisconnect;
  spec::Sqe sqe;
  std::memcpy(&sqe, &d, sizeof(sqe));
  for (size_t qid = 1; qid < queues_.size(); qid++) {
    HostQueue* q = queues_[qid].get();
    if (!q->open()) continue;
    q->BeginDisconnect();
    // Any answer will do: a controller without Disconnect (Invalid Opcode) is closed the
    // same way, and one that closed the connection first has disconnected the queue too.
    Status st = q->Submit(sqe, MemDesc(), 0, false, [self, gen](const Status&, const spec::Cqe&) {
      if (!self->Alive(gen) || --self->disconnects_pending_ > 0) return;
      self->ShutdownController();
    });
    if (st.ok()) disconnects_pending_++;
  }
  if (disconnects_pending_ == 0) ShutdownController();
}

void Controller::ShutdownController() {
  Controller* self = this;
  const uint64_t gen = generation_;
  const uint32_t cc = cc_ | MakeCc(false, 0, 0, 1);  // SHN normal, the rest as enabled
  Status st = queues_[0]->Submit(internal::PropertySetCommand(spec::kPropCc, false, cc), MemDesc(), 0,
                                 false, [self, gen](const Status& s, const spec::Cqe&) {
                                   if (!self->Alive(gen)) return;
                                   if (!s.ok()) return self->FinishDisconnect();
                                   self->PollShutdown();
                                 });
  if (!st.ok()) FinishDisconnect();
}

void Controller::PollShutdown() {
  Controller* self = this;
  const uint64_t gen = generation_;
  Status st = queues_[0]->Submit(
      internal::PropertyGetCommand(spec::kPropCsts, false), MemDesc(), 0, false,
      [self, gen](const Status& s, const spec::Cqe& cqe) {
        if (!self->Alive(gen)) return;
        const bool done = (cqe.cdw0 & (3u << 2)) == spec::kCstsShstComplete;
        if (!s.ok() || done) return self->FinishDisconnect();
        self->step_timer_ = self->loop_->AddTimer(kStepPoll, [self, gen] {
          self->step_timer_ = {};
          if (self->Alive(gen)) self->PollShutdown();
        });
      });
  if (!st.ok()) FinishDisconnect();
}

void Controller::FinishDisconnect() {
  if (!disconnecting()) return;
  DoneCallback cb = std::move(disconnect_cb_);
  disconnect_cb_ = nullptr;
  if (!failed_) Shutdown(Status::Aborted("association closed"));
  cb(Status::OK());
}

}  // namespace nvmf::host
