// A target changed while it serves (Target's reconfiguration calls): namespaces added,
// removed and resized with the hosts told by asynchronous events, allowed hosts, and the
// running configuration saved and read back. I/O on what a change does not touch goes
// on without an error; a removed namespace's backend is never closed under a command.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "nvmf/host_sync.h"
#include "nvmf/spec/admin.h"
#include "nvmf/target.h"
#include "target/backend.h"

namespace nvmf::test {
namespace {

using namespace std::chrono_literals;
using target::NamespaceConfig;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:reconfigure";
constexpr const char* kHost = "nqn.2024-01.io.nvmf:a-host";
constexpr uint32_t kNsChangedEvent = 0x040002;  // Notice, Namespace Attribute Changed, log 04h

class Reconfigure : public ::testing::Test {
 protected:
  void Start(bool any_host = true) {
    target::TargetConfig cfg;
    cfg.threads = 2;
    cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.allow_any_host = any_host;
    s.namespaces = {{1, "mem:8M", "", true}};
    cfg.subsystems.push_back(s);
    cfg.log = [](const std::string&) {};
    ASSERT_TRUE(target::Target::Start(cfg, &tgt).ok());
  }
  void TearDown() override {
    if (tgt) tgt->Stop();
  }
  host::ConnectOptions Opts(const std::string& hostnqn = kHost) {
    host::ConnectOptions o;
    o.trsvcid = tgt->ports()[0];
    o.subnqn = kNqn;
    o.hostnqn = hostnqn;
    o.nr_io_queues = 2;
    o.async_events = false;  // these tests post their own event requests and read the logs
    return o;
  }
  // Enables Namespace Attribute Notices and posts one Asynchronous Event Request.
  void ArmEvents(host::SyncController& c, uint32_t* cdw0, bool* done) {
    uint32_t unused;
    ASSERT_TRUE(c.GetFeatures(spec::kFeatAsyncEventConfig, 0, &unused).ok());
    bool set = false;
    ASSERT_TRUE(c.async()
                    .SetFeatures(spec::kFeatAsyncEventConfig, 1u << 8,
                                 [&set](const Status& s, const spec::Cqe&) { set = s.ok(); })
                    .ok());
    ASSERT_TRUE(c.loop().RunUntil([&] { return set; }, 5000ms));
    PostAer(c, cdw0, done);
  }
  void PostAer(host::SyncController& c, uint32_t* cdw0, bool* done) {
    spec::Sqe aer{};
    aer.opc = spec::kAdminAsyncEventRequest;
    *done = false;
    ASSERT_TRUE(c.async()
                    .Submit(0, aer,
                            [cdw0, done](const Status& s, const spec::Cqe& cqe) {
                              EXPECT_TRUE(s.ok()) << s.ToString();
                              *cdw0 = cqe.cdw0;
                              *done = true;
                            })
                    .ok());
  }
  std::vector<uint32_t> ChangedList(host::SyncController& c) {
    std::vector<uint32_t> page(1024);
    EXPECT_TRUE(c.GetLogPage(spec::kLogChangedNamespaces, 0xFFFFFFFFu, page.data(), 4096).ok());
    std::vector<uint32_t> out;
    for (uint32_t v : page) {
      if (v != 0) out.push_back(v);
    }
    return out;
  }

