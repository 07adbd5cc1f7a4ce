// CRC32C (Castagnoli), the NVMe/TCP header and data digest: the library's ISA-L based
// implementation against published vectors and a slow bitwise reference written here.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "support/codec_util.h"
#include "tcp/crc32c.h"

namespace nvmf::tcp {
namespace {

TEST(Crc32c, KnownVector123456789) {
  const char* s = "123456789";
  EXPECT_EQ(RefCrc32c(reinterpret_cast<const uint8_t*>(s), 9), 0xE3069283u);
  EXPECT_EQ(Crc32c(s, 9), 0xE3069283u);
}

TEST(Crc32c, Rfc3720Vectors) {
  uint8_t zeros[32] = {}, ones[32], inc[32], dec[32];
  for (int i = 0; i < 32; i++) {
    ones[i] = 0xFF;
    inc[i] = static_cast<uint8_t>(i);
    dec[i] = static_cast<uint8_t>(31 - i);
  }
  EXPECT_EQ(RefCrc32c(zeros, 32), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(zeros, 32), 0x8A9136AAu);
  EXPECT_EQ(RefCrc32c(ones, 32), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(ones, 32), 0x62A8AB43u);
  EXPECT_EQ(RefCrc32c(inc, 32), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(inc, 32), 0x46DD794Eu);
  EXPECT_EQ(RefCrc32c(dec, 32), 0x113FDB5Cu);
  EXPECT_EQ(Crc32c(dec, 32), 0x113FDB5Cu);
  EXPECT_EQ(Crc32c(zeros, 0), 0u);
}

TEST(Crc32c, MatchesReferenceOnRandomBuffersAndChunks) {
  std::mt19937 rng(12345);
  std::vector<uint8_t> buf(2100);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (int iter = 0; iter < 400; iter++) {
    size_t off = rng() % 16;
    size_t len = rng() % (buf.size() - off);
    const uint8_t* p = buf.data() + off;
    uint32_t want = RefCrc32c(p, len);
    ASSERT_EQ(Crc32c(p, len), want) << "off " << off << " len " << len;
    size_t cut = len == 0 ? 0 : rng() % len;
    uint32_t run = Crc32cUpdate(kCrc32cSeed, p, cut);
    run = Crc32cUpdate(run, p + cut, len - cut);
    ASSERT_EQ(Crc32cFinish(run), want) << "split at " << cut;
  }
}

}  // namespace
}  // namespace nvmf::tcp
