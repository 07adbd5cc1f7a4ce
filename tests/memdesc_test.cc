// MemDesc: one buffer or an iovec list, sliced into iovecs and copied in and out across
// segment boundaries.
#include <gtest/gtest.h>

#include <sys/uio.h>

#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "nvmf/memdesc.h"

namespace nvmf {
namespace {

// Byte i of the described memory is Pattern(i).
uint8_t Pattern(size_t i) { return static_cast<uint8_t>(i * 7 + 3); }

// Flattens what a slice describes.
std::vector<uint8_t> Gather(const struct iovec* v, int n) {
  std::vector<uint8_t> out;
  for (int i = 0; i < n; i++) {
    auto* p = static_cast<uint8_t*>(v[i].iov_base);
    out.insert(out.end(), p, p + v[i].iov_len);
  }
  return out;
}

std::vector<uint8_t> Expected(size_t offset, size_t len) {
  std::vector<uint8_t> v(len);
  for (size_t i = 0; i < len; i++) v[i] = Pattern(offset + i);
  return v;
}

// Three backing segments of 10, 0, 5, 0, 17 bytes described as one 32-byte vector.
struct Fixture {
  uint8_t a[10], c[5], e[17];
  struct iovec iov[5];
  MemDesc md;
  Fixture() {
    size_t k = 0;
    for (uint8_t& x : a) x = Pattern(k++);
    for (uint8_t& x : c) x = Pattern(k++);
    for (uint8_t& x : e) x = Pattern(k++);
    iov[0] = {a, sizeof(a)};
    iov[1] = {nullptr, 0};
    iov[2] = {c, sizeof(c)};
    iov[3] = {a, 0};  // empty, with a non-null base
    iov[4] = {e, sizeof(e)};
    md = MemDesc::Vector(iov, 5);
  }
};

TEST(MemDesc, DefaultIsEmpty) {
  MemDesc m;
  EXPECT_EQ(m.length(), 0u);
  EXPECT_TRUE(m.empty());
  struct iovec out[1];
  EXPECT_EQ(m.Slice(0, 0, out, 1), 0);
  EXPECT_EQ(m.Slice(0, 1, out, 1), -1);
  EXPECT_EQ(m.Slice(1, 0, out, 1), -1);
}

TEST(MemDesc, Buffer) {
  uint8_t buf[64];
  MemDesc m = MemDesc::Buffer(buf, sizeof(buf));
  EXPECT_EQ(m.length(), 64u);
  EXPECT_FALSE(m.empty());
  struct iovec out[2];
  ASSERT_EQ(m.Slice(10, 20, out, 2), 1);
  EXPECT_EQ(out[0].iov_base, buf + 10);
  EXPECT_EQ(out[0].iov_len, 20u);
  ASSERT_EQ(m.Slice(0, 64, out, 1), 1);
  EXPECT_EQ(out[0].iov_base, buf);
  EXPECT_EQ(out[0].iov_len, 64u);
  EXPECT_EQ(m.Slice(64, 0, out, 1), 0);
  EXPECT_EQ(m.Slice(60, 5, out, 2), -1);
  EXPECT_EQ(m.Slice(65, 0, out, 2), -1);
  EXPECT_TRUE(MemDesc::Buffer(buf, 0).empty());
}

TEST(MemDesc, VectorLengthCountsEveryElement) {
  Fixture f;
  EXPECT_EQ(f.md.length(), 32u);
  EXPECT_FALSE(f.md.empty());
  struct iovec none[2] = {{nullptr, 0}, {nullptr, 0}};
  MemDesc m = MemDesc::Vector(none, 2);
  EXPECT_EQ(m.length(), 0u);
  EXPECT_TRUE(m.empty());
  EXPECT_TRUE(MemDesc::Vector(none, 0).empty());
}

TEST(MemDesc, SliceOfAVectorSkipsEmptyElements) {
  Fixture f;
  struct iovec out[5];
  // The whole: three pieces, no empty ones.
  ASSERT_EQ(f.md.Slice(0, 32, out, 5), 3);
  EXPECT_EQ(out[0].iov_base, f.a);
  EXPECT_EQ(out[0].iov_len, 10u);
  EXPECT_EQ(out[1].iov_base, f.c);
  EXPECT_EQ(out[1].iov_len, 5u);
  EXPECT_EQ(out[2].iov_base, f.e);
  EXPECT_EQ(out[2].iov_len, 17u);
  // Exactly enough room.
  EXPECT_EQ(f.md.Slice(0, 32, out, 3), 3);
  // Starting on a boundary (offset 10 is the start of c, after an empty element).
  ASSERT_EQ(f.md.Slice(10, 5, out, 1), 1);
  EXPECT_EQ(out[0].iov_base, f.c);
  EXPECT_EQ(out[0].iov_len, 5u);
  // Ending on a boundary, and inside one segment.
  ASSERT_EQ(f.md.Slice(3, 7, out, 1), 1);
  EXPECT_EQ(out[0].iov_base, f.a + 3);
  EXPECT_EQ(out[0].iov_len, 7u);
  ASSERT_EQ(f.md.Slice(20, 4, out, 1), 1);
  EXPECT_EQ(out[0].iov_base, f.e + 5);
  // Across boundaries with partial first and last pieces.
  ASSERT_EQ(f.md.Slice(8, 10, out, 3), 3);
  EXPECT_EQ(out[0].iov_base, f.a + 8);
  EXPECT_EQ(out[0].iov_len, 2u);
  EXPECT_EQ(out[1].iov_len, 5u);
  EXPECT_EQ(out[2].iov_base, f.e);
  EXPECT_EQ(out[2].iov_len, 3u);
  EXPECT_EQ(Gather(out, 3), Expected(8, 10));
  // Starting in the last segment, up to the very end.
  ASSERT_EQ(f.md.Slice(31, 1, out, 1), 1);
  EXPECT_EQ(out[0].iov_base, f.e + 16);
  EXPECT_EQ(f.md.Slice(32, 0, out, 1), 0);
}

TEST(MemDesc, SliceOutOfRange) {
  Fixture f;
  struct iovec out[5];
  EXPECT_EQ(f.md.Slice(0, 33, out, 5), -1);
  EXPECT_EQ(f.md.Slice(30, 3, out, 5), -1);
  EXPECT_EQ(f.md.Slice(32, 1, out, 5), -1);
  EXPECT_EQ(f.md.Slice(33, 0, out, 5), -1);
  // offset + len wrapping around size_t must not pass as in range.
  EXPECT_EQ(f.md.Slice(8, SIZE_MAX, out, 5), -1);
  EXPECT_EQ(f.md.Slice(SIZE_MAX, 2, out, 5), -1);
}

TEST(MemDesc, SliceWithTooFewEntries) {
  Fixture f;
  struct iovec out[5];
  EXPECT_EQ(f.md.Slice(0, 32, out, 2), -1);
  EXPECT_EQ(f.md.Slice(8, 10, out, 2), -1);
  EXPECT_EQ(f.md.Slice(0, 11, out, 1), -1);
  EXPECT_EQ(f.md.Slice(0, 1, out, 0), -1);
  // The entries written before giving up stay inside out[0..max).
  struct iovec guard[3];
  guard[2] = {nullptr, 12345};
  EXPECT_EQ(f.md.Slice(0, 32, guard, 2), -1);
  EXPECT_EQ(guard[2].iov_len, 12345u);
}

TEST(MemDesc, CopyInAndOutAcrossSegments) {
  Fixture f;
  // Every (offset, len) pair of the 32 bytes.
  for (size_t off = 0; off <= 32; off++) {
    for (size_t len = 0; off + len <= 32; len++) {
      std::vector<uint8_t> got(len + 1, 0xEE);
      f.md.CopyOut(off, got.data(), len);
      EXPECT_EQ(got[len], 0xEE) << "wrote past len";
      got.resize(len);
      ASSERT_EQ(got, Expected(off, len)) << off << "+" << len;
    }
  }
  // CopyIn a new pattern over a middle range and read everything back.
  std::vector<uint8_t> src(20);
  std::iota(src.begin(), src.end(), 100);
  f.md.CopyIn(6, src.data(), src.size());
  std::vector<uint8_t> all(32);
  f.md.CopyOut(0, all.data(), 32);
  for (size_t i = 0; i < 32; i++) {
    uint8_t want = (i >= 6 && i < 26) ? static_cast<uint8_t>(100 + i - 6) : Pattern(i);
    EXPECT_EQ(all[i], want) << i;
  }
  EXPECT_EQ(f.a[9], 103);
  EXPECT_EQ(f.c[0], 104);
  EXPECT_EQ(f.c[4], 108);
  EXPECT_EQ(f.e[0], 109);
  EXPECT_EQ(f.e[10], 119);
  EXPECT_EQ(f.e[11], Pattern(26));
}

TEST(MemDesc, CopyOnABuffer) {
  uint8_t buf[16] = {};
  MemDesc m = MemDesc::Buffer(buf, sizeof(buf));
  const char* s = "abcdef";
  m.CopyIn(5, s, 6);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf) + 5, 6), "abcdef");
  EXPECT_EQ(buf[4], 0);
  EXPECT_EQ(buf[11], 0);
  char out[4];
  m.CopyOut(7, out, 4);
  EXPECT_EQ(std::string(out, 4), "cdef");
  m.CopyOut(16, out, 0);  // empty copy at the end is allowed
}

