// The host's clean close (Controller::Disconnect, SyncController::Close) against this
// project's target: each I/O queue is disconnected with a Fabrics Disconnect, the
// controller is shut down before the connections close, commands in flight finish, new
// ones are refused, and a controller that never answers does not hold the close up.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "nvmf/host_sync.h"
#include "nvmf/target.h"
#include "support/fault_proxy.h"

namespace nvmf::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:disconnect";

class HostDisconnect : public ::testing::Test {
 protected:
  void SetUp() override {
    target::TargetConfig cfg;
    cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.namespaces = {{1, "mem:16M", "", true}};
    cfg.subsystems.push_back(s);
    cfg.log = [this](const std::string& l) {
      std::lock_guard<std::mutex> lock(mu_);
      log_.push_back(l);
    };
    ASSERT_TRUE(target::Target::Start(cfg, &tgt_).ok());
  }
  void TearDown() override { tgt_->Stop(); }
  host::ConnectOptions Opts(uint32_t queues) {
    host::ConnectOptions o;
    o.trsvcid = tgt_->ports()[0];
    o.subnqn = kNqn;
    o.hostnqn = "nqn.2024-01.io.nvmf:a-host";
    o.nr_io_queues = queues;
    return o;
  }
  // Log lines that contain needle.
  int Count(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const auto& l : log_) n += l.find(needle) != std::string::npos;
    return n;
  }
  std::string All() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string s;
    for (const auto& l : log_) s += l + "\n";
    return s;
  }
  bool WaitFor(const std::function<bool()>& pred) {
    for (int i = 0; i < 500 && !pred(); i++) std::this_thread::sleep_for(10ms);
    return pred();
  }

  std::unique_ptr<target::Target> tgt_;
  std::mutex mu_;
  std::vector<std::string> log_;
};

TEST_F(HostDisconnect, CloseDisconnectsEveryIoQueueThenShutsTheControllerDown) {
  {
    host::SyncController c;
    ASSERT_TRUE(c.Connect(Opts(3)).ok());
    // A Keep Alive in flight when the close starts: its answer must be read, not reset.
    ASSERT_TRUE(c.async().KeepAlive([](const Status&, const spec::Cqe&) {}).ok());
    c.Close();
    EXPECT_FALSE(c.async().connected());
  }
  ASSERT_TRUE(WaitFor([&] { return tgt_->controllers() == 0; })) << All();
  EXPECT_EQ(Count("closed: disconnect"), 3) << All();  // qid 1..3, by Fabrics Disconnect
  EXPECT_EQ(Count("qid 0 from"), 1) << All();
  EXPECT_EQ(Count("host closed the connection"), 1) << All();  // the admin queue, cleanly
  EXPECT_EQ(Count("shut down"), 1) << All();                   // CC.SHN before it closed
  EXPECT_EQ(Count("error"), 0) << All();
}

TEST_F(HostDisconnect, CommandsInFlightFinishAndNewOnesAreRefused) {
  host::SyncController c;
  ASSERT_TRUE(c.Connect(Opts(2)).ok());
  host::Controller& ctrl = c.async();
  std::vector<uint8_t> buf(64 * 4096, 0x5a);
  int ok = 0, failed = 0;
  for (int i = 0; i < 64; i++) {
    Status st = ctrl.Write(1 + i % 2, 1, i * 8, 8, MemDesc::Buffer(buf.data() + i * 4096, 4096), 4096,
                           [&](const Status& s, const spec::Cqe&) { (s.ok() ? ok : failed)++; });
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  bool done = false;
  Status result = Status::IoError("not called");
  ctrl.Disconnect([&](const Status& s) {
    result = s;
    done = true;
  });
  Status late = ctrl.Read(1, 1, 0, 8, MemDesc::Buffer(buf.data(), 4096), 4096,
                          [](const Status&, const spec::Cqe&) { ADD_FAILURE() << "refused, yet called"; });
  EXPECT_EQ(late.code(), Status::Code::kAborted) << late.ToString();
  ASSERT_TRUE(c.loop().RunUntil([&] { return done; }, 10000ms));
  EXPECT_TRUE(result.ok()) << result.ToString();
  EXPECT_EQ(ok, 64);
  EXPECT_EQ(failed, 0);
  EXPECT_FALSE(ctrl.connected());
  EXPECT_TRUE(WaitFor([&] { return Count("closed: disconnect") == 2; })) << All();
}

TEST_F(HostDisconnect, ASilentControllerDoesNotHoldTheCloseUp) {
  FaultProxyOptions po;
  po.target_port = tgt_->ports()[0];
  FaultProxy proxy(po);
  ASSERT_TRUE(proxy.Start().ok());
  host::SyncController c;
  host::ConnectOptions o = Opts(1);
  o.trsvcid = proxy.port();
  o.shutdown_timeout = 300ms;
  ASSERT_TRUE(c.Connect(o).ok());
  proxy.SetCut(0, CutMode::kHold);  // nothing more reaches the target; connections stay open
  auto t0 = std::chrono::steady_clock::now();
  bool done = false;
  c.async().Disconnect([&](const Status&) { done = true; });
  ASSERT_TRUE(c.loop().RunUntil([&] { return done; }, 5000ms));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2000ms);
  EXPECT_FALSE(c.async().connected());
}

}  // namespace
}  // namespace nvmf::test