  std::unique_ptr<target::Target> tgt;
};

TEST_F(Reconfigure, AddedNamespaceIsAnnouncedAndServedWithoutReconnecting) {
  Start();
  host::SyncController c;
  ASSERT_TRUE(c.Connect(Opts()).ok());
  uint32_t cdw0 = 0;
  bool fired = false;
  ArmEvents(c, &cdw0, &fired);
  c.loop().RunUntil([] { return false; }, 50ms);
  EXPECT_FALSE(fired) << "an event with nothing changed";

  uint32_t nsid = 0;
  Status s = tgt->AddNamespace(kNqn, NamespaceConfig{0, "mem:4M", "", true}, &nsid);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(nsid, 2u);
  ASSERT_TRUE(c.loop().RunUntil([&] { return fired; }, 5000ms));
  EXPECT_EQ(cdw0, kNsChangedEvent);
  EXPECT_EQ(ChangedList(c), (std::vector<uint32_t>{2}));
  EXPECT_TRUE(ChangedList(c).empty()) << "reading the log clears it";

  std::vector<uint32_t> active;
  ASSERT_TRUE(c.ActiveNamespaces(&active).ok());
  EXPECT_EQ(active, (std::vector<uint32_t>{1, 2}));
  std::vector<uint8_t> out(64 * 1024, 0x6b), in(out.size());
  ASSERT_TRUE(c.Write(2, 100, out.size() / 512, 512, out.data()).ok());
  ASSERT_TRUE(c.Read(2, 100, in.size() / 512, 512, in.data()).ok());
  EXPECT_EQ(in, out);

  // Taken IDs and bad specs are refused and change nothing.
  uint32_t again = 2;
  EXPECT_EQ(tgt->AddNamespace(kNqn, NamespaceConfig{0, "mem:4M", "", true}, &again).code(),
            Status::Code::kAlreadyExists);
  uint32_t bad = 0;
  EXPECT_EQ(tgt->AddNamespace(kNqn, NamespaceConfig{0, "nope:1", "", true}, &bad).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(tgt->AddNamespace("nqn.2024-01.io.nvmf:none", NamespaceConfig{0, "mem:4M", "", true}, &bad)
                .code(),
            Status::Code::kNotFound);
  ASSERT_TRUE(c.ActiveNamespaces(&active).ok());
  EXPECT_EQ(active, (std::vector<uint32_t>{1, 2}));
}

TEST_F(Reconfigure, RemovingANamespaceLeavesIoOnTheOthersAlone) {
  Start();
  uint32_t nsid = 2;
  ASSERT_TRUE(tgt->AddNamespace(kNqn, NamespaceConfig{0, "mem:4M", "", true}, &nsid).ok());
  host::SyncController c;
  ASSERT_TRUE(c.Connect(Opts()).ok());
  uint32_t cdw0 = 0;
  bool fired = false;
  ArmEvents(c, &cdw0, &fired);

  // Writes keep running on both namespaces while namespace 2 goes away.
  struct Stream {
    uint32_t nsid;
    std::vector<uint8_t> buf = std::vector<uint8_t>(4096, 0x11);
    int ok = 0, invalid_ns = 0, other = 0;
    bool stop = false, idle = false;
  };
  Stream s1{1}, s2{2};
  host::Controller& ctrl = c.async();
  std::function<void(Stream*)> issue = [&](Stream* st) {
    if (st->stop) {
      st->idle = true;
      return;
    }
    Status sub = ctrl.Write(1, st->nsid, 8, 8, MemDesc::Buffer(st->buf.data(), 4096), 4096,
                            [&, st](const Status& s, const spec::Cqe& cqe) {
                              if (s.ok()) {
                                st->ok++;
                              } else if (spec::StatusOf(cqe) ==
                                         spec::MakeStatus(spec::kSctGeneric, spec::kScInvalidNamespace, true)) {
                                st->invalid_ns++;
                              } else {
                                st->other++;
                              }
                              issue(st);
                            });
    ASSERT_TRUE(sub.ok()) << sub.ToString();
  };
  for (int i = 0; i < 4; i++) {
    issue(&s1);
    issue(&s2);
  }
  c.loop().RunUntil([&] { return s1.ok > 200 && s2.ok > 200; }, 5000ms);
  std::atomic<bool> removed{false};
  Status rm;
  std::thread remover([&] {
    rm = tgt->RemoveNamespace(kNqn, 2);
    removed = true;
  });
  c.loop().RunUntil([&] { return removed.load() && fired && s2.invalid_ns > 0; }, 5000ms);
  remover.join();
  ASSERT_TRUE(rm.ok()) << rm.ToString();
  const int before = s1.ok;
  c.loop().RunUntil([&] { return s1.ok > before + 200; }, 5000ms);
  s1.stop = s2.stop = true;
  c.loop().RunUntil([&] { return s1.idle && s2.idle; }, 5000ms);
  EXPECT_TRUE(fired);
  EXPECT_EQ(cdw0, kNsChangedEvent);
  EXPECT_GT(s1.ok, before + 200);
  EXPECT_EQ(s1.invalid_ns + s1.other, 0) << "namespace 1 was disturbed";
  EXPECT_GT(s2.invalid_ns, 0);
  EXPECT_EQ(s2.other, 0);
  std::vector<uint32_t> active;
  ASSERT_TRUE(c.ActiveNamespaces(&active).ok());
  EXPECT_EQ(active, (std::vector<uint32_t>{1}));
  EXPECT_EQ(tgt->RemoveNamespace(kNqn, 2).code(), Status::Code::kNotFound);
}

// A backend whose reads wait until released, and that records its own destruction.
struct HeldBackend final : target::Backend {
  static inline std::mutex mu;
  static inline std::vector<std::pair<EventLoop*, target::IoCallback>> held;
  static inline std::atomic<bool> destroyed{false};
  ~HeldBackend() override { destroyed = true; }
  std::string Describe() const override { return "held:"; }
  uint64_t size() const override { return 1 << 20; }
  void Read(EventLoop* loop, uint64_t, const MemDesc&, size_t, target::IoCallback cb) override {
    std::lock_guard<std::mutex> lock(mu);
    held.emplace_back(loop, std::move(cb));
  }
  void Write(EventLoop*, uint64_t, const MemDesc&, size_t, target::IoCallback cb) override { cb(Status::OK()); }
  void Flush(EventLoop*, target::IoCallback cb) override { cb(Status::OK()); }
  void WriteZeroes(EventLoop*, uint64_t, uint64_t, target::IoCallback cb) override { cb(Status::OK()); }
  void Deallocate(EventLoop*, uint64_t, uint64_t, target::IoCallback cb) override { cb(Status::OK()); }
  static void ReleaseAll() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [loop, cb] : held) {
      auto moved = std::make_shared<target::IoCallback>(std::move(cb));
      loop->Post([moved] { (*moved)(Status::OK()); });
    }
    held.clear();
  }
};

TEST_F(Reconfigure, ARemovedNamespaceClosesOnlyAfterItsLastCommand) {
  target::RegisterBackendKind("held", [](const std::string&, std::unique_ptr<target::Backend>* out) {
    *out = std::make_unique<HeldBackend>();
    return Status::OK();
  });
  HeldBackend::destroyed = false;
  Start();
  uint32_t nsid = 5;
  ASSERT_TRUE(tgt->AddNamespace(kNqn, NamespaceConfig{0, "held:", "", true}, &nsid).ok());
  host::SyncController c;
  ASSERT_TRUE(c.Connect(Opts()).ok());
  std::vector<uint8_t> buf(4096);
  bool read_done = false;
  Status read_status;
  ASSERT_TRUE(c.async()
                  .Read(1, 5, 0, 8, MemDesc::Buffer(buf.data(), buf.size()), buf.size(),
                        [&](const Status& s, const spec::Cqe&) {
                          read_status = s;
                          read_done = true;
                        })
                  .ok());
  c.loop().RunUntil([] {
    std::lock_guard<std::mutex> lock(HeldBackend::mu);
    return !HeldBackend::held.empty();
  }, 5000ms);
  ASSERT_TRUE(tgt->RemoveNamespace(kNqn, 5).ok());  // waits a second for the read, then returns
  EXPECT_FALSE(HeldBackend::destroyed) << "closed under a command";
  HeldBackend::ReleaseAll();
  ASSERT_TRUE(c.loop().RunUntil([&] { return read_done; }, 5000ms));
  EXPECT_TRUE(read_status.ok()) << read_status.ToString();  // a command already inside finishes
  // The next change reaps it.
  uint32_t other = 0;
  ASSERT_TRUE(tgt->AddNamespace(kNqn, NamespaceConfig{0, "mem:1M", "", true}, &other).ok());
  tgt->RemoveNamespace(kNqn, other);
  EXPECT_TRUE(HeldBackend::destroyed);
  target::RegisterBackendKind("held", nullptr);
}

TEST_F(Reconfigure, ResizeIsAnnouncedAndSeenInIdentify) {
  Start();
  uint32_t nsid = 2;
  ASSERT_TRUE(tgt->AddNamespace(kNqn, NamespaceConfig{0, "null:1G", "", true}, &nsid).ok());
  host::SyncController c;
  ASSERT_TRUE(c.Connect(Opts()).ok());
  uint32_t cdw0 = 0;
  bool fired = false;
  ArmEvents(c, &cdw0, &fired);
  ASSERT_TRUE(tgt->ResizeNamespace(kNqn, 2, 2ull << 30).ok());
  ASSERT_TRUE(c.loop().RunUntil([&] { return fired; }, 5000ms));
  EXPECT_EQ(ChangedList(c), (std::vector<uint32_t>{2}));
  spec::IdentifyNamespace id{};
  ASSERT_TRUE(c.IdentifyNamespace(2, &id).ok());
  EXPECT_EQ(id.nsze, (2ull << 30) / 512);
  // Memory namespaces cannot change size; nothing changes.
  EXPECT_EQ(tgt->ResizeNamespace(kNqn, 1, 16 << 20).code(), Status::Code::kNotSupported);
  EXPECT_EQ(tgt->ResizeNamespace(kNqn, 2, 1000).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(c.IdentifyNamespace(1, &id).ok());
  EXPECT_EQ(id.nsze, (8ull << 20) / 512);
}

TEST_F(Reconfigure, AllowedHostsChangeWhoMayConnect) {
  Start(false);
  {
    host::SyncController c;
    EXPECT_FALSE(c.Connect(Opts()).ok());
  }
  ASSERT_TRUE(tgt->AddHost(kNqn, kHost).ok());
  EXPECT_EQ(tgt->AddHost(kNqn, kHost).code(), Status::Code::kAlreadyExists);
  host::SyncController c;
  ASSERT_TRUE(c.Connect(Opts()).ok());
  ASSERT_TRUE(tgt->RemoveHost(kNqn, kHost).ok());
  {
    host::SyncController d;
    EXPECT_FALSE(d.Connect(Opts()).ok());
  }
  std::vector<uint8_t> buf(4096, 1);
  EXPECT_TRUE(c.Write(1, 0, 8, 512, buf.data()).ok()) << "a connected host keeps its controller";
  ASSERT_TRUE(tgt->SetAllowAnyHost(kNqn, true).ok());
  host::SyncController e;
  EXPECT_TRUE(e.Connect(Opts("nqn.2024-01.io.nvmf:another")).ok());
}

TEST_F(Reconfigure, RunningConfigSavesAndLoadsBackUnchanged) {
  Start(false);
  uint32_t nsid = 7;
  ASSERT_TRUE(tgt->AddNamespace(kNqn, NamespaceConfig{0, "null:1G", "", true}, &nsid).ok());
  ASSERT_TRUE(tgt->AddHost(kNqn, kHost).ok());
  ASSERT_TRUE(tgt->ResizeNamespace(kNqn, 7, 3ull << 30).ok());
  const target::TargetConfig running = tgt->RunningConfig();
  const std::string text = target::FormatNvmetcliConfig(running);
  target::TargetConfig back;
  Status s = target::ParseNvmetcliConfig(text, &back);
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << text;
  EXPECT_EQ(target::FormatNvmetcliConfig(back), text);
  ASSERT_EQ(back.subsystems.size(), 1u);
  const auto& sub = back.subsystems[0];
  EXPECT_FALSE(sub.allow_any_host);
  EXPECT_EQ(sub.allowed_hosts, std::vector<std::string>{kHost});
  ASSERT_EQ(sub.namespaces.size(), 2u);
  EXPECT_EQ(sub.namespaces[1].nsid, 7u);
  EXPECT_EQ(sub.namespaces[1].backend, "null:3221225472");
  EXPECT_EQ(sub.namespaces[1].uuid, running.subsystems[0].namespaces[1].uuid);
  ASSERT_EQ(back.ports.size(), 1u);
  EXPECT_EQ(back.ports[0].port, tgt->ports()[0]);

  // A target started from it serves the same namespaces with the same identities.
  tgt->Stop();
  back.ports[0].port = 0;
  back.log = [](const std::string&) {};
  ASSERT_TRUE(target::Target::Start(back, &tgt).ok());
  const target::TargetConfig again = tgt->RunningConfig();
  EXPECT_EQ(again.subsystems[0].namespaces[1].uuid, running.subsystems[0].namespaces[1].uuid);
  EXPECT_EQ(again.subsystems[0].namespaces[0].uuid, running.subsystems[0].namespaces[0].uuid);
}

}  // namespace
}  // namespace nvmf::test

