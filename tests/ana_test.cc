// ANA and listeners changed while the target serves: Identify's ANA fields, the ANA log
// page through each port, ANA Change events, path-related status on an inaccessible path
// while the other path serves, and a listener removed (its connections closed) and added
// back.
#include <gtest/gtest.h>

#include <cstring>

#include "nvmf/host_sync.h"
#include "nvmf/spec/admin.h"
#include "nvmf/target.h"

namespace nvmf::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:ana";
constexpr uint32_t kAnaEvent = 0x0C0302;  // Notice, ANA Change, log 0Ch

class Ana : public ::testing::Test {
 protected:
  void SetUp() override {
    target::TargetConfig cfg;
    cfg.threads = 2;
    cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
    cfg.ports.push_back(target::PortConfig{2, "127.0.0.1", 0, {}});
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.namespaces = {{1, "mem:4M", "", true}};
    cfg.subsystems.push_back(s);
    cfg.log = [](const std::string&) {};
    ASSERT_TRUE(target::Target::Start(cfg, &tgt).ok());
  }
  void TearDown() override { tgt->Stop(); }
  host::ConnectOptions Opts(uint16_t port) {
    host::ConnectOptions o;
    o.trsvcid = port;
    o.subnqn = kNqn;
    o.hostnqn = "nqn.2024-01.io.nvmf:a-host";
    o.async_events = false;  // these tests post their own event requests and read the logs
    return o;
  }
  // The ANA log's first group: its state and NSIDs.
  uint8_t GroupOneState(host::SyncController& c, std::vector<uint32_t>* nsids = nullptr) {
    std::vector<uint8_t> page(4096);
    EXPECT_TRUE(c.GetLogPage(spec::kLogAna, 0, page.data(), page.size()).ok());
    spec::AnaLogHeader h;
    std::memcpy(&h, page.data(), sizeof(h));
    EXPECT_GE(h.ngrps, 1);
    spec::AnaGroupDescriptor d;
    std::memcpy(&d, page.data() + sizeof(h), sizeof(d));
    EXPECT_EQ(d.grpid, 1u);
    if (nsids != nullptr) {
      nsids->resize(d.nnsids);
      std::memcpy(nsids->data(), page.data() + sizeof(h) + sizeof(d), d.nnsids * 4);
    }
    return d.state;
  }
  // The status of one write through c (async, to see the CQE).
  uint16_t WriteStatus(host::SyncController& c) {
    std::vector<uint8_t> buf(4096, 5);
    bool done = false;
    uint16_t status = 0xffff;
    Status st = c.async().Write(1, 1, 0, 8, MemDesc::Buffer(buf.data(), buf.size()), buf.size(),
                                [&](const Status&, const spec::Cqe& cqe) {
                                  status = spec::StatusOf(cqe);
                                  done = true;
                                });
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_TRUE(c.loop().RunUntil([&] { return done; }, 5000ms));
    return status;
  }
  std::unique_ptr<target::Target> tgt;
};

