// The target with several event loops under several hosts at once, each host on its own
// thread: I/O from many connections, connections dropped in the middle of I/O, a
// controller torn down while its I/O queues (on another target thread) are busy, and
// Target::Stop while I/O runs. Written for ThreadSanitizer (scripts/test runs it in
// build/tsan); in a normal build it checks the data and that nothing hangs or crashes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nvmf/host_sync.h"
#include "nvmf/spec/admin.h"
#include "nvmf/target.h"
#include "support/fault_proxy.h"
#include "support/test_host.h"

namespace nvmf::test {
namespace {

using namespace std::chrono_literals;
using target::Target;
using target::TargetConfig;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:threads";
constexpr uint32_t kBlock = 512;

class ThreadsTest : public ::testing::Test {
 protected:
  void Start(int threads = 2) {
    TargetConfig cfg;
    target::PortConfig p;
    p.port = 0;
    cfg.ports.push_back(p);
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.namespaces.push_back({1, "mem:64M", "", true});
    s.namespaces.push_back({2, "null:64M", "", true});
    // A file: its I/O goes through io_uring or the blocking worker threads.
    char path[] = "/tmp/nvmf-threads-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 64 << 20), 0);
    close(fd);
    file_ = path;
    s.namespaces.push_back({3, "file:" + file_, "", true});
    cfg.subsystems.push_back(s);
    cfg.threads = threads;
    cfg.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(line);
    };
    Status st = Target::Start(cfg, &target);
    ASSERT_TRUE(st.ok()) << st.ToString();
    port = target->ports()[0];
  }
  void TearDown() override {
    if (target) target->Stop();
    if (!file_.empty()) unlink(file_.c_str());
  }
  host::ConnectOptions Options(uint16_t to, uint32_t queues, bool digests = false) {
    host::ConnectOptions o;
    o.trsvcid = to;
    o.subnqn = kNqn;
    o.hostnqn = kTestHostNqn;
    o.nr_io_queues = queues;
    o.queue_size = 32;
    o.kato_ms = 0;
    o.header_digest = digests;
    o.data_digest = digests;
    o.connect_timeout = 5000ms;
    o.io_timeout = 10000ms;
    return o;
  }

  // The target's log so far, for failure messages.
  std::string Logs() {
    std::lock_guard<std::mutex> lock(log_mu_);
    std::string all = "target log:";
    for (const std::string& l : log_) all += "\n  " + l;
    return all;
  }

