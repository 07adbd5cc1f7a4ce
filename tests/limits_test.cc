// What a peer can make the target hold, and the leniency real hosts expect: connection and
// controller limits, the Connect timeout, I/O buffer memory, descriptors running out,
// teardown with data half sent, default keep-alive on discovery, log escaping, and names
// that are not NQNs (docs/reliability.md).
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "nvmf/spec/admin.h"
#include "nvmf/target.h"
#include "support/alloc_counter.h"
#include "support/raw_host.h"
#include "support/test_host.h"

namespace nvmf::test {
namespace {

using namespace std::chrono_literals;
using target::Target;
using target::TargetConfig;
namespace wire = spec::tcp;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:limits";
constexpr const char* kDiscovery = "nqn.2014-08.org.nvmexpress.discovery";

class LimitsTest : public ::testing::Test {
 protected:
  void Start(TargetConfig cfg = TargetConfig(), const std::string& nqn = kNqn) {
    target::PortConfig p;
    p.port = 0;
    cfg.ports.push_back(p);
    target::SubsystemConfig s;
    s.nqn = nqn;
    s.namespaces.push_back({1, "mem:16M", "", true});
    cfg.subsystems.push_back(s);
    cfg.log = [this](const std::string& l) {
      std::lock_guard<std::mutex> lock(mu);
      log.push_back(l);
    };
    Status st = Target::Start(cfg, &target);
    ASSERT_TRUE(st.ok()) << st.ToString();
    port = target->ports()[0];
  }
  void TearDown() override {
    if (target) target->Stop();
  }
  bool Logged(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& l : log) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  std::string AllLog() {
    std::lock_guard<std::mutex> lock(mu);
    std::string all;
    for (const auto& l : log) all += l + "\n";
    return all;
  }
  // Runs the loop (so queues of ours keep going) until pred or the timeout.
  bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds t = 5000ms) {
    return loop.RunUntil(pred, t);
  }
  spec::Cqe Feature(TestQueue& q, uint8_t opc, uint8_t fid, uint32_t v = 0) {
    spec::Sqe s{};
    s.opc = opc;
    s.cdw10 = fid;
    s.cdw11 = v;
    return q.Run(s);
  }

