// TLS 1.3 with PSKs, our host against our target over loopback: every combination of a
// port's requirement (required, optional, none) and a host with or without TLS, wrong and
// unknown keys, both identity versions and derivations, SHA-256 and SHA-384 PSKs, and the
// discovery log's TREQ/TSAS. The target's log shows the cipher of each secured connection,
// so a TLS stubbed out would fail here (as would a required port that let a plain host in).
#include <gtest/gtest.h>

#include <cstring>
#include <mutex>
#include <thread>

#include "nvmf/host_sync.h"
#include "nvmf/spec/fabrics.h"
#include "nvmf/target.h"
#include "support/loopback.h"
#include "support/test_host.h"

namespace nvmf::test {
namespace {

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:tls";
constexpr const char* kHost256 = "nqn.2024-01.io.nvmf:host-sha256";
constexpr const char* kHost384 = "nqn.2024-01.io.nvmf:host-sha384";
constexpr const char* kKey01 = "NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
constexpr const char* kKey02 =
    "NVMeTLSkey-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vcSEgBQ==:";
constexpr const char* kOtherKey01 = "NVMeTLSkey-1:01:paWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWFL193:";

enum PortIndex { kRequired = 0, kOptional = 1, kNone = 2 };

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    target::TargetConfig cfg;
    cfg.threads = 2;
    for (auto [id, sc] : {std::pair{1, SecureChannel::kRequired}, std::pair{2, SecureChannel::kOptional},
                          std::pair{3, SecureChannel::kNone}}) {
      target::PortConfig p{static_cast<uint16_t>(id), "127.0.0.1", 0, {}};
      p.tls = sc;
      cfg.ports.push_back(p);
    }
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.namespaces = {{1, "mem:16M", "", true}};
    cfg.subsystems.push_back(s);
    cfg.tls_keys = {{kHost256, kKey01}, {kHost384, kKey02}};
    cfg.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu_);
      log_.push_back(line);
    };
    ASSERT_TRUE(target::Target::Start(cfg, &tgt).ok());
  }
  void TearDown() override { tgt->Stop(); }

  host::ConnectOptions Opts(PortIndex port, const char* host, const char* key) {
    host::ConnectOptions o;
    o.trsvcid = tgt->ports()[port];
    o.subnqn = kNqn;
    o.hostnqn = host;
    if (key != nullptr) {
      o.tls.enabled = true;
      o.tls.key = key;
    }
    return o;
  }
  // Lines of the target's log that contain all of the words.
  size_t LogCount(std::initializer_list<std::string> words) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const std::string& l : log_) {
      bool all = true;
      for (const std::string& w : words) all = all && l.find(w) != std::string::npos;
      n += all;
    }
    return n;
  }
  // The target logs on its own thread, maybe after the host saw the failure.
  size_t WaitLog(std::initializer_list<std::string> words, size_t want) {
    size_t n = 0;
    for (int i = 0; i < 200 && (n = LogCount(words)) < want; i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return n;
  }
  bool LogMentions(const std::string& secret) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& l : log_) {
      if (l.find(secret) != std::string::npos) return true;
    }
    return false;
  }
  // Writes, reads back and compares 1 MiB plus a small block.
  void ExpectData(host::SyncController& c, int seed) {
    std::vector<uint8_t> out(1 << 20), in(out.size());
    Fill(out, seed);
    ASSERT_TRUE(c.Write(1, 64, out.size() / 512, 512, out.data()).ok());
    ASSERT_TRUE(c.Read(1, 64, in.size() / 512, 512, in.data()).ok());
    EXPECT_EQ(in, out);
    std::vector<uint8_t> small(512, static_cast<uint8_t>(seed)), back(512);
    ASSERT_TRUE(c.Write(1, 7, 1, 512, small.data()).ok());
    ASSERT_TRUE(c.Read(1, 7, 1, 512, back.data()).ok());
    EXPECT_EQ(back, small);
  }

  std::unique_ptr<target::Target> tgt;
  std::mutex mu_;
  std::vector<std::string> log_;
};

TEST_F(Tls, RequiredPortEveryIdentityDerivationAndHash) {
  int seed = 1;
  for (const char* host : {kHost256, kHost384}) {
    for (int version : {0, 1}) {
      for (const char* derive : {"nvme-cli", "spec"}) {
        // Version 0 identities carry nothing that says the derivation: the port's
        // (nvme-cli) is the only one that can work.
        const bool should_work = version == 1 || std::string(derive) == "nvme-cli";
        SCOPED_TRACE(std::string(host) + " version " + std::to_string(version) + " " + derive);
        host::SyncController c;
        host::ConnectOptions o = Opts(kRequired, host, host == kHost256 ? kKey01 : kKey02);
        o.tls.identity_version = version;
        o.tls.derivation = derive;
        o.nr_io_queues = 2;
        o.header_digest = o.data_digest = seed % 2 == 0;
        Status s = c.Connect(o);
        ASSERT_EQ(s.ok(), should_work) << s.ToString();
        if (should_work) ExpectData(c, seed++);
      }
    }
  }
  const std::string id256 = std::string("identity NVMe1R01 ") + kHost256;
  EXPECT_GE(LogCount({"secured (TLS 1.3 TLS_AES_128_GCM_SHA256", id256}), 3u);
  // SHA-384: as the specification says with "spec"; as Linux's tlshd does with nvme-cli.
  EXPECT_GE(LogCount({"secured (TLS 1.3 TLS_AES_256_GCM_SHA384", std::string("NVMe1R02 ") + kHost384}), 3u);
  EXPECT_GE(LogCount({"secured (TLS 1.3 TLS_CHACHA20_POLY1305_SHA256", std::string("NVMe0R02 ") + kHost384}), 3u);
  EXPECT_FALSE(LogMentions("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh"));
}

