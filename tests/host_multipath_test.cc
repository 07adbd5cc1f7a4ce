// MultipathController against this project's target with two ports: I/O on the optimized
// path, moved when ANA states change or a listener goes, waiting while no path can serve,
// and no command failed on the way.
#include <gtest/gtest.h>

#include "nvmf/host_multipath.h"
#include "nvmf/spec/admin.h"
#include "nvmf/target.h"

namespace nvmf::test {
namespace {

using namespace std::chrono_literals;
using host::MultipathController;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:multipath";

class Multipath : public ::testing::Test {
 protected:
  void SetUp() override {
    target::TargetConfig cfg;
    cfg.threads = 2;
    cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
    cfg.ports.push_back(target::PortConfig{2, "127.0.0.1", 0, {}});
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.namespaces = {{1, "mem:8M", "", true}};
    cfg.subsystems.push_back(s);
    cfg.log = [](const std::string&) {};
    ASSERT_TRUE(target::Target::Start(cfg, &tgt).ok());
    std::vector<host::ConnectOptions> paths;
    for (uint16_t port : tgt->ports()) {
      host::ConnectOptions o;
      o.trsvcid = port;
      o.subnqn = kNqn;
      o.hostnqn = "nqn.2024-01.io.nvmf:a-host";
      o.nr_io_queues = 2;
      o.connect_timeout = 1000ms;
      paths.push_back(o);
    }
    host::ReconnectOptions r;
    r.reconnect_delay = 100ms;
    r.ctrl_loss_tmo = 20000ms;
    mp = std::make_unique<MultipathController>(&loop, paths, r);
    bool done = false;
    Status st;
    mp->Connect([&](const Status& s2) {
      st = s2;
      done = true;
    });
    ASSERT_TRUE(loop.RunUntil([&] { return done; }, 10000ms));
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_TRUE(loop.RunUntil([&] { return mp->path_ana(0, 1) != 0 && mp->path_ana(1, 1) != 0; }, 5000ms));
  }
  void TearDown() override {
    mp.reset();
    tgt->Stop();
  }
  // Keeps 8 writes going until stopped; counts outcomes.
  struct Writer {
    MultipathController* mp;
    uint64_t ok = 0, failed = 0;
    uint32_t inflight = 0;
    bool stop = false;
    Status first_error;
    std::vector<uint8_t> buf = std::vector<uint8_t>(4096, 0x42);
    void Issue(uint32_t i) {
      if (stop) return;
      inflight++;
      Writer* self = this;
      Status s = mp->Write(1 + i % 2, 1, (i % 512) * 8, 8, MemDesc::Buffer(buf.data(), 4096), 4096,
                           [self, i](const Status& st, const spec::Cqe&) {
                             self->inflight--;
                             if (st.ok()) {
                               self->ok++;
                             } else if (self->failed++ == 0) {
                               self->first_error = st;
                             }
                             self->Issue(i + 8);
                           });
      if (!s.ok()) {
        inflight--;
        failed++;
      }
    }
  };
  // Runs the loop for a while and returns the commands each path took meanwhile.
  std::pair<uint64_t, uint64_t> Run(std::chrono::milliseconds d) {
    const uint64_t a = mp->path_commands(0), b = mp->path_commands(1);
    loop.RunUntil([] { return false; }, d);
    return {mp->path_commands(0) - a, mp->path_commands(1) - b};
  }

  std::unique_ptr<target::Target> tgt;
  EventLoop loop;
  std::unique_ptr<MultipathController> mp;
};

TEST_F(Multipath, IoFollowsAnaAndSurvivesAPathGoing) {
  Writer w{mp.get()};
  for (uint32_t i = 0; i < 8; i++) w.Issue(i);
  auto [a, b] = Run(200ms);
  EXPECT_GT(a, 50u) << "the first optimized path takes the I/O";
  EXPECT_EQ(b, 0u);

  ASSERT_TRUE(tgt->SetAnaState(1, 1, spec::kAnaNonOptimized).ok());
  ASSERT_TRUE(loop.RunUntil([&] { return mp->path_ana(0, 1) == spec::kAnaNonOptimized; }, 5000ms));
  std::tie(a, b) = Run(200ms);
  EXPECT_EQ(a, 0u) << "the non-optimized path still gets I/O";
  EXPECT_GT(b, 50u);

  ASSERT_TRUE(tgt->SetAnaState(2, 1, spec::kAnaInaccessible).ok());  // port 1 is all that is left
  ASSERT_TRUE(loop.RunUntil([&] { return mp->path_ana(1, 1) == spec::kAnaInaccessible; }, 5000ms));
  std::tie(a, b) = Run(200ms);
  EXPECT_GT(a, 50u);

  ASSERT_TRUE(tgt->SetAnaState(2, 1, spec::kAnaOptimized).ok());
  ASSERT_TRUE(loop.RunUntil([&] { return mp->path_ana(1, 1) == spec::kAnaOptimized; }, 5000ms));
  const uint16_t port2 = tgt->ports()[1];
  ASSERT_TRUE(tgt->RemoveListener(2).ok());  // the optimized path goes away under I/O
  ASSERT_TRUE(loop.RunUntil([&] { return !mp->path_live(1); }, 5000ms));
  std::tie(a, b) = Run(200ms);
  EXPECT_GT(a, 50u) << "I/O did not move to the remaining path";
  EXPECT_GT(mp->failovers(), 0u);

  uint16_t bound = 0;
  ASSERT_TRUE(tgt->AddListener(target::PortConfig{2, "127.0.0.1", port2, {}}, &bound).ok());
  ASSERT_TRUE(loop.RunUntil([&] { return mp->path_live(1) && mp->path_ana(1, 1) == spec::kAnaOptimized; }, 5000ms));
  std::tie(a, b) = Run(200ms);
  EXPECT_GT(b, 50u) << "the optimized path, back, does not take the I/O again";

  w.stop = true;
  ASSERT_TRUE(loop.RunUntil([&] { return w.inflight == 0; }, 5000ms));
  EXPECT_EQ(w.failed, 0u) << w.first_error.ToString();
}

TEST_F(Multipath, CommandsWaitWhileNoPathServesThenFinish) {
  ASSERT_TRUE(tgt->SetAnaState(1, 1, spec::kAnaInaccessible).ok());
  ASSERT_TRUE(tgt->SetAnaState(2, 1, spec::kAnaChange).ok());
  ASSERT_TRUE(loop.RunUntil([&] { return mp->path_ana(0, 1) == spec::kAnaInaccessible &&
                                         mp->path_ana(1, 1) == spec::kAnaChange; },
                            5000ms));
  Writer w{mp.get()};
  for (uint32_t i = 0; i < 4; i++) w.Issue(i);
  loop.RunUntil([] { return false; }, 300ms);
  EXPECT_EQ(w.ok, 0u);
  EXPECT_EQ(w.failed, 0u) << w.first_error.ToString();
  ASSERT_TRUE(tgt->SetAnaState(2, 1, spec::kAnaOptimized).ok());
  ASSERT_TRUE(loop.RunUntil([&] { return w.ok >= 100; }, 5000ms)) << w.ok;
  w.stop = true;
  ASSERT_TRUE(loop.RunUntil([&] { return w.inflight == 0; }, 5000ms));
  EXPECT_EQ(w.failed, 0u) << w.first_error.ToString();
}

}  // namespace
}  // namespace nvmf::test