namespace nvmf::test {
namespace {

TEST_F(Reconfigure, SubsystemsAreAddedAndRemovedWhileOthersServe) {
  Start();
  const std::string other = "nqn.2024-01.io.nvmf:another";
  target::SubsystemConfig sc;
  sc.nqn = other;
  sc.namespaces = {{0, "mem:4M", "", true}};
  ASSERT_TRUE(tgt->AddSubsystem(sc).ok());
  EXPECT_EQ(tgt->AddSubsystem(sc).code(), Status::Code::kAlreadyExists);
  sc.nqn = std::string(300, 'x');
  EXPECT_EQ(tgt->AddSubsystem(sc).code(), Status::Code::kInvalidArgument);

  host::SyncController mine, theirs;
  ASSERT_TRUE(mine.Connect(Opts()).ok());
  host::ConnectOptions o = Opts();
  o.subnqn = other;
  ASSERT_TRUE(theirs.Connect(o).ok());
  std::vector<uint8_t> buf(4096, 7), back(4096);
  ASSERT_TRUE(theirs.Write(1, 0, 8, 512, buf.data()).ok());
  ASSERT_TRUE(theirs.Read(1, 0, 8, 512, back.data()).ok());
  EXPECT_EQ(back, buf);
  {
    host::SyncController d;
    host::ConnectOptions od = Opts();
    od.subnqn = spec::kDiscoveryNqn;
    ASSERT_TRUE(d.Connect(od).ok());
    host::DiscoveryLog log;
    ASSERT_TRUE(d.Discovery(&log).ok());
    EXPECT_EQ(log.numrec, 3u);  // discovery, ours, the new one
  }

  ASSERT_TRUE(tgt->RemoveSubsystem(other).ok());
  EXPECT_TRUE(theirs.async().loop()->RunUntil([&] { return theirs.async().failed(); }, 5000ms))
      << "its controller was not closed";
  EXPECT_TRUE(mine.Write(1, 0, 8, 512, buf.data()).ok()) << "another subsystem was disturbed";
  host::SyncController again;
  EXPECT_FALSE(again.Connect(o).ok());
  EXPECT_EQ(tgt->RemoveSubsystem(other).code(), Status::Code::kNotFound);
  EXPECT_EQ(tgt->RemoveSubsystem(spec::kDiscoveryNqn).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(tgt->RunningConfig().subsystems.size(), 1u);
}

}  // namespace
}  // namespace nvmf::test
