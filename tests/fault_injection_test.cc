// Fault injection against the target: connections cut at chosen bytes of a write, data
// digests corrupted on the way, traffic chopped into tiny pieces with pauses, backends that
// fail or stall, reads racing writes from another target thread, and hosts that stop in
// the middle of a command. What must hold (docs/reliability.md):
//  - a write reaches the medium whole or not at all: a write cut off, or one whose data
//    digest is bad, leaves its range as it was; an acknowledged write reads back;
//  - a read's data digest matches the bytes sent, even while another connection rewrites
//    the same range;
//  - the target keeps serving everyone else, whatever one connection or backend does.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "nvmf/host_sync.h"
#include "nvmf/spec/admin.h"
#include "nvmf/target.h"
#include "support/fault_proxy.h"
#include "support/test_host.h"
#include "target/backend.h"

namespace nvmf::test {
namespace {

using namespace std::chrono_literals;
using target::Target;
using target::TargetConfig;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:fault";
constexpr uint32_t kBlock = 512;

// ---------------------------------------------------------------- a fault backend

// What a "fault:NAME" namespace does, set by the test while the target runs.
enum class FaultMode { kNone, kFailWrites, kFailReads, kPartialWrite, kStall };

struct FaultControl {
  std::atomic<FaultMode> mode{FaultMode::kNone};
  std::atomic<int> writes{0};
  std::mutex mu;
  std::vector<std::pair<EventLoop*, target::IoCallback>> held;  // stalled completions

  size_t held_count() {
    std::lock_guard<std::mutex> lock(mu);
    return held.size();
  }
  // Completes every stalled call (successfully) on its own loop.
  void Release() {
    std::vector<std::pair<EventLoop*, target::IoCallback>> v;
    {
      std::lock_guard<std::mutex> lock(mu);
      v.swap(held);
    }
    for (auto& [loop, cb] : v) {
      target::IoCallback c = cb;
      loop->Post([c] { c(Status::OK()); });
    }
  }
};

std::mutex g_controls_mu;
std::map<std::string, std::shared_ptr<FaultControl>> g_controls;

// A memory store behind a switchable fault. No Direct(): the target goes through its
// bounce buffers, as for a disk.
class FaultBackend final : public target::Backend {
 public:
  FaultBackend(std::unique_ptr<Backend> inner, std::shared_ptr<FaultControl> ctl)
      : inner_(std::move(inner)), ctl_(std::move(ctl)) {}
  std::string Describe() const override { return "fault:" + inner_->Describe(); }
  uint64_t size() const override { return inner_->size(); }

  void Read(EventLoop* loop, uint64_t offset, const MemDesc& dst, size_t len,
            target::IoCallback cb) override {
    FaultMode m = ctl_->mode.load();
    if (m == FaultMode::kFailReads) return cb(Status::IoError("injected read error"));
    if (m == FaultMode::kStall) {
      // The data is in place; only the completion is held.
      inner_->Read(loop, offset, dst, len, [](const Status&) {});
      return Hold(loop, cb);
    }
    inner_->Read(loop, offset, dst, len, cb);
  }
  void Write(EventLoop* loop, uint64_t offset, const MemDesc& src, size_t len,
             target::IoCallback cb) override {
    ctl_->writes++;
    FaultMode m = ctl_->mode.load();
    if (m == FaultMode::kFailWrites) return cb(Status::IoError("injected write error"));
    if (m == FaultMode::kPartialWrite) {
      // Half the blocks reach the medium, then the device fails.
      size_t half = len / 2 / kBlock * kBlock;
      inner_->Write(loop, offset, src, half, [](const Status&) {});
      return cb(Status::IoError("injected short write: " + std::to_string(half) + " of " +
                                std::to_string(len) + " bytes"));
    }
    if (m == FaultMode::kStall) {
      inner_->Write(loop, offset, src, len, [](const Status&) {});
      return Hold(loop, cb);
    }
    inner_->Write(loop, offset, src, len, cb);
  }
  void Flush(EventLoop* loop, target::IoCallback cb) override {
    if (ctl_->mode.load() == FaultMode::kStall) return Hold(loop, cb);
    inner_->Flush(loop, cb);
  }
  void WriteZeroes(EventLoop* loop, uint64_t offset, uint64_t len, target::IoCallback cb) override {
    inner_->WriteZeroes(loop, offset, len, cb);
  }
  void Deallocate(EventLoop* loop, uint64_t offset, uint64_t len, target::IoCallback cb) override {
    inner_->Deallocate(loop, offset, len, cb);
  }

