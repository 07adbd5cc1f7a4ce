// EventLoop: fd readiness, Modify/Remove (also from inside callbacks of the same turn),
// timers, cross-thread Post and Stop; plus Callback<> and Status. The end-of-turn flushes
// are in event_loop_flush_test.cc.
#include <gtest/gtest.h>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "nvmf/callback.h"
#include "nvmf/event_loop.h"
#include "nvmf/status.h"

namespace nvmf {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct SocketPair {
  int fd[2] = {-1, -1};
  SocketPair() {
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0);
  }
  ~SocketPair() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
  void Send(int side = 1) { ASSERT_EQ(write(fd[side], "x", 1), 1); }
  void Drain(int side = 0) {
    char buf[64];
    while (read(fd[side], buf, sizeof(buf)) > 0) {
    }
  }
};

struct Hits {
  int n = 0;
  uint32_t last = 0;
};

EventLoop::IoCallback Count(Hits* h) {
  return [h](uint32_t ev) {
    h->n++;
    h->last = ev;
  };
}

TEST(EventLoop, ConstructsInWaitOrPollMode) {
  EventLoop wait;
  EXPECT_TRUE(wait.ok());
  EXPECT_EQ(wait.mode(), EventLoop::Mode::kWait);
  EXPECT_TRUE(wait.InLoopThread());
  EventLoop poll(EventLoop::Mode::kPoll);
  EXPECT_EQ(poll.mode(), EventLoop::Mode::kPoll);
  // Poll mode never sleeps, whatever the timeout.
  auto t0 = Clock::now();
  poll.RunOnce(2000ms);
  EXPECT_LT(Clock::now() - t0, 1000ms);
}

// Adaptive mode: a turn that found work makes the following turns poll for
// spin_window(); an idle loop past the window sleeps; poll mode never sleeps, wait mode
// always does. sleeps() counts turns that blocked in epoll_wait.
TEST(EventLoop, AdaptiveModeSpinsAfterWorkAndSleepsWhenIdle) {
  EventLoop loop(EventLoop::Mode::kAdaptive);
  EXPECT_EQ(loop.mode(), EventLoop::Mode::kAdaptive);
  loop.set_spin_window(std::chrono::microseconds(2'000'000));  // longer than the test
  SocketPair sp;
  Hits h;
  ASSERT_TRUE(loop.Add(sp.fd[0], EPOLLIN, Count(&h)).ok());
  // Never had work: the first turn sleeps (for its whole timeout, nothing is ready).
  loop.RunOnce(1ms);
  EXPECT_EQ(loop.sleeps(), 1u);
  sp.Send();
  loop.RunOnce(1000ms);
  EXPECT_EQ(h.n, 1);
  EXPECT_EQ(loop.sleeps(), 2u) << "it slept before the byte arrived: not yet busy";
  sp.Drain();
  // Within the window after work: turns poll, so a long timeout returns at once.
  auto t0 = Clock::now();
  for (int i = 0; i < 100; i++) loop.RunOnce(1000ms);
  EXPECT_EQ(loop.sleeps(), 2u) << "an adaptive loop slept right after work";
  EXPECT_LT(Clock::now() - t0, 1000ms);
  // A zero window: it behaves as wait mode and sleeps once idle.
  loop.set_spin_window(std::chrono::microseconds(0));
  loop.RunOnce(1ms);
  EXPECT_EQ(loop.sleeps(), 3u) << "an idle adaptive loop past its window did not sleep";
}

TEST(EventLoop, AdaptiveModeKeepsPollingWhileWorkArrives) {
  EventLoop loop(EventLoop::Mode::kAdaptive);
  loop.set_spin_window(std::chrono::microseconds(2'000'000));
  int posted = 0;
  loop.Post([&] { posted++; });
  loop.RunOnce(1000ms);  // the wake eventfd and the task are work
  EXPECT_EQ(posted, 1);
  const uint64_t before = loop.sleeps();
  for (int i = 0; i < 50; i++) {
    loop.Post([&] { posted++; });
    loop.RunOnce(1000ms);
  }
  EXPECT_EQ(posted, 51);
  EXPECT_EQ(loop.sleeps(), before);
}