  std::unique_ptr<Target> target;
  uint16_t port = 0;
  std::string file_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

// Keeps `depth` commands in flight on every I/O queue of `h` (alternating writes of a
// pattern and reads, over [lba0, lba0 + span)) until `stop` or a failure. Returns the
// number of commands that succeeded; *errors counts the others.
int Hammer(host::SyncController& h, uint32_t nsid, uint64_t lba0, uint64_t span,
           const std::atomic<bool>& stop, int* errors, int max_ops = 1 << 30,
           std::string* first_error = nullptr, std::atomic<int>* progress = nullptr) {
  constexpr int kDepth = 4;
  constexpr uint32_t kNlb = 16;
  enum : int { kIdle, kBusy, kOk, kFailed };
  const uint32_t queues = h.async().io_queue_count();
  struct Slot {
    std::vector<uint8_t> buf;
    int state = kIdle;
    Status error;
  };
  std::vector<Slot> slots(queues * kDepth);
  for (size_t i = 0; i < slots.size(); i++) {
    slots[i].buf.resize(kNlb * kBlock);
    Fill(slots[i].buf, static_cast<uint32_t>(i + 1));
  }
  int done = 0, issued = 0, failed = 0;
  uint64_t x = lba0 + 1;
  while (!stop.load() && h.async().connected() && done + failed < max_ops) {
    for (size_t i = 0; i < slots.size() && issued < max_ops; i++) {
      Slot& s = slots[i];
      if (s.state != kIdle) continue;
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      uint64_t lba = lba0 + (x >> 33) % (span - kNlb);
      auto cb = [sp = &s](const Status& st, const spec::Cqe&) {
        sp->state = st.ok() ? kOk : kFailed;
        if (!st.ok()) sp->error = st;
      };
      auto qid = static_cast<uint16_t>(1 + i % queues);
      MemDesc m = MemDesc::Buffer(s.buf.data(), s.buf.size());
      Status st = (x >> 20) & 1 ? h.async().Write(qid, nsid, lba, kNlb, m, s.buf.size(), cb)
                                : h.async().Read(qid, nsid, lba, kNlb, m, s.buf.size(), cb);
      if (!st.ok()) break;
      s.state = kBusy;
      issued++;
    }
    h.loop().RunOnce(1ms);
    for (Slot& s : slots) {
      if (s.state == kOk) done++;
      if (s.state == kOk && progress != nullptr) (*progress)++;
      if (s.state == kFailed && failed++ == 0 && first_error != nullptr) {
        *first_error = s.error.ToString();
      }
      if (s.state == kOk || s.state == kFailed) s.state = kIdle;
    }
  }
  // Let what is in flight finish (or fail) before the buffers go.
  h.loop().RunUntil([&] {
    for (const Slot& s : slots) {
      if (s.state == kBusy) return false;
    }
    return true;
  }, 15000ms);
  for (Slot& s : slots) {
    if (s.state == kOk) done++;
    if (s.state == kFailed) failed++;
  }
  *errors += failed;
  if (!h.async().connected()) (*errors)++;
  return done;
}

// Four hosts, each on its own thread with two I/O queues (so that every host has queues on
// both target threads), write and verify their own area, then all write one shared area at
// once.
TEST_F(ThreadsTest, ManyHostsVerifyAgainstTwoTargetThreads) {
  Start(2);
  constexpr int kHosts = 4;
  constexpr uint64_t kArea = 2048;  // blocks per host
  std::atomic<int> failures{0};
  std::vector<std::string> why(kHosts);
  std::vector<std::thread> hosts;
  for (int t = 0; t < kHosts; t++) {
    hosts.emplace_back([&, t] {
      host::SyncController h;
      Status st = h.Connect(Options(port, 2, t % 2 == 0));
      if (!st.ok()) {
        why[t] = "connect: " + st.ToString();
        failures++;
        return;
      }
      const uint64_t base = static_cast<uint64_t>(t) * kArea;
      std::vector<uint8_t> shadow(kArea * kBlock, 0);
      uint64_t x = static_cast<uint64_t>(t) + 99;
      for (int i = 0; i < 40; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t nlb = 1u + static_cast<uint32_t>((x >> 40) % 256);
        uint64_t lba = (x >> 20) % (kArea - nlb);
        std::vector<uint8_t> buf(nlb * kBlock);
        Fill(buf, static_cast<uint32_t>(t * 1000 + i));
        st = h.Write(1, base + lba, nlb, kBlock, buf.data());
        if (!st.ok()) {
          why[t] = "write: " + st.ToString();
          failures++;
          return;
        }
        std::memcpy(shadow.data() + lba * kBlock, buf.data(), buf.size());
        st = h.Read(1, base + lba, nlb, kBlock, buf.data());
        if (!st.ok() || std::memcmp(buf.data(), shadow.data() + lba * kBlock, buf.size()) != 0) {
          why[t] = "read back at " + std::to_string(lba) + ": " + st.ToString();
          failures++;
          return;
        }
      }
      // Everyone at once on one shared area, and the null namespace.
      std::atomic<bool> never{false};
      int errors = 0;
      std::string first;
      int done = Hammer(h, 1, kHosts * kArea, 1024, never, &errors, 200, &first);
      done += Hammer(h, 2, 0, 1024, never, &errors, 100, &first);
      done += Hammer(h, 3, 0, 1024, never, &errors, 100, &first);
      if (errors != 0 || done < 400) {
        why[t] = "shared area: " + std::to_string(done) + " done, " + std::to_string(errors) +
                 " errors; first: " + first;
        failures++;
      }
      h.Close();
    });
  }
  for (auto& th : hosts) th.join();
  for (int t = 0; t < kHosts; t++) EXPECT_TRUE(why[t].empty()) << "host " << t << ": " << why[t];
  EXPECT_EQ(failures.load(), 0);
  for (int i = 0; i < 500 && target->controllers() != 0; i++) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(target->controllers(), 0u);
}

// Hosts whose connections are reset or closed at random points of their traffic, again and
// again, while a steady host keeps doing I/O: the steady host sees no error, and the target
// ends up with no controller left.
TEST_F(ThreadsTest, ConnectionsDroppedMidIo) {
  Start(2);
  std::atomic<bool> stop{false};
  std::atomic<int> steady_errors{0}, steady_ops{0};
  std::string steady_why;  // the steady host's first error (read after the join)
  std::thread steady([&] {
    host::SyncController h;
    if (!h.Connect(Options(port, 2)).ok()) {
      steady_errors++;
      return;
    }
    int errors = 0;
    steady_ops += Hammer(h, 1, 0, 4096, stop, &errors, 1 << 30, &steady_why);
    steady_errors += errors;
    h.Close();
  });
  constexpr int kDroppers = 3;
  std::atomic<int> cuts{0};
  std::vector<std::thread> droppers;
  for (int t = 0; t < kDroppers; t++) {
    droppers.emplace_back([&, t] {
      for (int round = 0; round < 4; round++) {
        FaultProxyOptions po;
        po.target_port = port;
        po.seed = static_cast<uint32_t>(t * 10 + round + 1);
        FaultProxy proxy(po);
        if (!proxy.Start().ok()) return;
        // Every connection of the association (admin and I/O) is cut after this many of
        // its bytes: the set-up may fail already, or I/O runs until the cut.
        uint64_t cut = 400 + (static_cast<uint64_t>(t * 7919 + round * 104729) % 300000);
        proxy.SetCut(static_cast<int64_t>(cut), round % 2 ? CutMode::kClose : CutMode::kReset);
        host::SyncController h;
        if (h.Connect(Options(proxy.port(), 2, round % 2 == 0)).ok()) {
          int errors = 0;
          std::atomic<bool> never{false};
          Hammer(h, t == 1 ? 3 : 1, 8192 + static_cast<uint64_t>(t) * 4096, 4096, never, &errors);
        }
        h.Close();
        cuts += proxy.cuts();
        proxy.Stop();
      }
    });
  }
  for (auto& th : droppers) th.join();
  // The steady host ran all along.
  std::this_thread::sleep_for(20ms);
  stop = true;
  steady.join();
  EXPECT_EQ(steady_errors.load(), 0) << steady_why << "\n" << Logs();
  EXPECT_GT(steady_ops.load(), 0);
  EXPECT_GT(cuts.load(), 0);
  // Every dropped association is gone once the target has noticed.
  for (int i = 0; i < 500 && target->controllers() != 0; i++) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(target->controllers(), 0u);
}

// A controller whose admin queue goes away while its I/O queues, on the other target
// thread, are busy: the target tears the I/O queues down from the admin queue's thread.
// Repeated, with a second host working throughout.
TEST_F(ThreadsTest, ControllerTornDownWhileItsQueuesWork) {
  Start(2);
  std::atomic<bool> stop{false};
  std::atomic<int> steady_errors{0};
  std::string steady_why;  // the steady host's first error (read after the join)
  std::thread steady([&] {
    host::SyncController h;
    if (!h.Connect(Options(port, 2)).ok()) {
      steady_errors++;
      return;
    }
    int errors = 0;
    Hammer(h, 1, 0, 4096, stop, &errors, 1 << 30, &steady_why);
    steady_errors += errors;
    h.Close();
  });
  // The steady host's thread is joined whatever happens below.
  struct Joiner {
    std::atomic<bool>* stop;
    std::thread* t;
    ~Joiner() {
      *stop = true;
      if (t->joinable()) t->join();
    }
  } joiner{&stop, &steady};
  for (int round = 0; round < 6; round++) {
    EventLoop admin_loop;
    TestQueue a(&admin_loop);
    Status os = a.Open(port);
    ASSERT_TRUE(os.ok()) << "round " << round << ": " << os.ToString() << "\n" << Logs();
    uint16_t id = a.ConnectAdmin(kNqn);
    ASSERT_NE(id, 0) << "round " << round << "\n" << Logs();
    spec::Sqe sf{};
    sf.opc = spec::kAdminSetFeatures;
    sf.cdw10 = spec::kFeatNumberOfQueues;
    sf.cdw11 = 1 | 1u << 16;
    ASSERT_EQ(St(a.Run(sf)), 0);
    std::atomic<int> ios{0};
    std::atomic<bool> io_failed{false};
    std::atomic<bool> ready{false};
    std::string io_why;
    std::thread io([&] {
      EventLoop l;
      TestQueue q1(&l), q2(&l);
      for (auto [q, qid] : {std::pair<TestQueue*, uint16_t>{&q1, 1}, {&q2, 2}}) {
        Status qs = q->Open(port, false, false, 8192, 32);
        spec::Cqe c{};
        if (qs.ok()) c = q->Connect(kNqn, qid, id, 31);
        if (!qs.ok() || St(c) != 0) {
          io_why = "qid " + std::to_string(qid) + ": " + qs.ToString() + ", Connect status " +
                   std::to_string(St(c)) + (q->failed() ? ", " + q->error().ToString() : "");
          io_failed = true;
          break;
        }
      }
      ready = true;
      if (io_failed) return;
      std::vector<uint8_t> b1(64 * kBlock), b2(64 * kBlock);
      Fill(b1, 1);
      Fill(b2, 2);
      int in1 = 0, in2 = 0;  // in flight: at most 8 per queue (of 32 entries)
      while (!q1.failed() || !q2.failed()) {
        uint64_t lba = 16384 + static_cast<uint64_t>(round) * 512;
        if (!q1.failed() && in1 < 8 &&
            q1.Submit(IoSqe(spec::kNvmWrite, 1, lba, 64), b1.data(), b1.size(), true) != 0) {
          in1++;
        }
        if (!q2.failed() && in2 < 8 &&
            q2.Submit(IoSqe(spec::kNvmRead, 1, lba, 64), b2.data(), b2.size(), false) != 0) {
          in2++;
        }
        l.RunUntil([&] { return false; }, 1ms);
        in1 -= static_cast<int>(q1.TakeResponses().size());
        in2 -= static_cast<int>(q2.TakeResponses().size());
        ios++;
        if (ios.load() > 20000) break;  // a backstop: the teardown never came
      }
      // Drain: the queues have failed; what was in flight was failed with them.
      q1.Close();
      q2.Close();
    });
    admin_loop.RunUntil([&] { return ready.load() && ios.load() >= 10; }, 10000ms);
    auto t0 = std::chrono::steady_clock::now();
    a.Close();  // the admin connection goes: the controller and its I/O queues with it
    io.join();
    std::printf("round %d: I/O queues ended %lld ms after the admin queue (%d turns)\n", round,
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - t0)
                                           .count()),
                ios.load());
    EXPECT_FALSE(io_failed.load()) << "round " << round << ": I/O queues did not connect: "
                                   << io_why << "\n" << Logs();
    EXPECT_LT(ios.load(), 20000) << "round " << round << ": the I/O queues outlived their controller";
  }
  stop = true;
  steady.join();
  EXPECT_EQ(steady_errors.load(), 0) << steady_why << "\n" << Logs();
}