 private:
  void Hold(EventLoop* loop, const target::IoCallback& cb) {
    std::lock_guard<std::mutex> lock(ctl_->mu);
    ctl_->held.emplace_back(loop, cb);
  }
  std::unique_ptr<Backend> inner_;
  std::shared_ptr<FaultControl> ctl_;
};

// "fault:NAME" opens a 16 MiB fault backend controlled by FaultControlFor(NAME).
std::shared_ptr<FaultControl> FaultControlFor(const std::string& name) {
  static const bool registered = [] {
    target::RegisterBackendKind("fault", [](const std::string& arg,
                                            std::unique_ptr<target::Backend>* out) {
      std::unique_ptr<target::Backend> mem;
      Status s = target::Backend::Open("mem:16M", &mem);
      if (!s.ok()) return s;
      *out = std::make_unique<FaultBackend>(std::move(mem), FaultControlFor(arg));
      return Status::OK();
    });
    return true;
  }();
  (void)registered;
  std::lock_guard<std::mutex> lock(g_controls_mu);
  auto& c = g_controls[name];
  if (!c) c = std::make_shared<FaultControl>();
  return c;
}

// ---------------------------------------------------------------- helpers

std::vector<uint8_t> Pattern(size_t len, uint32_t seed) {
  std::vector<uint8_t> v(len);
  Fill(v, seed);
  return v;
}

enum class Seen { kOld, kNew, kMixed };

Seen Classify(const std::vector<uint8_t>& got, const std::vector<uint8_t>& old_data,
              const std::vector<uint8_t>& new_data, std::string* detail) {
  if (got == old_data) return Seen::kOld;
  if (got == new_data) return Seen::kNew;
  size_t n_old = 0, n_new = 0, first_bad = SIZE_MAX;
  for (size_t i = 0; i < got.size(); i++) {
    if (got[i] == old_data[i] && got[i] != new_data[i]) n_old++;
    if (got[i] == new_data[i] && got[i] != old_data[i]) n_new++;
    if (first_bad == SIZE_MAX && got[i] != old_data[i]) first_bad = i;
  }
  *detail = std::to_string(n_old) + " bytes old, " + std::to_string(n_new) + " bytes new of " +
            std::to_string(got.size()) + ", first change at byte " + std::to_string(first_bad);
  return Seen::kMixed;
}

const char* Name(Seen s) {
  switch (s) {
    case Seen::kOld: return "old";
    case Seen::kNew: return "new";
    case Seen::kMixed: return "MIXED";
  }
  return "?";
}

class FaultTest : public ::testing::Test {
 protected:
  void Start(int threads = 1, std::vector<std::string> backends = {"mem:64M"}) {
    TargetConfig cfg;
    target::PortConfig p;
    p.port = 0;
    cfg.ports.push_back(p);
    target::SubsystemConfig s;
    s.nqn = kNqn;
    uint32_t nsid = 1;
    for (const std::string& b : backends) s.namespaces.push_back({nsid++, b, "", true});
    cfg.subsystems.push_back(s);
    cfg.threads = threads;
    cfg.maxh2cdata = maxh2cdata_;
    cfg.log = [](const std::string&) {};
    Status st = Target::Start(cfg, &target);
    ASSERT_TRUE(st.ok()) << st.ToString();
    port = target->ports()[0];
  }
  void TearDown() override {
    if (target) target->Stop();
  }
  // Connects and enables a controller on `a` (direct), asking for `queues` I/O queues.
  uint16_t Admin(TestQueue& a, uint32_t queues = 4) {
    EXPECT_TRUE(a.Open(port).ok());
    uint16_t id = a.ConnectAdmin(kNqn);
    EXPECT_NE(id, 0);
    spec::Sqe sf{};
    sf.opc = spec::kAdminSetFeatures;
    sf.cdw10 = spec::kFeatNumberOfQueues;
    sf.cdw11 = (queues - 1) | (queues - 1) << 16;
    EXPECT_EQ(St(a.Run(sf)), 0);
    return id;
  }
  // An I/O queue on `to` (the target's port, or a proxy's).
  bool Io(TestQueue& q, uint16_t to, uint16_t cntlid, uint16_t qid, bool digests) {
    if (!q.Open(to, digests, digests, 8192, 32).ok()) return false;
    spec::Cqe c = q.Connect(kNqn, qid, cntlid, 31);
    EXPECT_EQ(St(c), 0) << std::hex << St(c);
    return St(c) == 0;
  }
  host::ConnectOptions HostOptions(uint16_t to, bool digests, uint32_t queues = 1) {
    host::ConnectOptions o;
    o.trsvcid = to;
    o.subnqn = kNqn;
    o.hostnqn = kTestHostNqn;
    o.header_digest = digests;
    o.data_digest = digests;
    o.nr_io_queues = queues;
    o.queue_size = 32;
    o.kato_ms = 0;
    return o;
  }