TEST(EventLoop, PollModeNeverSleepsAndWaitModeAlwaysDoes) {
  EventLoop poll(EventLoop::Mode::kPoll);
  EventLoop wait(EventLoop::Mode::kWait);
  for (int i = 0; i < 5; i++) {
    poll.RunOnce(1ms);
    wait.RunOnce(1ms);
  }
  EXPECT_EQ(poll.sleeps(), 0u);
  EXPECT_EQ(wait.sleeps(), 5u);
}

TEST(EventLoop, ModeNames) {
  for (auto m : {EventLoop::Mode::kWait, EventLoop::Mode::kPoll, EventLoop::Mode::kAdaptive}) {
    EventLoop::Mode back = EventLoop::Mode::kWait;
    ASSERT_TRUE(ParseLoopMode(LoopModeName(m), &back));
    EXPECT_EQ(back, m);
  }
  EventLoop::Mode out = EventLoop::Mode::kPoll;
  EXPECT_FALSE(ParseLoopMode("busy", &out));
  EXPECT_EQ(out, EventLoop::Mode::kPoll);
}

TEST(EventLoop, FdReadiness) {
  EventLoop loop;
  SocketPair sp;
  Hits h;
  ASSERT_TRUE(loop.Add(sp.fd[0], EPOLLIN, Count(&h)).ok());
  loop.RunOnce(0ms);
  EXPECT_EQ(h.n, 0) << "called before anything was readable";
  sp.Send();
  ASSERT_TRUE(loop.RunUntil([&] { return h.n > 0; }, 2000ms));
  EXPECT_EQ(h.n, 1);
  EXPECT_TRUE(h.last & EPOLLIN);
  // Level-triggered: still readable, called again; quiet once drained.
  loop.RunOnce(0ms);
  EXPECT_EQ(h.n, 2);
  sp.Drain();
  loop.RunOnce(0ms);
  EXPECT_EQ(h.n, 2);
  loop.Remove(sp.fd[0]);
}

TEST(EventLoop, AddTwiceOrBadFdFails) {
  EventLoop loop;
  SocketPair sp;
  Hits h;
  ASSERT_TRUE(loop.Add(sp.fd[0], EPOLLIN, Count(&h)).ok());
  Status s = loop.Add(sp.fd[0], EPOLLIN, Count(&h));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_FALSE(loop.Add(-1, EPOLLIN, Count(&h)).ok());
  // The first watch still works.
  sp.Send();
  EXPECT_TRUE(loop.RunUntil([&] { return h.n == 1; }, 2000ms));
  loop.Remove(sp.fd[0]);
}

TEST(EventLoop, Modify) {
  EventLoop loop;
  SocketPair sp;
  Hits h;
  ASSERT_TRUE(loop.Add(sp.fd[0], EPOLLIN, Count(&h)).ok());
  loop.RunOnce(0ms);
  EXPECT_EQ(h.n, 0);
  ASSERT_TRUE(loop.Modify(sp.fd[0], EPOLLOUT).ok());  // a socket is writable at once
  loop.RunOnce(0ms);
  EXPECT_EQ(h.n, 1);
  EXPECT_EQ(h.last & (EPOLLIN | EPOLLOUT), static_cast<uint32_t>(EPOLLOUT));
  ASSERT_TRUE(loop.Modify(sp.fd[0], 0).ok());
  sp.Send();
  loop.RunOnce(0ms);
  EXPECT_EQ(h.n, 1) << "called with no events asked for";
  ASSERT_TRUE(loop.Modify(sp.fd[0], EPOLLIN).ok());
  loop.RunOnce(0ms);
  EXPECT_EQ(h.n, 2);
  EXPECT_TRUE(h.last & EPOLLIN);
  Status s = loop.Modify(sp.fd[1], EPOLLIN);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  loop.Remove(sp.fd[0]);
}

