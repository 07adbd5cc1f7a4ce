// Storage backends: spec parsing (Backend::Open, ParseSize) and its error messages; the
// memory, null and file backends (the file one through io_uring and through the worker
// fallback), including many I/Os in flight, scatter-gather, zeroing, the end of file, and
// no heap allocation per I/O in steady state.
#include "support/alloc_counter.h"
#include "target/backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "nvmf/event_loop.h"
#include "nvmf/memdesc.h"
#include "target/backend_file.h"
#include "target/uring.h"


using nvmf::test::StartCountingAllocations;
using nvmf::test::StopCountingAllocations;

namespace nvmf::target {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr auto kWait = 20s;

// Counts completions and keeps the first error.
struct Done {
  int n = 0;
  int errors = 0;
  Status first_error;
  IoCallback Cb() {
    return [this](const Status& s) {
      n++;
      if (!s.ok() && errors++ == 0) first_error = s;
    };
  }
};

std::unique_ptr<Backend> MustOpen(const std::string& spec) {
  std::unique_ptr<Backend> b;
  Status s = Backend::Open(spec, &b);
  EXPECT_TRUE(s.ok()) << spec << ": " << s.ToString();
  return b;
}

Status OpenError(const std::string& spec) {
  std::unique_ptr<Backend> b;
  Status s = Backend::Open(spec, &b);
  EXPECT_FALSE(s.ok()) << spec;
  EXPECT_EQ(b, nullptr) << spec;
  return s;
}

std::vector<uint8_t> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Cuts buf into segments of the given sizes, repeated until buf is covered.
std::vector<struct iovec> Segments(std::vector<uint8_t>& buf, const std::vector<size_t>& sizes) {
  std::vector<struct iovec> iov;
  size_t off = 0;
  for (size_t i = 0; off < buf.size(); i++) {
    size_t n = std::min(sizes[i % sizes.size()], buf.size() - off);
    iov.push_back({buf.data() + off, n});
    off += n;
  }
  return iov;
}

bool AllZero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

// ---------------------------------------------------------------------------------------
// Spec parsing.

TEST(BackendSpec, ParseSizeAcceptsSuffixes) {
  struct Case {
    const char* s;
    uint64_t v;
  } cases[] = {{"4096", 4096},
               {"1", 1},
               {"512K", 512 << 10},
               {"512k", 512 << 10},
               {"64M", 64ull << 20},
               {"1G", 1ull << 30},
               {"2T", 2ull << 40},
               {"64MiB", 64ull << 20},
               {"3GiB", 3ull << 30},
               {"18446744073709551615", UINT64_MAX},
               {"16777215T", 16777215ull << 40}};
  for (const auto& c : cases) {
    uint64_t v = 0;
    EXPECT_TRUE(ParseSize(c.s, &v)) << c.s;
    EXPECT_EQ(v, c.v) << c.s;
  }
}

TEST(BackendSpec, ParseSizeRejectsGarbageAndZero) {
  for (const char* s :
       {"", "0", "0K", "K", "-1", "+1", " 1", "1 ", "1.5G", "1X", "1KB", "1Ki", "1MiBs", "0x10",
        "18446744073709551616", "16777216T", "99999999999999999999"}) {
    uint64_t v = 7;
    EXPECT_FALSE(ParseSize(s, &v)) << s;
    EXPECT_EQ(v, 7u) << s;
  }
}

TEST(BackendSpec, OpensMemAndNull) {
  auto m = MustOpen("mem:64M");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->size(), 64u << 20);
  EXPECT_EQ(m->block_size(), 512u);
  EXPECT_EQ(m->Describe(), "mem:64MiB");
  auto n = MustOpen("null:1G");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->size(), 1u << 30);
  EXPECT_EQ(n->Describe(), "null:1GiB");
  auto small = MustOpen("mem:1536");
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(small->Describe(), "mem:1536B");
  // What Describe prints opens the same backend again.
  auto again = MustOpen(m->Describe());
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->size(), m->size());
}

TEST(BackendSpec, ErrorMessages) {
  struct Case {
    const char* spec;
    const char* message;  // a substring of the message
  } cases[] = {
      {"", "empty backend spec"},
      {"mem", "missing size"},
      {"mem:", "missing size"},
      {"null:", "missing size"},
      {"mem:abc", "bad size 'abc'"},
      {"mem:0", "bad size '0'"},
      {"mem:-4096", "bad size '-4096'"},
      {"null:1.5G", "bad size '1.5G'"},
      {"mem:1000", "size 1000 is not a multiple of 512"},
      {"null:4097", "size 4097 is not a multiple of 512"},
      {"disk:1G", "unknown kind 'disk'"},
      {"64M", "unknown kind '64M'"},
      {"MEM:64M", "unknown kind 'MEM'"},
      {"file:", "missing path"},
      {"file:/nonexistent/nvmf-backend", "No such file or directory"},
      {"file:/tmp", "not a regular file or block device"},
      {"file:/dev/null", "not a regular file or block device"},
  };
  for (const auto& c : cases) {
    Status s = OpenError(c.spec);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.spec << ": " << s.ToString();
    EXPECT_NE(s.message().find(c.message), std::string::npos)
        << c.spec << ": \"" << s.message() << "\" lacks \"" << c.message << "\"";
  }
  // Too large to map.
  Status s = OpenError("mem:16777215T");
  EXPECT_EQ(s.code(), Status::Code::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("cannot map memory"), std::string::npos) << s.ToString();
  // The message names the spec.
  EXPECT_NE(OpenError("mem:abc").message().find("mem:abc"), std::string::npos);
}