  std::unique_ptr<Target> target;
  uint16_t port = 0;
  uint32_t maxh2cdata_ = 131072;
  EventLoop loop;
};

// ---------------------------------------------------------------- cut writes

struct CutCase {
  const char* name;
  uint32_t blocks;  // 256: 128 KiB by R2T and H2CData; 8: 4 KiB in the command capsule
  bool digests;     // header and data digests
  bool file = false;  // a file namespace instead of memory
  uint32_t maxh2cdata = 131072;  // the target's: H2CData PDUs carry at most this much
};

// Where the pieces of one write lie in its host-to-target bytes.
struct WriteLayout {
  uint64_t cmd = 0;                // CapsuleCmd: common header 8 + SQE 64, HDGST
  std::vector<uint64_t> pdu;       // each H2CData PDU's first byte (none: in-capsule data)
  std::vector<uint64_t> payload;   // each payload's first byte
  std::vector<uint64_t> length;    // each payload's length
  uint64_t total = 0;
};

WriteLayout Layout(const CutCase& k) {
  const uint64_t hd = k.digests ? 4 : 0, dd = k.digests ? 4 : 0;
  const uint64_t data = static_cast<uint64_t>(k.blocks) * kBlock;
  WriteLayout l;
  l.cmd = 72 + hd;
  uint64_t at = l.cmd;
  if (data <= 8192) {  // in the command capsule
    l.payload.push_back(at);
    l.length.push_back(data);
    l.total = at + data + dd;
    return l;
  }
  for (uint64_t off = 0; off < data; off += k.maxh2cdata) {
    const uint64_t n = std::min<uint64_t>(k.maxh2cdata, data - off);
    l.pdu.push_back(at);
    l.payload.push_back(at + 24 + hd);  // H2CData header 24, HDGST
    l.length.push_back(n);
    at += 24 + hd + n + dd;
  }
  l.total = at;
  return l;
}

// Cut points across one write's host-to-target bytes: inside the command's header (and
// its digest), at every PDU boundary, inside each H2CData header, across each payload, in
// each data digest, and after the last byte.
std::vector<uint64_t> CutPoints(const CutCase& k, uint64_t total, uint32_t seed) {
  const WriteLayout l = Layout(k);
  const uint64_t hd = k.digests ? 4 : 0, dd = k.digests ? 4 : 0;
  std::set<uint64_t> pts = {0, 1, 7, 8, 9, 40, l.cmd - hd - 1, l.cmd - 1, l.cmd, l.cmd + 1};
  for (uint64_t p : l.pdu) {
    for (uint64_t d : {0ull, 1ull, 8ull, 23ull}) pts.insert(p + d);
    if (hd) pts.insert(p + 24 + 2);
  }
  uint64_t x = seed;
  const int random = l.payload.size() > 1 ? 4 : (k.blocks > 16 ? 14 : 6);
  for (size_t i = 0; i < l.payload.size(); i++) {
    const uint64_t pay = l.payload[i], len = l.length[i];
    for (uint64_t d : {0ull, 1ull, 511ull, 512ull, 4095ull, 4096ull}) {
      if (d < len) pts.insert(pay + d);
    }
    for (int j = 0; j < random; j++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      pts.insert(pay + (x >> 33) % len);
    }
    pts.insert(pay + len - 1);
    pts.insert(pay + len);  // the data digest starts (or the next PDU, or the end)
    if (dd) {
      pts.insert(pay + len + 1);
      pts.insert(pay + len + 3);
    }
  }
  pts.insert(total);
  std::vector<uint64_t> v;
  for (uint64_t p : pts) {
    if (p <= total) v.push_back(p);
  }
  return v;
}

void PrintTo(const CutCase& k, std::ostream* os) { *os << k.name; }

class CutWriteTest : public FaultTest, public ::testing::WithParamInterface<CutCase> {
 protected:
  void TearDown() override {
    FaultTest::TearDown();
    if (!file_.empty()) unlink(file_.c_str());
  }
  std::string file_;
};

TEST_P(CutWriteTest, WriteCutAnywhereIsAllOrNothing) {
  const CutCase k = GetParam();
  maxh2cdata_ = k.maxh2cdata;
  if (k.file) {
    char path[] = "/tmp/nvmf-fault-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 64 << 20), 0);
    close(fd);
    file_ = path;
    Start(1, {"file:" + file_});
  } else {
    Start();
  }
  TestQueue a(&loop), q(&loop);
  ASSERT_TRUE(Io(q, port, Admin(a), 1, false));
  const size_t len = static_cast<size_t>(k.blocks) * kBlock;
  uint64_t slba = 0;
  auto next_range = [&] {
    uint64_t s = slba;
    slba += k.blocks;
    return s;
  };

  // One write through the proxy. cut < 0: no cut. Returns whether the host saw a success
  // CQE; *observed: host-to-target bytes of the write (for the uncut run).
  struct Outcome {
    bool success = false;
    bool response = false;
    uint64_t bytes = 0;
  };
  auto through_proxy = [&](uint64_t lba, const std::vector<uint8_t>& data, int64_t cut,
                           CutMode mode) {
    Outcome o;
    FaultProxyOptions po;
    po.target_port = port;
    FaultProxy proxy(po);
    EXPECT_TRUE(proxy.Start().ok());
    TestQueue pa(&loop), pq(&loop);
    if (!Io(pq, proxy.port(), Admin(pa, 1), 1, k.digests)) return o;
    const uint64_t base = proxy.upstream_bytes();
    if (cut >= 0) proxy.SetCut(static_cast<int64_t>(base) + cut, mode);
    std::vector<uint8_t> buf = data;
    EXPECT_NE(pq.Submit(IoSqe(spec::kNvmWrite, 1, lba, k.blocks), buf.data(), len, true), 0);
    // The response, or the end of the connection (the target closes it after a cut).
    pq.WaitResponses(1, cut >= 0 ? 3000ms : kWait);
    for (const spec::Cqe& c : pq.TakeResponses()) {
      o.response = true;
      o.success = St(c) == 0;
    }
    o.bytes = proxy.upstream_bytes() - base;
    pq.Close();
    pa.Close();
    return o;
  };

  // The uncut write, for its byte count.
  const uint64_t ref_lba = next_range();
  Outcome ref = through_proxy(ref_lba, Pattern(len, 1), -1, CutMode::kReset);
  ASSERT_TRUE(ref.success);
  const uint64_t total = ref.bytes;
  EXPECT_EQ(total, Layout(k).total) << "the write's bytes on the wire";

  int mixed = 0, lost_acked = 0, n = 0;
  for (uint64_t cut : CutPoints(k, total, k.blocks * 7 + k.digests)) {
    const uint64_t lba = next_range();
    const auto old_data = Pattern(len, static_cast<uint32_t>(1000 + lba));
    const auto new_data = Pattern(len, static_cast<uint32_t>(5000 + lba));
    ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmWrite, 1, lba, k.blocks), const_cast<uint8_t*>(old_data.data()),
                       len, true)),
              0);
    const CutMode mode = (n++ % 2 == 0) ? CutMode::kReset : CutMode::kClose;
    Outcome o = through_proxy(lba, new_data, static_cast<int64_t>(cut), mode);
    // Let the target finish with what reached it (not an assertion on time: the check
    // below holds at any moment).
    loop.RunUntil([] { return false; }, 5ms);
    std::vector<uint8_t> got(len);
    ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, lba, k.blocks), got.data(), len)), 0);
    std::string detail;
    Seen seen = Classify(got, old_data, new_data, &detail);
    const char* m = mode == CutMode::kReset ? "reset" : "close";
    if (seen == Seen::kMixed) {
      mixed++;
      ADD_FAILURE() << k.name << ": cut after byte " << cut << " of " << total << " (" << m
                    << "): the range is a mix of old and new data: " << detail;
    }
    if (o.success && seen != Seen::kNew) {
      lost_acked++;
      ADD_FAILURE() << k.name << ": cut after byte " << cut << " of " << total << " (" << m
                    << "): the host saw success but the range reads " << Name(seen);
    }
    if (cut < total) {
      EXPECT_FALSE(o.success) << "cut after byte " << cut << " of " << total
                              << ": the target acknowledged a write whose data did not all arrive";
    }
  }
  std::printf("%s: %d cut points across the write's %llu bytes\n", k.name, n,
              static_cast<unsigned long long>(total));
  EXPECT_EQ(mixed, 0);
  EXPECT_EQ(lost_acked, 0);
  // The target still serves the direct connection and new ones.
  std::vector<uint8_t> out = Pattern(len, 99), in(len);
  EXPECT_EQ(St(q.Run(IoSqe(spec::kNvmWrite, 1, 0, k.blocks), out.data(), len, true)), 0);
  EXPECT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, 0, k.blocks), in.data(), len)), 0);
  EXPECT_EQ(in, out);
}

