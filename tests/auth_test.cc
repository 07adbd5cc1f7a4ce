// DH-HMAC-CHAP end to end over loopback NVMe/TCP: this project's host against this
// project's target. Who gets in (right secrets, uni- and bidirectional, every hash and a
// DH group), who does not (a wrong or missing secret, a controller that cannot prove
// itself), what a host that has not authenticated can do (nothing but authenticate),
// that the target keeps serving others, counts failures per host and never logs a
// secret, and re-authentication.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "auth/dhchap.h"
#include "nvmf/host_sync.h"
#include "nvmf/secure_channel.h"
#include "nvmf/spec/auth.h"
#include "nvmf/spec/fabrics.h"
#include "nvmf/target.h"
#include "support/raw_host.h"

namespace nvmf::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:auth";
constexpr const char* kHostA = "nqn.2014-08.org.nvmexpress:uuid:host-a";
constexpr const char* kHostB = "nqn.2014-08.org.nvmexpress:uuid:host-b";
constexpr const char* kOpen = "nqn.2014-08.org.nvmexpress:uuid:no-credentials";

std::string NewSecret(auth::Hash transform = auth::Hash::kNone) {
  auth::Secret s;
  EXPECT_TRUE(auth::GenerateSecret(transform, 32, &s).ok());
  return auth::FormatSecret(s);
}

// An SGL for a command that moves no data, as hosts send it over NVMe/TCP.
void NoData(spec::Sqe* sqe) {
  sqe->fuse_psdt = spec::kPsdtSglMptrContig << 6;
  sqe->sgl1 = spec::SglDescriptor{};
  sqe->sgl1.type = spec::kSglTransport;
}