bool OnTmpfs(const std::string& dir) {
  struct statfs fs {};
  return statfs(dir.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

// A directory on a disk file system: a file on tmpfs is served as memory (a mapping), not
// through the file engines these tests are about.
std::string DiskDir() {
  char cwd[4096];
  const std::string here = getcwd(cwd, sizeof(cwd)) != nullptr ? cwd : "/tmp";
  for (const std::string& d : {here, std::string("/var/tmp"), std::string("/tmp")}) {
    if (!OnTmpfs(d) && access(d.c_str(), W_OK) == 0) return d;
  }
  return here;
}

// A temporary file, removed at the end of the test.
struct TempFile {
  std::string path;
  explicit TempFile(off_t size, const std::string& dir = DiskDir()) {
    std::string tmpl = dir + "/nvmf_backend_XXXXXX";
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    int fd = mkstemp(name.data());
    EXPECT_GE(fd, 0);
    path = name.data();
    EXPECT_EQ(ftruncate(fd, size), 0);
    close(fd);
  }
  ~TempFile() { unlink(path.c_str()); }
};

TEST(BackendSpec, FileErrorMessages) {
  TempFile empty(0);
  Status s = OpenError("file:" + empty.path);
  EXPECT_NE(s.message().find("empty"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(empty.path), std::string::npos) << s.ToString();

  TempFile odd(1000);
  s = OpenError("file:" + odd.path);
  EXPECT_NE(s.message().find("1000 is not a multiple of 512"), std::string::npos) << s.ToString();

  if (geteuid() != 0) {  // root opens anything
    TempFile ro(4096);
    ASSERT_EQ(chmod(ro.path.c_str(), 0444), 0);
    s = OpenError("file:" + ro.path);
    EXPECT_EQ(s.code(), Status::Code::kIoError);
    EXPECT_NE(s.message().find("Permission denied"), std::string::npos) << s.ToString();
  }
}

TEST(BackendSpec, OpensFileKeepingItsSize) {
  TempFile f(3 << 20);
  auto b = MustOpen("file:" + f.path);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->size(), 3u << 20);
  EXPECT_EQ(b->block_size(), 512u);
  EXPECT_EQ(b->Describe(), "file:" + f.path);
  EXPECT_EQ(b->Direct(0, 512), nullptr);
  struct stat st;
  ASSERT_EQ(stat(f.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 3 << 20);
}

// A file on tmpfs is served through a shared mapping: what the backend writes is in the
// file, what is written to the file the backend reads, and the file is allocated in full
// (so that no later write meets a hole a full tmpfs cannot fill).
TEST(BackendSpec, FileOnTmpfsIsServedAsMappedMemory) {
  if (!OnTmpfs("/dev/shm")) GTEST_SKIP() << "no tmpfs at /dev/shm";
  TempFile f(1 << 20, "/dev/shm");
  auto b = MustOpen("file:" + f.path);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->Describe(), "file:" + f.path);
  EXPECT_EQ(b->size(), 1u << 20);
  EXPECT_EQ(b->block_size(), 512u);
  ASSERT_NE(b->Direct(4096, 4096), nullptr);
  struct stat st;
  ASSERT_EQ(stat(f.path.c_str(), &st), 0);
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20) << "not allocated in full";

  EventLoop loop;
  std::vector<uint8_t> out(4096, 0xA5), in(4096, 0);
  Status got = Status::IoError("no callback");
  b->Write(&loop, 8192, MemDesc::Buffer(out.data(), out.size()), out.size(),
           [&](const Status& s) { got = s; });
  ASSERT_TRUE(got.ok()) << got.ToString();
  int fd = open(f.path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pread(fd, in.data(), in.size(), 8192), 4096);
  EXPECT_EQ(in, out) << "the backend's write is not in the file";
  std::vector<uint8_t> other(4096, 0x3C);
  ASSERT_EQ(pwrite(fd, other.data(), other.size(), 65536), 4096);
  close(fd);
  got = Status::IoError("no callback");
  b->Read(&loop, 65536, MemDesc::Buffer(in.data(), in.size()), in.size(),
          [&](const Status& s) { got = s; });
  ASSERT_TRUE(got.ok()) << got.ToString();
  EXPECT_EQ(in, other) << "the file's bytes are not what the backend reads";
  // Zeroing a large range writes zeroes into the file (no hole punched, nothing dropped
  // from the mapping alone).
  got = Status::IoError("no callback");
  b->WriteZeroes(&loop, 0, 1 << 20, [&](const Status& s) { got = s; });
  ASSERT_TRUE(got.ok()) << got.ToString();
  fd = open(f.path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pread(fd, in.data(), in.size(), 65536), 4096);
  close(fd);
  EXPECT_EQ(in, std::vector<uint8_t>(4096, 0));
  ASSERT_EQ(stat(f.path.c_str(), &st), 0);
  EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20) << "zeroing punched a hole";
}