INSTANTIATE_TEST_SUITE_P(Writes, CutWriteTest,
                         ::testing::Values(CutCase{"R2T128K", 256, false},
                                           CutCase{"R2T128KDigests", 256, true},
                                           CutCase{"InCapsule4K", 8, false},
                                           CutCase{"InCapsule4KDigests", 8, true},
                                           CutCase{"R2T128KDigestsFile", 256, true, true},
                                           CutCase{"R2T128KIn4H2CDataDigests", 256, true, false,
                                                   32768}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

// ---------------------------------------------------------------- bad data digests

// A byte of the data flipped on the way: the data digest fails, the command must fail
// (Transient Transport Error) and its range must stay as it was; the connection lives on.
// Namespace 1 is memory (the target may move data straight into it), namespace 2 a store
// without direct access (bounce buffers).
TEST_F(FaultTest, BadDataDigestLeavesTheRangeUnchanged) {
  FaultControlFor("digest");
  Start(1, {"mem:64M", "fault:digest"});
  TestQueue a(&loop), q(&loop);
  ASSERT_TRUE(Io(q, port, Admin(a), 1, false));
  uint64_t lba = 0;
  int bad = 0;
  for (uint32_t nsid : {1u, 2u}) {
    for (uint32_t blocks : {256u, 8u}) {
      const size_t len = static_cast<size_t>(blocks) * kBlock;
      const uint64_t pay = 72 + 4 + (blocks > 16 ? 24 + 4 : 0);  // where the payload starts
      for (uint64_t off : {pay, pay + 100, pay + len - 1, pay + len + 1 /* in DDGST */}) {
        const auto old_data = Pattern(len, static_cast<uint32_t>(1000 + lba));
        const auto new_data = Pattern(len, static_cast<uint32_t>(5000 + lba));
        ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmWrite, nsid, lba, blocks),
                           const_cast<uint8_t*>(old_data.data()), len, true)),
                  0);
        FaultProxyOptions po;
        po.target_port = port;
        FaultProxy proxy(po);
        ASSERT_TRUE(proxy.Start().ok());
        TestQueue pa(&loop), pq(&loop);
        ASSERT_TRUE(Io(pq, proxy.port(), Admin(pa, 1), 1, true));
        proxy.SetCorrupt(static_cast<int64_t>(proxy.upstream_bytes() + off));
        std::vector<uint8_t> buf = new_data;
        spec::Cqe c = pq.Run(IoSqe(spec::kNvmWrite, nsid, lba, blocks), buf.data(), len, true);
        std::string what = "ns " + std::to_string(nsid) + ", " + std::to_string(len) +
                           "-byte write, byte " + std::to_string(off) + " flipped";
        EXPECT_NE(St(c), 0) << what << ": a write with a bad data digest succeeded";
        EXPECT_EQ(Sc(c), spec::kScTransientTransportError) << what << std::hex << " status " << St(c);
        EXPECT_FALSE(pq.failed()) << what << ": a data digest error is not fatal";
        std::vector<uint8_t> got(len);
        ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, nsid, lba, blocks), got.data(), len)), 0);
        std::string detail;
        Seen seen = Classify(got, old_data, new_data, &detail);
        if (seen != Seen::kOld) {
          bad++;
          ADD_FAILURE() << what << ": the range reads " << Name(seen) << " after the failed write"
                        << (detail.empty() ? "" : ": " + detail);
        }
        // The same connection still writes (the proxy flips that one byte only).
        proxy.SetCorrupt(-1);
        EXPECT_EQ(St(pq.Run(IoSqe(spec::kNvmWrite, nsid, lba, blocks), buf.data(), len, true)), 0);
        ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, nsid, lba, blocks), got.data(), len)), 0);
        EXPECT_EQ(got, new_data) << what << ": the rewrite did not read back";
        lba += blocks;
      }
    }
  }
  EXPECT_EQ(bad, 0);
}

