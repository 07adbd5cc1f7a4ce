// The target's data-integrity guarantees (docs/reliability.md), each tried the way a
// faulty or hostile host would: a write whose data digest fails, a write cut off by a
// reset, a bad in-capsule digest, absurd data lengths, and teardown with data in flight.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "nvmf/spec/admin.h"
#include "nvmf/target.h"
#include "support/test_host.h"
#include "tcp/pdu_codec.h"

namespace nvmf::test {
namespace {

using target::Target;
using target::TargetConfig;
namespace wire = spec::tcp;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:integrity";

// A host speaking raw PDUs on one I/O queue, so that digests and cuts are ours to choose.
class RawIoQueue {
 public:
  RawIoQueue(EventLoop* loop, uint16_t port, bool ddgst) : peer_(loop) {
    ok_ = peer_.ConnectHost(port, false, ddgst);
    cfg_.data_digest = ddgst;
  }
  bool ok() const { return ok_; }

  // Sends a command; icd goes in the capsule. corrupt: flips the data digest.
  bool Send(const spec::Sqe& sqe, const std::vector<uint8_t>& icd = {}, bool corrupt = false) {
    uint8_t hdr[tcp::kMaxHeaderBytes];
    uint32_t n = tcp::BuildCapsuleCmd(hdr, sqe, static_cast<uint32_t>(icd.size()), cfg_);
    std::vector<uint8_t> pdu = WithPayload(hdr, n, icd.data(), static_cast<uint32_t>(icd.size()),
                                           cfg_.data_digest);
    if (corrupt) pdu.back() ^= 0xff;
    return peer_.Send(pdu);
  }
  // Waits for a PDU of the given type.
  std::vector<uint8_t> Expect(uint8_t type) {
    std::vector<uint8_t> p = peer_.RecvPdu();
    if (p.empty() || p[0] != type) return {};
    return p;
  }
  spec::Cqe Response() {
    std::vector<uint8_t> p = Expect(wire::kCapsuleResp);
    spec::Cqe c{};
    if (p.size() < 8 + sizeof(c)) {
      c.status = 0xFFFF;
      return c;
    }
    std::memcpy(&c, p.data() + 8, sizeof(c));
    return c;
  }
  bool Connect(uint16_t cntlid) {
    spec::ConnectSqe c{};
    c.opc = spec::kFabricsCommand;
    c.fctype = spec::kFctypeConnect;
    c.cid = 1;
    c.qid = 1;
    c.sqsize = 31;
    c.sgl1.length = sizeof(spec::ConnectData);
    c.sgl1.type = spec::kSglInCapsule;
    spec::ConnectData d{};
    d.cntlid = cntlid;
    std::strncpy(d.subnqn, kNqn, sizeof(d.subnqn) - 1);
    std::strncpy(d.hostnqn, kTestHostNqn, sizeof(d.hostnqn) - 1);
    spec::Sqe sqe;
    std::memcpy(&sqe, &c, sizeof(sqe));
    sqe.fuse_psdt = spec::kPsdtSglMptrContig << 6;
    std::vector<uint8_t> data(sizeof(d));
    std::memcpy(data.data(), &d, sizeof(d));
    return Send(sqe, data) && St(Response()) == 0;
  }
  // A write of len bytes at slba whose data goes by R2T/H2CData.
  static spec::Sqe WriteSqe(uint16_t cid, uint64_t slba, uint32_t len, bool icd) {
    spec::Sqe s = spec::LbaSqe(spec::kNvmWrite, 1, slba, len / 512);
    s.cid = cid;
    s.fuse_psdt = spec::kPsdtSglMptrContig << 6;
    s.sgl1.length = len;
    s.sgl1.type = icd ? spec::kSglInCapsule : spec::kSglTransport;
    return s;
  }
  // Sends H2CData answering an R2T; corrupt flips the digest; cut sends only that many
  // bytes of the PDU.
  bool SendH2C(uint16_t cid, uint16_t ttag, uint32_t offset, const std::vector<uint8_t>& data,
               bool corrupt = false, size_t cut = SIZE_MAX) {
    uint8_t hdr[tcp::kMaxHeaderBytes];
    uint32_t n = tcp::BuildH2CData(hdr, cid, ttag, offset, static_cast<uint32_t>(data.size()),
                                   true, cfg_);
    std::vector<uint8_t> pdu = WithPayload(hdr, n, data.data(),
                                           static_cast<uint32_t>(data.size()), cfg_.data_digest);
    if (corrupt) pdu.back() ^= 0xff;
    if (cut < pdu.size()) pdu.resize(cut);
    return peer_.Send(pdu);
  }
  void Close() { peer_.Close(); }