TEST_F(Ana, InaccessiblePathAnswersWithPathStatusWhileTheOtherServes) {
  host::SyncController a, b;
  ASSERT_TRUE(a.Connect(Opts(tgt->ports()[0])).ok());
  ASSERT_TRUE(b.Connect(Opts(tgt->ports()[1])).ok());
  const spec::IdentifyController& id = b.identify();
  EXPECT_NE(id.cmic & (1 << 3), 0) << "ANA reporting";
  EXPECT_EQ(id.anagrpmax, target::kMaxAnaGroups);
  EXPECT_NE(id.anacap & (1 << 2), 0);
  EXPECT_NE(id.oaes & (1u << 11), 0);
  spec::IdentifyNamespace ns{};
  ASSERT_TRUE(b.IdentifyNamespace(1, &ns).ok());
  EXPECT_EQ(ns.anagrpid, 1u);
  std::vector<uint32_t> nsids;
  EXPECT_EQ(GroupOneState(b, &nsids), spec::kAnaOptimized);
  EXPECT_EQ(nsids, std::vector<uint32_t>{1});

  // ANA Change notices on b, and one event request posted.
  bool set = false, fired = false;
  uint32_t cdw0 = 0;
  ASSERT_TRUE(b.async()
                  .SetFeatures(spec::kFeatAsyncEventConfig, 1u << 11,
                               [&](const Status& s, const spec::Cqe&) { set = s.ok(); })
                  .ok());
  ASSERT_TRUE(b.loop().RunUntil([&] { return set; }, 5000ms));
  spec::Sqe aer{};
  aer.opc = spec::kAdminAsyncEventRequest;
  ASSERT_TRUE(b.async()
                  .Submit(0, aer,
                          [&](const Status&, const spec::Cqe& cqe) {
                            cdw0 = cqe.cdw0;
                            fired = true;
                          })
                  .ok());

  ASSERT_TRUE(tgt->SetAnaState(2, 1, spec::kAnaInaccessible).ok());
  ASSERT_TRUE(b.loop().RunUntil([&] { return fired; }, 5000ms));
  EXPECT_EQ(cdw0, kAnaEvent);
  EXPECT_EQ(GroupOneState(b), spec::kAnaInaccessible);
  EXPECT_EQ(GroupOneState(a), spec::kAnaOptimized) << "port 1 is another path";

  std::vector<uint8_t> buf(4096, 9), back(4096);
  Status st = b.Write(1, 0, 8, 512, buf.data());
  ASSERT_EQ(st.code(), Status::Code::kNvmeError) << st.ToString();
  EXPECT_NE(st.message().find("Inaccessible"), std::string::npos) << st.ToString();
  EXPECT_EQ(WriteStatus(b), spec::MakeStatus(spec::kSctPathRelated, spec::kScAnaInaccessible, false));
  ASSERT_TRUE(a.Write(1, 0, 8, 512, buf.data()).ok());  // the optimized path serves
  ASSERT_TRUE(a.Read(1, 0, 8, 512, back.data()).ok());
  EXPECT_EQ(back, buf);

  ASSERT_TRUE(tgt->SetAnaState(2, 1, spec::kAnaChange).ok());
  EXPECT_EQ(b.Read(1, 0, 8, 512, back.data()).code(), Status::Code::kNvmeError);
  EXPECT_EQ(WriteStatus(b), spec::MakeStatus(spec::kSctPathRelated, spec::kScAnaTransition, false));
  ASSERT_TRUE(tgt->SetAnaState(2, 1, spec::kAnaNonOptimized).ok());
  EXPECT_TRUE(b.Read(1, 0, 8, 512, back.data()).ok());
  EXPECT_EQ(GroupOneState(b), spec::kAnaNonOptimized);

  EXPECT_EQ(tgt->SetAnaState(9, 1, spec::kAnaOptimized).code(), Status::Code::kNotFound);
  EXPECT_EQ(tgt->SetAnaState(2, 33, spec::kAnaOptimized).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(tgt->SetAnaState(2, 1, 7).code(), Status::Code::kInvalidArgument);
}

TEST_F(Ana, RemovedListenerClosesItsConnectionsAndComesBack) {
  host::SyncController a, b;
  ASSERT_TRUE(a.Connect(Opts(tgt->ports()[0])).ok());
  const uint16_t port2 = tgt->ports()[1];
  ASSERT_TRUE(b.Connect(Opts(port2)).ok());
  Status lost;
  b.async().SetFailureCallback([&](const Status& s) { lost = s; });

  ASSERT_TRUE(tgt->RemoveListener(2).ok());
  EXPECT_TRUE(b.loop().RunUntil([&] { return b.async().failed(); }, 5000ms)) << "port 2's host kept its connection";
  EXPECT_FALSE(lost.ok());
  std::vector<uint8_t> buf(4096, 1);
  EXPECT_TRUE(a.Write(1, 0, 8, 512, buf.data()).ok()) << "port 1 was disturbed";
  {
    host::SyncController c;
    EXPECT_FALSE(c.Connect(Opts(port2)).ok()) << "nobody should listen on port 2";
  }
  host::DiscoveryLog log;
  {
    host::SyncController d;
    host::ConnectOptions o = Opts(tgt->ports()[0]);
    o.subnqn = spec::kDiscoveryNqn;
    ASSERT_TRUE(d.Connect(o).ok());
    ASSERT_TRUE(d.Discovery(&log).ok());
  }
  for (const auto& e : log.entries) EXPECT_NE(std::string(e.trsvcid), std::to_string(port2));

  target::PortConfig p{2, "127.0.0.1", port2, {}};
  uint16_t bound = 0;
  ASSERT_TRUE(tgt->AddListener(p, &bound).ok());
  EXPECT_EQ(bound, port2);
  host::SyncController c;
  ASSERT_TRUE(c.Connect(Opts(port2)).ok());
  EXPECT_TRUE(c.Write(1, 8, 8, 512, buf.data()).ok());

  EXPECT_EQ(tgt->AddListener(p, &bound).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(tgt->RemoveListener(7).code(), Status::Code::kNotFound);
}

TEST_F(Ana, StatesAndGroupsAreSavedAndLoadedBack) {
  uint32_t nsid = 0;
  target::NamespaceConfig nc{0, "null:1G", "", true};
  nc.ana_group = 3;
  ASSERT_TRUE(tgt->AddNamespace(kNqn, nc, &nsid).ok());
  ASSERT_TRUE(tgt->SetAnaState(2, 3, spec::kAnaNonOptimized).ok());
  ASSERT_TRUE(tgt->SetAnaState(1, 1, spec::kAnaInaccessible).ok());
  const std::string text = target::FormatNvmetcliConfig(tgt->RunningConfig());
  target::TargetConfig back;
  ASSERT_TRUE(target::ParseNvmetcliConfig(text, &back).ok()) << text;
  EXPECT_EQ(target::FormatNvmetcliConfig(back), text);
  ASSERT_EQ(back.ports.size(), 2u);
  EXPECT_EQ(back.ports[0].ana_states, (std::map<uint32_t, uint8_t>{{1, spec::kAnaInaccessible}}));
  EXPECT_EQ(back.ports[1].ana_states, (std::map<uint32_t, uint8_t>{{3, spec::kAnaNonOptimized}}));
  EXPECT_EQ(back.subsystems[0].namespaces[1].ana_group, 3u);
}

}  // namespace
}  // namespace nvmf::test

