// The target's data-integrity guarantees (docs/reliability.md), each tried the way a
// faulty or hostile host would: a write whose data digest fails, a write cut off by a
// reset, a bad in-capsule digest, absurd data lengths, and teardown with data in flight.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "nvmf/spec/admin.h"
#include "nvmf/target.h"
#include "target/backend.h"
#include "support/raw_host.h"
#include "support/test_host.h"

namespace nvmf::test {
namespace {

using target::Target;
using target::TargetConfig;
namespace wire = spec::tcp;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:integrity";

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

  RawHost raw(&loop, port, /*ddgst=*/true);
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw.Connect(kNqn, 1, cntlid, kTestHostNqn));
  ASSERT_TRUE(raw.Send(RawHost::LbaCommand(spec::kNvmWrite, 7, 8, len, false)));
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
    RawHost raw(&loop, port, ddgst);
    ASSERT_TRUE(raw.ok());
    ASSERT_TRUE(raw.Connect(kNqn, 1, cntlid, kTestHostNqn));
    ASSERT_TRUE(raw.Send(RawHost::LbaCommand(spec::kNvmWrite, 9, 0, len, false)));
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
  RawHost raw(&loop, port, true);
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw.Connect(kNqn, 1, cntlid, kTestHostNqn));
  ASSERT_TRUE(raw.Send(RawHost::LbaCommand(spec::kNvmWrite, 3, 16, 4096, true), Pattern(4096, 6), true));
  spec::Cqe c = raw.Response();
  EXPECT_EQ(Sc(c), spec::kScTransientTransportError);
  EXPECT_FALSE(spec::StatusDnr(St(c))) << "Do Not Retry on a transient transport error";
  EXPECT_EQ(Read(16, 4096), before);
}

// Guarantee 5: admin data lengths are bounded before anything is allocated.
TEST_F(IntegrityTest, HugeAdminDataLengthsAreRefusedWithoutAllocating) {
  Start();
  // Identify with a 1 GiB SGL: the command returns 4 KiB, and MDTS bounds the transfer.
  // The host library would not build such a command: a raw host on the discovery
  // subsystem (open to any host) sends it.
  spec::Sqe id{};
  id.opc = spec::kAdminIdentify;
  id.cdw10 = spec::kCnsController;
  RawHost raw(&loop, port);
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(raw.Connect("nqn.2014-08.org.nvmexpress.discovery", 0, 0xFFFF, kTestHostNqn));
  auto send = [&](const spec::Sqe& s, const std::vector<uint8_t>& icd) { return raw.Send(s, icd); };
  auto response = [&]() { return raw.Response(); };
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
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
    ASSERT_NE(c.status, 0xFFFF) << "no response: the target fell over";
    EXPECT_EQ(Sc(c), spec::kScDataSglLengthInvalid) << "a " << len << "-byte Identify was served";
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
  ASSERT_NE(c.status, 0xFFFF);
  EXPECT_EQ(Sc(c), spec::kScDataSglLengthInvalid);
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 128 * 1024) << "KiB of peak RSS for refused commands";
  // And the target still serves: an ordinary Identify works.
  std::vector<uint8_t> ident(4096);
  EXPECT_EQ(St(admin.Run(id, ident.data(), ident.size(), false)), 0);
}

// A memory backend that records how writes reach it and can hold flushes back.
struct Recorder {
  std::atomic<int> writes{0}, durable{0}, flushes{0};
  std::atomic<bool> hold_flushes{false};
  std::mutex mu;
  std::vector<std::pair<EventLoop*, target::IoCallback>> held;
  void ReleaseFlushes() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [loop, cb] : held) {
      auto fn = std::make_shared<target::IoCallback>(std::move(cb));
      loop->Post([fn] { (*fn)(Status::OK()); });
    }
    held.clear();
  }
};
Recorder g_rec;