// ---------------------------------------------------------------------------------------
// Memory.

TEST(BackendMemory, StartsZeroedAndCompletesInline) {
  EventLoop loop;
  auto b = MustOpen("mem:1M");
  std::vector<uint8_t> buf(8192, 0xAA);
  Done d;
  b->Read(&loop, 4096, MemDesc::Buffer(buf.data(), buf.size()), buf.size(), d.Cb());
  EXPECT_EQ(d.n, 1);  // before Read returned
  EXPECT_EQ(d.errors, 0);
  EXPECT_TRUE(AllZero(buf.data(), buf.size()));
}

TEST(BackendMemory, ScatterGatherRoundTripWithUnalignedEdges) {
  EventLoop loop;
  const uint64_t size = 1 << 20;
  auto b = MustOpen("mem:1M");
  std::vector<uint8_t> model(size, 0);
  std::mt19937 rng(1);
  Done d;
  for (int round = 0; round < 50; round++) {
    size_t len = 1 + rng() % 70000;
    uint64_t off = rng() % (size - len);
    std::vector<uint8_t> src = Random(len, round);
    auto iov = Segments(src, {3, 1000, 1, 4096, 7, 65536, 511});
    b->Write(&loop, off, MemDesc::Vector(iov.data(), static_cast<int>(iov.size())), len, d.Cb());
    std::copy(src.begin(), src.end(), model.begin() + static_cast<long>(off));
  }
  for (int round = 0; round < 50; round++) {
    size_t len = 1 + rng() % 70000;
    uint64_t off = rng() % (size - len);
    std::vector<uint8_t> dst(len, 0x5A);
    auto iov = Segments(dst, {4095, 2, 8192, 13});
    b->Read(&loop, off, MemDesc::Vector(iov.data(), static_cast<int>(iov.size())), len, d.Cb());
    ASSERT_TRUE(std::equal(dst.begin(), dst.end(), model.begin() + static_cast<long>(off)))
        << "round " << round;
  }
  EXPECT_EQ(d.n, 100);
  EXPECT_EQ(d.errors, 0) << d.first_error.ToString();
  // Direct sees the same bytes.
  uint8_t* p = b->Direct(0, size);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(std::equal(model.begin(), model.end(), p));
  EXPECT_EQ(b->Direct(size - 512, 512), p + size - 512);
  EXPECT_EQ(b->Direct(size - 512, 513), nullptr);
  EXPECT_EQ(b->Direct(UINT64_MAX, 2), nullptr);
}

TEST(BackendMemory, WriteZeroesAndDeallocateSmallAndLarge) {
  EventLoop loop;
  const uint64_t size = 8 << 20;
  auto b = MustOpen("mem:8M");
  std::vector<uint8_t> model = Random(size, 7);
  Done d;
  b->Write(&loop, 0, MemDesc::Buffer(model.data(), size), size, d.Cb());
  struct Range {
    uint64_t off, len;
    bool dealloc;
  } ranges[] = {
      {100, 37, false},                 // inside one page: memset only
      {4000, 200, true},                // across a page boundary
      {12345, (1 << 20) + 333, false},  // large, unaligned ends: madvise + edges
      {(3 << 20), (2 << 20), true},     // large and page aligned
      {size - 70000, 70000, true},      // up to the end
  };
  for (const auto& r : ranges) {
    if (r.dealloc) {
      b->Deallocate(&loop, r.off, r.len, d.Cb());
    } else {
      b->WriteZeroes(&loop, r.off, r.len, d.Cb());
    }
    std::fill_n(model.begin() + static_cast<long>(r.off), r.len, 0);
  }
  Done flushed;
  b->Flush(&loop, flushed.Cb());
  EXPECT_EQ(flushed.n, 1);
  std::vector<uint8_t> out(size, 0xEE);
  b->Read(&loop, 0, MemDesc::Buffer(out.data(), size), size, d.Cb());
  EXPECT_EQ(d.n, 7);
  EXPECT_EQ(d.errors, 0) << d.first_error.ToString();
  EXPECT_TRUE(out == model);
  // The pages given back come back as zeroes when written again.
  std::vector<uint8_t> again = Random(4096, 9);
  b->Write(&loop, 3 << 20, MemDesc::Buffer(again.data(), 4096), 4096, d.Cb());
  b->Read(&loop, 3 << 20, MemDesc::Buffer(out.data(), 8192), 8192, d.Cb());
  EXPECT_TRUE(std::equal(again.begin(), again.end(), out.begin()));
  EXPECT_TRUE(AllZero(out.data() + 4096, 4096));
}