TEST(MemDesc, ForEachVisitsNonEmptyPiecesInOrder) {
  Fixture f;
  std::vector<std::pair<uint8_t*, size_t>> seen;
  auto rec = [&seen](uint8_t* p, size_t n) { seen.emplace_back(p, n); };
  f.md.ForEach(0, 32, rec);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], std::make_pair(static_cast<uint8_t*>(f.a), size_t{10}));
  EXPECT_EQ(seen[1], std::make_pair(static_cast<uint8_t*>(f.c), size_t{5}));
  EXPECT_EQ(seen[2], std::make_pair(static_cast<uint8_t*>(f.e), size_t{17}));
  seen.clear();
  f.md.ForEach(9, 8, rec);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], std::make_pair(f.a + 9, size_t{1}));
  EXPECT_EQ(seen[1], std::make_pair(static_cast<uint8_t*>(f.c), size_t{5}));
  EXPECT_EQ(seen[2], std::make_pair(static_cast<uint8_t*>(f.e), size_t{2}));
  seen.clear();
  f.md.ForEach(15, 0, rec);
  f.md.ForEach(32, 0, rec);
  EXPECT_TRUE(seen.empty());
  f.md.ForEach(15, 17, rec);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], std::make_pair(static_cast<uint8_t*>(f.e), size_t{17}));
}