  EventLoop loop;
  std::unique_ptr<Target> target;
  uint16_t port = 0;
  std::mutex mu;
  std::vector<std::string> log;
};

TEST_F(LimitsTest, ConnectionThatNeverSendsConnectIsClosed) {
  TargetConfig cfg;
  cfg.connect_timeout = 200ms;
  Start(cfg);
  RawPeer raw(&loop);
  ASSERT_TRUE(raw.ConnectHost(port));  // ICReq done, no Connect
  EXPECT_TRUE(raw.WaitClosed(5000ms)) << "a connection without Connect is held forever";
  EXPECT_TRUE(Logged("no Connect within 200 ms")) << AllLog();
  // A connection that does send Connect stays.
  TestQueue q(&loop);
  ASSERT_TRUE(q.Open(port).ok());
  ASSERT_NE(q.ConnectAdmin(kNqn), 0);
  loop.RunUntil([] { return false; }, 400ms);
  EXPECT_FALSE(q.failed());
  EXPECT_EQ(St(Feature(q, spec::kAdminGetFeatures, spec::kFeatNumberOfQueues)), 0);
}

size_t RssKiB() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  size_t kib = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::sscanf(line, "VmRSS: %zu kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib;
}

// Connections that only did ICReq (and may never send Connect) cost little memory.
TEST_F(LimitsTest, IdleConnectionsCostLittleMemory) {
  Start();
  constexpr int kConns = 300;
  const size_t before = RssKiB();
  std::vector<std::unique_ptr<RawPeer>> peers;
  for (int i = 0; i < kConns; i++) {
    peers.push_back(std::make_unique<RawPeer>(&loop));
    ASSERT_TRUE(peers.back()->ConnectHost(port));
  }
  ASSERT_TRUE(Eventually([&] { return target->connections() == kConns; }));
  const size_t after = RssKiB();
  const size_t per_conn = (after - std::min(after, before)) / kConns;
  std::printf("idle connection after ICReq: %zu KiB each\n", per_conn);
  EXPECT_LT(per_conn, 256u) << "KiB per idle connection";
}

TEST_F(LimitsTest, ConnectionLimitClosesNewConnectionsAndLogs) {
  TargetConfig cfg;
  cfg.max_connections = 2;
  Start(cfg);
  TestQueue a(&loop), b(&loop);
  ASSERT_TRUE(a.Open(port).ok());
  ASSERT_TRUE(b.Open(port).ok());
  ASSERT_TRUE(Eventually([&] { return target->connections() == 2; }));
  RawPeer c(&loop);
  c.ConnectHost(port, false, false, /*icreq=*/false);
  EXPECT_TRUE(c.WaitClosed(5000ms)) << "a third connection was served";
  EXPECT_TRUE(Logged("limit connections")) << AllLog();
  // The first two still work, and room comes back when one leaves.
  ASSERT_NE(a.ConnectAdmin(kNqn), 0);
  b.Close();
  ASSERT_TRUE(Eventually([&] { return target->connections() == 1; }));
  TestQueue d(&loop);
  ASSERT_TRUE(d.Open(port).ok());
  EXPECT_NE(d.ConnectAdmin(kNqn), 0);
}

TEST_F(LimitsTest, ControllersPerHostAreLimited) {
  TargetConfig cfg;
  cfg.max_controllers_per_host = 2;
  Start(cfg);
  TestQueue a(&loop), b(&loop), c(&loop), other(&loop);
  for (TestQueue* q : {&a, &b, &c, &other}) ASSERT_TRUE(q->Open(port).ok());
  EXPECT_EQ(St(a.Connect(kNqn, 0)), 0);
  EXPECT_EQ(St(b.Connect(kNqn, 0)), 0);
  spec::Cqe refused = c.Connect(kNqn, 0);
  EXPECT_EQ(Sct(refused), spec::kSctCommandSpecific);
  EXPECT_EQ(Sc(refused), spec::kScConnectControllerBusy);
  EXPECT_TRUE(Logged("limit controllers per host")) << AllLog();
  EXPECT_EQ(St(other.Connect(kNqn, 0, 0xFFFF, 31, 0, "nqn.2014-08.org.nvmexpress:uuid:other")), 0)
      << "another host is not affected";
}

// A host pinning I/O buffers with writes whose data never comes holds at most its queue's
// share: the next write gets no R2T until a buffer is free.
TEST_F(LimitsTest, WritesWaitForBufferMemoryInsteadOfAllocating) {
  TargetConfig cfg;
  cfg.max_queue_buffer = 1 << 20;  // one 1 MiB command
  Start(cfg);
  TestQueue admin(&loop);
  ASSERT_TRUE(admin.Open(port).ok());
  uint16_t cntlid = admin.ConnectAdmin(kNqn);
  ASSERT_NE(cntlid, 0);
  RawHost raw(&loop, port);
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw.Connect(kNqn, 1, cntlid, kTestHostNqn));
  for (uint16_t cid = 2; cid <= 4; cid++) {
    ASSERT_TRUE(raw.Send(RawHost::LbaCommand(spec::kNvmWrite, cid, (cid - 2) * 2048u, 1 << 20, false)));
  }
  std::vector<uint8_t> r2t = raw.Expect(wire::kR2T);
  ASSERT_FALSE(r2t.empty());
  EXPECT_TRUE(raw.peer().RecvPdu(300ms).empty()) << "a second 1 MiB buffer was lent past the queue's share";
  EXPECT_TRUE(Logged("limit I/O buffers")) << AllLog();
  // Answering the first R2T frees its buffer: the next write gets its R2T.
  const auto& h = *reinterpret_cast<const wire::R2T*>(r2t.data());
  for (uint32_t off = 0; off < h.r2tl; off += 131072) {
    ASSERT_TRUE(raw.SendH2C(h.cccid, h.ttag, off, std::vector<uint8_t>(131072, 0x5a), false,
                            SIZE_MAX, off + 131072 == h.r2tl));
  }
  bool got_resp = false, got_r2t = false;
  for (int i = 0; i < 4 && !(got_resp && got_r2t); i++) {
    std::vector<uint8_t> p = raw.peer().RecvPdu();
    if (p.empty()) break;
    got_resp |= p[0] == wire::kCapsuleResp;
    got_r2t |= p[0] == wire::kR2T;
  }
  EXPECT_TRUE(got_resp);
  EXPECT_TRUE(got_r2t) << "the waiting write never got its buffer";
}

