// EventLoop: one per thread. It watches non-blocking file descriptors (epoll), runs
// one-shot timers, and runs tasks posted from other threads.
//
// Threading: every method but Post() and Stop() must be called on the loop's own thread
// (the thread that calls Run or RunOnce). Every callback runs on that thread.
//
// A loop turn: wait for readiness, dispatch socket events, run posted tasks, fire due
// timers, then call the end-of-turn flush of every Flushable that asked for one. Queue
// pairs queue their PDUs during a turn and write them with one gathered system call in
// that flush, so that a burst of commands costs one writev, not one per PDU. When many
// connections are ready in one turn, the flushes also run after every few events (16
// flush requests), so that what a connection queued is written while it is still in the
// cache.
//
// Modes: how a turn waits for readiness.
//  - kWait: sleeps in epoll_wait until something is ready. Least CPU; each wake-up costs
//    the scheduler's latency (a QD1 round trip roughly doubles).
//  - kPoll: never sleeps; a turn that found nothing yields the core (sched_yield), so
//    that two loops sharing one core take turns instead of each spinning out its time
//    slice. One full core per loop, always.
//  - kAdaptive (the default): polls as kPoll while there is work, and for spin_window()
//    after the last turn that found any; then sleeps as kWait until something is ready.
//    A loaded loop never sleeps, an idle one costs nothing, and a QD1 round trip that
//    comes back within the window is taken without a wake-up.
// A turn "found work" when epoll reported an fd or the wake eventfd, a Poller said so,
// or a posted task ran.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nvmf/callback.h"
#include "nvmf/status.h"

namespace nvmf {

class EventLoop {
 public:
  enum class Mode { kWait, kPoll, kAdaptive };
  using Clock = std::chrono::steady_clock;
  using IoCallback = Callback<void(uint32_t epoll_events)>;
  using Task = Callback<void()>;

  // Something that wants a call at the end of the current loop turn.
  class Flushable {
   public:
    virtual void Flush() = 0;

   protected:
    virtual ~Flushable() = default;

   private:
    friend class EventLoop;
    bool flush_pending_ = false;
  };

  // Something to call once every loop turn, right after socket events: a poll-mode
  // transport polls its completion queue here instead of arming its notification channel.
  class Poller {
   public:
    // Returns whether it found work (a completion); adaptive mode keeps spinning then.
    virtual bool Poll() = 0;

   protected:
    virtual ~Poller() = default;
  };

  struct TimerId {
    Clock::time_point when{};
    uint64_t seq = 0;
    explicit operator bool() const { return seq != 0; }
  };

  // How long an adaptive loop keeps polling after its last busy turn.
  static constexpr std::chrono::microseconds kDefaultSpinWindow{200};

  explicit EventLoop(Mode mode = Mode::kWait);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  Mode mode() const { return mode_; }
  bool ok() const { return epfd_ >= 0; }
  // Adaptive mode only; zero makes it behave as kWait.
  void set_spin_window(std::chrono::microseconds w) { spin_window_ = w; }
  std::chrono::microseconds spin_window() const { return spin_window_; }
  // Turns that slept in epoll_wait with a non-zero timeout, since construction. For tests
  // and benchmarks that check what a mode does.
  uint64_t sleeps() const { return sleeps_; }

  // Watches fd for events (EPOLLIN, EPOLLOUT; EPOLLET for a descriptor whose every
  // signal is an edge, such as an eventfd that is never read). The callback may call
  // Modify or Remove on any fd, including its own.
  Status Add(int fd, uint32_t events, IoCallback cb);
  Status Modify(int fd, uint32_t events);
  // Stops watching fd. After Remove returns, fd's callback does not run again. The fd is
  // not closed.
  void Remove(int fd);

  // Polls p every turn until RemovePoller (which may be called from inside Poll).
  void AddPoller(Poller* p);
  void RemovePoller(Poller* p);

  // Runs cb once after delay. Cancel is a no-op for a timer that already fired.
  TimerId AddTimer(std::chrono::nanoseconds delay, Task cb);
  void CancelTimer(TimerId id);

  // Runs fn on the loop thread during a later turn. Safe from any thread.
  void Post(std::function<void()> fn);
  // Runs the flushable's Flush() at the end of this turn (once, however often asked).
  void RequestFlush(Flushable* f);
  // Withdraws a pending flush request (for an object about to be destroyed).
  void CancelFlush(Flushable* f);

  // Runs turns until Stop(). Stop is safe from any thread and from callbacks.
  void Run();
  void Stop();
  // Runs one turn, sleeping at most timeout in wait mode.
  void RunOnce(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // Runs turns until pred() is true or timeout passes; returns pred(). For tests and tools.
  bool RunUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

  bool InLoopThread() const { return std::this_thread::get_id() == owner_; }

 private:
  struct Watch {
    int fd;
    IoCallback cb;
    bool dead = false;
  };
  struct TimerKey {
    Clock::time_point when;
    uint64_t seq;
    bool operator<(const TimerKey& o) const {
      return when != o.when ? when < o.when : seq < o.seq;
    }
  };

  int NextTimeoutMs(std::chrono::milliseconds cap) const;
  bool Spinning() const;
  bool RunPosted();
  void RunTimers();
  void RunFlushes();

  Mode mode_;
  std::chrono::microseconds spin_window_ = kDefaultSpinWindow;
  Clock::time_point last_work_{};  // the end of the last turn that found work
  uint64_t sleeps_ = 0;
  int epfd_ = -1;
  int wakefd_ = -1;  // eventfd that wakes a sleeping loop for Post and Stop
  std::thread::id owner_;
  std::atomic<bool> stop_{false};
  std::map<int, std::unique_ptr<Watch>> watches_;
  std::vector<std::unique_ptr<Watch>> graveyard_;  // removed during a turn, freed after it
  std::map<TimerKey, Task> timers_;
  uint64_t timer_seq_ = 0;
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> running_;
  std::vector<Flushable*> flushes_;
  std::vector<Flushable*> flushing_;
  std::vector<epoll_event> events_;
  std::vector<Poller*> pollers_;  // a removed one is nulled, then compacted after the turn
  bool pollers_dirty_ = false;
};

// "wait", "poll", "adaptive" <-> Mode, for flags and logs.
const char* LoopModeName(EventLoop::Mode m);
bool ParseLoopMode(const std::string& text, EventLoop::Mode* out);

}  // namespace nvmf