// Random segmentations, compared with one flat buffer.
TEST(MemDesc, RandomSegmentationsMatchAFlatBuffer) {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 300; iter++) {
    const int nseg = 1 + static_cast<int>(rng() % 8);
    std::vector<std::vector<uint8_t>> segs(nseg);
    std::vector<struct iovec> iov(nseg);
    size_t total = 0;
    for (int i = 0; i < nseg; i++) {
      segs[i].resize(rng() % 3 == 0 ? 0 : rng() % 40);
      iov[i] = {segs[i].data(), segs[i].size()};
      total += segs[i].size();
    }
    MemDesc m = MemDesc::Vector(iov.data(), nseg);
    ASSERT_EQ(m.length(), total);
    std::vector<uint8_t> flat(total);
    for (auto& b : flat) b = static_cast<uint8_t>(rng());
    m.CopyIn(0, flat.data(), total);
    const size_t off = total == 0 ? 0 : rng() % (total + 1);
    const size_t len = rng() % (total - off + 1);
    std::vector<struct iovec> out(nseg);
    int n = m.Slice(off, len, out.data(), nseg);
    ASSERT_GE(n, 0);
    for (int i = 0; i < n; i++) EXPECT_GT(out[i].iov_len, 0u) << "empty piece in a slice";
    std::vector<uint8_t> want(flat.begin() + off, flat.begin() + off + len);
    EXPECT_EQ(Gather(out.data(), n), want);
    std::vector<uint8_t> got(len);
    m.CopyOut(off, got.data(), len);
    EXPECT_EQ(got, want);
    if (n > 0) {
      EXPECT_EQ(m.Slice(off, len, out.data(), n - 1), -1);
    }
  }
}

}  // namespace
}  // namespace nvmf
