// Round-trip benchmarks of the NVMe/TCP transport: a host queue pair sends Read and Write
// commands over a real loopback TCP connection to a controller queue pair that an
// EchoController serves from memory (tests/support/echo_controller.h).
//
// Two shapes:
//  - "1loop/...": host and controller share ONE thread and ONE EventLoop (LoopbackPair).
//    Every figure there is the transport's whole cost per command (both sides' CPU work
//    plus the loopback TCP stack) serialized on one core. It is NOT the latency or the
//    throughput of a deployment where the target and the host each have a core.
//  - "2loops/...": the deployment shape. The controller queue pair lives on its own
//    EventLoop on its own std::thread; the host queue pair lives on a second EventLoop
//    whose thread is the benchmark's own thread (it drives the commands, so that timing
//    needs no cross-thread hand-off per command). Both loops poll. Everything for a queue
//    pair runs on its loop's thread: the controller side is set up and torn down through
//    EventLoop::Post. With two cores this is one core per side.
//  - "2loops-1core/...": the same two threads pinned to ONE core: what happens when a
//    polling loop shares its core (two targets, or a target and its host, on one CPU). A
//    loop that spun without yielding would hold the core for a whole time slice per turn.
//
// The mode suffix is the EventLoop::Mode of both loops: wait, poll or adaptive (the
// default of nvmf-target and nvmfctl).
//
// "idle/<mode>": the two-loop pair, connected, after a burst of commands, left alone for
// a second: the counter cpu_pct is the CPU both threads used meanwhile, in percent of one
// core (a polling pair: 200).
//
// Each iteration is one completed command. At queue depth 1 an iteration is one round
// trip (command, data, response); at queue depth 32 the driver keeps 32 commands in
// flight, re-issuing each one as its response arrives, and an iteration is one
// completion, so time per iteration is 1/IOPS. Counters: IOPS (a rate), us_per_io (wall
// time per completed command), bytes_per_second (payload).
#include <benchmark/benchmark.h>

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "nvmf/event_loop.h"
#include "nvmf/tcp.h"
#include "nvmf/transport.h"
#include "support/echo_controller.h"
#include "support/loopback.h"

namespace nvmf::bench {
namespace {

using test::EchoController;
using test::Endpoint;
using test::PairOptions;
using Clock = std::chrono::steady_clock;

constexpr size_t kStoreBytes = 1 << 20;     // the EchoController's memory
constexpr uint16_t kQueueSize = 32;         // both queue pairs
constexpr uint64_t kWarmupCommands = 256;   // per run, untimed: pools and caches warm up
constexpr auto kStallTimeout = std::chrono::seconds(10);

// The host side: keeps `depth` commands in flight on one host queue pair. Runs only on
// the host loop's thread. Command slot i uses CIDs i, i + depth, i + 2 * depth, ...
// (mod a multiple of depth), so that the CIDs in flight are always distinct and the CID
// table sees varying keys.
class Driver {
 public:
  Driver(EventLoop* loop, Endpoint* ep, uint8_t opc, uint32_t len, int depth)
      : loop_(loop), ep_(ep), opc_(opc), len_(len), depth_(depth),
        buf_(static_cast<size_t>(len) * static_cast<size_t>(depth) + 4096),
        slots_(static_cast<size_t>(depth)) {
    // Per-slot buffers, 4 KiB aligned inside buf_.
    auto base = reinterpret_cast<uintptr_t>(buf_.data());
    data_ = reinterpret_cast<uint8_t*>((base + 4095) & ~uintptr_t{4095});
    for (size_t i = 0; i < static_cast<size_t>(len) * depth; i++) {
      data_[i] = static_cast<uint8_t>(i * 7 + 1);
    }
    ep_->received.reserve(static_cast<size_t>(depth) * 2 + 8);
  }

  // Commands still in flight after a failure: their data transfers are stopped first
  // (the data callback points at this object), then the capsules are given back.
  ~Driver() {
    for (Slot& s : slots_) {
      if (s.cmd == nullptr) continue;
      AbortCapsuleData(s.cmd);
      FreeCapsule(s.cmd);
      s.cmd = nullptr;
    }
  }
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // Issues the first `depth` commands.
  bool Start() {
    issuing_ = true;
    for (int i = 0; i < depth_; i++) {
      if (!Issue(i)) return false;
    }
    return true;
  }

