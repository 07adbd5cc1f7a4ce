// The target end to end over loopback: Connect, properties, admin and NVM commands, every
// error status, discovery, keep-alive, several hosts, and hosts that vanish.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <thread>

#include "nvmf/spec/admin.h"
#include "nvmf/target.h"
#include "support/test_host.h"

namespace nvmf::test {
namespace {

using namespace std::chrono_literals;
using target::Target;
using target::TargetConfig;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:test";
constexpr uint64_t kNsBytes = 16 << 20;

class TargetTest : public ::testing::Test {
 protected:
  void Start(TargetConfig cfg = TargetConfig()) {
    if (cfg.ports.empty()) {
      target::PortConfig p;
      p.port = 0;
      cfg.ports.push_back(p);
    }
    if (cfg.subsystems.empty()) {
      target::SubsystemConfig s;
      s.nqn = kNqn;
      s.namespaces.push_back({1, "mem:16M", "", true});
      cfg.subsystems.push_back(s);
    }
    cfg.log = [](const std::string&) {};
    Status s = Target::Start(cfg, &target);
    ASSERT_TRUE(s.ok()) << s.ToString();
    port = target->ports()[0];
  }
  void TearDown() override {
    if (target) target->Stop();
  }
  // An admin queue connected and enabled, with the number of I/O queues set.
  uint16_t Admin(TestQueue& q, uint32_t kato = 0, const std::string& nqn = kNqn) {
    EXPECT_TRUE(q.Open(port).ok());
    uint16_t id = q.ConnectAdmin(nqn, kato);
    EXPECT_NE(id, 0);
    spec::Sqe sf{};
    sf.opc = spec::kAdminSetFeatures;
    sf.cdw10 = spec::kFeatNumberOfQueues;
    sf.cdw11 = 3 | 3u << 16;
    EXPECT_EQ(St(q.Run(sf)), 0);
    return id;
  }
  void Io(TestQueue& q, uint16_t cntlid, uint16_t qid = 1) {
    ASSERT_TRUE(q.Open(port, false, false, 8192, 128).ok());
    spec::Cqe c = q.Connect(kNqn, qid, cntlid, 127);
    ASSERT_EQ(St(c), 0) << std::hex << St(c);
  }

