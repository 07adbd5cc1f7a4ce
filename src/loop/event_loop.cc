#include "nvmf/event_loop.h"

#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace nvmf {
namespace {

// Flush requests that make a turn write before it has dispatched all its events.
constexpr size_t kFlushEarly = 16;

}  // namespace

EventLoop::EventLoop(Mode mode) : mode_(mode), owner_(std::this_thread::get_id()) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ >= 0 && wakefd_ >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // null marks the wake fd
    epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
  }
  events_.resize(256);
  flushes_.reserve(64);
  flushing_.reserve(64);
}

EventLoop::~EventLoop() {
  if (wakefd_ >= 0) close(wakefd_);
  if (epfd_ >= 0) close(epfd_);
}

Status EventLoop::Add(int fd, uint32_t events, IoCallback cb) {
  auto w = std::make_unique<Watch>(Watch{fd, cb});
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = w.get();
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return Status::IoError(std::string("epoll_ctl add: ") + strerror(errno));
  }
  auto old = watches_.find(fd);
  if (old != watches_.end()) {  // a stale entry for a reused fd number
    old->second->dead = true;
    graveyard_.push_back(std::move(old->second));
  }
  watches_[fd] = std::move(w);
  return Status::OK();
}

Status EventLoop::Modify(int fd, uint32_t events) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return Status::InvalidArgument("fd not watched");
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = it->second.get();
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0) {
    return Status::IoError(std::string("epoll_ctl mod: ") + strerror(errno));
  }
  return Status::OK();
}

void EventLoop::Remove(int fd) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  // Events for this fd may still sit in the current batch: keep the record until the
  // turn ends, marked dead so that they are skipped.
  it->second->dead = true;
  graveyard_.push_back(std::move(it->second));
  watches_.erase(it);
}

EventLoop::TimerId EventLoop::AddTimer(std::chrono::nanoseconds delay, Task cb) {
  TimerKey key{Clock::now() + std::chrono::duration_cast<Clock::duration>(delay), ++timer_seq_};
  timers_.emplace(key, cb);
  return TimerId{key.when, key.seq};
}

void EventLoop::CancelTimer(TimerId id) {
  if (id) timers_.erase(TimerKey{id.when, id.seq});
}

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  ssize_t r = write(wakefd_, &one, sizeof(one));
  (void)r;  // a full counter still wakes the loop
}

void EventLoop::RequestFlush(Flushable* f) {
  if (f->flush_pending_) return;
  f->flush_pending_ = true;
  flushes_.push_back(f);
}

void EventLoop::CancelFlush(Flushable* f) {
  f->flush_pending_ = false;
  std::erase(flushes_, f);
  // f may be in the batch being flushed right now (destroyed by an earlier flush's callback)
  std::replace(flushing_.begin(), flushing_.end(), f, static_cast<Flushable*>(nullptr));
}

void EventLoop::Stop() {
  stop_.store(true);
  uint64_t one = 1;
  ssize_t r = write(wakefd_, &one, sizeof(one));
  (void)r;
}

void EventLoop::Run() {
  owner_ = std::this_thread::get_id();
  // A Stop() that came before Run() still counts; the flag rearms when Run returns.
  while (!stop_.load(std::memory_order_relaxed)) RunOnce(std::chrono::milliseconds(1000));
  stop_.store(false);
}

bool EventLoop::RunUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  owner_ = std::this_thread::get_id();
  auto deadline = Clock::now() + timeout;
  while (!pred()) {
    auto now = Clock::now();
    if (now >= deadline) return pred();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    RunOnce(std::min(left + std::chrono::milliseconds(1), std::chrono::milliseconds(10)));
  }
  return true;
}

bool EventLoop::Spinning() const {
  switch (mode_) {
    case Mode::kPoll:
      return true;
    case Mode::kWait:
      return false;
    case Mode::kAdaptive:
      return Clock::now() - last_work_ < spin_window_;
  }
  return false;
}