  // Runs the host loop until `completed()` exceeds `target`. False on failure or stall
  // (error() says why).
  bool RunUntilCompleted(uint64_t target) {
    if (completed_ > target) return true;
    Clock::time_point deadline{};  // set at the first check: no clock read per command
    for (uint32_t spins = 1;; spins++) {
      loop_->RunOnce(std::chrono::milliseconds(100));  // poll mode: does not sleep
      Reap();
      if (!error_.empty()) return false;
      if (completed_ > target) return true;
      if (ep_->failed) {
        error_ = "host queue pair failed: " + ep_->error.ToString();
        return false;
      }
      if ((spins & 63) == 0) {
        if (deadline == Clock::time_point{}) {
          deadline = Clock::now() + kStallTimeout;
        } else if (Clock::now() > deadline) {
          error_ = "no completion for 10 s";
          return false;
        }
      }
    }
  }

  // Stops re-issuing and waits for the commands in flight.
  bool Drain() {
    issuing_ = false;
    auto deadline = Clock::now() + kStallTimeout;
    while (inflight_ > 0 && error_.empty()) {
      if (ep_->failed) {
        error_ = "host queue pair failed: " + ep_->error.ToString();
        break;
      }
      if (Clock::now() > deadline) {
        error_ = "commands still in flight after 10 s";
        break;
      }
      loop_->RunOnce(std::chrono::milliseconds(100));
      Reap();
    }
    return error_.empty();
  }

  uint64_t completed() const { return completed_; }
  const std::string& error() const { return error_; }

 private:
  struct Slot {
    Capsule* cmd = nullptr;
    uint32_t gen = 0;
  };

  uint16_t CidOf(int slot, uint32_t gen) const {
    const uint32_t gens = 65536u / static_cast<uint32_t>(depth_);
    return static_cast<uint16_t>((gen % gens) * static_cast<uint32_t>(depth_) +
                                 static_cast<uint32_t>(slot));
  }

  bool Issue(int slot) {
    Slot& s = slots_[static_cast<size_t>(slot)];
    spec::Sqe sqe{};
    sqe.opc = opc_;
    sqe.cid = CidOf(slot, s.gen);
    sqe.nsid = 1;
    sqe.cdw10 = static_cast<uint32_t>(slot) * (len_ / 512);  // SLBA (the echo ignores it)
    sqe.cdw12 = len_ / 512 - 1;                                // NLB, 0's based
    Capsule* c = AllocateCommand(ep_->qp, sqe);
    if (c == nullptr) {
      error_ = "AllocateCommand returned nullptr";
      return false;
    }
    Driver* self = this;
    AppendData(c, MemDesc::Buffer(data_ + static_cast<size_t>(slot) * len_, len_), len_,
               opc_ == spec::kNvmWrite, [self](size_t bytes, const Status& st) {
                 if (!st.ok() || bytes != self->len_) self->data_errors_++;
               });
    Status st = Transmit(c);
    if (!st.ok()) {
      FreeCapsule(c);
      error_ = "Transmit: " + st.ToString();
      return false;
    }
    s.cmd = c;
    inflight_++;
    return true;
  }

  // Handles the responses that arrived: checks them, frees both capsules, re-issues.
  void Reap() {
    if (ep_->received.empty()) return;
    for (Capsule* r : ep_->received) {
      const spec::Cqe& cqe = CapsuleCqe(r);
      const int slot = cqe.cid % depth_;
      Slot& s = slots_[static_cast<size_t>(slot)];
      if (s.cmd == nullptr || CapsuleSqe(s.cmd).cid != cqe.cid) {
        if (error_.empty()) error_ = "response for a CID not in flight";
        FreeCapsule(r);
        continue;
      }
      if (spec::StatusOf(cqe) != spec::kStatusSuccess && error_.empty()) {
        char msg[64];
        std::snprintf(msg, sizeof(msg), "command failed with NVMe status 0x%03x",
                      static_cast<unsigned>(spec::StatusOf(cqe)));
        error_ = msg;
      }
      FreeCapsule(r);
      FreeCapsule(s.cmd);
      s.cmd = nullptr;
      s.gen++;
      inflight_--;
      completed_++;
      if (data_errors_ != 0 && error_.empty()) error_ = "a data transfer failed";
      if (issuing_ && error_.empty()) Issue(slot);
    }
    ep_->received.clear();
  }