  std::unique_ptr<Target> target;
  uint16_t port = 0;
  EventLoop loop;
};

TEST_F(TargetTest, ConnectPropertiesAndEnable) {
  Start();
  TestQueue q(&loop);
  ASSERT_TRUE(q.Open(port).ok());
  spec::Sqe early{};
  early.opc = spec::kAdminKeepAlive;
  EXPECT_EQ(Sc(q.Run(early)), spec::kScCommandSequenceError) << "nothing before Connect";
  spec::Cqe c = q.Connect(kNqn, 0);
  ASSERT_EQ(St(c), 0);
  EXPECT_NE(c.cdw0 & 0xffff, 0u);
  EXPECT_EQ(c.sqid, 0);

  spec::Cqe cap = q.PropertyGet(spec::kPropCap, true);
  ASSERT_EQ(St(cap), 0);
  uint64_t capv = static_cast<uint64_t>(cap.cdw1) << 32 | cap.cdw0;
  EXPECT_EQ(capv & 0xffff, 127u) << "MQES";
  EXPECT_TRUE(capv >> 37 & 1) << "NVM command set";
  EXPECT_EQ(q.PropertyGet(spec::kPropVs, false).cdw0, 0x00010400u);
  EXPECT_EQ(q.PropertyGet(spec::kPropCsts, false).cdw0 & 1, 0u);
  EXPECT_EQ(Sc(q.PropertyGet(spec::kPropCap, false)), spec::kScInvalidField) << "CAP is 8 bytes";
  EXPECT_EQ(Sc(q.PropertyGet(0x40, false)), spec::kScInvalidField);
  ASSERT_EQ(St(q.PropertySet(spec::kPropCc, 0x00460001)), 0);
  EXPECT_EQ(q.PropertyGet(spec::kPropCsts, false).cdw0 & 1, 1u) << "CC.EN brings CSTS.RDY up";
  EXPECT_EQ(q.PropertyGet(spec::kPropCc, false).cdw0, 0x00460001u);
  // A normal shutdown notification completes at once.
  ASSERT_EQ(St(q.PropertySet(spec::kPropCc, 0x00464001)), 0);
  EXPECT_EQ(q.PropertyGet(spec::kPropCsts, false).cdw0 >> 2 & 3, 2u) << "CSTS.SHST complete";
  spec::Sqe again{};
  std::memcpy(&again, &c, 0);
  EXPECT_EQ(Sc(q.Connect(kNqn, 0)), spec::kScCommandSequenceError) << "Connect twice";
}

TEST_F(TargetTest, ConnectRefusals) {
  target::SubsystemConfig s;
  s.nqn = kNqn;
  s.allow_any_host = false;
  s.allowed_hosts = {kTestHostNqn};
  s.namespaces.push_back({1, "mem:1M", "", true});
  TargetConfig cfg;
  cfg.subsystems.push_back(s);
  Start(cfg);
  {
    TestQueue q(&loop);
    ASSERT_TRUE(q.Open(port).ok());
    spec::Cqe c = q.Connect("nqn.2024-01.io.nvmf:nobody", 0);
    EXPECT_EQ(Sct(c), spec::kSctCommandSpecific);
    EXPECT_EQ(Sc(c), spec::kScConnectInvalidParameters);
    EXPECT_EQ(c.cdw0 & 0xffff, 256u) << "IPO names SUBNQN";
    EXPECT_EQ(c.cdw0 >> 16 & 1, 1u) << "in the Connect data";
  }
  {
    TestQueue q(&loop);
    ASSERT_TRUE(q.Open(port).ok());
    spec::Cqe c = q.Connect(kNqn, 0, 0xFFFF, 31, 0, "nqn.2014-08.org.nvmexpress:uuid:stranger");
    EXPECT_EQ(Sct(c), spec::kSctCommandSpecific);
    EXPECT_EQ(Sc(c), spec::kScConnectInvalidHost);
  }
  {
    TestQueue q(&loop);
    ASSERT_TRUE(q.Open(port).ok());
    spec::Cqe c = q.Connect(kNqn, 0, 5);  // a static controller
    EXPECT_EQ(Sc(c), spec::kScConnectInvalidParameters);
    EXPECT_EQ(c.cdw0 & 0xffff, 16u);
  }
  {
    TestQueue q(&loop);
    ASSERT_TRUE(q.Open(port).ok());
    spec::Cqe c = q.Connect(kNqn, 0, 0xFFFF, 1000);
    EXPECT_EQ(Sc(c), spec::kScConnectInvalidParameters);
    EXPECT_EQ(c.cdw0 & 0xffff, 44u) << "IPO names SQSIZE";
  }
  {
    TestQueue q(&loop);
    ASSERT_TRUE(q.Open(port).ok());
    spec::Cqe c = q.Connect(kNqn, 1, 77);  // an I/O queue for no controller
    EXPECT_EQ(Sc(c), spec::kScConnectInvalidParameters);
    EXPECT_EQ(c.cdw0 & 0xffff, 16u);
  }
  // The allowed host still gets in after all that.
  TestQueue ok(&loop);
  ASSERT_TRUE(ok.Open(port).ok());
  EXPECT_NE(ok.ConnectAdmin(kNqn), 0);
}

TEST_F(TargetTest, IoQueueRules) {
  Start();
  TestQueue a(&loop);
  ASSERT_TRUE(a.Open(port).ok());
  spec::Cqe c = a.Connect(kNqn, 0);
  auto id = static_cast<uint16_t>(c.cdw0);
  TestQueue early(&loop);
  ASSERT_TRUE(early.Open(port).ok());
  EXPECT_EQ(Sc(early.Connect(kNqn, 1, id)), spec::kScConnectInvalidParameters) << "CC.EN is 0";
  ASSERT_EQ(St(a.PropertySet(spec::kPropCc, 0x00460001)), 0);
  spec::Sqe sf{};
  sf.opc = spec::kAdminSetFeatures;
  sf.cdw10 = spec::kFeatNumberOfQueues;
  sf.cdw11 = 100 | 100u << 16;
  spec::Cqe nq = a.Run(sf);
  ASSERT_EQ(St(nq), 0);
  EXPECT_EQ(nq.cdw0, 7u | 7u << 16) << "granted: 8 queues, 0's based";
  TestQueue q1(&loop), q1b(&loop), q9(&loop);
  Io(q1, id, 1);
  ASSERT_TRUE(q1b.Open(port).ok());
  spec::Cqe dup = q1b.Connect(kNqn, 1, id);
  EXPECT_EQ(Sc(dup), spec::kScConnectInvalidParameters);
  EXPECT_EQ(dup.cdw0 & 0xffff, 42u) << "QID taken";
  ASSERT_TRUE(q9.Open(port).ok());
  EXPECT_EQ(Sc(q9.Connect(kNqn, 9, id)), spec::kScConnectInvalidParameters) << "QID not granted";
  EXPECT_EQ(Sc(a.Run(sf)), spec::kScCommandSequenceError) << "queues exist already";
}

TEST_F(TargetTest, IdentifyControllerAndNamespaces) {
  Start();
  TestQueue a(&loop);
  uint16_t id = Admin(a);
  std::vector<uint8_t> buf(4096);
  spec::Sqe idc{};
  idc.opc = spec::kAdminIdentify;
  idc.cdw10 = spec::kCnsController;
  ASSERT_EQ(St(a.Run(idc, buf.data(), 4096)), 0);
  auto* ctrl = reinterpret_cast<spec::IdentifyController*>(buf.data());
  EXPECT_EQ(ctrl->cntlid, id);
  EXPECT_STREQ(ctrl->subnqn, kNqn);
  EXPECT_EQ(ctrl->ioccsz, (8192u + 64) / 16);
  EXPECT_EQ(ctrl->iorcsz, 1u);
  EXPECT_EQ(ctrl->cntrltype, 1);
  EXPECT_EQ(ctrl->sqes, 0x66);
  EXPECT_EQ(ctrl->nn, 1024u);
  EXPECT_EQ(ctrl->oncs & 0xc, 0xc) << "DSM and Write Zeroes";
  EXPECT_EQ(std::string(ctrl->mn, 4), "nvmf");

  spec::Sqe idn{};
  idn.opc = spec::kAdminIdentify;
  idn.cdw10 = spec::kCnsNamespace;
  idn.nsid = 1;
  ASSERT_EQ(St(a.Run(idn, buf.data(), 4096)), 0);
  auto* ns = reinterpret_cast<spec::IdentifyNamespace*>(buf.data());
  EXPECT_EQ(ns->nsze, kNsBytes / 512);
  EXPECT_EQ(ns->lbaf[0].lbads, 9);
  idn.nsid = 2;  // valid but inactive: all zeroes
  std::fill(buf.begin(), buf.end(), 0xff);
  ASSERT_EQ(St(a.Run(idn, buf.data(), 4096)), 0);
  EXPECT_EQ(ns->nsze, 0u);
  idn.nsid = 0;
  EXPECT_EQ(Sc(a.Run(idn, buf.data(), 4096)), spec::kScInvalidNamespace);

  spec::Sqe list{};
  list.opc = spec::kAdminIdentify;
  list.cdw10 = spec::kCnsActiveNamespaces;
  ASSERT_EQ(St(a.Run(list, buf.data(), 4096)), 0);
  auto* ids = reinterpret_cast<uint32_t*>(buf.data());
  EXPECT_EQ(ids[0], 1u);
  EXPECT_EQ(ids[1], 0u);

  spec::Sqe desc{};
  desc.opc = spec::kAdminIdentify;
  desc.cdw10 = spec::kCnsNamespaceDescriptors;
  desc.nsid = 1;
  ASSERT_EQ(St(a.Run(desc, buf.data(), 4096)), 0);
  EXPECT_EQ(buf[0], spec::kNidNguid);
  EXPECT_EQ(buf[1], 16);
  EXPECT_EQ(buf[20], spec::kNidUuid);

  spec::Sqe bad{};
  bad.opc = spec::kAdminIdentify;
  bad.cdw10 = 0x55;
  EXPECT_EQ(Sc(a.Run(bad, buf.data(), 4096)), spec::kScInvalidField);
}

TEST_F(TargetTest, ReadWriteFlushZeroesDeallocate) {
  Start();
  TestQueue a(&loop), q(&loop);
  Io(q, Admin(a));
  for (uint32_t blocks : {1u, 8u, 256u, 2048u}) {  // 512 B in capsule up to 1 MiB by R2T
    std::vector<uint8_t> out(blocks * 512), in(blocks * 512);
    Fill(out, blocks);
    ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmWrite, 1, 100, blocks), out.data(), out.size(), true)), 0);
    ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, 100, blocks), in.data(), in.size())), 0);
    EXPECT_EQ(in, out) << blocks << " blocks";
  }
  spec::Sqe flush{};
  flush.opc = spec::kNvmFlush;
  flush.nsid = 1;
  EXPECT_EQ(St(q.Run(flush)), 0);
  flush.nsid = 0xFFFFFFFF;
  EXPECT_EQ(St(q.Run(flush)), 0);

  std::vector<uint8_t> in(8 * 512);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmWriteZeroes, 1, 100, 4))), 0);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, 100, 8), in.data(), in.size())), 0);
  EXPECT_EQ(std::count(in.begin(), in.begin() + 2048, 0), 2048);
  EXPECT_NE(std::count(in.begin() + 2048, in.end(), 0), 2048) << "only the range is zeroed";

  spec::DsmRange r{};
  r.slba = 104;
  r.nlb = 4;
  spec::Sqe dsm{};
  dsm.opc = spec::kNvmDatasetManagement;
  dsm.nsid = 1;
  dsm.cdw10 = 0;       // one range
  dsm.cdw11 = 1 << 2;  // deallocate
  ASSERT_EQ(St(q.Run(dsm, &r, sizeof(r), true)), 0);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, 100, 8), in.data(), in.size())), 0);
  EXPECT_EQ(std::count(in.begin(), in.end(), 0), 4096) << "deallocated blocks read as zeroes";
}