TEST_F(Tls, RequiredPortRefusesAPlainHostAndServesOthers) {
  host::SyncController tls;
  ASSERT_TRUE(tls.Connect(Opts(kRequired, kHost256, kKey01)).ok());
  host::SyncController plain;
  Status s = plain.Connect(Opts(kRequired, kHost256, nullptr));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(WaitLog({"plain ICReq was refused", "1 failure for address 127.0.0.1"}, 1), 1u);
  ExpectData(tls, 3);  // the connection already secured lives on
  host::SyncController again;
  ASSERT_TRUE(again.Connect(Opts(kRequired, kHost256, kKey01)).ok());
}

TEST_F(Tls, OptionalPortTakesBoth) {
  host::SyncController tls, plain;
  ASSERT_TRUE(tls.Connect(Opts(kOptional, kHost384, kKey02)).ok());
  ASSERT_TRUE(plain.Connect(Opts(kOptional, kHost256, nullptr)).ok());
  ExpectData(tls, 4);
  ExpectData(plain, 5);
  EXPECT_GE(LogCount({"secured (TLS 1.3", kHost384}), 2u);  // admin and I/O queue
  EXPECT_EQ(LogCount({"secured", kHost256}), 0u);
}

TEST_F(Tls, PortWithoutTlsRefusesATlsHost) {
  host::SyncController tls, plain;
  EXPECT_FALSE(tls.Connect(Opts(kNone, kHost256, kKey01)).ok());
  ASSERT_TRUE(plain.Connect(Opts(kNone, kHost256, nullptr)).ok());
  ExpectData(plain, 6);
}

TEST_F(Tls, AWrongOrUnknownKeyFailsOnlyThatConnection) {
  host::SyncController good;
  ASSERT_TRUE(good.Connect(Opts(kRequired, kHost256, kKey01)).ok());
  for (int i = 1; i <= 2; i++) {
    host::SyncController bad;
    host::ConnectOptions o = Opts(kRequired, kHost256, kOtherKey01);
    o.connect_timeout = std::chrono::milliseconds(3000);
    EXPECT_FALSE(bad.Connect(o).ok());
    EXPECT_EQ(WaitLog({"TLS handshake failed", std::to_string(i) + " failure" + (i == 1 ? "" : "s") +
                                                    " for " + kHost256}, 1),
              1u);
  }
  host::SyncController unknown;
  EXPECT_FALSE(unknown.Connect(Opts(kRequired, "nqn.2024-01.io.nvmf:stranger", kKey01)).ok());
  EXPECT_EQ(WaitLog({"no PSK for identity", "1 failure for nqn.2024-01.io.nvmf:stranger"}, 1), 1u);
  // Optional port: a TLS host with the wrong key is refused too, not let in plain.
  host::SyncController wrong_optional;
  EXPECT_FALSE(wrong_optional.Connect(Opts(kOptional, kHost384, kKey01)).ok());
  ExpectData(good, 7);
  EXPECT_FALSE(LogMentions("paWlpaWlpaWl"));
}

// The key binds the queue to the host and subsystem of its PSK identity: a Connect that
// names others is refused.
TEST_F(Tls, ConnectMustNameTheHostOfThePskIdentity) {
  EventLoop loop;
  tcp::HostOptions o;
  o.tls.enabled = true;
  o.tls.key = kKey01;
  o.hostnqn = kHost256;
  o.subnqn = kNqn;
  TestQueue impostor(&loop), honest(&loop);
  ASSERT_TRUE(impostor.Open(tgt->ports()[kRequired], o).ok());
  spec::Cqe cqe = impostor.Connect(kNqn, 0, 0xFFFF, 31, 0, kHost384);
  EXPECT_EQ(Sct(cqe), spec::kSctCommandSpecific);
  EXPECT_EQ(Sc(cqe), spec::kScConnectInvalidHost);
  EXPECT_GE(WaitLog({"PSK identity names host", kHost256}, 1), 1u);
  ASSERT_TRUE(honest.Open(tgt->ports()[kRequired], o).ok());
  EXPECT_EQ(St(honest.Connect(kNqn, 0, 0xFFFF, 31, 0, kHost256)), 0);
}

TEST_F(Tls, DiscoveryLogSaysTreqAndTsas) {
  for (PortIndex port : {kRequired, kOptional, kNone}) {
    SCOPED_TRACE(port);
    host::SyncController d;
    host::ConnectOptions o = Opts(port, kHost256, port == kNone ? nullptr : kKey01);
    o.subnqn = spec::kDiscoveryNqn;
    ASSERT_TRUE(d.Connect(o).ok());
    host::DiscoveryLog log;
    ASSERT_TRUE(d.Discovery(&log).ok());
    bool seen = false;
    for (const auto& e : log.entries) {
      if (std::string(e.subnqn) != kNqn) continue;
      const uint16_t p = static_cast<uint16_t>(std::stoi(std::string(e.trsvcid, strnlen(e.trsvcid, sizeof(e.trsvcid)))));
      PortIndex which = p == tgt->ports()[0] ? kRequired : p == tgt->ports()[1] ? kOptional : kNone;
      EXPECT_EQ(e.treq & 3, which == kRequired ? 1 : 2) << "port " << p;
      EXPECT_EQ(e.tsas[0], which == kNone ? 0 : 2) << "port " << p;
      seen = true;
    }
    EXPECT_TRUE(seen);
  }
}

}  // namespace
}  // namespace nvmf::test