TEST(EventLoop, RemoveStopsCallbacks) {
  EventLoop loop;
  SocketPair sp;
  Hits h;
  ASSERT_TRUE(loop.Add(sp.fd[0], EPOLLIN, Count(&h)).ok());
  loop.Remove(sp.fd[0]);
  sp.Send();
  loop.RunOnce(20ms);
  EXPECT_EQ(h.n, 0);
  loop.Remove(sp.fd[0]);  // twice: a no-op
  loop.Remove(12345);     // never watched: a no-op
  // The fd can be watched again.
  Hits h2;
  ASSERT_TRUE(loop.Add(sp.fd[0], EPOLLIN, Count(&h2)).ok());
  loop.RunOnce(0ms);
  EXPECT_EQ(h2.n, 1);
  EXPECT_EQ(h.n, 0);
  loop.Remove(sp.fd[0]);
}

TEST(EventLoop, RemoveFromOwnCallback) {
  EventLoop loop;
  SocketPair sp;
  struct Ctx {
    EventLoop* loop;
    int fd;
    int n;
  } ctx{&loop, sp.fd[0], 0};
  Ctx* c = &ctx;
  ASSERT_TRUE(loop.Add(sp.fd[0], EPOLLIN, [c](uint32_t) {
                c->n++;
                c->loop->Remove(c->fd);
              }).ok());
  sp.Send();
  loop.RunOnce(100ms);
  loop.RunOnce(0ms);
  loop.RunOnce(0ms);
  EXPECT_EQ(ctx.n, 1);
}

// Two fds ready in the same turn; whichever callback runs first removes the other (and,
// in the second variant, watches its fd again with a new callback). The removed
// callback must not run for the event already fetched in that turn.
struct Pair {
  EventLoop* loop;
  int fds[2];
  int ran[2];
  int readded_runs;
  bool readd;
};

void RunRemovePeerTurn(bool readd) {
  EventLoop loop;
  SocketPair a, b;
  Pair p{&loop, {a.fd[0], b.fd[0]}, {0, 0}, 0, readd};
  Pair* pp = &p;
  for (int i = 0; i < 2; i++) {
    ASSERT_TRUE(loop.Add(p.fds[i], EPOLLIN, [pp, i](uint32_t) {
                      pp->ran[i]++;
                      if (pp->ran[0] + pp->ran[1] > 1) return;  // only the first one acts
                      const int other = pp->fds[1 - i];
                      pp->loop->Remove(other);
                      if (pp->readd) {
                        Pair* q = pp;
                        ASSERT_TRUE(pp->loop->Add(other, EPOLLIN, [q](uint32_t) {
                                          q->readded_runs++;
                                        }).ok());
                      }
                    }).ok());
  }
  a.Send();
  b.Send();
  // Both readable before the turn starts, so epoll returns both in one batch.
  loop.RunOnce(100ms);
  EXPECT_EQ(p.ran[0] + p.ran[1], 1) << "the removed fd's callback ran";
  EXPECT_EQ(p.readded_runs, 0) << "a stale event reached the new callback";
  if (readd) {
    loop.RunOnce(100ms);
    EXPECT_EQ(p.readded_runs, 1) << "the new watch does not work";
  }
  loop.Remove(p.fds[0]);
  loop.Remove(p.fds[1]);
}

TEST(EventLoop, RemoveOfAnFdAlreadyReadyInTheSameTurn) {
  for (int i = 0; i < 20; i++) RunRemovePeerTurn(false);
}

TEST(EventLoop, RemoveAndReAddInTheSameTurn) {
  for (int i = 0; i < 20; i++) RunRemovePeerTurn(true);
}