TEST_F(TargetTest, NvmErrorStatuses) {
  Start();
  TestQueue a(&loop), q(&loop);
  Io(q, Admin(a));
  std::vector<uint8_t> buf(8192);
  const uint64_t blocks = kNsBytes / 512;
  EXPECT_EQ(Sc(q.Run(IoSqe(spec::kNvmRead, 9, 0, 1), buf.data(), 512)), spec::kScInvalidNamespace);
  EXPECT_EQ(Sc(q.Run(IoSqe(spec::kNvmRead, 1, blocks - 1, 2), buf.data(), 1024)), spec::kScLbaOutOfRange);
  EXPECT_EQ(Sc(q.Run(IoSqe(spec::kNvmWrite, 1, blocks, 1), buf.data(), 512, true)), spec::kScLbaOutOfRange);
  EXPECT_EQ(Sc(q.Run(IoSqe(spec::kNvmWriteZeroes, 1, blocks - 1, 2))), spec::kScLbaOutOfRange);
  EXPECT_EQ(Sc(q.Run(IoSqe(spec::kNvmRead, 1, 0, 2), buf.data(), 512)), spec::kScDataSglLengthInvalid)
      << "two blocks asked, one block of buffer";
  spec::Sqe odd = IoSqe(0x7E, 1, 0, 1);
  EXPECT_EQ(Sc(q.Run(odd)), spec::kScInvalidOpcode);
  spec::DsmRange r{};
  r.slba = blocks;
  r.nlb = 1;
  spec::Sqe dsm{};
  dsm.opc = spec::kNvmDatasetManagement;
  dsm.nsid = 1;
  dsm.cdw11 = 1 << 2;
  EXPECT_EQ(Sc(q.Run(dsm, &r, sizeof(r), true)), spec::kScLbaOutOfRange);
  // An admin opcode that is not implemented.
  spec::Sqe unknown{};
  unknown.opc = 0x80;
  EXPECT_EQ(Sc(a.Run(unknown)), spec::kScInvalidOpcode);
  // The errors are in the error log, newest first.
  spec::Sqe glp{};
  glp.opc = spec::kAdminGetLogPage;
  glp.cdw10 = spec::kLogError | ((4096 / 4 - 1) << 16);
  std::vector<uint8_t> log(4096);
  ASSERT_EQ(St(a.Run(glp, log.data(), log.size())), 0);
  auto* e = reinterpret_cast<spec::ErrorLogEntry*>(log.data());
  EXPECT_GE(e[0].error_count, 7u);
  EXPECT_EQ(e[0].sqid, 0);
  EXPECT_EQ(e[1].sqid, 1);
  EXPECT_EQ(e[1].status >> 1 & 0xff, spec::kScLbaOutOfRange);
}