// ---------------------------------------------------------------- chopped traffic

// Every connection goes through a proxy that relays both ways in pieces of 1..700 bytes
// with pauses, through 4 KiB socket buffers: both ends see short reads, short writes and
// EAGAIN in every part of every PDU. With digests on, a verify workload must pass.
TEST_F(FaultTest, ChoppedTrafficWithDigestsVerifies) {
  Start(2);
  FaultProxyOptions po;
  po.target_port = port;
  po.max_chunk = 700;
  po.max_delay = 30us;
  po.sockbuf = 4096;
  po.seed = 7;
  FaultProxy proxy(po);
  ASSERT_TRUE(proxy.Start().ok());
  host::SyncController h(&loop);
  Status st = h.Connect(HostOptions(proxy.port(), true, 2));
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(h.async().data_digest());
  constexpr uint64_t kArea = 8192;  // blocks: 4 MiB, with a shadow copy
  std::vector<uint8_t> shadow(kArea * kBlock, 0);
  uint64_t x = 12345;
  auto rnd = [&](uint64_t n) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return (x >> 33) % n;
  };
  static const uint32_t kSizes[] = {1, 7, 8, 16, 17, 64, 255, 256, 1024};
  // Sequential writes and reads of random sizes.
  for (int i = 0; i < 60; i++) {
    uint32_t nlb = kSizes[rnd(std::size(kSizes))];
    uint64_t lba = rnd(kArea - nlb);
    std::vector<uint8_t> buf(nlb * kBlock);
    if (rnd(2) == 0) {
      Fill(buf, static_cast<uint32_t>(i + 1));
      st = h.Write(1, lba, nlb, kBlock, buf.data());
      ASSERT_TRUE(st.ok()) << "write " << i << ": " << st.ToString();
      std::memcpy(shadow.data() + lba * kBlock, buf.data(), buf.size());
    } else {
      st = h.Read(1, lba, nlb, kBlock, buf.data());
      ASSERT_TRUE(st.ok()) << "read " << i << ": " << st.ToString();
      ASSERT_EQ(0, std::memcmp(buf.data(), shadow.data() + lba * kBlock, buf.size()))
          << "read " << i << " at " << lba << "+" << nlb;
    }
  }
  // Batches of commands in flight at once on both queues: disjoint writes, then reads.
  for (int round = 0; round < 6; round++) {
    constexpr int kBatch = 8;
    std::vector<std::vector<uint8_t>> bufs(kBatch);
    std::vector<uint64_t> lbas(kBatch);
    std::vector<uint32_t> nlbs(kBatch);
    struct Tally {
      int left = 0;
      int errors = 0;
    } tally;
    for (int write = 1; write >= 0; write--) {
      tally.left = kBatch;
      for (int i = 0; i < kBatch; i++) {
        if (write) {
          nlbs[i] = kSizes[rnd(std::size(kSizes) - 1)];  // up to 256 blocks: < kArea / kBatch
          lbas[i] = static_cast<uint64_t>(i) * (kArea / kBatch) + rnd(kArea / kBatch - nlbs[i]);
          bufs[i].resize(nlbs[i] * kBlock);
          Fill(bufs[i], static_cast<uint32_t>(round * 100 + i));
          std::memcpy(shadow.data() + lbas[i] * kBlock, bufs[i].data(), bufs[i].size());
        } else {
          std::fill(bufs[i].begin(), bufs[i].end(), 0);
        }
        auto cb = [t = &tally](const Status& s, const spec::Cqe&) {
          if (!s.ok()) t->errors++;
          t->left--;
        };
        MemDesc m = MemDesc::Buffer(bufs[i].data(), bufs[i].size());
        uint16_t qid = static_cast<uint16_t>(1 + i % 2);
        st = write ? h.async().Write(qid, 1, lbas[i], nlbs[i], m, bufs[i].size(), cb)
                   : h.async().Read(qid, 1, lbas[i], nlbs[i], m, bufs[i].size(), cb);
        ASSERT_TRUE(st.ok()) << st.ToString();
      }
      ASSERT_TRUE(loop.RunUntil([&] { return tally.left == 0; }, kWait));
      ASSERT_EQ(tally.errors, 0) << (write ? "writes" : "reads") << " of round " << round;
    }
    for (int i = 0; i < kBatch; i++) {
      ASSERT_EQ(0, std::memcmp(bufs[i].data(), shadow.data() + lbas[i] * kBlock, bufs[i].size()))
          << "round " << round << " command " << i;
    }
  }
  h.Close();
}