  EventLoop* loop_;
  Endpoint* ep_;
  uint8_t opc_;
  uint32_t len_;
  int depth_;
  std::vector<uint8_t> buf_;
  uint8_t* data_ = nullptr;
  std::vector<Slot> slots_;
  bool issuing_ = false;
  int inflight_ = 0;
  uint64_t completed_ = 0;
  uint64_t data_errors_ = 0;
  std::string error_;
};

// Host and controller on two threads, each queue pair on its own loop. The host loop
// belongs to the thread that constructs this object and calls Open (the benchmark's
// thread); the controller loop runs on a std::thread started here.
class ThreadedPair {
 public:
  // cpu >= 0 pins the controller thread to that CPU.
  ThreadedPair(EventLoop::Mode mode, EchoController* echo, int cpu = -1)
      : host_loop(mode), echo_(echo), ctrl_loop_(mode) {
    // The loop object is built here; Run() makes ctrl_thread_ its owner before anything
    // else touches it, and from then on only Post and Stop are called from outside.
    ctrl_thread_ = std::thread([this, cpu] {
      if (cpu >= 0) PinTo(cpu);
      ctrl_loop_.Run();
    });
  }

  static void PinTo(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }

  ~ThreadedPair() {
    host.Close();  // frees host capsules and the host queue pair, on the host thread
    ctrl_loop_.Post([this] {
      if (ctrl_qp_ != nullptr) FreeQpair(ctrl_qp_);
      ctrl_qp_ = nullptr;
      listener_.reset();
      ctrl_loop_.Stop();  // Run returns after this turn
    });
    ctrl_thread_.join();
    host_loop.RunOnce();  // deferred clean-up of the host side
  }

  Status Open(const PairOptions& opts) {
    // Listen on the controller's thread; the accept callback allocates the controller
    // queue pair there too.
    std::promise<std::pair<Status, uint16_t>> listening;
    auto listening_result = listening.get_future();
    ctrl_loop_.Post([this, &opts, &listening] {
      const uint16_t qsize = opts.qsize;
      Status s = tcp::Listener::Listen(
          &ctrl_loop_, "127.0.0.1", 0, opts.ctrl,
          [this, qsize](const TcpQpairParams& p) {
            if (ctrl_qp_ != nullptr) return;  // one connection only (the queue pair owns fd)
            QpairParams qp;
            qp.qsize = qsize;
            qp.connection = tcp::WrapConnection(p);
            ThreadedPair* self = this;
            Status st = AllocateQpair(
                &ctrl_loop_, TransportType::kTcp, Role::kController, qp,
                [self](const Status& e) {
                  if (!e.ok()) self->ctrl_failed_.store(true, std::memory_order_relaxed);
                },
                echo_->OnReceive(), &ctrl_qp_);
            ctrl_state_.store(st.ok() ? 1 : 2, std::memory_order_release);
          },
          &listener_);
      listening.set_value({s, s.ok() ? listener_->port() : uint16_t{0}});
    });
    auto [listen_status, port] = listening_result.get();
    if (!listen_status.ok()) return listen_status;

    bool have_host = false;
    Status host_status;
    tcp::Connect(&host_loop, "127.0.0.1", port, opts.host,
                 [&](const Status& st, const TcpQpairParams& p) {
                   host_status = st;
                   have_host = true;
                   if (!st.ok()) return;
                   TcpQpairParams hp = p;
                   hp.max_icd = opts.host_max_icd;
                   QpairParams qp;
                   qp.qsize = opts.qsize;
                   qp.max_icd = hp.max_icd;
                   qp.connection = tcp::WrapConnection(hp);
                   host_status = AllocateQpair(&host_loop, TransportType::kTcp, Role::kHost, qp,
                                               host.OnError(), host.OnReceive(), &host.qp);
                 });
    bool up = host_loop.RunUntil(
        [&] {
          return (have_host && !host_status.ok()) ||
                 (have_host && ctrl_state_.load(std::memory_order_acquire) != 0);
        },
        test::kWait);
    if (!up) return Status::TimedOut("threaded loopback connection did not come up");
    if (!host_status.ok()) return host_status;
    if (ctrl_state_.load(std::memory_order_acquire) != 1) {
      return Status::IoError("controller queue pair allocation failed");
    }
    return Status::OK();
  }