TEST_F(TargetTest, LogPagesAndFeatures) {
  Start();
  TestQueue a(&loop), q(&loop);
  Io(q, Admin(a));
  std::vector<uint8_t> data(4096, 1);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmWrite, 1, 0, 8), data.data(), 4096, true)), 0);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, 0, 8), data.data(), 4096)), 0);
  auto glp = [&](uint8_t lid, size_t len, uint64_t off = 0) {
    spec::Sqe s{};
    s.opc = spec::kAdminGetLogPage;
    s.cdw10 = lid | static_cast<uint32_t>((len / 4 - 1) << 16);
    s.cdw12 = static_cast<uint32_t>(off);
    return s;
  };
  std::vector<uint8_t> buf(4096);
  ASSERT_EQ(St(a.Run(glp(spec::kLogSmart, 512), buf.data(), 512)), 0);
  auto* smart = reinterpret_cast<spec::SmartLog*>(buf.data());
  EXPECT_EQ(smart->host_reads[0], 1);
  EXPECT_EQ(smart->host_writes[0], 1);
  EXPECT_EQ(smart->avail_spare, 100);
  ASSERT_EQ(St(a.Run(glp(spec::kLogFirmwareSlot, 512), buf.data(), 512)), 0);
  EXPECT_EQ(buf[0], 1);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf.data()) + 8, 3), "0.1");
  ASSERT_EQ(St(a.Run(glp(spec::kLogChangedNamespaces, 4096), buf.data(), 4096)), 0);
  ASSERT_EQ(St(a.Run(glp(spec::kLogCommandEffects, 4096), buf.data(), 4096)), 0);
  auto* fx = reinterpret_cast<spec::CommandEffectsLog*>(buf.data());
  EXPECT_EQ(fx->iocs[spec::kNvmWrite], spec::kCseSupported | spec::kCseLbcc);
  EXPECT_EQ(fx->acs[spec::kAdminIdentify], spec::kCseSupported);
  EXPECT_EQ(fx->iocs[0x7E], 0u);
  // A window of a log page.
  ASSERT_EQ(St(a.Run(glp(spec::kLogCommandEffects, 8, 4 * spec::kNvmWrite + 1024), buf.data(), 8)), 0);
  EXPECT_EQ(buf[0], spec::kCseSupported | spec::kCseLbcc);
  EXPECT_EQ(Sct(a.Run(glp(0x42, 512), buf.data(), 512)), spec::kSctCommandSpecific) << "no such log";
  EXPECT_EQ(Sc(a.Run(glp(spec::kLogSmart, 512, 8192), buf.data(), 512)), spec::kScInvalidField)
      << "offset past the log";

  auto feature = [&](uint8_t opc, uint8_t fid, uint32_t cdw11 = 0) {
    spec::Sqe s{};
    s.opc = opc;
    s.cdw10 = fid;
    s.cdw11 = cdw11;
    return a.Run(s);
  };
  EXPECT_EQ(St(feature(spec::kAdminSetFeatures, spec::kFeatVolatileWriteCache, 0)), 0);
  EXPECT_EQ(feature(spec::kAdminGetFeatures, spec::kFeatVolatileWriteCache).cdw0, 0u);
  EXPECT_EQ(St(feature(spec::kAdminSetFeatures, spec::kFeatAsyncEventConfig, 0x100)), 0);
  EXPECT_EQ(feature(spec::kAdminGetFeatures, spec::kFeatAsyncEventConfig).cdw0, 0x100u);
  EXPECT_EQ(St(feature(spec::kAdminSetFeatures, spec::kFeatKeepAliveTimer, 60000)), 0);
  EXPECT_EQ(feature(spec::kAdminGetFeatures, spec::kFeatKeepAliveTimer).cdw0, 60000u);
  EXPECT_EQ(feature(spec::kAdminGetFeatures, spec::kFeatNumberOfQueues).cdw0, 3u | 3u << 16);
  EXPECT_EQ(Sc(feature(spec::kAdminSetFeatures, 0x77)), spec::kScInvalidField);
  EXPECT_EQ(Sc(feature(spec::kAdminGetFeatures, 0x77)), spec::kScInvalidField);
}

