// The host library against this project's target, both in one process over loopback: the
// association, Identify, the discovery log, data with and without digests on several I/O
// queues, NVMe errors reaching the caller, and a refused host.
#include <gtest/gtest.h>

#include <cstring>

#include "nvmf/host_sync.h"
#include "nvmf/spec/fabrics.h"
#include "nvmf/target.h"
#include "support/loopback.h"

namespace nvmf::test {
namespace {

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:host-target";
constexpr const char* kHost = "nqn.2024-01.io.nvmf:a-host";

class HostTarget : public ::testing::Test {
 protected:
  void SetUp() override {
    target::TargetConfig cfg;
    cfg.threads = 2;
    cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.allow_any_host = false;
    s.allowed_hosts = {kHost};
    s.namespaces = {{1, "mem:32M", "", true}, {2, "null:1G", "", true}};
    cfg.subsystems.push_back(s);
    cfg.log = [](const std::string&) {};
    ASSERT_TRUE(target::Target::Start(cfg, &tgt).ok());
  }
  void TearDown() override { tgt->Stop(); }
  host::ConnectOptions Opts(const std::string& nqn = kNqn) {
    host::ConnectOptions o;
    o.trsvcid = tgt->ports()[0];
    o.subnqn = nqn;
    o.hostnqn = kHost;
    return o;
  }
  std::unique_ptr<target::Target> tgt;
};

TEST_F(HostTarget, DiscoveryLogNamesTheSubsystem) {
  host::SyncController d;
  ASSERT_TRUE(d.Connect(Opts(spec::kDiscoveryNqn)).ok());
  host::DiscoveryLog log;
  ASSERT_TRUE(d.Discovery(&log).ok());
  ASSERT_EQ(log.numrec, 2u);
  EXPECT_STREQ(log.entries[1].subnqn, kNqn);
  EXPECT_EQ(std::string(log.entries[1].trsvcid), std::to_string(tgt->ports()[0]));
}

TEST_F(HostTarget, IdentifyAndNamespaces) {
  host::SyncController c;
  ASSERT_TRUE(c.Connect(Opts()).ok());
  EXPECT_STREQ(c.identify().subnqn, kNqn);
  std::vector<uint32_t> ns;
  ASSERT_TRUE(c.ActiveNamespaces(&ns).ok());
  EXPECT_EQ(ns, (std::vector<uint32_t>{1, 2}));
  spec::IdentifyNamespace id{};
  ASSERT_TRUE(c.IdentifyNamespace(2, &id).ok());
  EXPECT_EQ(id.nsze, (1ull << 30) / 512);
}

TEST_F(HostTarget, DataOnSeveralQueuesWithDigests) {
  for (bool digests : {false, true}) {
    host::SyncController c;
    host::ConnectOptions o = Opts();
    o.header_digest = o.data_digest = digests;
    o.nr_io_queues = 4;
    ASSERT_TRUE(c.Connect(o).ok());
    EXPECT_EQ(c.async().io_queue_count(), 4u);
    std::vector<uint8_t> out(3 << 20), in(out.size());  // split over the transfer limit
    Fill(out, digests ? 2 : 1);
    ASSERT_TRUE(c.Write(1, 1000, out.size() / 512, 512, out.data()).ok());
    ASSERT_TRUE(c.Flush(1).ok());
    ASSERT_TRUE(c.Read(1, 1000, in.size() / 512, 512, in.data()).ok());
    EXPECT_EQ(in, out) << "digests " << digests;
  }
}

TEST_F(HostTarget, NvmeErrorsReachTheCaller) {
  host::SyncController c;
  ASSERT_TRUE(c.Connect(Opts()).ok());
  std::vector<uint8_t> buf(4096);
  Status s = c.Read(1, (32 << 20) / 512 - 4, 8, 512, buf.data());
  EXPECT_EQ(s.code(), Status::Code::kNvmeError);
  EXPECT_NE(s.message().find("LBA Out of Range"), std::string::npos) << s.message();
  s = c.Read(7, 0, 8, 512, buf.data());
  EXPECT_EQ(s.code(), Status::Code::kNvmeError);
  EXPECT_NE(s.message().find("Invalid Namespace"), std::string::npos) << s.message();
  EXPECT_TRUE(c.Read(1, 0, 8, 512, buf.data()).ok()) << "the association lives on";
}

TEST_F(HostTarget, RefusedHostAndUnknownSubsystem) {
  host::SyncController c;
  host::ConnectOptions o = Opts();
  o.hostnqn = "nqn.2024-01.io.nvmf:not-allowed";
  Status s = c.Connect(o);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Invalid Host"), std::string::npos) << s.message();
  host::SyncController u;
  s = u.Connect(Opts("nqn.2024-01.io.nvmf:nowhere"));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("byte 256"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace nvmf::test