TEST(BackendMemory, RangeErrors) {
  EventLoop loop;
  auto b = MustOpen("mem:1M");
  std::vector<uint8_t> buf(8192);
  MemDesc m = MemDesc::Buffer(buf.data(), buf.size());
  Done d;
  b->Read(&loop, (1 << 20) - 4096, m, 8192, d.Cb());   // past the end
  b->Write(&loop, 0, m, 8193, d.Cb());                 // longer than the buffer
  b->Write(&loop, UINT64_MAX - 100, m, 4096, d.Cb());  // offset overflow
  b->WriteZeroes(&loop, 1 << 20, 1, d.Cb());
  b->Deallocate(&loop, 512, UINT64_MAX, d.Cb());
  EXPECT_EQ(d.n, 5);
  EXPECT_EQ(d.errors, 5);
  EXPECT_EQ(d.first_error.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(d.first_error.message().find("outside"), std::string::npos);
  // Zero length at the very end is fine.
  Done ok;
  b->Read(&loop, 1 << 20, m, 0, ok.Cb());
  EXPECT_EQ(ok.errors, 0);
}

TEST(BackendMemory, SparseWhenLarge) {
  // MAP_NORESERVE: a namespace far larger than the machine's memory costs nothing unwritten
  // (unless the kernel is told never to overcommit).
  FILE* f = fopen("/proc/sys/vm/overcommit_memory", "r");
  int mode = 0;
  if (f != nullptr) {
    if (fscanf(f, "%d", &mode) != 1) mode = 0;
    fclose(f);
  }
  if (mode == 2) GTEST_SKIP() << "vm.overcommit_memory=2";
  EventLoop loop;
  auto b = MustOpen("mem:1T");
  ASSERT_NE(b, nullptr);
  std::vector<uint8_t> buf = Random(4096, 3);
  Done d;
  b->Write(&loop, (1ull << 40) - 4096, MemDesc::Buffer(buf.data(), 4096), 4096, d.Cb());
  std::vector<uint8_t> out(4096);
  b->Read(&loop, (1ull << 40) - 4096, MemDesc::Buffer(out.data(), 4096), 4096, d.Cb());
  EXPECT_EQ(out, buf);
  b->Deallocate(&loop, 0, 1ull << 40, d.Cb());
  b->Read(&loop, (1ull << 40) - 4096, MemDesc::Buffer(out.data(), 4096), 4096, d.Cb());
  EXPECT_TRUE(AllZero(out.data(), 4096));
  EXPECT_EQ(d.errors, 0) << d.first_error.ToString();
}

TEST(BackendMemory, ConcurrentLoopsOnThreads) {
  auto b = MustOpen("mem:4M");
  std::atomic<int> errors{0};
  auto work = [&](int id) {
    EventLoop loop;
    std::vector<uint8_t> buf = Random(4096, static_cast<uint32_t>(id));
    std::vector<uint8_t> out(4096);
    for (int i = 0; i < 200; i++) {
      uint64_t off = (static_cast<uint64_t>(id) << 21) + static_cast<uint64_t>(i % 512) * 4096;
      Done d;
      b->Write(&loop, off, MemDesc::Buffer(buf.data(), 4096), 4096, d.Cb());
      b->Read(&loop, off, MemDesc::Buffer(out.data(), 4096), 4096, d.Cb());
      if (d.errors != 0 || out != buf) errors++;
    }
  };
  std::thread t0(work, 0), t1(work, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(errors.load(), 0);
}

// ---------------------------------------------------------------------------------------
// Null.

TEST(BackendNull, LeavesReadsAloneAndDropsWrites) {
  EventLoop loop;
  auto b = MustOpen("null:1G");
  std::vector<uint8_t> buf(65536, 0xAB);
  Done d;
  b->Read(&loop, 0, MemDesc::Buffer(buf.data(), buf.size()), buf.size(), d.Cb());
  EXPECT_EQ(d.n, 1);
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](uint8_t x) { return x == 0xAB; }));
  b->Write(&loop, (1 << 30) - 65536, MemDesc::Buffer(buf.data(), buf.size()), buf.size(), d.Cb());
  b->Flush(&loop, d.Cb());
  b->WriteZeroes(&loop, 0, 1 << 30, d.Cb());
  b->Deallocate(&loop, 4096, 4096, d.Cb());
  EXPECT_EQ(d.n, 5);
  EXPECT_EQ(d.errors, 0);
  EXPECT_EQ(b->Direct(0, 4096), nullptr);

  b->Read(&loop, 1 << 30, MemDesc::Buffer(buf.data(), buf.size()), 1, d.Cb());
  b->Write(&loop, 0, MemDesc::Buffer(buf.data(), 16), 17, d.Cb());
  b->WriteZeroes(&loop, 4096, 1 << 30, d.Cb());
  EXPECT_EQ(d.n, 8);
  EXPECT_EQ(d.errors, 3);
  EXPECT_EQ(d.first_error.code(), Status::Code::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------
// File: every test runs through io_uring and through the worker-thread fallback.

class BackendFile : public ::testing::TestWithParam<bool> {
 protected:
  static constexpr uint64_t kSize = 8 << 20;

  void SetUp() override {
    Uring::DisableForTesting(GetParam());
    file_ = std::make_unique<TempFile>(kSize);
    b_ = MustOpen("file:" + file_->path);
    ASSERT_NE(b_, nullptr);
    model_.assign(kSize, 0);
  }
  void TearDown() override {
    b_.reset();
    Uring::DisableForTesting(false);
  }
  bool workers() const { return GetParam(); }

  // Runs the loop until d has n completions.
  void Wait(Done& d, int n, EventLoop* loop = nullptr) {
    if (loop == nullptr) loop = &loop_;
    EXPECT_TRUE(loop->RunUntil([&d, n] { return d.n >= n; }, kWait))
        << d.n << " of " << n << " completions";
    EXPECT_EQ(d.errors, 0) << d.first_error.ToString();
  }

  void WriteModel(uint64_t off, const std::vector<uint8_t>& data) {
    std::copy(data.begin(), data.end(), model_.begin() + static_cast<long>(off));
  }

  // Reads the whole file through the backend and compares with the model.
  void CheckAll() {
    std::vector<uint8_t> out(kSize, 0xEE);
    Done d;
    b_->Read(&loop_, 0, MemDesc::Buffer(out.data(), kSize), kSize, d.Cb());
    Wait(d, 1);
    for (uint64_t i = 0; i < kSize; i += 4096) {
      ASSERT_TRUE(std::equal(out.begin() + static_cast<long>(i),
                             out.begin() + static_cast<long>(i + 4096),
                             model_.begin() + static_cast<long>(i)))
          << "block at " << i;
    }
  }

  EventLoop loop_;
  std::unique_ptr<TempFile> file_;
  std::unique_ptr<Backend> b_;
  std::vector<uint8_t> model_;
};

TEST_P(BackendFile, ManyConcurrentWritesThenReads) {
  std::mt19937 rng(42);
  std::vector<std::vector<uint8_t>> bufs(64);
  for (int round = 0; round < 4; round++) {
    // 64 writes of 4 KiB in flight at distinct random 4 KiB slots.
    std::vector<uint64_t> slots(kSize / 4096);
    for (size_t i = 0; i < slots.size(); i++) slots[i] = i;
    std::shuffle(slots.begin(), slots.end(), rng);
    Done d;
    for (int i = 0; i < 64; i++) {
      bufs[i] = Random(4096, rng());
      uint64_t off = slots[i] * 4096;
      b_->Write(&loop_, off, MemDesc::Buffer(bufs[i].data(), 4096), 4096, d.Cb());
      WriteModel(off, bufs[i]);
    }
    EXPECT_EQ(d.n, 0) << "completed inside Write";
    Wait(d, 64);
  }
  // 64 reads in flight at random 512-byte aligned offsets (overlapping is fine).
  std::vector<std::vector<uint8_t>> outs(64, std::vector<uint8_t>(4096, 0xEE));
  std::vector<uint64_t> offs(64);
  Done d;
  for (int i = 0; i < 64; i++) {
    offs[i] = (rng() % (kSize / 512 - 8)) * 512;
    b_->Read(&loop_, offs[i], MemDesc::Buffer(outs[i].data(), 4096), 4096, d.Cb());
  }
  EXPECT_EQ(d.n, 0) << "completed inside Read";
  Wait(d, 64);
  for (int i = 0; i < 64; i++) {
    EXPECT_TRUE(
        std::equal(outs[i].begin(), outs[i].end(), model_.begin() + static_cast<long>(offs[i])))
        << "read " << i << " at " << offs[i];
  }
  CheckAll();
}

TEST_P(BackendFile, LargeAndManySegmentIo) {
  Done d;
  // 1 MiB contiguous at an offset that is not 4 KiB aligned.
  std::vector<uint8_t> big = Random(1 << 20, 1);
  b_->Write(&loop_, 3 * 512, MemDesc::Buffer(big.data(), big.size()), big.size(), d.Cb());
  WriteModel(3 * 512, big);
  // 3 MiB + 512 in one buffer: more than one chunk.
  std::vector<uint8_t> bigger = Random((3 << 20) + 512, 2);
  b_->Write(&loop_, 2 << 20, MemDesc::Buffer(bigger.data(), bigger.size()), bigger.size(), d.Cb());
  WriteModel(2 << 20, bigger);
  // 300 odd-sized segments (several SQEs' worth of iovecs), all in one MemDesc.
  std::vector<uint8_t> sg = Random(300 * 997, 3);
  auto iov = Segments(sg, {997});
  ASSERT_EQ(iov.size(), 300u);
  b_->Write(&loop_, 6 << 20, MemDesc::Vector(iov.data(), static_cast<int>(iov.size())), sg.size(),
            d.Cb());
  WriteModel(6 << 20, sg);
  Wait(d, 3);
  // Read back the scattered range with another segmentation, shifted by 1000 bytes.
  std::vector<uint8_t> out(sg.size() - 1000, 0xEE);
  auto oiov = Segments(out, {1, 333, 4096, 17});
  Done r;
  b_->Read(&loop_, (6 << 20) + 1000, MemDesc::Vector(oiov.data(), static_cast<int>(oiov.size())),
           out.size(), r.Cb());
  Wait(r, 1);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), sg.begin() + 1000));
  CheckAll();
}