TEST(EventLoop, TimersFireInOrderAndNotEarly) {
  EventLoop loop;
  std::vector<int> order;
  auto* o = &order;
  auto t0 = Clock::now();
  std::vector<Clock::duration> at(4);
  auto* a = &at;
  loop.AddTimer(60ms, [o, a, t0] { o->push_back(3); (*a)[3] = Clock::now() - t0; });
  loop.AddTimer(20ms, [o, a, t0] { o->push_back(1); (*a)[1] = Clock::now() - t0; });
  loop.AddTimer(40ms, [o, a, t0] { o->push_back(2); (*a)[2] = Clock::now() - t0; });
  loop.AddTimer(0ms, [o] { o->push_back(0); });
  ASSERT_TRUE(loop.RunUntil([&] { return order.size() == 4; }, 3000ms));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_GE(at[1], 20ms);
  EXPECT_GE(at[2], 40ms);
  EXPECT_GE(at[3], 60ms);
  // Timers already due all run in the next turn, in deadline order.
  order.clear();
  for (int i = 0; i < 5; i++) loop.AddTimer(-1ms, [o, i] { o->push_back(i); });
  loop.RunOnce(0ms);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(EventLoop, WaitModeSleepsUntilTheNextTimer) {
  EventLoop loop;
  bool fired = false;
  bool* f = &fired;
  loop.AddTimer(50ms, [f] { *f = true; });
  auto t0 = Clock::now();
  loop.RunOnce(5000ms);  // must wake for the timer, not wait the full 5 s
  auto dt = Clock::now() - t0;
  if (!fired) loop.RunOnce(5000ms);  // epoll rounding may wake a hair early once
  EXPECT_TRUE(fired);
  EXPECT_LT(Clock::now() - t0, 2000ms);
  EXPECT_GE(dt, 40ms);
}

TEST(EventLoop, CancelTimer) {
  EventLoop loop;
  int fired[3] = {0, 0, 0};
  int* f = fired;
  EventLoop::TimerId t0 = loop.AddTimer(10ms, [f] { f[0]++; });
  EventLoop::TimerId t1 = loop.AddTimer(10ms, [f] { f[1]++; });
  EXPECT_TRUE(static_cast<bool>(t0));
  loop.CancelTimer(t0);
  ASSERT_TRUE(loop.RunUntil([&] { return fired[1] == 1; }, 2000ms));
  loop.RunUntil([] { return false; }, 30ms);
  EXPECT_EQ(fired[0], 0);
  // Cancelling a fired timer, or an empty id, is a no-op that cancels nothing else.
  EventLoop::TimerId t2 = loop.AddTimer(10ms, [f] { f[2]++; });
  loop.CancelTimer(t1);
  loop.CancelTimer(EventLoop::TimerId{});
  ASSERT_TRUE(loop.RunUntil([&] { return fired[2] == 1; }, 2000ms));
  (void)t2;
  EXPECT_EQ(fired[1], 1);
}

TEST(EventLoop, CancelTimerFromAnEarlierTimerInTheSameTurn) {
  EventLoop loop;
  struct Ctx {
    EventLoop* loop;
    EventLoop::TimerId victim;
    int victim_ran = 0;
  } ctx{&loop, {}};
  Ctx* c = &ctx;
  loop.AddTimer(1ms, [c] { c->loop->CancelTimer(c->victim); });
  ctx.victim = loop.AddTimer(2ms, [c] { c->victim_ran++; });
  std::this_thread::sleep_for(20ms);  // both due when the turn runs
  loop.RunOnce(0ms);
  loop.RunUntil([] { return false; }, 20ms);
  EXPECT_EQ(ctx.victim_ran, 0);
}

TEST(EventLoop, PostFromAnotherThreadWakesASleepingLoop) {
  EventLoop loop;
  std::atomic<bool> ran{false};
  std::thread::id ran_on;
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    loop.Post([&] {
      ran_on = std::this_thread::get_id();
      ran = true;
    });
  });
  auto t0 = Clock::now();
  while (!ran && Clock::now() - t0 < 10s) loop.RunOnce(10000ms);
  auto dt = Clock::now() - t0;
  t.join();
  EXPECT_TRUE(ran);
  EXPECT_EQ(ran_on, std::this_thread::get_id()) << "posted task ran off the loop thread";
  EXPECT_LT(dt, 5000ms) << "the post did not wake the loop";
}

