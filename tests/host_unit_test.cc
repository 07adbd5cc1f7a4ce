// Host pieces that need no controller: CID allocation, the latency histogram, the
// verification pattern, size parsing, host identity, status names, Connect data, and
// discovery log decoding from a hand-built buffer.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "host/queue.h"
#include "nvmf/host.h"
#include "nvmf/host_util.h"

namespace nvmf::host {
namespace {

TEST(CidPool, HandsOutEveryIdOnceAndReusesOldestFirst) {
  internal::CidPool p;
  p.Init(8);
  EXPECT_EQ(p.capacity(), 8u);
  std::set<uint16_t> got;
  while (!p.empty()) got.insert(p.Take());
  EXPECT_EQ(got.size(), 8u);
  EXPECT_EQ(*got.begin(), 0);
  EXPECT_EQ(*got.rbegin(), 7);
  EXPECT_EQ(p.available(), 0u);
  p.Put(5);
  p.Put(2);
  p.Put(7);
  EXPECT_EQ(p.available(), 3u);
  EXPECT_EQ(p.Take(), 5);
  EXPECT_EQ(p.Take(), 2);
  p.Put(1);
  EXPECT_EQ(p.Take(), 7);
  EXPECT_EQ(p.Take(), 1);
  EXPECT_TRUE(p.empty());
}

TEST(CidPool, WrapsAroundManyTimes) {
  internal::CidPool p;
  p.Init(3);
  std::vector<uint16_t> held;
  for (int round = 0; round < 100; round++) {
    while (!p.empty()) held.push_back(p.Take());
    ASSERT_EQ(held.size(), 3u);
    std::set<uint16_t> uniq(held.begin(), held.end());
    ASSERT_EQ(uniq.size(), 3u);
    for (uint16_t c : held) p.Put(c);
    held.clear();
  }
  p.Init(65536);
  EXPECT_EQ(p.available(), 65536u);
}

TEST(LatencyHistogram, ExactBelow64AndBoundedErrorAbove) {
  for (uint64_t v = 0; v < 64; v++) {
    EXPECT_EQ(LatencyHistogram::Index(v), static_cast<int>(v));
    EXPECT_EQ(LatencyHistogram::BucketHigh(static_cast<int>(v)), v);
  }
  uint64_t values[] = {64, 65, 100, 1000, 4095, 4096, 123456789, 1ull << 40, UINT64_MAX};
  for (uint64_t v : values) {
    int i = LatencyHistogram::Index(v);
    ASSERT_LT(i, LatencyHistogram::kBuckets);
    uint64_t hi = LatencyHistogram::BucketHigh(i);
    EXPECT_GE(hi, v);
    EXPECT_LE(static_cast<double>(hi - v), static_cast<double>(v) / 32.0) << v;
    if (i > 0) {
      EXPECT_LT(LatencyHistogram::BucketHigh(i - 1), v) << v;
    }
  }
  // Buckets tile the number line: each starts right after the previous one ends.
  for (int i = 1; i < LatencyHistogram::kBuckets; i++) {
    uint64_t lo = LatencyHistogram::BucketHigh(i - 1) + 1;
    ASSERT_EQ(LatencyHistogram::Index(lo), i);
  }
  EXPECT_EQ(LatencyHistogram::Index(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, Percentiles) {
  LatencyHistogram h;
  EXPECT_EQ(h.Percentile(0.5), 0u);
  for (uint64_t v = 1; v <= 10000; v++) h.Record(v * 1000);  // 1 us .. 10 ms
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_EQ(h.min(), 1000u);
  EXPECT_EQ(h.max(), 10000000u);
  EXPECT_NEAR(h.mean(), 5000500.0, 1.0);
  struct {
    double q;
    double want;
  } cases[] = {{0.5, 5e6}, {0.9, 9e6}, {0.99, 9.9e6}, {0.999, 9.99e6}};
  for (auto c : cases) {
    double got = static_cast<double>(h.Percentile(c.q));
    EXPECT_GE(got, c.want) << c.q;
    EXPECT_LE(got, c.want * (1 + 1.0 / 32)) << c.q;
  }
  EXPECT_EQ(h.Percentile(1.0), 10000000u);
  LatencyHistogram g;
  g.Record(5);
  g.Record(20000000);
  h.Merge(g);
  EXPECT_EQ(h.count(), 10002u);
  EXPECT_EQ(h.min(), 5u);
  EXPECT_EQ(h.max(), 20000000u);
  h.Reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(LatencyHistogram, OneValue) {
  LatencyHistogram h;
  h.Record(777777);
  for (double q : {0.001, 0.5, 0.999, 1.0}) EXPECT_EQ(h.Percentile(q), 777777u);
}

TEST(Pattern, FillsAndChecks) {
  const uint32_t bs = 512;
  std::vector<uint8_t> buf(64 * bs);
  FillPattern(buf.data(), buf.size(), 1000, bs, 99);
  EXPECT_EQ(CheckPattern(buf.data(), buf.size(), 1000, bs, 99), -1);
  // Another seed, another LBA: different data.
  EXPECT_EQ(CheckPattern(buf.data(), buf.size(), 1000, bs, 98), 0);
  EXPECT_EQ(CheckPattern(buf.data(), buf.size(), 1001, bs, 99), 0);
  // A flipped bit is found in its block.
  buf[37 * bs + 300] ^= 0x10;
  EXPECT_EQ(CheckPattern(buf.data(), buf.size(), 1000, bs, 99), 37);
  buf[37 * bs + 300] ^= 0x10;
  // Each block names its LBA and seed.
  uint64_t lba, seed;
  PatternHeader(buf.data() + 5 * bs, &lba, &seed);
  EXPECT_EQ(lba, 1005u);
  EXPECT_EQ(seed, 99u);
  // Blocks are position independent: filling a sub-range gives the same bytes.
  std::vector<uint8_t> part(4 * bs);
  FillPattern(part.data(), part.size(), 1010, bs, 99);
  EXPECT_EQ(0, std::memcmp(part.data(), buf.data() + 10 * bs, part.size()));
  // Blocks are not all alike inside.
  EXPECT_NE(0, std::memcmp(buf.data() + 16, buf.data() + bs + 16, bs - 16));
  // Odd block sizes and a tail.
  std::vector<uint8_t> odd(3 * 520 + 100);
  FillPattern(odd.data(), odd.size(), 0, 520, 1);
  EXPECT_EQ(CheckPattern(odd.data(), odd.size(), 0, 520, 1), -1);
  odd.back() ^= 1;
  EXPECT_EQ(CheckPattern(odd.data(), odd.size(), 0, 520, 1), 3);
}

TEST(ParseSize, Accepts) {
  uint64_t v = 0;
  struct {
    const char* s;
    uint64_t want;
  } ok[] = {{"4096", 4096},         {"4k", 4096},          {"4K", 4096},
            {"128k", 131072},       {"64M", 64ull << 20},  {"64MiB", 64ull << 20},
            {"64mb", 64ull << 20},  {"1G", 1ull << 30},    {"2T", 2ull << 40},
            {"512B", 512},          {" 8 M ", 8ull << 20}, {"1P", 1ull << 50}};
  for (auto c : ok) {
    EXPECT_TRUE(ParseSize(c.s, &v)) << c.s;
    EXPECT_EQ(v, c.want) << c.s;
  }
  EXPECT_TRUE(ParseSize("0", &v, true));
  EXPECT_EQ(v, 0u);
}

TEST(ParseSize, Rejects) {
  uint64_t v = 123;
  for (const char* s : {"", "k", "-4k", "4x", "4kk", "1.5M", "0", "0k", "abc", "4 k b c",
                        "18446744073709551616", "20000000T", "16E"}) {
    EXPECT_FALSE(ParseSize(s, &v)) << s;
  }
  EXPECT_EQ(v, 123u);
}

TEST(FormatSize, Readable) {
  EXPECT_EQ(FormatSize(100), "100 B");
  EXPECT_EQ(FormatSize(64ull << 20), "64 MiB");
  EXPECT_EQ(FormatSize(1536), "1.50 KiB");
}

TEST(HostIdentity, FromFilesGeneratedOrGiven) {
  char tmpl[] = "/tmp/nvmf_hostid_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  HostIdentity id;
  // No files: a fresh UUID, and the NQN made from it.
  ASSERT_TRUE(ResolveHostIdentity("", "", &id, dir).ok());
  EXPECT_EQ(id.hostnqn, "nqn.2014-08.org.nvmexpress:uuid:" + FormatUuid(id.hostid));
  EXPECT_EQ(id.hostid[6] >> 4, 4);  // version 4
  // Files.
  std::ofstream(dir + "/hostnqn") << "nqn.2014-08.org.nvmexpress:uuid:01f854cd-c5ff-46eb-b79a-5a4baec3674e\n";
  std::ofstream(dir + "/hostid") << "5c30f0a2-658f-4dec-be56-f899fe59f49f\n";
  ASSERT_TRUE(ResolveHostIdentity("", "", &id, dir).ok());
  EXPECT_EQ(id.hostnqn, "nqn.2014-08.org.nvmexpress:uuid:01f854cd-c5ff-46eb-b79a-5a4baec3674e");
  EXPECT_EQ(FormatUuid(id.hostid), "5c30f0a2-658f-4dec-be56-f899fe59f49f");
  // Given on the command line: they win.
  ASSERT_TRUE(ResolveHostIdentity("nqn.2024-01.io.test:host", "AABBCCDD-0011-2233-4455-66778899aabb",
                                  &id, dir).ok());
  EXPECT_EQ(id.hostnqn, "nqn.2024-01.io.test:host");
  EXPECT_EQ(FormatUuid(id.hostid), "aabbccdd-0011-2233-4455-66778899aabb");
  // No hostid file: the UUID in the NQN.
  std::remove((dir + "/hostid").c_str());
  ASSERT_TRUE(ResolveHostIdentity("", "", &id, dir).ok());
  EXPECT_EQ(FormatUuid(id.hostid), "01f854cd-c5ff-46eb-b79a-5a4baec3674e");
  EXPECT_FALSE(ResolveHostIdentity("", "not-a-uuid", &id, dir).ok());
  std::remove((dir + "/hostnqn").c_str());
  rmdir(dir.c_str());
}

TEST(StatusNames, NamesTheStatus) {
  const uint16_t oor = spec::MakeStatus(spec::kSctGeneric, spec::kScLbaOutOfRange, true);
  EXPECT_EQ(NvmeStatusName(oor, spec::kNvmRead, false), "LBA Out of Range");
  EXPECT_EQ(NvmeStatusString(oor, spec::kNvmRead, false), "LBA Out of Range (SCT 0h, SC 80h, DNR)");
  EXPECT_EQ(NvmeStatusName(spec::MakeStatus(spec::kSctCommandSpecific, 0x84), spec::kFabricsCommand,
                           true, spec::kFctypeConnect),
            "Connect Invalid Host");
  EXPECT_EQ(NvmeStatusName(spec::MakeStatus(spec::kSctCommandSpecific, 0x09), spec::kAdminGetLogPage, true),
            "Invalid Log Page");
  EXPECT_EQ(NvmeStatusName(spec::MakeStatus(spec::kSctMediaError, 0x81), spec::kNvmRead, false),
            "Unrecovered Read Error");
  EXPECT_EQ(NvmeStatusName(spec::MakeStatus(spec::kSctGeneric, 0x7f)),
            "Unknown Status (SCT 0h, SC 7Fh)");

  spec::Sqe sqe{};
  sqe.opc = spec::kNvmWrite;
  spec::Cqe cqe{};
  EXPECT_TRUE(CompletionStatus(sqe, cqe, false).ok());
  spec::SetStatus(cqe, spec::MakeStatus(spec::kSctGeneric, spec::kScNamespaceNotReady));
  Status s = CompletionStatus(sqe, cqe, false);
  EXPECT_EQ(s.code(), Status::Code::kNvmeError);
  EXPECT_EQ(s.ToString(), "NVMe error: Write: Namespace Not Ready (SCT 0h, SC 82h)");

  spec::ConnectSqe cs{};
  cs.opc = spec::kFabricsCommand;
  cs.fctype = spec::kFctypeConnect;
  std::memcpy(&sqe, &cs, sizeof(sqe));
  spec::ConnectCqe cc{};
  cc.invalid.ipo = 256;
  cc.invalid.iattr = 1;
  std::memcpy(&cqe, &cc, sizeof(cqe));
  spec::SetStatus(cqe, spec::MakeStatus(spec::kSctCommandSpecific, spec::kScConnectInvalidParameters));
  s = CompletionStatus(sqe, cqe, true);
  EXPECT_NE(s.message().find("Connect Invalid Parameters"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("byte 256 of the Connect data"), std::string::npos) << s.ToString();
}

TEST(ConnectData, Layout) {
  spec::ConnectData d;
  std::memset(&d, 0xAA, sizeof(d));
  std::array<uint8_t, 16> id;
  for (int i = 0; i < 16; i++) id[i] = static_cast<uint8_t>(i);
  BuildConnectData(&d, id, 0xFFFF, "nqn.sub", "nqn.host");
  auto* b = reinterpret_cast<const uint8_t*>(&d);
  EXPECT_EQ(b[0], 0);
  EXPECT_EQ(b[15], 15);
  EXPECT_EQ(b[16], 0xFF);
  EXPECT_EQ(b[17], 0xFF);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b + 256)), "nqn.sub");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b + 512)), "nqn.host");
  EXPECT_EQ(b[18], 0);
  EXPECT_EQ(b[1023], 0);
}

