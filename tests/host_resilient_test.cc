// ResilientController against this project's target, restarted under it: commands in
// flight wait and are submitted again on the new association (their data lands), or fail
// after fast_io_fail_tmo, and the controller is given up after ctrl_loss_tmo.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <functional>

#include "nvmf/host_resilient.h"
#include "nvmf/host_sync.h"
#include "nvmf/host_util.h"
#include "nvmf/target.h"

namespace nvmf::test {
namespace {

using namespace std::chrono_literals;
using host::ResilientController;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:resilient";
constexpr uint32_t kBlocks = 8;  // 4 KiB commands of 512-byte blocks

class Resilient : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/var/tmp/nvmf-resilient-XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 8 << 20), 0);
    close(fd);
    path = tmpl;
    StartTarget(0);
    port = tgt->ports()[0];
  }
  void TearDown() override {
    if (tgt) tgt->Stop();
    std::remove(path.c_str());
  }
  void StartTarget(uint16_t p) {
    target::TargetConfig cfg;
    cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", p, {}});
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.namespaces = {{1, "file:" + path, "", true}};
    cfg.subsystems.push_back(s);
    cfg.log = [](const std::string&) {};
    Status st;
    for (int i = 0; i < 50; i++) {  // the port may take a moment to be free again
      st = target::Target::Start(cfg, &tgt);
      if (st.ok()) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << st.ToString();
  }
  host::ConnectOptions Opts() {
    host::ConnectOptions o;
    o.trsvcid = port;
    o.subnqn = kNqn;
    o.hostnqn = "nqn.2024-01.io.nvmf:a-host";
    o.nr_io_queues = 2;
    o.connect_timeout = 1000ms;
    return o;
  }
  bool Connect(ResilientController& c) {
    bool done = false;
    Status st;
    c.Connect([&](const Status& s) {
      st = s;
      done = true;
    });
    loop.RunUntil([&] { return done; }, 10000ms);
    return st.ok();
  }

  // Writes block ranges 0, 1, 2, ... (each 4 KiB, filled with its index) at queue depth
  // 8 until `count` have completed; records each outcome.
  struct Writer {
    ResilientController* c;
    uint32_t count;
    uint32_t next = 0, ok = 0, failed = 0, inflight = 0;
    Status first_error;
    std::vector<std::vector<uint8_t>> bufs = std::vector<std::vector<uint8_t>>(8, std::vector<uint8_t>(4096));
    void Issue(int slot) {
      if (next >= count) return;
      const uint32_t i = next++;
      std::fill(bufs[slot].begin(), bufs[slot].end(), static_cast<uint8_t>(i));
      inflight++;
      Writer* self = this;
      Status s = c->Write(1 + slot % 2, 1, uint64_t{i % 1024} * kBlocks, kBlocks,
                          MemDesc::Buffer(bufs[slot].data(), 4096), 4096,
                          [self, slot](const Status& st, const spec::Cqe&) {
                            self->inflight--;
                            if (st.ok()) {
                              self->ok++;
                            } else {
                              self->failed++;
                              if (self->first_error.ok()) self->first_error = st;
                            }
                            self->Issue(slot);
                          });
      if (!s.ok()) {
        inflight--;
        failed++;
        if (first_error.ok()) first_error = s;
      }
    }
  };

  std::string path;
  uint16_t port = 0;
  std::unique_ptr<target::Target> tgt;
  EventLoop loop;
};

