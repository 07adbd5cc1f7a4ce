// EventLoop end-of-turn flushes: once per turn however often asked, flushes that ask for
// more flushes, and withdrawing a request (also for an object in the batch being flushed).
#include <gtest/gtest.h>

#include <chrono>

#include "nvmf/event_loop.h"

namespace nvmf {
namespace {

using namespace std::chrono_literals;

struct Flusher : EventLoop::Flushable {
  EventLoop* loop = nullptr;
  int flushes = 0;
  Flusher* cancel = nullptr;   // withdrawn when this one flushes
  Flusher* request = nullptr;  // asked for when this one flushes
  void Flush() override {
    flushes++;
    if (cancel != nullptr) loop->CancelFlush(cancel);
    if (request != nullptr) loop->RequestFlush(request);
  }
};

TEST(EventLoopFlush, RequestFlushRunsOncePerTurn) {
  EventLoop loop;
  Flusher f;
  f.loop = &loop;
  loop.RequestFlush(&f);
  loop.RequestFlush(&f);
  loop.RunOnce(0ms);
  EXPECT_EQ(f.flushes, 1);
  loop.RunOnce(0ms);
  EXPECT_EQ(f.flushes, 1) << "flushed again without a request";
  // Asked for from inside the turn (a posted task): flushed at its end.
  Flusher* fp = &f;
  EventLoop* l = &loop;
  loop.Post([fp, l] {
    l->RequestFlush(fp);
    l->RequestFlush(fp);
  });
  loop.RunOnce(0ms);
  EXPECT_EQ(f.flushes, 2);
}

TEST(EventLoopFlush, FlushRequestedByAnotherFlushRunsInTheSameTurn) {
  EventLoop loop;
  Flusher a, b;
  a.loop = b.loop = &loop;
  a.request = &b;
  loop.RequestFlush(&a);
  loop.RunOnce(0ms);
  EXPECT_EQ(a.flushes, 1);
  EXPECT_EQ(b.flushes, 1);
}

TEST(EventLoopFlush, CancelFlushBeforeTheTurn) {
  EventLoop loop;
  Flusher f;
  f.loop = &loop;
  loop.RequestFlush(&f);
  loop.CancelFlush(&f);
  loop.RunOnce(0ms);
  EXPECT_EQ(f.flushes, 0);
  loop.CancelFlush(&f);  // not pending: a no-op
  loop.RequestFlush(&f);  // and it can be asked for again
  loop.RunOnce(0ms);
  EXPECT_EQ(f.flushes, 1);
}

TEST(EventLoopFlush, CancelFlushOfAnObjectDuringFlushing) {
  EventLoop loop;
  Flusher a, b, c;
  a.loop = b.loop = c.loop = &loop;
  a.cancel = &b;  // b is in the batch being flushed, after a
  loop.RequestFlush(&a);
  loop.RequestFlush(&b);
  loop.RequestFlush(&c);
  loop.RunOnce(0ms);
  EXPECT_EQ(a.flushes, 1);
  EXPECT_EQ(b.flushes, 0) << "cancelled flush ran";
  EXPECT_EQ(c.flushes, 1) << "a later flush in the batch was skipped";
  loop.RequestFlush(&b);
  loop.RunOnce(0ms);
  EXPECT_EQ(b.flushes, 1);
}

// The case CancelFlush exists for: a flush destroys another object with a pending flush
// in the same batch; that object's destructor withdraws its request.
struct SelfCancelling : EventLoop::Flushable {
  EventLoop* loop;
  int* flushes;
  SelfCancelling(EventLoop* l, int* f) : loop(l), flushes(f) {}
  void Flush() override { (*flushes)++; }
  ~SelfCancelling() override { loop->CancelFlush(this); }
};

struct Destroyer : EventLoop::Flushable {
  SelfCancelling* victim = nullptr;
  void Flush() override {
    delete victim;
    victim = nullptr;
  }
};

TEST(EventLoopFlush, FlushableDestroyedByAnEarlierFlush) {
  EventLoop loop;
  int victim_flushes = 0;
  Destroyer d;
  d.victim = new SelfCancelling(&loop, &victim_flushes);
  loop.RequestFlush(&d);
  loop.RequestFlush(d.victim);
  loop.RunOnce(0ms);
  EXPECT_EQ(d.victim, nullptr);
  EXPECT_EQ(victim_flushes, 0);
}

}  // namespace
}  // namespace nvmf