 private:
  RawPeer peer_;
  tcp::TxConfig cfg_;
  bool ok_ = false;
};

class IntegrityTest : public ::testing::Test {
 protected:
  void Start(const std::string& backend = "mem:4M", TargetConfig cfg = TargetConfig()) {
    target::PortConfig p;
    p.port = 0;
    cfg.ports.push_back(p);
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.namespaces.push_back({1, backend, "", true});
    cfg.subsystems.push_back(s);
    cfg.log = [this](const std::string& l) {
      std::lock_guard<std::mutex> lock(log_mu);
      log.push_back(l);
    };
    Status st = Target::Start(cfg, &target);
    ASSERT_TRUE(st.ok()) << st.ToString();
    port = target->ports()[0];
    ASSERT_TRUE(admin.Open(port).ok());
    cntlid = admin.ConnectAdmin(kNqn);
    ASSERT_NE(cntlid, 0);
    spec::Sqe sf{};
    sf.opc = spec::kAdminSetFeatures;
    sf.cdw10 = spec::kFeatNumberOfQueues;
    sf.cdw11 = 3 | 3u << 16;
    ASSERT_EQ(St(admin.Run(sf)), 0);
    ASSERT_TRUE(io.Open(port, false, false, 8192, 32).ok());
    ASSERT_EQ(St(io.Connect(kNqn, 2, cntlid, 31)), 0);
  }
  void TearDown() override {
    io.Close();
    admin.Close();
    if (target) target->Stop();
  }
  std::vector<uint8_t> Read(uint64_t slba, uint32_t len) {
    std::vector<uint8_t> v(len);
    spec::Cqe c = io.Run(IoSqe(spec::kNvmRead, 1, slba, len / 512), v.data(), len, false);
    EXPECT_EQ(St(c), 0);
    return v;
  }
  void Write(uint64_t slba, std::vector<uint8_t> v) {
    spec::Cqe c = io.Run(IoSqe(spec::kNvmWrite, 1, slba, static_cast<uint32_t>(v.size() / 512)),
                         v.data(), v.size(), true);
    ASSERT_EQ(St(c), 0);
  }
  bool Logged(const std::string& needle) {
    std::lock_guard<std::mutex> lock(log_mu);
    for (const auto& l : log) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  EventLoop loop;
  std::unique_ptr<Target> target;
  uint16_t port = 0;
  uint16_t cntlid = 0;
  TestQueue admin{&loop};
  TestQueue io{&loop};
  std::mutex log_mu;
  std::vector<std::string> log;
};

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  Fill(v, seed);
  return v;
}

// Guarantee 1: data whose digest fails never reaches the medium.
TEST_F(IntegrityTest, H2CDataWithBadDigestNeverReachesMemoryNamespace) {
  Start();
  const uint32_t len = 32768;
  const std::vector<uint8_t> before = Pattern(len, 1);
  Write(8, before);

  RawIoQueue raw(&loop, port, /*ddgst=*/true);
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw.Connect(cntlid));
  ASSERT_TRUE(raw.Send(RawIoQueue::WriteSqe(7, 8, len, false)));
  std::vector<uint8_t> r2t = raw.Expect(wire::kR2T);
  ASSERT_FALSE(r2t.empty());
  const auto& hdr = *reinterpret_cast<const wire::R2T*>(r2t.data());
  ASSERT_EQ(hdr.r2tl, len);
  ASSERT_TRUE(raw.SendH2C(7, hdr.ttag, 0, Pattern(len, 2), /*corrupt=*/true));
  spec::Cqe c = raw.Response();
  EXPECT_EQ(Sc(c), spec::kScTransientTransportError);
  EXPECT_FALSE(spec::StatusDnr(St(c))) << "a digest error is worth a retry";
  EXPECT_EQ(Read(8, len), before) << "the bad data reached the namespace";
}

// Guarantee 1: a write cut off mid-data leaves the range as it was.
TEST_F(IntegrityTest, WriteCutOffByResetLeavesRangeUnchanged) {
  Start();
  const uint32_t len = 65536;
  const std::vector<uint8_t> before = Pattern(len, 3);
  Write(0, before);
  for (bool ddgst : {false, true}) {
    RawIoQueue raw(&loop, port, ddgst);
    ASSERT_TRUE(raw.ok());
    ASSERT_TRUE(raw.Connect(cntlid));
    ASSERT_TRUE(raw.Send(RawIoQueue::WriteSqe(9, 0, len, false)));
    std::vector<uint8_t> r2t = raw.Expect(wire::kR2T);
    ASSERT_FALSE(r2t.empty());
    const auto& hdr = *reinterpret_cast<const wire::R2T*>(r2t.data());
    ASSERT_TRUE(raw.SendH2C(9, hdr.ttag, 0, Pattern(len, 4), false, 24 + len / 2));
    // Let the target take what was sent before the reset.
    loop.RunUntil([] { return false; }, std::chrono::milliseconds(100));
    raw.Close();
    loop.RunUntil([] { return false; }, std::chrono::milliseconds(100));
    EXPECT_EQ(Read(0, len), before) << "ddgst " << ddgst << ": half a write reached the namespace";
  }
}

// Guarantee 4: a bad digest on in-capsule data is retryable, and the data is not applied.
TEST_F(IntegrityTest, BadInCapsuleDigestIsRetryableAndNotApplied) {
  Start();
  const std::vector<uint8_t> before = Pattern(4096, 5);
  Write(16, before);
  RawIoQueue raw(&loop, port, true);
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw.Connect(cntlid));
  ASSERT_TRUE(raw.Send(RawIoQueue::WriteSqe(3, 16, 4096, true), Pattern(4096, 6), true));
  spec::Cqe c = raw.Response();
  EXPECT_EQ(Sc(c), spec::kScTransientTransportError);
  EXPECT_FALSE(spec::StatusDnr(St(c))) << "Do Not Retry on a transient transport error";
  EXPECT_EQ(Read(16, 4096), before);
}