int EventLoop::NextTimeoutMs(std::chrono::milliseconds cap) const {
  if (!flushes_.empty() || Spinning()) return 0;
  {
    std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(posted_mu_));
    if (!posted_.empty()) return 0;
  }
  auto ms = cap.count();
  if (!timers_.empty()) {
    auto until = timers_.begin()->first.when - Clock::now();
    auto t = std::chrono::duration_cast<std::chrono::milliseconds>(until).count() + 1;
    ms = std::max<int64_t>(0, std::min<int64_t>(ms, t));
  }
  return static_cast<int>(ms);
}

void EventLoop::RunOnce(std::chrono::milliseconds timeout) {
  RunFlushes();  // work queued outside a turn (before the first RunOnce) goes out first
  const int wait_ms = NextTimeoutMs(timeout);
  if (wait_ms > 0) sleeps_++;
  int n = epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), wait_ms);
  bool work = n > 0;
  for (int i = 0; i < n; i++) {
    auto* w = static_cast<Watch*>(events_[i].data.ptr);
    if (w == nullptr) {
      uint64_t v;
      ssize_t r = read(wakefd_, &v, sizeof(v));
      (void)r;
      continue;
    }
    if (!w->dead) w->cb(events_[i].events);
    // Many connections ready at once: write out what the last few queued while their
    // PDUs and buffers are still in the cache, rather than all of them after the whole
    // batch has gone through it. Each queue pair still writes once per event.
    if (flushes_.size() >= kFlushEarly) RunFlushes();
  }
  for (size_t i = 0; i < pollers_.size(); i++) {
    if (pollers_[i] != nullptr && pollers_[i]->Poll()) work = true;
  }
  if (pollers_dirty_) {
    std::erase(pollers_, nullptr);
    pollers_dirty_ = false;
  }
  if (RunPosted()) work = true;
  RunTimers();
  RunFlushes();
  graveyard_.clear();
  if (mode_ == Mode::kWait) return;
  if (work) {
    if (mode_ == Mode::kAdaptive) last_work_ = Clock::now();
  } else if (wait_ms == 0) {
    // An empty spinning turn: let another thread that shares this core run (a peer loop
    // that would answer us). Cheap when nothing else is runnable here.
    sched_yield();
  }
}

void EventLoop::AddPoller(Poller* p) { pollers_.push_back(p); }

void EventLoop::RemovePoller(Poller* p) {
  for (auto& q : pollers_) {
    if (q == p) {
      q = nullptr;
      pollers_dirty_ = true;
    }
  }
}

bool EventLoop::RunPosted() {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    if (posted_.empty()) return false;
    running_.swap(posted_);
  }
  for (auto& fn : running_) fn();
  running_.clear();
  return true;
}

void EventLoop::RunTimers() {
  if (timers_.empty()) return;
  auto now = Clock::now();
  while (!timers_.empty() && timers_.begin()->first.when <= now) {
    Task t = timers_.begin()->second;
    timers_.erase(timers_.begin());
    t();
  }
}

void EventLoop::RunFlushes() {
  // A flush may queue more work (a completion that transmits); run a few rounds. The two
  // vectors swap so that a turn allocates nothing.
  for (int round = 0; round < 8 && !flushes_.empty(); round++) {
    flushing_.swap(flushes_);
    for (Flushable* f : flushing_) f->flush_pending_ = false;
    for (size_t i = 0; i < flushing_.size(); i++) {
      if (flushing_[i] != nullptr) flushing_[i]->Flush();
    }
    flushing_.clear();
  }
}

const char* LoopModeName(EventLoop::Mode m) {
  switch (m) {
    case EventLoop::Mode::kWait:
      return "wait";
    case EventLoop::Mode::kPoll:
      return "poll";
    case EventLoop::Mode::kAdaptive:
      return "adaptive";
  }
  return "?";
}

bool ParseLoopMode(const std::string& text, EventLoop::Mode* out) {
  for (auto m : {EventLoop::Mode::kWait, EventLoop::Mode::kPoll, EventLoop::Mode::kAdaptive}) {
    if (text == LoopModeName(m)) {
      *out = m;
      return true;
    }
  }
  return false;
}

}  // namespace nvmf
