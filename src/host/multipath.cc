// MultipathController: path choice by ANA state, failover, and waiting for a usable path.
#include "nvmf/host_multipath.h"

#include <algorithm>
#include <cstring>

#include "nvmf/spec/admin.h"

namespace nvmf::host {

namespace {
constexpr auto kRetryEvery = std::chrono::milliseconds(100);
constexpr size_t kAnaLogBytes = 8192;

bool PathRelated(const spec::Cqe& cqe) { return (spec::StatusOf(cqe) >> 8 & 7) == spec::kSctPathRelated; }
}  // namespace

MultipathController::MultipathController(EventLoop* loop, std::vector<ConnectOptions> paths,
                                         const ReconnectOptions& ropts)
    : loop_(loop), ropts_(ropts) {
  ReconnectOptions per_path = ropts;
  per_path.fast_io_fail_tmo = std::chrono::milliseconds(0);  // a lost path's commands move at once
  for (size_t i = 0; i < paths.size(); i++) {
    auto p = std::make_unique<Path>();
    p->rc = std::make_unique<ResilientController>(loop, paths[i], per_path);
    const std::string name = paths[i].traddr + ":" + std::to_string(paths[i].trsvcid);
    p->rc->SetEventCallback([this, name](const std::string& e) { Event("path " + name + ": " + e); });
    p->rc->controller().SetEventCallback([this, i](const AsyncEvent& e) {
      if (e.lid == spec::kLogAna) ReadAna(i);
    });
    // Back: what it reports now (its ANA log), and the commands waiting for a path.
    p->rc->SetStateCallback([this, i](ResilientController::State st) {
      if (st == ResilientController::State::kLive) ReadAna(i);
    });
    paths_.push_back(std::move(p));
  }
}

MultipathController::~MultipathController() {
  closing_ = true;
  loop_->CancelTimer(retry_timer_);
  for (auto& p : paths_) p->rc->Close();  // their commands come back as Aborted: finished
  FailWaiting(Status::Aborted("association closed"));
}

bool MultipathController::path_live(size_t i) const {
  return paths_[i]->rc->state() == ResilientController::State::kLive;
}

uint8_t MultipathController::path_ana(size_t i, uint32_t nsid) const {
  auto it = paths_[i]->ana.find(nsid);
  return it == paths_[i]->ana.end() ? 0 : it->second;
}

uint32_t MultipathController::io_queue_count() const {
  uint32_t n = 0;
  for (const auto& p : paths_) n = std::max(n, p->rc->io_queue_count());
  return n;
}

// ---------------------------------------------------------------- connecting, ANA

void MultipathController::Connect(DoneCallback cb) {
  struct State {
    size_t left;
    size_t ok = 0;
    Status last;
    DoneCallback cb;
  };
  auto st = std::make_shared<State>(State{paths_.size(), 0, Status(), std::move(cb)});
  for (size_t i = 0; i < paths_.size(); i++) {
    paths_[i]->rc->Connect([this, st, i](const Status& s) {
      if (s.ok()) {
        st->ok++;
        ReadAna(i);
      } else {
        st->last = s;
        Event("path " + std::to_string(i + 1) + " did not connect: " + s.ToString());
      }
      if (--st->left == 0 && st->cb) st->cb(st->ok > 0 ? Status::OK() : st->last);
    });
  }
}

void MultipathController::ReadAna(size_t i) {
  Path& p = *paths_[i];
  if (p.reading_ana || !path_live(i)) return;
  p.reading_ana = true;
  p.ana_log.assign(kAnaLogBytes, 0);
  spec::Sqe sqe{};
  sqe.opc = spec::kAdminGetLogPage;
  sqe.nsid = 0xFFFFFFFFu;
  const uint32_t numd = kAnaLogBytes / 4 - 1;
  sqe.cdw10 = spec::kLogAna | (numd & 0xffff) << 16;
  MultipathController* self = this;
  const auto idx = static_cast<uint32_t>(i);
  Status s = p.rc->controller().Submit(0, sqe, MemDesc::Buffer(p.ana_log.data(), p.ana_log.size()),
                                       p.ana_log.size(), false, [self, idx](const Status& st, const spec::Cqe&) {
                                         Path& path = *self->paths_[idx];
                                         path.reading_ana = false;
                                         if (!st.ok()) return;
                                         AsyncEvent parsed;
                                         parsed.log = path.ana_log;
                                         path.ana.clear();
                                         for (const auto& g : parsed.AnaGroups()) {
                                           for (uint32_t nsid : g.nsids) path.ana[nsid] = g.state;
                                         }
                                         self->RetryWaiting();
                                       });
  if (!s.ok()) p.reading_ana = false;
}

// ---------------------------------------------------------------- commands

Status MultipathController::Read(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const MemDesc& mem,
                                 size_t len, CommandCallback cb) {
  if (nlb == 0 || nlb > 65536) return Status::InvalidArgument("block count must be 1 to 65536");
  return Submit(nsid, qid, spec::LbaSqe(spec::kNvmRead, nsid, slba, nlb), mem, len, false, cb);
}

Status MultipathController::Write(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const MemDesc& mem,
                                  size_t len, CommandCallback cb) {
  if (nlb == 0 || nlb > 65536) return Status::InvalidArgument("block count must be 1 to 65536");
  return Submit(nsid, qid, spec::LbaSqe(spec::kNvmWrite, nsid, slba, nlb), mem, len, true, cb);
}

Status MultipathController::Submit(uint32_t nsid, uint16_t qid, const spec::Sqe& sqe, const MemDesc& mem,
                                   size_t len, bool to_controller, CommandCallback cb) {
  if (closing_) return Status::Aborted("association closed");
  Cmd* c = pool_.Take();
  c->qid = qid;
  c->nsid = nsid;
  c->sqe = sqe;
  c->mem = mem;
  c->len = len;
  c->to_controller = to_controller;
  c->cb = cb;
  c->path = -1;
  c->waiting_since = {};
  Route(c, -1);
  return Status::OK();
}

// The best path for the namespace: live and optimized, else live and non-optimized (a
// state not known yet counts as non-optimized); avoid is tried last.
int MultipathController::Choose(uint32_t nsid, int avoid) const {
  int best = -1, best_rank = 0;
  for (size_t i = 0; i < paths_.size(); i++) {
    if (!path_live(i)) continue;
    const uint8_t st = path_ana(i, nsid);
    int rank = st == spec::kAnaOptimized ? 3 : (st == spec::kAnaNonOptimized || st == 0) ? 2 : 0;
    if (rank > 0 && static_cast<int>(i) == avoid) rank = 1;
    if (rank > best_rank) {
      best = static_cast<int>(i);
      best_rank = rank;
    }
  }
  return best;
}

void MultipathController::Route(Cmd* c, int avoid) {
  const int i = Choose(c->nsid, avoid);
  if (i < 0) return Wait(c);
  c->path = i;
  paths_[static_cast<size_t>(i)]->commands++;
  Status s = paths_[static_cast<size_t>(i)]->rc->Submit(
      c->qid, c->sqe, c->mem, c->len, c->to_controller,
      [c](const Status& st, const spec::Cqe& cqe) { c->owner->OnDone(c, st, cqe); });
  if (!s.ok()) {
    if (s.code() == Status::Code::kInvalidArgument) return Finish(c, s, spec::Cqe{});
    Wait(c);  // the path went away just now
  }
}

void MultipathController::OnDone(Cmd* c, const Status& s, const spec::Cqe& cqe) {
  if (closing_ || s.ok()) return Finish(c, s, cqe);
  const bool path_status = s.code() == Status::Code::kNvmeError && PathRelated(cqe);
  const bool path_lost = s.code() != Status::Code::kNvmeError && s.code() != Status::Code::kInvalidArgument;
  if (!path_status && !path_lost) return Finish(c, s, cqe);
  const int from = c->path;
  if (path_status && from >= 0) {
    // The path cannot serve this namespace now: take it as inaccessible until its ANA
    // log says otherwise.
    paths_[static_cast<size_t>(from)]->ana[c->nsid] = spec::kAnaInaccessible;
    ReadAna(static_cast<size_t>(from));
  }
  failovers_++;
  Route(c, from);
}

void MultipathController::Finish(Cmd* c, const Status& s, const spec::Cqe& cqe) {
  CommandCallback cb = c->cb;
  pool_.Give(c);
  cb(s, cqe);
}

void MultipathController::Wait(Cmd* c) {
  if (c->waiting_since == EventLoop::Clock::time_point{}) c->waiting_since = EventLoop::Clock::now();
  c->next = nullptr;
  if (waiting_tail_ != nullptr) {
    waiting_tail_->next = c;
  } else {
    waiting_head_ = c;
  }
  waiting_tail_ = c;
  if (!retry_timer_) {
    retry_timer_ = loop_->AddTimer(kRetryEvery, [this] {
      retry_timer_ = {};
      RetryWaiting();
    });
  }
}

void MultipathController::RetryWaiting() {
  Cmd* c = waiting_head_;
  waiting_head_ = waiting_tail_ = nullptr;
  const auto now = EventLoop::Clock::now();
  while (c != nullptr) {
    Cmd* next = c->next;
    if (ropts_.ctrl_loss_tmo.count() >= 0 && now - c->waiting_since >= ropts_.ctrl_loss_tmo) {
      Finish(c, Status::IoError("no usable path within ctrl_loss_tmo"), spec::Cqe{});
    } else {
      Route(c, -1);
    }
    c = next;
  }
}

void MultipathController::FailWaiting(const Status& s) {
  Cmd* c = waiting_head_;
  waiting_head_ = waiting_tail_ = nullptr;
  while (c != nullptr) {
    Cmd* next = c->next;
    Finish(c, s, spec::Cqe{});
    c = next;
  }
}

void MultipathController::Disconnect(DoneCallback cb) {
  closing_ = true;
  loop_->CancelTimer(retry_timer_);
  retry_timer_ = {};
  FailWaiting(Status::Aborted("association closed"));
  auto left = std::make_shared<size_t>(paths_.size());
  for (auto& p : paths_) {
    p->rc->Disconnect([left, cb](const Status&) {
      if (--*left == 0 && cb) cb(Status::OK());
    });
  }
}

void MultipathController::Event(const std::string& what) {
  if (on_event_) on_event_(what);
}

}  // namespace nvmf::host