// Guarantee 5: admin data lengths are bounded before anything is allocated.
TEST_F(IntegrityTest, HugeAdminDataLengthsAreRefusedWithoutAllocating) {
  Start();
  // Identify with a 1 GiB SGL: the command returns 4 KiB, and MDTS bounds the transfer.
  std::vector<uint8_t> buf(4096);
  spec::Sqe id{};
  id.opc = spec::kAdminIdentify;
  id.cdw10 = spec::kCnsController;
  Capsule* cap = AllocateCommand(admin.qpair(), id);
  ASSERT_NE(cap, nullptr);
  FreeCapsule(cap);
  // The host library would not build such a command: craft it on a raw admin queue.
  RawPeer peer(&loop);
  ASSERT_TRUE(peer.ConnectHost(port));
  tcp::TxConfig cfg;
  auto send = [&](spec::Sqe s, const std::vector<uint8_t>& icd) {
    uint8_t hdr[tcp::kMaxHeaderBytes];
    uint32_t n = tcp::BuildCapsuleCmd(hdr, s, static_cast<uint32_t>(icd.size()), cfg);
    return peer.Send(WithPayload(hdr, n, icd.data(), static_cast<uint32_t>(icd.size()), false));
  };
  auto response = [&]() {
    spec::Cqe c{};
    c.status = 0xFFFF;
    for (int i = 0; i < 64; i++) {  // skip data PDUs
      std::vector<uint8_t> p = peer.RecvPdu();
      if (p.empty()) break;
      if (p[0] == wire::kCapsuleResp) {
        std::memcpy(&c, p.data() + 8, sizeof(c));
        break;
      }
    }
    return c;
  };
  spec::ConnectSqe cs{};
  cs.opc = spec::kFabricsCommand;
  cs.fctype = spec::kFctypeConnect;
  cs.cid = 1;
  cs.sqsize = 31;
  cs.sgl1.length = sizeof(spec::ConnectData);
  cs.sgl1.type = spec::kSglInCapsule;
  spec::ConnectData d{};
  d.cntlid = 0xFFFF;
  std::strncpy(d.subnqn, "nqn.2014-08.org.nvmexpress.discovery", sizeof(d.subnqn) - 1);
  std::strncpy(d.hostnqn, kTestHostNqn, sizeof(d.hostnqn) - 1);
  spec::Sqe sqe;
  std::memcpy(&sqe, &cs, sizeof(sqe));
  sqe.fuse_psdt = spec::kPsdtSglMptrContig << 6;
  std::vector<uint8_t> data(sizeof(d));
  std::memcpy(data.data(), &d, sizeof(d));
  ASSERT_TRUE(send(sqe, data));
  ASSERT_EQ(St(response()), 0);

  for (uint32_t len : {1u << 30, 3u << 30}) {
    spec::Sqe big{};
    big.opc = spec::kAdminIdentify;
    big.cid = 2;
    big.cdw10 = spec::kCnsController;
    big.fuse_psdt = spec::kPsdtSglMptrContig << 6;
    big.sgl1.length = len;
    big.sgl1.type = spec::kSglTransport;
    ASSERT_TRUE(send(big, {}));
    spec::Cqe c = response();
    EXPECT_NE(St(c), 0) << "a " << len << "-byte Identify was served";
    EXPECT_NE(St(c), 0xFFFF) << "no response: the target fell over";
  }
  // A Get Log Page asking for 16 GiB of the discovery log.
  spec::Sqe lp{};
  lp.opc = spec::kAdminGetLogPage;
  lp.cid = 3;
  lp.cdw10 = spec::kLogDiscovery | 0xFFFFu << 16;
  lp.cdw11 = 0xFFFF;
  lp.fuse_psdt = spec::kPsdtSglMptrContig << 6;
  lp.sgl1.length = 0xFFFFFFFFu & ~3u;
  lp.sgl1.type = spec::kSglTransport;
  ASSERT_TRUE(send(lp, {}));
  spec::Cqe c = response();
  EXPECT_NE(St(c), 0);
  EXPECT_NE(St(c), 0xFFFF);
  // And the target still serves: an ordinary Identify works.
  std::vector<uint8_t> ident(4096);
  EXPECT_EQ(St(admin.Run(id, ident.data(), ident.size(), false)), 0);
}

}  // namespace
}  // namespace nvmf::test