class Auth : public ::testing::Test {
 protected:
  void Start(const std::map<std::string, target::HostCredentials>& hosts,
             const std::string& tls_key = "") {
    target::TargetConfig cfg;
    cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
    if (!tls_key.empty()) {
      cfg.ports[0].tls = SecureChannel::kRequired;
      for (const auto& [nqn, c] : hosts) cfg.tls_keys[nqn] = tls_key;
    }
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.namespaces = {{1, "mem:16M", "", true}};
    cfg.subsystems.push_back(s);
    cfg.hosts = hosts;
    cfg.connect_timeout = 2000ms;
    cfg.log = [this](const std::string& l) {
      std::lock_guard<std::mutex> lock(mu_);
      log_ += l + "\n";
    };
    Status st = target::Target::Start(cfg, &tgt_);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void TearDown() override {
    if (tgt_) tgt_->Stop();
  }
  host::ConnectOptions Opts(const std::string& hostnqn, const std::string& secret = "",
                            const std::string& ctrl_secret = "") {
    host::ConnectOptions o;
    o.trsvcid = tgt_->ports()[0];
    o.subnqn = kNqn;
    o.hostnqn = hostnqn;
    o.nr_io_queues = 2;
    o.dhchap_secret = secret;
    o.dhchap_ctrl_secret = ctrl_secret;
    return o;
  }
  std::string Log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  bool WaitLog(const std::string& needle) {
    for (int i = 0; i < 300; i++) {
      if (Log().find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  // Connects, writes and reads back a block on each I/O queue.
  static Status ConnectAndUse(host::SyncController* c, const host::ConnectOptions& o) {
    Status s = c->Connect(o);
    if (!s.ok()) return s;
    std::vector<uint8_t> buf(4096, 0x5A), back(4096);
    s = c->Write(1, 8, 8, 512, buf.data());
    if (!s.ok()) return s;
    s = c->Read(1, 8, 8, 512, back.data());
    if (!s.ok()) return s;
    return back == buf ? Status::OK() : Status::IoError("data differs");
  }

  std::unique_ptr<target::Target> tgt_;
  std::mutex mu_;
  std::string log_;
};

TEST_F(Auth, TheRightSecretGetsInOnEveryQueue) {
  const std::string secret = NewSecret(auth::Hash::kSha256);
  Start({{kHostA, {secret, "", "hmac(sha256)", "null"}}});
  host::SyncController c;
  Status s = ConnectAndUse(&c, Opts(kHostA, secret));
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << Log();
  // The admin queue and both I/O queues authenticated.
  int n = 0;
  const std::string log = Log();
  for (size_t p = 0; (p = log.find("authenticated (DH-HMAC-CHAP", p)) != std::string::npos; p++) n++;
  EXPECT_EQ(n, 3) << log;
}

TEST_F(Auth, EveryHashWithADhGroupAndBidirectional) {
  for (const char* hash : {"hmac(sha256)", "hmac(sha384)", "hmac(sha512)"}) {
    const std::string secret = NewSecret(auth::Hash::kSha512), ctrl = NewSecret();
    Start({{kHostA, {secret, ctrl, hash, "ffdhe2048"}}});
    host::SyncController c;
    Status s = ConnectAndUse(&c, Opts(kHostA, secret, ctrl));
    EXPECT_TRUE(s.ok()) << hash << ": " << s.ToString() << "\n" << Log();
    EXPECT_NE(Log().find(std::string(hash) + ", ffdhe2048, bidirectional)"), std::string::npos) << Log();
    c.Close();
    tgt_->Stop();
    tgt_.reset();
    log_.clear();
  }
}

TEST_F(Auth, AWrongOrMissingSecretIsRefusedAndOthersAreServed) {
  const std::string secret = NewSecret();
  Start({{kHostA, {secret, "", "hmac(sha256)", "null"}}});
  host::SyncController ok_host;
  ASSERT_TRUE(ConnectAndUse(&ok_host, Opts(kOpen)).ok()) << "a host without credentials";

  host::SyncController wrong;
  Status s = wrong.Connect(Opts(kHostA, NewSecret()));
  EXPECT_EQ(s.code(), Status::Code::kAuthFailed) << s.ToString();
  EXPECT_NE(s.message().find("refused"), std::string::npos) << s.ToString();
  host::SyncController missing;
  s = missing.Connect(Opts(kHostA));
  EXPECT_EQ(s.code(), Status::Code::kAuthFailed) << s.ToString();
  EXPECT_NE(s.message().find("--dhchap-secret"), std::string::npos) << s.ToString();
  host::SyncController a;
  ASSERT_TRUE(ConnectAndUse(&a, Opts(kHostA, secret)).ok());

  EXPECT_TRUE(WaitLog("(1 failure for this host)")) << Log();
  EXPECT_NE(Log().find("the host's response is wrong"), std::string::npos) << Log();
  std::vector<uint8_t> buf(4096, 1);
  EXPECT_TRUE(ok_host.Write(1, 0, 8, 512, buf.data()).ok()) << "the other host was disturbed";
  // Neither the secret nor its key bytes reach the log.
  EXPECT_EQ(Log().find(secret.substr(10, 16)), std::string::npos);
  EXPECT_EQ(Log().find("DHHC-1"), std::string::npos);
}

TEST_F(Auth, FailuresAreCountedPerHost) {
  const std::string secret = NewSecret();
  Start({{kHostA, {secret, "", "hmac(sha256)", "null"}}, {kHostB, {NewSecret(), "", "hmac(sha256)", "null"}}});
  for (int i = 0; i < 3; i++) {
    host::SyncController c;
    EXPECT_FALSE(c.Connect(Opts(kHostA, NewSecret())).ok());
  }
  host::SyncController b;
  EXPECT_FALSE(b.Connect(Opts(kHostB, secret)).ok());
  EXPECT_TRUE(WaitLog("host '" + std::string(kHostA) + "' failed DH-HMAC-CHAP authentication (3 failures"))
      << Log();
  EXPECT_TRUE(WaitLog("host '" + std::string(kHostB) + "' failed DH-HMAC-CHAP authentication (1 failure"))
      << Log();
}

TEST_F(Auth, TheControllerMustProveItselfWhenAsked) {
  const std::string secret = NewSecret(), ctrl = NewSecret(auth::Hash::kSha384);
  Start({{kHostA, {secret, ctrl, "hmac(sha384)", "ffdhe3072"}}, {kHostB, {secret, "", "hmac(sha256)", "null"}}});
  host::SyncController good;
  ASSERT_TRUE(ConnectAndUse(&good, Opts(kHostA, secret, ctrl)).ok()) << Log();
  host::SyncController impostor_check;
  Status s = impostor_check.Connect(Opts(kHostA, secret, NewSecret()));
  EXPECT_EQ(s.code(), Status::Code::kAuthFailed) << s.ToString();
  EXPECT_NE(s.message().find("controller's response is wrong"), std::string::npos) << s.ToString();
  EXPECT_TRUE(WaitLog("the host refused the controller's response")) << Log();
  // A controller that has no controller secret for B cannot prove itself to B.
  host::SyncController b;
  s = b.Connect(Opts(kHostB, secret, ctrl));
  EXPECT_EQ(s.code(), Status::Code::kAuthFailed) << s.ToString();
  // A controller that does not authenticate at all is refused by a host that asks.
  host::SyncController open;
  s = open.Connect(Opts(kOpen, secret, ctrl));
  EXPECT_EQ(s.code(), Status::Code::kAuthFailed) << s.ToString();
  EXPECT_NE(s.message().find("does not authenticate"), std::string::npos) << s.ToString();
}

TEST_F(Auth, NothingButAuthenticationBeforeItSucceeds) {
  const std::string secret = NewSecret();
  Start({{kHostA, {secret, "", "hmac(sha256)", "null"}}});
  EventLoop loop;
  RawHost h(&loop, tgt_->ports()[0]);
  ASSERT_TRUE(h.ok());
  const spec::Cqe cc = h.ConnectCqe(kNqn, 0, spec::kDynamicControllerId, kHostA);
  ASSERT_EQ(spec::StatusOf(cc), 0);
  EXPECT_EQ(cc.cdw0 >> 16, spec::kAuthreqAtr) << "Connect's response asks for authentication";
  const uint16_t auth_required = spec::MakeStatus(spec::kSctCommandSpecific, spec::kScAuthRequired, true);
  // Property Get (CAP), Property Set (CC.EN) and Identify are all refused.
  spec::PropertyGetSqe pg{};
  pg.opc = spec::kFabricsCommand;
  pg.fctype = spec::kFctypePropertyGet;
  pg.cid = 2;
  pg.attrib = spec::kProperty8Bytes;
  pg.ofst = spec::kPropCap;
  spec::Sqe sqe;
  std::memcpy(&sqe, &pg, sizeof(sqe));
  NoData(&sqe);
  ASSERT_TRUE(h.Send(sqe));
  EXPECT_EQ(spec::StatusOf(h.Response()), auth_required);
  spec::PropertySetSqe ps{};
  ps.opc = spec::kFabricsCommand;
  ps.fctype = spec::kFctypePropertySet;
  ps.cid = 3;
  ps.ofst = spec::kPropCc;
  ps.value = 1;
  std::memcpy(&sqe, &ps, sizeof(sqe));
  NoData(&sqe);
  ASSERT_TRUE(h.Send(sqe));
  EXPECT_EQ(spec::StatusOf(h.Response()), auth_required);
  spec::Sqe id{};
  id.opc = 0x06;  // Identify
  id.cid = 4;
  id.cdw10 = 1;
  NoData(&id);
  ASSERT_TRUE(h.Send(id));
  EXPECT_EQ(spec::StatusOf(h.Response()), auth_required);
  // The queue is closed when it has not authenticated within the connect timeout.
  EXPECT_TRUE(WaitLog("not authenticated within")) << Log();
}

TEST_F(Auth, ReauthenticationOnEveryQueue) {
  const std::string secret = NewSecret();
  Start({{kHostA, {secret, "", "hmac(sha512)", "ffdhe2048"}}});
  host::SyncController c;
  ASSERT_TRUE(ConnectAndUse(&c, Opts(kHostA, secret)).ok());
  bool done = false;
  Status st;
  c.async().Reauthenticate([&](const Status& s) {
    done = true;
    st = s;
  });
  ASSERT_TRUE(c.async().loop()->RunUntil([&] { return done; }, 10000ms));
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::vector<uint8_t> buf(4096, 3);
  EXPECT_TRUE(c.Write(1, 0, 8, 512, buf.data()).ok());
}

TEST_F(Auth, TogetherWithTls) {
  // DH-HMAC-CHAP inside a TLS 1.3 channel: both must pass.
  const std::string psk = "NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
  const std::string secret = NewSecret(), ctrl = NewSecret();
  Start({{kHostA, {secret, ctrl, "hmac(sha384)", "ffdhe2048"}}}, psk);
  host::ConnectOptions o = Opts(kHostA, secret, ctrl);
  o.tls.enabled = true;
  o.tls.key = psk;
  host::SyncController c;
  Status s = ConnectAndUse(&c, o);
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << Log();
  EXPECT_NE(Log().find("secured (TLS 1.3"), std::string::npos) << Log();
  EXPECT_NE(Log().find("authenticated (DH-HMAC-CHAP, hmac(sha384), ffdhe2048, bidirectional)"),
            std::string::npos) << Log();
  // The right TLS key does not stand in for the DH-HMAC-CHAP secret.
  host::ConnectOptions bad = Opts(kHostA, NewSecret());
  bad.tls = o.tls;
  host::SyncController b;
  EXPECT_EQ(b.Connect(bad).code(), Status::Code::kAuthFailed);
}

TEST_F(Auth, DiscoveryNeedsNoAuthentication) {
  Start({{kHostA, {NewSecret(), "", "hmac(sha256)", "null"}}});
  host::SyncController d;
  host::ConnectOptions o = Opts(kHostA);
  o.subnqn = spec::kDiscoveryNqn;
  ASSERT_TRUE(d.Connect(o).ok());
  host::DiscoveryLog log;
  EXPECT_TRUE(d.Discovery(&log).ok());
}

TEST_F(Auth, BadCredentialsStopTheTargetFromStarting) {
  target::TargetConfig cfg;
  cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
  target::SubsystemConfig s;
  s.nqn = kNqn;
  cfg.subsystems.push_back(s);
  cfg.hosts[kHostA] = {"DHHC-1:00:bm90IGEga2V5:", "", "hmac(sha256)", "null"};
  std::unique_ptr<target::Target> t;
  Status st = target::Target::Start(cfg, &t);
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find(std::string("host ") + kHostA + ": dhchap_key"), std::string::npos)
      << st.ToString();
  cfg.hosts[kHostA] = {NewSecret(), "", "hmac(md5)", "null"};
  EXPECT_FALSE(target::Target::Start(cfg, &t).ok());
  cfg.hosts[kHostA] = {NewSecret(), "", "hmac(sha256)", "ffdhe1024"};
  EXPECT_FALSE(target::Target::Start(cfg, &t).ok());
}

}  // namespace
}  // namespace nvmf::test