TEST_F(Resilient, CommandsInFlightAcrossATargetRestartAreSubmittedAgain) {
  host::ReconnectOptions r;
  r.reconnect_delay = 100ms;
  r.ctrl_loss_tmo = 20000ms;
  ResilientController c(&loop, Opts(), r);
  std::vector<std::string> events;
  c.SetEventCallback([&](const std::string& e) { events.push_back(e); });
  ASSERT_TRUE(Connect(c));
  Writer w{&c, 3000};
  for (int s = 0; s < 8; s++) w.Issue(s);
  loop.RunUntil([&] { return w.ok >= 500; }, 10000ms);
  tgt->Stop();  // the target goes away with commands in flight
  tgt.reset();
  loop.RunUntil([&] { return c.state() == ResilientController::State::kReconnecting; }, 10000ms);
  ASSERT_EQ(c.state(), ResilientController::State::kReconnecting);
  const uint32_t ok_before = w.ok;
  loop.RunUntil([] { return false; }, 300ms);  // a few failed attempts
  EXPECT_EQ(w.ok, ok_before);
  StartTarget(port);
  ASSERT_TRUE(loop.RunUntil([&] { return w.ok + w.failed == w.count && w.inflight == 0; }, 20000ms))
      << w.ok << " ok, " << w.failed << " failed";
  EXPECT_EQ(w.failed, 0u) << w.first_error.ToString();
  EXPECT_EQ(c.reconnects(), 1u);
  EXPECT_GT(c.resubmitted(), 0u);
  ASSERT_GE(events.size(), 2u);
  EXPECT_NE(events.front().find("connection lost"), std::string::npos) << events.front();
  EXPECT_NE(events.back().find("reconnected after"), std::string::npos) << events.back();
  // Every block range holds what its last write put there.
  host::SyncController check;
  ASSERT_TRUE(check.Connect(Opts()).ok());
  std::vector<uint8_t> back(4096);
  for (uint32_t i = 3000 - 1024; i < 3000; i += 97) {
    ASSERT_TRUE(check.Read(1, uint64_t{i % 1024} * kBlocks, kBlocks, 512, back.data()).ok());
    EXPECT_EQ(back[0], static_cast<uint8_t>(i)) << "range " << i % 1024;
    EXPECT_EQ(back[4095], static_cast<uint8_t>(i));
  }
}

TEST_F(Resilient, FastIoFailFailsWaitingCommandsAndTheNextConnectionServes) {
  host::ReconnectOptions r;
  r.reconnect_delay = 100ms;
  r.fast_io_fail_tmo = 300ms;
  ResilientController c(&loop, Opts(), r);
  ASSERT_TRUE(Connect(c));
  tgt->Stop();
  tgt.reset();
  Writer w{&c, 8};
  for (int s = 0; s < 8; s++) w.Issue(s);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(loop.RunUntil([&] { return w.failed == 8; }, 10000ms)) << w.failed;
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3000ms);
  EXPECT_NE(w.first_error.message().find("fast_io_fail_tmo"), std::string::npos) << w.first_error.ToString();
  std::vector<uint8_t> buf(4096);
  EXPECT_FALSE(c.Write(1, 1, 0, kBlocks, MemDesc::Buffer(buf.data(), 4096), 4096,
                       [](const Status&, const spec::Cqe&) { ADD_FAILURE() << "refused, yet called"; })
                   .ok())
      << "refused at once while there is no connection";
  StartTarget(port);
  ASSERT_TRUE(loop.RunUntil([&] { return c.state() == ResilientController::State::kLive; }, 10000ms));
  Writer w2{&c, 100};
  for (int s = 0; s < 8; s++) w2.Issue(s);
  ASSERT_TRUE(loop.RunUntil([&] { return w2.ok == 100; }, 10000ms));
}

TEST_F(Resilient, CtrlLossTmoGivesUpAndFailsEverythingWaiting) {
  host::ReconnectOptions r;
  r.reconnect_delay = 100ms;
  r.ctrl_loss_tmo = 500ms;
  ResilientController c(&loop, Opts(), r);
  ASSERT_TRUE(Connect(c));
  tgt->Stop();
  tgt.reset();
  Writer w{&c, 4};
  for (int s = 0; s < 4; s++) w.Issue(s);
  ASSERT_TRUE(loop.RunUntil([&] { return w.failed == 4; }, 10000ms));
  EXPECT_EQ(c.state(), ResilientController::State::kLost);
  EXPECT_NE(w.first_error.message().find("ctrl_loss_tmo"), std::string::npos) << w.first_error.ToString();
}

}  // namespace
}  // namespace nvmf::test