// ---------------------------------------------------------------- backend faults

// A backend that fails gives the host a failure, never a silent success; a backend that
// stalls holds only its own commands: the loop (one target thread here) keeps serving
// other namespaces and other connections; once it completes, the held command does too.
TEST_F(FaultTest, FailingAndStallingBackends) {
  auto ctl = FaultControlFor("failing");
  ctl->mode = FaultMode::kNone;
  Start(1, {"fault:failing", "mem:16M"});
  TestQueue a(&loop), q(&loop);
  ASSERT_TRUE(Io(q, port, Admin(a), 1, false));
  std::vector<uint8_t> out = Pattern(64 * kBlock, 3), in(64 * kBlock);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmWrite, 1, 0, 64), out.data(), out.size(), true)), 0);

  ctl->mode = FaultMode::kFailWrites;
  std::vector<uint8_t> other = Pattern(64 * kBlock, 4);
  spec::Cqe c = q.Run(IoSqe(spec::kNvmWrite, 1, 0, 64), other.data(), other.size(), true);
  EXPECT_NE(St(c), 0) << "a failed backend write was reported as a success";
  EXPECT_EQ(Sc(c), spec::kScInternalError) << std::hex << St(c);
  c = q.Run(IoSqe(spec::kNvmWrite, 1, 64, 8), other.data(), 8 * kBlock, true);  // in-capsule
  EXPECT_NE(St(c), 0) << "a failed in-capsule write was reported as a success";

  ctl->mode = FaultMode::kPartialWrite;
  c = q.Run(IoSqe(spec::kNvmWrite, 1, 0, 64), other.data(), other.size(), true);
  EXPECT_NE(St(c), 0) << "a short backend write was reported as a success";

  ctl->mode = FaultMode::kFailReads;
  c = q.Run(IoSqe(spec::kNvmRead, 1, 0, 64), in.data(), in.size());
  EXPECT_NE(St(c), 0) << "a failed backend read was reported as a success";
  EXPECT_EQ(Sc(c), spec::kScInternalError) << std::hex << St(c);

  ctl->mode = FaultMode::kNone;
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmWrite, 1, 0, 64), out.data(), out.size(), true)), 0);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, 0, 64), in.data(), in.size())), 0);
  EXPECT_EQ(in, out);

  // Stall: a write and a flush on namespace 1 hang in the backend.
  ctl->mode = FaultMode::kStall;
  std::vector<uint8_t> held = Pattern(64 * kBlock, 5);
  ASSERT_NE(q.Submit(IoSqe(spec::kNvmWrite, 1, 128, 64), held.data(), held.size(), true), 0);
  ASSERT_TRUE(loop.RunUntil([&] { return ctl->held_count() == 1; }, kWait));
  EXPECT_FALSE(q.WaitResponses(1, 50ms)) << "the stalled write completed";
  // Meanwhile: the same queue, another namespace; another controller; a new connection.
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmWrite, 2, 0, 64), out.data(), out.size(), true)), 0);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 2, 0, 64), in.data(), in.size())), 0);
  EXPECT_EQ(in, out);
  {
    TestQueue a2(&loop), q2(&loop);
    ASSERT_TRUE(Io(q2, port, Admin(a2), 1, false));
    ASSERT_EQ(St(q2.Run(IoSqe(spec::kNvmRead, 2, 0, 64), in.data(), in.size())), 0);
    EXPECT_EQ(in, out);
    spec::Sqe ka{};
    ka.opc = spec::kAdminKeepAlive;
    EXPECT_EQ(St(a2.Run(ka)), 0);
  }
  ctl->mode = FaultMode::kNone;
  ctl->Release();
  ASSERT_TRUE(q.WaitResponses(1, kWait)) << "the stalled write never completed";
  std::vector<spec::Cqe> rs = q.TakeResponses();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(St(rs[0]), 0);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, 128, 64), in.data(), in.size())), 0);
  EXPECT_EQ(in, held);

  // A stalled command whose connection goes away: the target drops it cleanly when the
  // backend finally completes.
  ctl->mode = FaultMode::kStall;
  {
    TestQueue a3(&loop), q3(&loop);
    ASSERT_TRUE(Io(q3, port, Admin(a3), 1, false));
    ASSERT_NE(q3.Submit(IoSqe(spec::kNvmWrite, 1, 256, 64), held.data(), held.size(), true), 0);
    ASSERT_TRUE(loop.RunUntil([&] { return ctl->held_count() == 1; }, kWait));
  }  // both connections close here
  loop.RunUntil([] { return false; }, 20ms);
  ctl->mode = FaultMode::kNone;
  ctl->Release();
  loop.RunUntil([] { return false; }, 20ms);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 2, 0, 64), in.data(), in.size())), 0);
  EXPECT_EQ(in, out);
}