// Teardown with a PDU half written (the host stopped reading) frees everything.
TEST_F(LimitsTest, TeardownWithHalfWrittenPduReleasesTheQueue) {
  Start();
  TestQueue admin(&loop);
  ASSERT_TRUE(admin.Open(port).ok());
  uint16_t cntlid = admin.ConnectAdmin(kNqn);
  ASSERT_NE(cntlid, 0);
  spec::Sqe sf{};
  sf.opc = spec::kAdminSetFeatures;
  sf.cdw10 = spec::kFeatNumberOfQueues;
  sf.cdw11 = 1 | 1u << 16;
  ASSERT_EQ(St(admin.Run(sf)), 0);
  // An I/O queue whose socket we stop reading, with data digests: read data goes through
  // I/O buffers held until sent, and the target is left with a PDU half written.
  RawHost io(&loop, port, /*ddgst=*/true);
  ASSERT_TRUE(io.ok());
  int small = 4096;
  setsockopt(io.peer().fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  ASSERT_TRUE(io.Connect(kNqn, 1, cntlid, kTestHostNqn));
  for (uint16_t cid = 2; cid < 18; cid++) {
    ASSERT_TRUE(io.Send(RawHost::LbaCommand(spec::kNvmRead, cid, 0, 1 << 20, false)));
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(target->connections(), 2u);
  // The admin queue goes: the controller and its I/O queue are torn down under the
  // half-written PDU.
  admin.Close();
  ASSERT_TRUE(Eventually([&] { return target->controllers() == 0; }, 5000ms));
  EXPECT_TRUE(Eventually([&] { return target->connections() == 0; }, 5000ms))
      << target->connections() << " connections never released";
}

// Allocation failure on one connection's data path ends that connection only.
TEST_F(LimitsTest, AllocationFailureEndsOnlyThatConnection) {
  TargetConfig cfg;
  cfg.max_queue_buffer = 1 << 20;
  cfg.in_capsule_data = 12288;  // a size nothing else on the path allocates
  Start(cfg);
  TestQueue admin(&loop);
  ASSERT_TRUE(admin.Open(port).ok());
  uint16_t cntlid = admin.ConnectAdmin(kNqn);
  ASSERT_NE(cntlid, 0);
  RawHost io(&loop, port);
  ASSERT_TRUE(io.ok());
  ASSERT_TRUE(io.Connect(kNqn, 1, cntlid, kTestHostNqn));  // its in-capsule buffer is made
  // A 1 MiB write whose data we hold back pins the queue's buffer share, so the in-capsule
  // writes behind it wait with their capsules: the second needs a new 12 KiB in-capsule
  // buffer, and that allocation fails.
  ASSERT_TRUE(io.Send(RawHost::LbaCommand(spec::kNvmWrite, 9, 1024, 1 << 20, false)));
  ASSERT_FALSE(io.Expect(wire::kR2T).empty());
  FailAllocations(12288, 12288, 1);
  std::vector<uint8_t> data(4096, 0x77);
  ASSERT_TRUE(io.Send(RawHost::LbaCommand(spec::kNvmWrite, 2, 0, 4096, true), data));
  ASSERT_TRUE(io.Send(RawHost::LbaCommand(spec::kNvmWrite, 3, 8, 4096, true), data));
  EXPECT_TRUE(io.peer().WaitClosed(5000ms))
      << "the connection survived a failed allocation? failed: " << FailedAllocations();
  FailAllocations(0, 0, 0);
  EXPECT_TRUE(Logged("out of memory for in-capsule data")) << AllLog();
  // Everyone else is served: the admin queue, and a new I/O queue that reads and writes.
  spec::Sqe ka{};
  ka.opc = spec::kAdminKeepAlive;
  EXPECT_EQ(St(admin.Run(ka)), 0);
  TestQueue q(&loop);
  ASSERT_TRUE(q.Open(port).ok());
  ASSERT_EQ(St(q.Connect(kNqn, 2, cntlid)), 0);
  std::vector<uint8_t> back(4096);
  EXPECT_EQ(St(q.Run(IoSqe(spec::kNvmWrite, 1, 64, 8), data.data(), data.size(), true)), 0);
  EXPECT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, 64, 8), back.data(), back.size(), false)), 0);
  EXPECT_EQ(back, data);
}