TEST(DiscoveryLog, DecodesHandBuiltBuffer) {
  std::vector<uint8_t> buf(1024 + 2 * 1024, 0);
  uint64_t genctr = 42, numrec = 2;
  std::memcpy(buf.data(), &genctr, 8);
  std::memcpy(buf.data() + 8, &numrec, 8);
  // Entry 0 at byte 1024, by raw offsets, independent of the struct definition.
  uint8_t* e = buf.data() + 1024;
  e[0] = 3;     // trtype tcp
  e[1] = 1;     // adrfam ipv4
  e[2] = 2;     // subtype nvme
  e[3] = 2;     // treq not required
  e[4] = 0x34;  // portid 0x1234
  e[5] = 0x12;
  e[6] = 0xFF;  // cntlid 0xFFFF
  e[7] = 0xFF;
  std::memcpy(e + 32, "4420", 4);
  std::memcpy(e + 256, "nqn.2024-01.io.nvmf:test", 24);
  std::memcpy(e + 512, "192.168.1.5", 11);
  e = buf.data() + 2048;
  e[0] = 3;
  e[2] = 3;
  std::memcpy(e + 256, spec::kDiscoveryNqn, std::strlen(spec::kDiscoveryNqn));

  DiscoveryLog log;
  ASSERT_TRUE(DecodeDiscoveryLog(buf.data(), buf.size(), &log).ok());
  EXPECT_EQ(log.genctr, 42u);
  EXPECT_EQ(log.numrec, 2u);
  ASSERT_EQ(log.entries.size(), 2u);
  const auto& a = log.entries[0];
  EXPECT_STREQ(TrtypeName(a.trtype), "tcp");
  EXPECT_STREQ(AdrfamName(a.adrfam), "ipv4");
  EXPECT_STREQ(SubtypeName(a.subtype), "nvme subsystem");
  EXPECT_EQ(TreqString(a.treq), "not required");
  EXPECT_EQ(a.portid, 0x1234);
  EXPECT_EQ(a.cntlid, 0xFFFF);
  EXPECT_EQ(FixedString(a.trsvcid, sizeof(a.trsvcid)), "4420");
  EXPECT_EQ(FixedString(a.subnqn, sizeof(a.subnqn)), "nqn.2024-01.io.nvmf:test");
  EXPECT_EQ(FixedString(a.traddr, sizeof(a.traddr)), "192.168.1.5");
  EXPECT_STREQ(SubtypeName(log.entries[1].subtype), "current discovery subsystem");
  EXPECT_EQ(FixedString(log.entries[1].subnqn, 256), spec::kDiscoveryNqn);

  // Truncated: fewer entries than announced, or not even a header.
  EXPECT_FALSE(DecodeDiscoveryLog(buf.data(), buf.size() - 1, &log).ok());
  EXPECT_FALSE(DecodeDiscoveryLog(buf.data(), 1000, &log).ok());
  // An empty log is fine.
  numrec = 0;
  std::memcpy(buf.data() + 8, &numrec, 8);
  ASSERT_TRUE(DecodeDiscoveryLog(buf.data(), 1024, &log).ok());
  EXPECT_TRUE(log.entries.empty());
}

TEST(Names, FixedStringAndFormats) {
  const char sn[20] = {'A', 'B', 'C', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
                       ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
  EXPECT_EQ(FixedString(sn, 20), "ABC");
  EXPECT_EQ(TreqString(6), "not required, sq flow control disable supported");
  spec::IdentifyNamespace ns{};
  ns.nlbaf = 1;
  ns.flbas = 1;
  ns.lbaf[1].lbads = 12;
  EXPECT_EQ(NamespaceBlockSize(ns), 4096u);
  ns.flbas = 0;
  EXPECT_EQ(NamespaceBlockSize(ns), 0u);  // lbads 0: not reported
}

}  // namespace
}  // namespace nvmf::host