class RecordingBackend final : public target::Backend {
 public:
  explicit RecordingBackend(std::unique_ptr<Backend> mem) : mem_(std::move(mem)) {}
  std::string Describe() const override { return "record"; }
  uint64_t size() const override { return mem_->size(); }
  void Read(EventLoop* l, uint64_t o, const MemDesc& m, size_t n, target::IoCallback cb) override {
    mem_->Read(l, o, m, n, std::move(cb));
  }
  void Write(EventLoop* l, uint64_t o, const MemDesc& m, size_t n, target::IoCallback cb) override {
    g_rec.writes++;
    mem_->Write(l, o, m, n, std::move(cb));
  }
  void WriteDurable(EventLoop* l, uint64_t o, const MemDesc& m, size_t n,
                    target::IoCallback cb) override {
    g_rec.durable++;
    mem_->Write(l, o, m, n, std::move(cb));
  }
  void Flush(EventLoop* l, target::IoCallback cb) override {
    g_rec.flushes++;
    if (g_rec.hold_flushes) {
      std::lock_guard<std::mutex> lock(g_rec.mu);
      g_rec.held.emplace_back(l, std::move(cb));
      return;
    }
    cb(Status::OK());
  }
  void WriteZeroes(EventLoop* l, uint64_t o, uint64_t n, target::IoCallback cb) override {
    mem_->WriteZeroes(l, o, n, std::move(cb));
  }
  void Deallocate(EventLoop* l, uint64_t o, uint64_t n, target::IoCallback cb) override {
    mem_->Deallocate(l, o, n, std::move(cb));
  }

 private:
  std::unique_ptr<Backend> mem_;
};

// Guarantee 3: FUA, a disabled write cache and a clean shutdown reach the medium.
TEST_F(IntegrityTest, FuaDisabledCacheAndShutdownAreDurable) {
  target::RegisterBackendKind("record", [](const std::string& arg, std::unique_ptr<target::Backend>* out) {
    std::unique_ptr<target::Backend> mem;
    Status s = target::Backend::Open("mem:" + arg, &mem);
    if (s.ok()) *out = std::make_unique<RecordingBackend>(std::move(mem));
    return s;
  });
  Start("record:4M");
  std::vector<uint8_t> buf = Pattern(4096, 9);
  spec::Sqe w = IoSqe(spec::kNvmWrite, 1, 0, 8);
  ASSERT_EQ(St(io.Run(w, buf.data(), buf.size(), true)), 0);
  EXPECT_EQ(g_rec.writes.load(), 1);
  EXPECT_EQ(g_rec.durable.load(), 0);
  w.cdw12 |= 1u << 30;  // FUA
  ASSERT_EQ(St(io.Run(w, buf.data(), buf.size(), true)), 0);
  EXPECT_EQ(g_rec.durable.load(), 1) << "FUA ignored";

  // Volatile write cache off: what is cached is flushed first, then every write is durable.
  spec::Sqe vwc{};
  vwc.opc = spec::kAdminSetFeatures;
  vwc.cdw10 = spec::kFeatVolatileWriteCache;
  vwc.cdw11 = 0;
  const int flushes = g_rec.flushes.load();
  ASSERT_EQ(St(admin.Run(vwc)), 0);
  EXPECT_EQ(g_rec.flushes.load(), flushes + 1);
  spec::Sqe get{};
  get.opc = spec::kAdminGetFeatures;
  get.cdw10 = spec::kFeatVolatileWriteCache;
  EXPECT_EQ(admin.Run(get).cdw0, 0u);
  w.cdw12 &= ~(1u << 30);
  ASSERT_EQ(St(io.Run(w, buf.data(), buf.size(), true)), 0);
  EXPECT_EQ(g_rec.durable.load(), 2) << "a write with the cache off was not made durable";

  // CC.SHN: shutdown is reported complete only once the flush has finished.
  g_rec.hold_flushes = true;
  ASSERT_EQ(St(admin.PropertySet(spec::kPropCc, 0x00464001)), 0);
  EXPECT_EQ(admin.PropertyGet(spec::kPropCsts, false).cdw0 >> 2 & 3, 1u) << "SHST processing";
  g_rec.ReleaseFlushes();
  g_rec.hold_flushes = false;
  EXPECT_TRUE(loop.RunUntil([&] { return (admin.PropertyGet(spec::kPropCsts, false).cdw0 >> 2 & 3) == 2; },
                            std::chrono::milliseconds(5000)))
      << "SHST never complete";
  target::RegisterBackendKind("record", nullptr);
}

}  // namespace
}  // namespace nvmf::test