// ---------------------------------------------------------------- reads racing writes

// Reads with data digests while another connection, on the other target thread, keeps
// rewriting the same range: the digest of every read must match the bytes sent. The
// reader goes through a proxy that relays in pieces, so that the target's sends of a
// read's data are spread over time.
TEST_F(FaultTest, ReadDigestsHoldUnderConcurrentWrites) {
  Start(2);
  constexpr uint32_t kBlocks = 256;
  constexpr size_t kLen = kBlocks * kBlock;
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0}, write_errors{0};
  std::atomic<bool> writer_up{false};
  // The writer: two I/O queues (so that one of them lives on each target thread), a write
  // of the range on each, again and again.
  std::thread writer([&] {
    EventLoop wl;
    host::SyncController w(&wl);
    Status s = w.Connect(HostOptions(port, false, 2));
    if (!s.ok()) {
      write_errors++;
      writer_up = true;
      return;
    }
    writer_up = true;
    std::vector<uint8_t> a = Pattern(kLen, 1), b = Pattern(kLen, 2);
    struct Tally {
      int left = 0;
      int errors = 0;
    } t;
    while (!stop.load()) {
      t.left = 2;
      for (uint16_t qid : {uint16_t{1}, uint16_t{2}}) {
        std::vector<uint8_t>& src = (qid == 1) ? a : b;
        Status ws = w.async().Write(qid, 1, 0, kBlocks, MemDesc::Buffer(src.data(), kLen), kLen,
                                    [tp = &t](const Status& st, const spec::Cqe&) {
                                      if (!st.ok()) tp->errors++;
                                      tp->left--;
                                    });
        if (!ws.ok()) {
          t.errors++;
          t.left--;
        }
      }
      if (!wl.RunUntil([&] { return t.left == 0; }, kWait)) break;
      writes += 2;
    }
    write_errors += t.errors;
    w.Close();
  });
  ASSERT_TRUE(loop.RunUntil([&] { return writer_up.load(); }, kWait));

  FaultProxyOptions po;
  po.target_port = port;
  po.max_chunk = 16384;
  po.sockbuf = 16384;
  FaultProxy proxy(po);
  ASSERT_TRUE(proxy.Start().ok());
  host::SyncController r(&loop);
  Status st = r.Connect(HostOptions(proxy.port(), true, 2));
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(r.async().data_digest());
  int digest_errors = 0, other_errors = 0, reads = 0;
  std::string first_error;
  std::vector<uint8_t> buf(kLen);
  for (int i = 0; i < 300 && other_errors == 0; i++) {
    struct Result {
      bool done = false;
      Status s;
    } res;
    st = r.async().Read(static_cast<uint16_t>(1 + i % 2), 1, 0, kBlocks,
                        MemDesc::Buffer(buf.data(), kLen), kLen,
                        [rp = &res](const Status& s, const spec::Cqe&) {
                          rp->s = s;
                          rp->done = true;
                        });
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_TRUE(loop.RunUntil([&] { return res.done; }, kWait));
    reads++;
    if (res.s.code() == Status::Code::kDataDigestError) {
      if (digest_errors++ == 0) first_error = res.s.ToString();
    } else if (!res.s.ok()) {
      other_errors++;
      first_error = res.s.ToString();
    }
  }
  stop = true;
  writer.join();
  r.Close();
  EXPECT_GT(writes.load(), 0);
  EXPECT_EQ(write_errors.load(), 0);
  EXPECT_EQ(digest_errors, 0) << digest_errors << " of " << reads
                              << " reads had a data digest error while the range was being "
                                 "rewritten (concurrent writes: "
                              << writes.load() << "); first: " << first_error;
  EXPECT_EQ(other_errors, 0) << first_error;
}