TEST_F(TargetTest, AsyncEventRequestsAreHeldUpToTheLimit) {
  Start();
  TestQueue a(&loop);
  Admin(a);
  spec::Sqe aer{};
  aer.opc = spec::kAdminAsyncEventRequest;
  for (int i = 0; i < 4; i++) ASSERT_NE(a.Submit(aer, nullptr, 0, false), 0);
  EXPECT_FALSE(a.WaitResponses(1, 200ms)) << "held until an event";
  spec::Cqe fifth = a.Run(aer);
  EXPECT_EQ(Sct(fifth), spec::kSctCommandSpecific);
  EXPECT_EQ(Sc(fifth), 0x05) << "AER limit exceeded";
  spec::Sqe ka{};
  ka.opc = spec::kAdminKeepAlive;
  EXPECT_EQ(St(a.Run(ka)), 0) << "the queue still serves";
}

TEST_F(TargetTest, KeepAliveTimeoutTearsDownTheController) {
  Start();
  TestQueue a(&loop), q(&loop);
  uint16_t id = Admin(a, 1000);
  Io(q, id);
  // Keep-alives every 250 ms hold the association across three timeouts (with room for
  // a loaded machine).
  spec::Sqe ka{};
  ka.opc = spec::kAdminKeepAlive;
  for (int i = 0; i < 12; i++) {
    ASSERT_EQ(St(a.Run(ka)), 0);
    loop.RunUntil([] { return false; }, 250ms);
  }
  EXPECT_FALSE(a.failed());
  EXPECT_EQ(target->controllers(), 1u);
  // Then silence: the controller and its I/O queue go.
  EXPECT_TRUE(a.WaitClosed(5000ms));
  EXPECT_TRUE(q.WaitClosed(5000ms));
  EXPECT_EQ(target->controllers(), 0u);
}