  bool ctrl_failed() const { return ctrl_failed_.load(std::memory_order_relaxed); }

  EventLoop host_loop;  // host thread
  Endpoint host;        // host thread

 private:
  EchoController* echo_;  // controller thread only, once Open has started
  EventLoop ctrl_loop_;
  std::thread ctrl_thread_;
  // Controller thread only:
  std::unique_ptr<tcp::Listener> listener_;
  Qpair* ctrl_qp_ = nullptr;
  // Shared:
  std::atomic<int> ctrl_state_{0};  // 0: waiting, 1: queue pair up, 2: allocation failed
  std::atomic<bool> ctrl_failed_{false};
};

struct Shape {
  uint8_t opc;
  uint32_t len;
  int depth;
  bool digests;
  EventLoop::Mode mode;
  bool two_loops;
  bool one_core = false;  // both threads on CPU 0
};

PairOptions OptionsFor(const Shape& shape, EchoController* echo) {
  PairOptions opts;
  opts.qsize = kQueueSize;
  opts.host.header_digest = opts.host.data_digest = shape.digests;
  opts.host_max_icd = 8192;  // 4 KiB writes go in the capsule, 128 KiB ones by R2T
  opts.ctrl.max_icd = 8192;
  opts.ctrl_receive = echo->OnReceive();
  return opts;
}

// Warms up, then times one completion per iteration, then drains.
void Measure(benchmark::State& state, EventLoop* loop, Endpoint* host, const Shape& shape) {
  Driver d(loop, host, shape.opc, shape.len, shape.depth);
  if (!d.Start() || !d.RunUntilCompleted(kWarmupCommands)) {
    state.SkipWithError(("warm-up: " + d.error()).c_str());
    d.Drain();
    return;
  }
  uint64_t target = d.completed();  // the iteration ends when completed() passes it
  bool ok = true;
  auto t0 = Clock::now();
  for (auto _ : state) {
    if (!d.RunUntilCompleted(target)) {
      ok = false;
      break;
    }
    target++;
  }
  auto t1 = Clock::now();
  if (!ok) {
    state.SkipWithError(d.error().c_str());
    d.Drain();
    return;
  }
  if (!d.Drain()) {
    state.SkipWithError(("drain: " + d.error()).c_str());
    return;
  }
  const auto n = static_cast<double>(state.iterations());
  const double us = std::chrono::duration<double, std::micro>(t1 - t0).count();
  state.counters["IOPS"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
  state.counters["us_per_io"] = benchmark::Counter(n > 0 ? us / n : 0.0);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(shape.len));
}

void RunShape(benchmark::State& state, Shape shape) {
  EchoController echo(kStoreBytes);
  PairOptions opts = OptionsFor(shape, &echo);
  if (!shape.two_loops) {
    // Host and controller on this one thread and one loop: see the file comment.
    test::LoopbackPair pair(shape.mode);
    Status s = pair.Open(opts);
    if (!s.ok()) {
      state.SkipWithError(("open: " + s.ToString()).c_str());
      return;
    }
    Measure(state, &pair.loop, &pair.host, shape);
    if (pair.ctrl.failed && !state.error_occurred()) {
      state.SkipWithError(("controller failed: " + pair.ctrl.error.ToString()).c_str());
    }
    return;
  }
  // Two threads. echo is used by the controller thread until ~ThreadedPair joins it.
  cpu_set_t saved;
  pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
  if (shape.one_core) ThreadedPair::PinTo(0);
  struct Restore {
    cpu_set_t* set;
    ~Restore() { pthread_setaffinity_np(pthread_self(), sizeof(*set), set); }
  } restore{&saved};
  ThreadedPair pair(shape.mode, &echo, shape.one_core ? 0 : -1);
  Status s = pair.Open(opts);
  if (!s.ok()) {
    state.SkipWithError(("open: " + s.ToString()).c_str());
    return;
  }
  Measure(state, &pair.host_loop, &pair.host, shape);
  if (pair.ctrl_failed() && !state.error_occurred()) {
    state.SkipWithError("controller queue pair failed");
  }
}

void RunIdle(benchmark::State& state, EventLoop::Mode mode) {
  EchoController echo(kStoreBytes);
  Shape shape{spec::kNvmRead, 4096, 1, false, mode, true};
  PairOptions opts = OptionsFor(shape, &echo);
  ThreadedPair pair(mode, &echo);
  Status s = pair.Open(opts);
  if (!s.ok()) {
    state.SkipWithError(("open: " + s.ToString()).c_str());
    return;
  }
  {
    Driver d(&pair.host_loop, &pair.host, shape.opc, shape.len, shape.depth);
    if (!d.Start() || !d.RunUntilCompleted(kWarmupCommands) || !d.Drain()) {
      state.SkipWithError(("warm-up: " + d.error()).c_str());
      return;
    }
  }
  auto cpu_seconds = [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);  // every thread: the host's and the controller's
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  };
  double cpu = 0, wall = 0;
  for (auto _ : state) {
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    const auto until = t0 + std::chrono::seconds(1);
    while (Clock::now() < until) pair.host_loop.RunOnce(std::chrono::milliseconds(100));
    cpu += cpu_seconds() - c0;
    wall += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  state.counters["cpu_pct"] = benchmark::Counter(wall > 0 ? 100.0 * cpu / wall : 0.0);
  if (pair.ctrl_failed()) state.SkipWithError("controller queue pair failed");
}

void Register(const std::string& name, const Shape& shape) {
  benchmark::RegisterBenchmark(name.c_str(), RunShape, shape)
      ->UseRealTime()  // wait mode sleeps and the two-loop shape has a second thread
      ->Unit(benchmark::kMicrosecond);
}

void RegisterAll() {
  using M = EventLoop::Mode;
  const uint8_t kRd = spec::kNvmRead;
  const uint8_t kWr = spec::kNvmWrite;
  // Latency: one command in flight.
  Register("1loop/read_4k_qd1/wait", {kRd, 4096, 1, false, M::kWait, false});
  Register("1loop/read_4k_qd1/poll", {kRd, 4096, 1, false, M::kPoll, false});
  Register("1loop/read_4k_qd1/wait/digests", {kRd, 4096, 1, true, M::kWait, false});
  Register("1loop/read_4k_qd1/poll/digests", {kRd, 4096, 1, true, M::kPoll, false});
  Register("1loop/write_4k_qd1_incapsule/poll", {kWr, 4096, 1, false, M::kPoll, false});
  Register("1loop/write_128k_qd1_r2t/poll", {kWr, 128 << 10, 1, false, M::kPoll, false});
  // Throughput: 32 commands in flight.
  Register("1loop/read_4k_qd32/wait", {kRd, 4096, 32, false, M::kWait, false});
  Register("1loop/read_4k_qd32/poll", {kRd, 4096, 32, false, M::kPoll, false});
  // The deployment shape: one thread (core) per side, polling.
  for (M m : {M::kPoll, M::kAdaptive, M::kWait}) {
    const std::string mode = LoopModeName(m);
    Register("2loops/read_4k_qd1/" + mode, {kRd, 4096, 1, false, m, true});
    Register("2loops/read_4k_qd32/" + mode, {kRd, 4096, 32, false, m, true});
    Register("2loops/write_4k_qd32/" + mode, {kWr, 4096, 32, false, m, true});
  }
  for (M m : {M::kPoll, M::kAdaptive, M::kWait}) {
    benchmark::RegisterBenchmark(("idle/" + std::string(LoopModeName(m))).c_str(), RunIdle, m)
        ->UseRealTime()
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
  }
  // Two loops sharing one core.
  for (M m : {M::kPoll, M::kAdaptive}) {
    const std::string mode = LoopModeName(m);
    Register("2loops-1core/read_4k_qd1/" + mode, {kRd, 4096, 1, false, m, true, true});
    Register("2loops-1core/read_4k_qd32/" + mode, {kRd, 4096, 32, false, m, true, true});
  }
}

}  // namespace
}  // namespace nvmf::bench

int main(int argc, char** argv) {
  nvmf::bench::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