TEST(EventLoop, PostsRunInOrder) {
  EventLoop loop;
  std::vector<int> order;
  for (int i = 0; i < 10; i++) loop.Post([&order, i] { order.push_back(i); });
  loop.RunOnce(0ms);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(EventLoop, StopFromAnotherThread) {
  EventLoop loop;
  std::atomic<bool> running{false};
  std::thread t([&] {
    loop.Post([&] { running = true; });
    while (!running) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(20ms);  // let Run go back to sleep
    loop.Stop();
  });
  auto t0 = Clock::now();
  loop.Run();  // sleeps up to 1 s per turn unless woken
  auto dt = Clock::now() - t0;
  t.join();
  EXPECT_TRUE(running);
  EXPECT_LT(dt, 900ms) << "Stop did not wake the loop";
}

TEST(EventLoop, StopFromACallback) {
  EventLoop loop;
  EventLoop* l = &loop;
  loop.AddTimer(10ms, [l] { l->Stop(); });
  auto t0 = Clock::now();
  loop.Run();
  EXPECT_LT(Clock::now() - t0, 900ms);
}

TEST(EventLoop, RunUntil) {
  EventLoop loop;
  EXPECT_FALSE(loop.RunUntil([] { return false; }, 20ms));
  EXPECT_TRUE(loop.RunUntil([] { return true; }, 0ms));
  bool done = false;
  bool* d = &done;
  loop.AddTimer(5ms, [d] { *d = true; });
  EXPECT_TRUE(loop.RunUntil([&] { return done; }, 2000ms));
}

// ------------------------------------------------------------ Callback and Status

TEST(EventLoop, CallbackCapturesByValue) {
  int x = 5;
  int sink = 0;
  int* s = &sink;
  Callback<int(int)> add = [x, s](int y) {
    *s += y;
    return x + y;
  };
  x = 100;  // the callback holds its own copy
  EXPECT_TRUE(static_cast<bool>(add));
  EXPECT_EQ(add(3), 8);
  Callback<int(int)> copy = add;
  EXPECT_EQ(copy(10), 15);
  EXPECT_EQ(sink, 13);
  // Up to the capacity: four 8-byte captures.
  uint64_t a = 1, b = 2, c = 3, d = 4;
  Callback<uint64_t()> four = [a, b, c, d] { return a * 1000 + b * 100 + c * 10 + d; };
  static_assert(Callback<void()>::kCapacity >= 4 * sizeof(uint64_t));
  EXPECT_EQ(four(), 1234u);
  Callback<void()> empty;
  EXPECT_FALSE(static_cast<bool>(empty));
  Callback<void()> null = nullptr;
  EXPECT_FALSE(static_cast<bool>(null));
  Callback<void(const std::string&, std::string*)> cat = [](const std::string& in,
                                                            std::string* out) { *out += in; };
  std::string out;
  cat("ab", &out);
  cat("cd", &out);
  EXPECT_EQ(out, "abcd");
}

TEST(EventLoop, StatusToString) {
  EXPECT_TRUE(Status().ok());
  EXPECT_TRUE(Status::OK().ok());
  EXPECT_EQ(Status::OK().ToString(), "OK");
  EXPECT_EQ(Status::OK().code(), Status::Code::kOk);
  Status io = Status::IoError("connection reset");
  EXPECT_FALSE(io.ok());
  EXPECT_EQ(io.code(), Status::Code::kIoError);
  EXPECT_EQ(io.message(), "connection reset");
  EXPECT_EQ(io.ToString(), "I/O error: connection reset");
  EXPECT_EQ(Status::TimedOut("").ToString(), "timed out");
  EXPECT_EQ(Status::ProtocolError("bad PDU").ToString(), "protocol error: bad PDU");
  EXPECT_EQ(Status::DataDigestError("x").code(), Status::Code::kDataDigestError);
  const Status all[] = {Status::OK(),
                        Status::IoError(""),
                        Status::ProtocolError(""),
                        Status::PeerTerminated(""),
                        Status::TimedOut(""),
                        Status::Aborted(""),
                        Status::InvalidArgument(""),
                        Status::ResourceExhausted(""),
                        Status::NotSupported(""),
                        Status::DataDigestError("")};
  std::set<std::string> names;
  for (const Status& s : all) {
    std::string n = CodeName(s.code());
    EXPECT_NE(n, "unknown");
    EXPECT_EQ(s.ToString(), s.ok() ? "OK" : n);
    names.insert(n);
  }
  EXPECT_EQ(names.size(), std::size(all)) << "two codes share a name";
}

}  // namespace
}  // namespace nvmf