// A host that sends more commands than its queue has entries (the transport lets a host
// have twice the queue size of capsules), again and again, while a steady host works on
// the other target thread and on the same one: the steady host sees no error.
TEST_F(ThreadsTest, QueueOverrunDoesNotDisturbOthers) {
  Start(2);
  std::atomic<bool> stop{false};
  std::atomic<int> steady_errors{0}, steady_ops{0};
  std::string steady_why;
  std::thread steady([&] {
    host::SyncController h;
    if (!h.Connect(Options(port, 2)).ok()) {
      steady_errors++;
      return;
    }
    int errors = 0;
    steady_ops += Hammer(h, 1, 0, 4096, stop, &errors, 1 << 30, &steady_why);
    steady_errors += errors;
    h.Close();
  });
  struct Joiner {
    std::atomic<bool>* stop;
    std::thread* t;
    void Join() {
      *stop = true;
      if (t->joinable()) t->join();
    }
    ~Joiner() { Join(); }
  } joiner{&stop, &steady};
  EventLoop l;
  int ended = 0;
  for (int round = 0; round < 4; round++) {
    TestQueue a(&l), q(&l);
    ASSERT_TRUE(a.Open(port).ok());
    uint16_t id = a.ConnectAdmin(kNqn);
    ASSERT_NE(id, 0);
    spec::Sqe sf{};
    sf.opc = spec::kAdminSetFeatures;
    sf.cdw10 = spec::kFeatNumberOfQueues;
    sf.cdw11 = 0;
    ASSERT_EQ(St(a.Run(sf)), 0);
    ASSERT_TRUE(q.Open(port, false, false, 8192, 64).ok());
    ASSERT_EQ(St(q.Connect(kNqn, 1, id, 7)), 0);  // 8 entries, and we send up to 64
    std::vector<uint8_t> buf(64 * kBlock);
    Fill(buf, 5);
    for (int i = 0; i < 64 && !q.failed(); i++) {
      q.Submit(IoSqe(i % 2 ? spec::kNvmWrite : spec::kNvmRead, 1, 8192 + i * 64u, 64), buf.data(),
               buf.size(), i % 2 != 0);
    }
    // Every response, or the end of the queue (the target may close it).
    q.WaitResponses(64, 10000ms);
    if (q.failed()) ended++;
    q.TakeResponses();
  }
  joiner.Join();
  std::printf("the target closed %d of 4 overrunning queues\n", ended);
  EXPECT_GT(steady_ops.load(), 0);
  EXPECT_EQ(steady_errors.load(), 0) << steady_why << "\n" << Logs();
}