namespace nvmf::test {
namespace {

// The host's own handling: it enables the notices, keeps a request posted, reads the log
// each event names and reports it; the posted request neither times out nor holds up a
// clean close.
TEST_F(Ana, HostReportsEventsWithTheirLogs) {
  host::SyncController c;
  host::ConnectOptions o = Opts(tgt->ports()[1]);
  o.async_events = true;
  o.admin_timeout = std::chrono::milliseconds(300);
  ASSERT_TRUE(c.Connect(o).ok());
  std::vector<host::AsyncEvent> events;
  c.async().SetEventCallback([&](const host::AsyncEvent& e) { events.push_back(e); });
  c.loop().RunUntil([] { return false; }, 700ms);  // beyond the admin timeout
  ASSERT_TRUE(c.async().connected()) << c.async().failure().ToString();
  EXPECT_TRUE(events.empty());

  uint32_t nsid = 0;
  ASSERT_TRUE(tgt->AddNamespace(kNqn, target::NamespaceConfig{0, "mem:1M", "", true}, &nsid).ok());
  ASSERT_TRUE(c.loop().RunUntil([&] { return events.size() == 1; }, 5000ms));
  EXPECT_EQ(events[0].info, 0);
  EXPECT_EQ(events[0].ChangedNamespaces(), std::vector<uint32_t>{nsid});

  ASSERT_TRUE(tgt->SetAnaState(2, 1, spec::kAnaNonOptimized).ok());
  ASSERT_TRUE(c.loop().RunUntil([&] { return events.size() == 2; }, 5000ms));
  EXPECT_EQ(events[1].lid, spec::kLogAna);
  auto groups = events[1].AnaGroups();
  ASSERT_FALSE(groups.empty());
  EXPECT_EQ(groups[0].grpid, 1u);
  EXPECT_EQ(groups[0].state, spec::kAnaNonOptimized);
  EXPECT_EQ(groups[0].nsids, (std::vector<uint32_t>{1, nsid}));

  // Both events again: the logs were read, so each may be reported once more.
  ASSERT_TRUE(tgt->RemoveNamespace(kNqn, nsid).ok());
  ASSERT_TRUE(tgt->SetAnaState(2, 1, spec::kAnaOptimized).ok());
  ASSERT_TRUE(c.loop().RunUntil([&] { return events.size() == 4; }, 5000ms)) << events.size();

  const auto t0 = std::chrono::steady_clock::now();
  c.Close();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms) << "the posted request held up the close";
}

}  // namespace
}  // namespace nvmf::test

namespace nvmf::test {
namespace {

// A persistent discovery controller (one that stays connected) hears of a change of the
// discovery log: a host let in, a listener added.
TEST_F(Ana, DiscoveryControllersHearOfDiscoveryLogChanges) {
  host::SyncController d;
  host::ConnectOptions o = Opts(tgt->ports()[0]);
  o.subnqn = spec::kDiscoveryNqn;
  o.async_events = true;
  o.kato_ms = 30000;
  ASSERT_TRUE(d.Connect(o).ok());
  EXPECT_NE(d.identify().oaes & (1u << 31), 0u);
  std::vector<host::AsyncEvent> events;
  d.async().SetEventCallback([&](const host::AsyncEvent& e) { events.push_back(e); });
  d.loop().RunUntil([] { return false; }, 100ms);

  uint16_t bound = 0;
  ASSERT_TRUE(tgt->AddListener(target::PortConfig{3, "127.0.0.1", 0, {}}, &bound).ok());
  ASSERT_TRUE(d.loop().RunUntil([&] { return events.size() == 1; }, 5000ms));
  EXPECT_EQ(events[0].lid, spec::kLogDiscovery);
  EXPECT_EQ(events[0].info, 0xF0);
  host::DiscoveryLog log;
  ASSERT_TRUE(host::DecodeDiscoveryLog(events[0].log.data(), events[0].log.size(), &log).ok());
  bool listed = false;
  for (const auto& e : log.entries) listed |= std::string(e.trsvcid) == std::to_string(bound);
  EXPECT_TRUE(listed) << "the log read with the event does not list the new port";

  ASSERT_TRUE(tgt->RemoveListener(3).ok());
  ASSERT_TRUE(d.loop().RunUntil([&] { return events.size() == 2; }, 5000ms));
}

}  // namespace
}  // namespace nvmf::test