// ---------------------------------------------------------------- hosts that misbehave

// One host stops sending in the middle of a write's data and stays connected; others
// connect and never speak, send half a header, or send garbage. The target keeps serving
// a well-behaved host meanwhile, and the held write's range stays unchanged.
TEST_F(FaultTest, TargetServesOthersWhileHostsMisbehave) {
  Start(1);
  TestQueue a(&loop), q(&loop);
  ASSERT_TRUE(Io(q, port, Admin(a), 1, false));
  constexpr uint32_t kBlocks = 256;
  constexpr size_t kLen = kBlocks * kBlock;
  const auto old_data = Pattern(kLen, 10), new_data = Pattern(kLen, 11);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmWrite, 1, 0, kBlocks), const_cast<uint8_t*>(old_data.data()),
                     kLen, true)),
            0);

  FaultProxyOptions po;
  po.target_port = port;
  FaultProxy proxy(po);
  ASSERT_TRUE(proxy.Start().ok());
  TestQueue pa(&loop), pq(&loop);
  ASSERT_TRUE(Io(pq, proxy.port(), Admin(pa, 1), 1, false));
  // Through the command and 40 KiB of its data, then nothing more.
  proxy.SetCut(static_cast<int64_t>(proxy.upstream_bytes() + 72 + 24 + 40960), CutMode::kHold);
  std::vector<uint8_t> buf = new_data;
  ASSERT_NE(pq.Submit(IoSqe(spec::kNvmWrite, 1, 0, kBlocks), buf.data(), kLen, true), 0);
  ASSERT_TRUE(loop.RunUntil([&] { return proxy.cuts() == 1; }, kWait));

  RawPeer silent(&loop), half(&loop), garbage(&loop);
  ASSERT_TRUE(silent.ConnectHost(port, false, false, false));
  ASSERT_TRUE(half.ConnectHost(port));
  uint8_t partial[20] = {spec::tcp::kCapsuleCmd, 0, 72, 0, 72, 0, 0, 0};
  ASSERT_TRUE(half.Send(partial, sizeof(partial)));
  ASSERT_TRUE(garbage.ConnectHost(port, false, false, false));
  std::vector<uint8_t> junk(300);
  Fill(junk, 77);
  garbage.Send(junk);

  // The well-behaved host, meanwhile, and a new one.
  std::vector<uint8_t> in(kLen);
  for (int i = 0; i < 20; i++) {
    std::vector<uint8_t> out = Pattern(64 * kBlock, 100 + i);
    ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmWrite, 1, 1024 + i * 64, 64), out.data(), out.size(), true)), 0);
    ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, 1024 + i * 64, 64), in.data(), out.size())), 0);
    ASSERT_EQ(0, std::memcmp(in.data(), out.data(), out.size()));
  }
  {
    TestQueue a2(&loop), q2(&loop);
    ASSERT_TRUE(Io(q2, port, Admin(a2), 1, false));
    ASSERT_EQ(St(q2.Run(IoSqe(spec::kNvmRead, 1, 0, kBlocks), in.data(), kLen)), 0);
  }
  // The held write has not happened, not even in part.
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, 0, kBlocks), in.data(), kLen)), 0);
  std::string detail;
  Seen seen = Classify(in, old_data, new_data, &detail);
  EXPECT_EQ(seen, Seen::kOld) << "while a write's data is only partly in, its range reads "
                              << Name(seen) << (detail.empty() ? "" : ": " + detail);
  EXPECT_FALSE(pq.WaitResponses(1, 1ms)) << "the held write completed";
  pq.Close();
  pa.Close();
  proxy.Stop();
  loop.RunUntil([] { return false; }, 20ms);
  ASSERT_EQ(St(q.Run(IoSqe(spec::kNvmRead, 1, 0, kBlocks), in.data(), kLen)), 0);
  seen = Classify(in, old_data, new_data, &detail);
  EXPECT_EQ(seen, Seen::kOld) << "after the host holding a write went away, its range reads "
                              << Name(seen) << (detail.empty() ? "" : ": " + detail);
}

}  // namespace
}  // namespace nvmf::test