TEST_P(BackendFile, FlushWriteZeroesAndDeallocate) {
  std::vector<uint8_t> all = Random(kSize, 5);
  Done d;
  b_->Write(&loop_, 0, MemDesc::Buffer(all.data(), kSize), kSize, d.Cb());
  WriteModel(0, all);
  Wait(d, 1);
  Done f;
  b_->Flush(&loop_, f.Cb());
  EXPECT_EQ(f.n, 0);
  Wait(f, 1);

  Done z;
  b_->WriteZeroes(&loop_, 4096 + 512, 65536 + 512, z.Cb());
  b_->Deallocate(&loop_, 1 << 20, 2 << 20, z.Cb());
  b_->Deallocate(&loop_, kSize - 512, 512, z.Cb());
  b_->WriteZeroes(&loop_, 333, 10, z.Cb());  // not even sector aligned: a regular file allows it
  Wait(z, 4);
  std::fill_n(model_.begin() + 4096 + 512, 65536 + 512, 0);
  std::fill_n(model_.begin() + (1 << 20), 2 << 20, 0);
  std::fill_n(model_.begin() + static_cast<long>(kSize - 512), 512, 0);
  std::fill_n(model_.begin() + 333, 10, 0);
  CheckAll();
  // Punching holes keeps the file's size.
  struct stat st;
  ASSERT_EQ(stat(file_->path.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kSize);
}

TEST_P(BackendFile, ZeroesByWritingWhereFallocateIsUnsupported) {
  for (int method : {kZeroRange, kZeroWrite}) {
    std::vector<uint8_t> all = Random(kSize, static_cast<uint32_t>(method));
    Done d;
    b_->Write(&loop_, 0, MemDesc::Buffer(all.data(), kSize), kSize, d.Cb());
    WriteModel(0, all);
    Wait(d, 1);
    ASSERT_TRUE(SetZeroMethodForTesting(b_.get(), method));
    Done z;
    // Over 4 MiB: the writes of zeroes take several chunks.
    b_->WriteZeroes(&loop_, 1000, (5 << 20) + 24, z.Cb());
    b_->Deallocate(&loop_, kSize - 4096, 4096, z.Cb());
    Wait(z, 2);
    std::fill_n(model_.begin() + 1000, (5 << 20) + 24, 0);
    std::fill_n(model_.begin() + static_cast<long>(kSize - 4096), 4096, 0);
    CheckAll();
  }
  EXPECT_FALSE(SetZeroMethodForTesting(MustOpen("mem:1M").get(), kZeroWrite));
}

TEST_P(BackendFile, ReadPastTheEndOfTheFileGivesZeroes) {
  std::vector<uint8_t> all = Random(kSize, 6);
  Done d;
  b_->Write(&loop_, 0, MemDesc::Buffer(all.data(), kSize), kSize, d.Cb());
  Wait(d, 1);
  // Someone shrinks the file under the backend; it keeps its size.
  const uint64_t eof = (6 << 20) + 1000;
  ASSERT_EQ(truncate(file_->path.c_str(), static_cast<off_t>(eof)), 0);
  EXPECT_EQ(b_->size(), kSize);
  std::vector<uint8_t> across(2 << 20, 0xEE);
  std::vector<uint8_t> beyond(65536, 0xEE);
  Done r;
  b_->Read(&loop_, 5 << 20, MemDesc::Buffer(across.data(), across.size()), across.size(), r.Cb());
  b_->Read(&loop_, kSize - 65536, MemDesc::Buffer(beyond.data(), beyond.size()), beyond.size(),
           r.Cb());
  Wait(r, 2);
  size_t before = eof - (5 << 20);
  EXPECT_TRUE(std::equal(across.begin(), across.begin() + static_cast<long>(before),
                         all.begin() + (5 << 20)));
  EXPECT_TRUE(AllZero(across.data() + before, across.size() - before));
  EXPECT_TRUE(AllZero(beyond.data(), beyond.size()));
}

TEST_P(BackendFile, RangeErrorsCompleteAtOnce) {
  std::vector<uint8_t> buf(8192);
  MemDesc m = MemDesc::Buffer(buf.data(), buf.size());
  Done d;
  b_->Read(&loop_, kSize - 4096, m, 8192, d.Cb());
  b_->Write(&loop_, 0, m, 8193, d.Cb());
  b_->WriteZeroes(&loop_, kSize, 512, d.Cb());
  b_->Deallocate(&loop_, UINT64_MAX - 511, 1024, d.Cb());
  EXPECT_EQ(d.n, 4);
  EXPECT_EQ(d.errors, 4);
  EXPECT_EQ(d.first_error.code(), Status::Code::kInvalidArgument);
  Done z;
  b_->Read(&loop_, 0, m, 0, z.Cb());  // nothing to do
  EXPECT_EQ(z.n, 1);
  EXPECT_EQ(z.errors, 0);
}

TEST_P(BackendFile, IoErrorsCarryTheSystemMessage) {
  // A file opened read-only under the backend's nose: writes fail with EBADF.
  int ro = open(file_->path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(ro, 0);
  // Swap the backend's descriptor for the read-only one (same number).
  TempFile other(4096);
  auto b = MustOpen("file:" + other.path);
  ASSERT_NE(b, nullptr);
  // Find the descriptor by its path: the newest one is the backend's.
  int fd = -1;
  for (int i = 3; i < 1024; i++) {
    char link[64], target[512];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", i);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n > 0 && std::string(target, static_cast<size_t>(n)) == other.path) fd = i;
  }
  ASSERT_GE(fd, 0);
  ASSERT_EQ(dup2(ro, fd), fd);
  close(ro);
  std::vector<uint8_t> buf(4096, 1);
  Done d;
  b->Write(&loop_, 0, MemDesc::Buffer(buf.data(), 4096), 4096, d.Cb());
  EXPECT_TRUE(loop_.RunUntil([&d] { return d.n == 1; }, kWait));
  ASSERT_EQ(d.errors, 1);
  EXPECT_EQ(d.first_error.code(), Status::Code::kIoError);
  EXPECT_NE(d.first_error.message().find("Bad file descriptor"), std::string::npos)
      << d.first_error.ToString();
  EXPECT_NE(d.first_error.message().find("write " + other.path + " at offset 0"), std::string::npos)
      << d.first_error.ToString();
}

TEST_P(BackendFile, LoopKeepsTurningWhileIoIsInFlight) {
  // A timer re-arming itself every millisecond keeps firing while 32 MiB of writes and a
  // flush are in flight. Loose: on a fast disk the I/O may finish first.
  struct Ticker {
    EventLoop* loop;
    int ticks = 0;
    void Arm() {
      loop->AddTimer(1ms, [this] {
        ticks++;
        Arm();
      });
    }
  } ticker{&loop_};
  ticker.Arm();
  std::vector<uint8_t> buf = Random(1 << 20, 8);
  Done d;
  auto start = Clock::now();
  for (int i = 0; i < 32; i++) {
    b_->Write(&loop_, static_cast<uint64_t>(i % 8) << 20, MemDesc::Buffer(buf.data(), buf.size()),
              buf.size(), d.Cb());
  }
  b_->Flush(&loop_, d.Cb());
  auto issued = Clock::now() - start;
  Wait(d, 33);
  auto took = Clock::now() - start;
  EXPECT_LT(issued, 1s) << "the calls blocked";
  if (took > 50ms) {
    EXPECT_GT(ticker.ticks, 0) << "the loop stood still during the I/O";
  }
  std::printf(
      "32 MiB + flush: %lld ms, %d timer ticks\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
      ticker.ticks);
}

TEST_P(BackendFile, CallbacksThatResubmitDoNotStarveTheLoop) {
  // 32 chains of reads, each read's callback issuing the next, as a busy target does. Page
  // cache hits complete inside the submit; the loop must still get round to its timers.
  struct Counts {
    int done = 0;
    int inflight = 0;
    bool stop = false;
  };
  struct Chain {
    Backend* b;
    EventLoop* loop;
    uint8_t* buf;
    Counts* n;
    int left;
    void Next() {
      if (n->stop || left == 0) return;
      left--;
      n->inflight++;
      b->Read(loop, static_cast<uint64_t>(left % 1024) * 4096, MemDesc::Buffer(buf, 4096), 4096,
              [this](const Status& s) {
                EXPECT_TRUE(s.ok()) << s.ToString();
                n->done++;
                n->inflight--;
                Next();
              });
    }
  };
  constexpr int kPerChain = 3000;
  std::vector<uint8_t> bufs(32 * 4096);
  Counts n;
  std::vector<Chain> chains;
  for (int i = 0; i < 32; i++)
    chains.push_back({b_.get(), &loop_, bufs.data() + i * 4096, &n, kPerChain});
  int done_at_timer = -1;
  loop_.AddTimer(1ms, [&done_at_timer, &n] {
    done_at_timer = n.done;
    n.stop = true;
  });
  for (auto& c : chains) c.Next();
  EXPECT_TRUE(loop_.RunUntil([&n] { return n.stop && n.inflight == 0; }, kWait));
  EXPECT_LT(done_at_timer, 32 * kPerChain) << "the timer had to wait for every read";
}

TEST_P(BackendFile, LoopsComeAndGoOnOneThread) {
  // Loops made one after another (often at the same address), and two at once on one
  // thread: each call's completion arrives on the loop it passed.
  std::vector<uint8_t> buf = Random(4096, 9);
  std::vector<uint8_t> out(4096);
  for (int i = 0; i < 5; i++) {
    auto loop = std::make_unique<EventLoop>();
    Done d;
    b_->Write(loop.get(), static_cast<uint64_t>(i) * 4096, MemDesc::Buffer(buf.data(), 4096), 4096,
              d.Cb());
    Wait(d, 1, loop.get());
    std::fill(out.begin(), out.end(), 0);
    b_->Read(loop.get(), static_cast<uint64_t>(i) * 4096, MemDesc::Buffer(out.data(), 4096), 4096,
             d.Cb());
    Wait(d, 2, loop.get());
    EXPECT_EQ(out, buf) << "loop " << i;
  }
  EventLoop a, c;
  Done da, dc;
  b_->Write(&a, 0, MemDesc::Buffer(buf.data(), 4096), 4096, da.Cb());
  b_->Write(&c, 8192, MemDesc::Buffer(buf.data(), 4096), 4096, dc.Cb());
  Wait(dc, 1, &c);
  Wait(da, 1, &a);
}

TEST_P(BackendFile, LoopsOnSeveralThreads) {
  std::atomic<int> bad{0};
  auto work = [&](int id) {
    EventLoop loop;
    std::vector<std::vector<uint8_t>> bufs(16);
    std::vector<std::vector<uint8_t>> outs(16, std::vector<uint8_t>(4096));
    Done d;
    for (int i = 0; i < 16; i++) {
      bufs[i] = Random(4096, static_cast<uint32_t>(id * 100 + i));
      b_->Write(&loop, static_cast<uint64_t>(id * 16 + i) * 4096,
                MemDesc::Buffer(bufs[i].data(), 4096), 4096, d.Cb());
    }
    if (!loop.RunUntil([&d] { return d.n == 16; }, kWait)) bad++;
    for (int i = 0; i < 16; i++) {
      b_->Read(&loop, static_cast<uint64_t>(id * 16 + i) * 4096,
               MemDesc::Buffer(outs[i].data(), 4096), 4096, d.Cb());
    }
    if (!loop.RunUntil([&d] { return d.n == 32; }, kWait)) bad++;
    if (d.errors != 0 || outs != bufs) bad++;
  };
  std::thread t0(work, 0), t1(work, 1), t2(work, 2);
  t0.join();
  t1.join();
  t2.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_P(BackendFile, NoHeapAllocationPerIoInSteadyState) {
  if (workers()) GTEST_SKIP() << "the worker fallback allocates by design";
  std::vector<std::vector<uint8_t>> bufs(32, Random(4096, 10));
  std::vector<struct iovec> iov(100);
  std::vector<uint8_t> sg(100 * 512);
  for (int i = 0; i < 100; i++) iov[i] = {sg.data() + i * 512, 512};
  Done d;
  int expect = 0;
  auto round = [&] {
    for (int i = 0; i < 32; i++) {
      MemDesc m = MemDesc::Buffer(bufs[i].data(), 4096);
      if (i % 2 == 0) {
        b_->Write(&loop_, static_cast<uint64_t>(i) * 4096, m, 4096, d.Cb());
      } else {
        b_->Read(&loop_, static_cast<uint64_t>(i) * 4096, m, 4096, d.Cb());
      }
    }
    b_->Write(&loop_, 1 << 20, MemDesc::Vector(iov.data(), 100), sg.size(), d.Cb());
    b_->Flush(&loop_, d.Cb());
    b_->Deallocate(&loop_, 2 << 20, 65536, d.Cb());
    expect += 35;
    loop_.RunUntil([&] { return d.n >= expect; }, kWait);
  };
  for (int i = 0; i < 20; i++) round();  // warm-up: pools reach their working size
  StartCountingAllocations();
  for (int i = 0; i < 100; i++) round();
  const uint64_t allocs = StopCountingAllocations();
  EXPECT_EQ(d.n, expect);
  EXPECT_EQ(d.errors, 0) << d.first_error.ToString();
  EXPECT_EQ(allocs, 0u);
}

TEST_P(BackendFile, BlockDevice) {
  // Destroys the device's contents: runs only when NVMF_TEST_BLOCK_DEVICE names one (for
  // example a loop device: truncate -s 64M img && losetup -f --show img).
  const char* dev = std::getenv("NVMF_TEST_BLOCK_DEVICE");
  if (dev == nullptr || *dev == 0) GTEST_SKIP() << "NVMF_TEST_BLOCK_DEVICE is not set";
  auto b = MustOpen(std::string("file:") + dev);
  ASSERT_NE(b, nullptr);
  // Opened exclusively: a second open fails while the first holds it.
  std::unique_ptr<Backend> second;
  Status busy = Backend::Open(std::string("file:") + dev, &second);
  EXPECT_FALSE(busy.ok());
  EXPECT_NE(busy.message().find("in use"), std::string::npos) << busy.ToString();
  const uint64_t size = std::min<uint64_t>(b->size(), 8 << 20);
  ASSERT_GE(size, 1u << 20);
  ASSERT_EQ(b->size() % b->block_size(), 0u);
  std::vector<uint8_t> data = Random(size, 11);
  Done d;
  b->Write(&loop_, 0, MemDesc::Buffer(data.data(), size), size, d.Cb());
  Wait(d, 1);
  Done z;
  b->WriteZeroes(&loop_, 65536, 131072, z.Cb());
  b->Deallocate(&loop_, 512 * 1024, 262144, z.Cb());
  b->Flush(&loop_, z.Cb());
  Wait(z, 3);
  std::fill_n(data.begin() + 65536, 131072, 0);
  std::fill_n(data.begin() + 512 * 1024, 262144, 0);
  std::vector<uint8_t> out(size, 0xEE);
  Done r;
  b->Read(&loop_, 0, MemDesc::Buffer(out.data(), size), size, r.Cb());
  Wait(r, 1);
  EXPECT_TRUE(out == data);
}

INSTANTIATE_TEST_SUITE_P(Engines, BackendFile, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "Workers" : "Uring";
                         });

}  // namespace
}  // namespace nvmf::target