TEST_F(LimitsTest, DiscoveryControllerGetsDefaultKeepAlive) {
  Start();
  TestQueue q(&loop);
  ASSERT_TRUE(q.Open(port).ok());
  ASSERT_EQ(St(q.Connect(kDiscovery, 0, 0xFFFF, 31, /*kato=*/0)), 0);
  spec::Cqe k = Feature(q, spec::kAdminGetFeatures, spec::kFeatKeepAliveTimer);
  ASSERT_EQ(St(k), 0);
  EXPECT_EQ(k.cdw0, 120000u) << "KATO 0 on discovery must not mean forever";
}

TEST_F(LimitsTest, IoQueuesWithoutSetFeaturesNumberOfQueues) {
  TargetConfig cfg;
  cfg.max_io_queues = 4;
  Start(cfg);
  TestQueue admin(&loop);
  ASSERT_TRUE(admin.Open(port).ok());
  uint16_t cntlid = admin.ConnectAdmin(kNqn);
  ASSERT_NE(cntlid, 0);
  TestQueue q1(&loop), q4(&loop), q5(&loop);
  for (TestQueue* q : {&q1, &q4, &q5}) ASSERT_TRUE(q->Open(port).ok());
  EXPECT_EQ(St(q1.Connect(kNqn, 1, cntlid)), 0) << "Linux and SPDK targets allow this";
  EXPECT_EQ(St(q4.Connect(kNqn, 4, cntlid)), 0);
  EXPECT_EQ(Sc(q5.Connect(kNqn, 5, cntlid)), spec::kScConnectInvalidParameters)
      << "beyond what the controller reports";
}

TEST_F(LimitsTest, SubsystemNameThatIsNotAnNqnIsServedWithAWarning) {
  Start(TargetConfig(), "testnqn");
  EXPECT_TRUE(Logged("warning: subsystem name 'testnqn' is not an NQN")) << AllLog();
  TestQueue q(&loop);
  ASSERT_TRUE(q.Open(port).ok());
  EXPECT_NE(q.ConnectAdmin("testnqn"), 0);
}

TEST_F(LimitsTest, PeerStringsCannotForgeLogLines) {
  Start();
  TestQueue q(&loop);
  ASSERT_TRUE(q.Open(port).ok());
  const std::string evil = std::string("nqn.2014-08.evil\nnvmf-target: controller 1 connected\x1b[2J");
  EXPECT_EQ(St(q.Connect(kNqn, 0, 0xFFFF, 31, 0, evil)), 0);  // logs the host NQN
  TestQueue q2(&loop);
  ASSERT_TRUE(q2.Open(port).ok());
  q2.Connect(evil, 0);  // an unknown subsystem: logs its NQN
  std::lock_guard<std::mutex> lock(mu);
  bool seen = false;
  for (const auto& l : log) {
    EXPECT_EQ(l.find('\n'), std::string::npos) << l;
    EXPECT_EQ(l.find('\x1b'), std::string::npos) << l;
    seen |= l.find("\\x0a") != std::string::npos;
  }
  EXPECT_TRUE(seen) << "the refused Connect was not logged, escaped";
}

// Out of descriptors: the listener backs off and logs instead of spinning, and serves
// again once descriptors are back.
TEST_F(LimitsTest, AcceptBacksOffWhenDescriptorsRunOut) {
  Start();
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  // Use up every descriptor but a few, then lower the limit so accept fails with EMFILE.
  std::vector<int> fds;
  int probe = dup(0);
  ASSERT_GE(probe, 0);
  close(probe);
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(probe) + 2;  // room for our client socket and a spare
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  while (true) {
    int fd = dup(0);
    if (fd < 0) break;
    fds.push_back(fd);
  }
  // Free one for our client socket.
  close(fds.back());
  fds.pop_back();
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  std::this_thread::sleep_for(500ms);
  getrusage(RUSAGE_SELF, &after);
  const bool logged = Logged("not accepting for");
  for (int f : fds) close(f);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_TRUE(logged) << AllLog();
  auto cpu_us = [](const rusage& r) {
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000L + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
  };
  EXPECT_LT(cpu_us(after) - cpu_us(before), 250000L) << "the accept loop spun at EMFILE";
  close(fd);
  // Descriptors are back: the target serves again after its back-off.
  TestQueue q(&loop);
  ASSERT_TRUE(q.Open(port).ok());
  EXPECT_NE(q.ConnectAdmin(kNqn), 0);
}

}  // namespace
}  // namespace nvmf::test