TEST_F(TargetTest, DiscoveryLogListsWhatTheHostMayUse) {
  target::SubsystemConfig open;
  open.nqn = kNqn;
  open.namespaces.push_back({1, "mem:1M", "", true});
  target::SubsystemConfig closed;
  closed.nqn = "nqn.2024-01.io.nvmf:private";
  closed.allow_any_host = false;
  closed.allowed_hosts = {"nqn.2024-01.io.nvmf:someone-else"};
  closed.namespaces.push_back({1, "null:1M", "", true});
  TargetConfig cfg;
  cfg.subsystems = {open, closed};
  Start(cfg);
  TestQueue d(&loop);
  ASSERT_TRUE(d.Open(port).ok());
  spec::Cqe c = d.Connect(spec::kDiscoveryNqn, 0);
  ASSERT_EQ(St(c), 0);
  std::vector<uint8_t> buf(4096);
  spec::Sqe idc{};
  idc.opc = spec::kAdminIdentify;
  idc.cdw10 = spec::kCnsController;
  ASSERT_EQ(St(d.Run(idc, buf.data(), 4096)), 0);
  EXPECT_EQ(reinterpret_cast<spec::IdentifyController*>(buf.data())->cntrltype, 2);
  spec::Sqe glp{};
  glp.opc = spec::kAdminGetLogPage;
  glp.cdw10 = spec::kLogDiscovery | ((3072 / 4 - 1) << 16);
  ASSERT_EQ(St(d.Run(glp, buf.data(), 3072)), 0);
  auto* h = reinterpret_cast<spec::DiscoveryLogHeader*>(buf.data());
  ASSERT_EQ(h->numrec, 2u) << "the discovery subsystem and the open subsystem only";
  auto* e = reinterpret_cast<spec::DiscoveryLogEntry*>(buf.data() + 1024);
  EXPECT_EQ(e[0].subtype, spec::kSubtypeCurrentDiscovery);
  EXPECT_EQ(e[1].subtype, spec::kSubtypeNvme);
  EXPECT_STREQ(e[1].subnqn, kNqn);
  EXPECT_EQ(e[1].trtype, 3);
  EXPECT_EQ(e[1].adrfam, spec::kAdrfamIpv4);
  EXPECT_EQ(std::string(e[1].trsvcid), std::to_string(port));
  EXPECT_EQ(std::string(e[1].traddr), "127.0.0.1");
  TestQueue io(&loop);
  ASSERT_TRUE(io.Open(port).ok());
  EXPECT_EQ(Sc(io.Connect(spec::kDiscoveryNqn, 1, static_cast<uint16_t>(c.cdw0))),
            spec::kScConnectInvalidParameters)
      << "no I/O queues on discovery";
}