// Target::Stop while hosts on several threads have I/O in flight: Stop returns, every host
// sees its association end, nothing crashes.
TEST_F(ThreadsTest, StopWhileIoRuns) {
  Start(2);
  constexpr int kHosts = 3;
  std::atomic<int> running{0};
  std::atomic<int> ops{0};
  std::vector<std::thread> hosts;
  for (int t = 0; t < kHosts; t++) {
    hosts.emplace_back([&, t] {
      host::SyncController h;
      if (!h.Connect(Options(port, 2, t == 0)).ok()) return;
      running++;
      int errors = 0;
      std::atomic<bool> never{false};
      Hammer(h, static_cast<uint32_t>(t + 1), static_cast<uint64_t>(t) * 4096, 4096, never, &errors, 1 << 30,
             nullptr, &ops);
      h.Close();
    });
  }
  for (int i = 0; i < 1000 && (running.load() < kHosts || ops.load() < 200); i++) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(running.load(), kHosts);
  auto t0 = std::chrono::steady_clock::now();
  target->Stop();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  for (auto& th : hosts) th.join();
  // Not an assertion on speed: a note for whoever reads the log (the drain backstop is 5 s).
  std::printf("Target::Stop with I/O in flight took %lld ms\n", static_cast<long long>(ms.count()));
  EXPECT_GT(ops.load(), 0);
  EXPECT_EQ(target->controllers(), 0u);
}

}  // namespace
}  // namespace nvmf::test
