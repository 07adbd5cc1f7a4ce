// The whole data path, target and host in one process over loopback TCP, allocates nothing
// per I/O in steady state, for every backend: reads and writes of several shapes (in-capsule
// data, R2T, reads), with and without digests. Global operator new is counted on every
// thread (the target's loop runs on its own).
//
// Pools grow to the high-water mark of what is in flight and never shrink (a queue's
// in-capsule data buffers, for one, are made when a command slot first carries data, so
// that an idle connection stays small). A backend slower than the warm-up saw (a disk file
// whose page cache is busy) can raise that mark once or twice later; an allocation per
// I/O would show thousands. So: at most a handful over 4000 I/Os, twice in a row.
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "nvmf/host.h"
#include "nvmf/target.h"
#include "support/alloc_counter.h"
#include "support/loopback.h"

namespace nvmf::test {
namespace {

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:alloc";
constexpr uint32_t kBlock = 512;
constexpr int kDepth = 16;
constexpr size_t kSlotBytes = 65536;
constexpr uint64_t kHighWaterGrowth = 8;  // see the file comment

struct Case {
  const char* name;
  bool digests;
};

// A file for the file backends, removed at the end.
struct ScratchFile {
  std::string path;
  ScratchFile(const std::string& dir, off_t size) {
    std::string t = dir + "/nvmf_alloc_XXXXXX";
    std::vector<char> name(t.begin(), t.end());
    name.push_back('\0');
    int fd = mkstemp(name.data());
    if (fd >= 0) {
      path = name.data();
      if (ftruncate(fd, size) != 0) path.clear();
      close(fd);
    }
  }
  ~ScratchFile() {
    if (!path.empty()) unlink(path.c_str());
  }
};

bool OnTmpfs(const std::string& dir) {
  struct statfs fs {};
  return statfs(dir.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

class TargetSteadyState : public ::testing::TestWithParam<Case> {
 protected:
  // The namespace spec for this case; empty (and the test skipped) when the machine has
  // no place for it.
  std::string Spec() {
    const std::string n = GetParam().name;
    if (n == "mem") return "mem:16M";
    if (n == "null") return "null:16M";
    char cwd[4096];
    std::string dir = n == "tmpfs" ? "/dev/shm" : (getcwd(cwd, sizeof(cwd)) ? cwd : ".");
    if ((n == "tmpfs") != OnTmpfs(dir)) return "";
    file_ = std::make_unique<ScratchFile>(dir, 16 << 20);
    return file_->path.empty() ? "" : "file:" + file_->path;
  }
  std::unique_ptr<ScratchFile> file_;
};

struct Driver {
  host::Controller* ctrl;
  uint8_t* bufs;
  uint64_t done = 0, limit = 0, errors = 0, submitted = 0;

  void Submit(int slot) {
    const uint16_t qid = static_cast<uint16_t>(1 + slot % 2);
    uint8_t* b = bufs + static_cast<size_t>(slot) * kSlotBytes;
    Driver* self = this;
    host::CommandCallback cb = [self, slot](const Status& s, const spec::Cqe&) { self->Done(slot, s); };
    // 4 KiB (in capsule), 64 KiB (R2T), alternating with reads of the same sizes.
    const uint32_t blocks = (submitted / 2) % 2 == 0 ? 8 : 128;
    const uint64_t lba = static_cast<uint64_t>(slot) * 128;
    const MemDesc mem = MemDesc::Buffer(b, kSlotBytes);
    Status s = (submitted++ % 2 == 0) ? ctrl->Write(qid, 1, lba, blocks, mem, blocks * kBlock, cb)
                                      : ctrl->Read(qid, 1, lba, blocks, mem, blocks * kBlock, cb);
    if (!s.ok()) errors++;
  }
  void Done(int slot, const Status& s) {
    done++;
    if (!s.ok()) errors++;
    if (submitted < limit) Submit(slot);
  }
};

TEST_P(TargetSteadyState, NoHeapAllocationPerIo) {
  const std::string spec = Spec();
  if (spec.empty()) GTEST_SKIP() << "no place for a " << GetParam().name << " file here";
  target::TargetConfig cfg;
  cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
  target::SubsystemConfig sub;
  sub.nqn = kNqn;
  sub.namespaces = {{1, spec, "", true}};
  cfg.subsystems.push_back(sub);
  cfg.log = [](const std::string&) {};
  std::unique_ptr<target::Target> tgt;
  ASSERT_TRUE(target::Target::Start(cfg, &tgt).ok());

  EventLoop loop;
  host::Controller ctrl(&loop);
  host::ConnectOptions o;
  o.trsvcid = tgt->ports()[0];
  o.subnqn = kNqn;
  o.hostnqn = "nqn.2024-01.io.nvmf:alloc-host";
  o.nr_io_queues = 2;
  o.queue_size = 32;
  o.kato_ms = 0;  // no keep-alive timer while counting
  o.header_digest = o.data_digest = GetParam().digests;
  o.io_timeout = o.admin_timeout = std::chrono::milliseconds(60000);
  bool up = false;
  Status cs;
  ctrl.Connect(o, [&](const Status& s) {
    cs = s;
    up = true;
  });
  ASSERT_TRUE(loop.RunUntil([&] { return up; }, kWait));
  ASSERT_TRUE(cs.ok()) << cs.ToString();

  std::vector<uint8_t> bufs(2 * kDepth * kSlotBytes, 0x5a);
  Driver d{&ctrl, bufs.data()};
  auto round = [&](uint64_t n) {
    const uint64_t want = d.done + n;
    d.limit = d.submitted + n;
    for (int s = 0; s < 2 * kDepth; s++) d.Submit(s);
    Driver* dp = &d;
    ASSERT_TRUE(loop.RunUntil([dp, want] { return dp->done >= want; }, kWait));
  };
  round(3000);  // warm-up: pools, buffers, receive buffers reach their working size
  for (int r = 0; r < 2; r++) {
    StartCountingAllocations();
    round(4000);
    const uint64_t allocs = StopCountingAllocations();
    EXPECT_LE(allocs, kHighWaterGrowth) << allocs << " heap allocations in 4000 I/Os on " << spec;
  }
  EXPECT_EQ(d.errors, 0u);
  ctrl.Close();
  loop.RunOnce();
  tgt->Stop();
}

INSTANTIATE_TEST_SUITE_P(Backends, TargetSteadyState,
                         ::testing::Values(Case{"mem", false}, Case{"mem", true},
                                           Case{"null", false}, Case{"disk", false},
                                           Case{"disk", true}, Case{"tmpfs", false},
                                           Case{"tmpfs", true}),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           return std::string(p.param.name) +
                                  (p.param.digests ? "_digests" : "");
                         });

}  // namespace
}  // namespace nvmf::test