TEST_F(TargetTest, SeveralHostsAtOnceOnSeveralThreads) {
  TargetConfig cfg;
  cfg.threads = 2;
  Start(cfg);
  constexpr int kHosts = 4;
  std::vector<std::unique_ptr<TestQueue>> admins, ios;
  for (int h = 0; h < kHosts; h++) {
    admins.push_back(std::make_unique<TestQueue>(&loop));
    ios.push_back(std::make_unique<TestQueue>(&loop));
    Io(*ios[h], Admin(*admins[h]));
  }
  EXPECT_EQ(target->controllers(), static_cast<size_t>(kHosts));
  // Every host writes its own region with 16 commands in flight, then reads it back.
  std::vector<std::vector<uint8_t>> data(kHosts, std::vector<uint8_t>(16 * 4096));
  for (int h = 0; h < kHosts; h++) {
    Fill(data[h], 50 + h);
    for (int k = 0; k < 16; k++) {
      ios[h]->Submit(IoSqe(spec::kNvmWrite, 1, h * 1024 + k * 8, 8), data[h].data() + k * 4096, 4096, true);
    }
  }
  for (int h = 0; h < kHosts; h++) {
    ASSERT_TRUE(ios[h]->WaitResponses(16));
    for (auto& c : ios[h]->TakeResponses()) EXPECT_EQ(St(c), 0);
  }
  for (int h = 0; h < kHosts; h++) {
    std::vector<uint8_t> in(16 * 4096);
    ASSERT_EQ(St(ios[h]->Run(IoSqe(spec::kNvmRead, 1, h * 1024, 128), in.data(), in.size())), 0);
    EXPECT_EQ(in, data[h]) << "host " << h;
  }
}

TEST_F(TargetTest, HostVanishingMidWritesLosesNothingAcknowledged) {
  Start();
  TestQueue a(&loop), q(&loop);
  uint16_t id = Admin(a);
  Io(q, id);
  // Writes of 64 KiB go by R2T; acknowledged ones must survive the host's disappearance.
  std::vector<uint8_t> data(32 * 65536);
  Fill(data, 77);
  std::map<uint16_t, int> which;  // CID -> write
  for (int k = 0; k < 32; k++) {
    which[q.Submit(IoSqe(spec::kNvmWrite, 1, k * 128, 128), data.data() + k * 65536, 65536, true)] = k;
  }
  ASSERT_TRUE(q.WaitResponses(8));
  std::vector<spec::Cqe> acked = q.TakeResponses();
  q.Close();  // vanish with the rest in flight
  a.Close();
  // Another host connects and finds every acknowledged write.
  TestQueue a2(&loop), q2(&loop);
  Io(q2, Admin(a2));
  for (const spec::Cqe& c : acked) {
    ASSERT_EQ(St(c), 0);
    int k = which.at(c.cid);
    std::vector<uint8_t> in(65536);
    ASSERT_EQ(St(q2.Run(IoSqe(spec::kNvmRead, 1, k * 128, 128), in.data(), in.size())), 0);
    EXPECT_TRUE(std::equal(in.begin(), in.end(), data.begin() + k * 65536)) << "write " << k;
  }
}

TEST_F(TargetTest, DisconnectEndsTheQueueAfterItsResponse) {
  Start();
  TestQueue a(&loop), q(&loop);
  Io(q, Admin(a));
  spec::DisconnectSqe d{};
  d.opc = spec::kFabricsCommand;
  d.fctype = spec::kFctypeDisconnect;
  spec::Sqe sqe;
  std::memcpy(&sqe, &d, sizeof(sqe));
  EXPECT_EQ(St(q.Run(sqe)), 0);
  EXPECT_TRUE(q.WaitClosed(2000ms));
  spec::Sqe ka{};
  ka.opc = spec::kAdminKeepAlive;
  EXPECT_EQ(St(a.Run(ka)), 0) << "the admin queue lives on";
}

TEST_F(TargetTest, BadConfigurationIsRefused) {
  auto start = [](TargetConfig cfg) {
    cfg.log = [](const std::string&) {};
    if (cfg.ports.empty()) cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
    std::unique_ptr<Target> t;
    return Target::Start(cfg, &t);
  };
  TargetConfig dup;
  target::SubsystemConfig s;
  s.nqn = kNqn;
  s.namespaces = {{1, "mem:1M", "", true}, {1, "mem:1M", "", true}};
  dup.subsystems = {s};
  EXPECT_EQ(start(dup).code(), Status::Code::kInvalidArgument);
  TargetConfig badns;
  s.namespaces = {{1, "tape:1M", "", true}};
  badns.subsystems = {s};
  Status st = start(badns);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("namespace 1"), std::string::npos) << st.message();
  // Any name is served (with a warning, as Linux's nvmet serves any name) but one that
  // cannot travel in Connect: empty, 256 bytes or more, control characters.
  s.namespaces = {{1, "mem:1M", "", true}};
  for (const std::string& bad : {std::string(), std::string(256, 'n'), std::string("nqn.x\ny")}) {
    TargetConfig badnqn;
    s.nqn = bad;
    badnqn.subsystems = {s};
    EXPECT_FALSE(start(badnqn).ok()) << bad;
  }
  Start();  // a port already taken
  TargetConfig taken;
  taken.ports.push_back(target::PortConfig{1, "127.0.0.1", port, {}});
  EXPECT_EQ(start(taken).code(), Status::Code::kIoError);
}

}  // namespace
}  // namespace nvmf::test
