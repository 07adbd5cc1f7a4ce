// TLS PSK interchange format and derivations. The expected values come from
// ../shared/linux-peer/nvme-tls-psk (an independent implementation), for the key bytes
// 00 01 02 ... of each length:
//   nvme-tls-psk KEY HOSTNQN SUBNQN            (kSpec)
//   nvme-tls-psk KEY HOSTNQN SUBNQN --compat   (kNvmeCli, what nvme-cli 2.x puts in .nvme)
#include "tcp/psk.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace nvmf::tcp {
namespace {

constexpr char kKey01[] = "NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
constexpr char kKey02[] =
    "NVMeTLSkey-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vcSEgBQ==:";
constexpr char kHost[] = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001";
constexpr char kSub[] = "nqn.2024-01.io.nvmf:tls";

std::string Hex(const Secret& s) {
  std::string out;
  char b[3];
  for (uint8_t c : s.bytes()) {
    std::snprintf(b, sizeof(b), "%02x", c);
    out += b;
  }
  return out;
}

struct Vector {
  const char* key;
  PskDerivation derivation;
  const char* retained;
  const char* digest;  // identity version 1
  const char* tls0;
  const char* tls1;
};

const Vector kVectors[] = {
    {kKey01, PskDerivation::kSpec,
     "f3930cbb56b7a6b7cfc81dce792c0bb2e66aed4e48035f4ebe624d9a07aa681d",
     "U1BmSLC1DjMbzaSw0Af+3PcXgrDzCNmDwrcAQZvf324=",
     "68d37118e935282c53dbedff7118d2a4073bcfee2eb440920666d4660616e393",
     "7ca2d5d2429f101220deac05f39b7a47bdf9bcdb281edf7ace20c3c7a4d35a1e"},
    {kKey01, PskDerivation::kNvmeCli,
     "99d69d467739b5ceb20fd471656fc72c40bf54a9d00d16fef3308edaa7d6d812",
     "EIP7g3NVrEWcrDPXc2ibQXI4S4OfLyCNbqzlCNgDlKs=",
     "77e38d73cbe7208abbdb06d29c27c689240cdd28591796eea3cbdcd9c174b4d3",
     "eb7c183a16e0c51b0608ae85662b14e6b1f93a50139cacd83952a874bf42bed8"},
    {kKey02, PskDerivation::kSpec,
     "dcb68c2c52576b7c19a488d07c1dc319fb62f9563a936b5f3839fe4b33f0cc8679e0003ec5877cb62c4016de36840245",
     "18e/ks3i8lw5ixEqxsOKecYPnTxMuQntpdEVEhv6viliz09KMmUX/bIkPo+uAI2N",
     "d441fc9395037846b90ffdac5a8534004033f02e7f059ef78cc1cdff26706997bce59b93899deb3bf1720abc51e41ed3",
     "c44ccfd96dfa199b7f5db0dd8a9666430b77db1972f5cbbe9d44f7fd78f1965f58e084260d659d5a0f81c0f201e40ddf"},
    {kKey02, PskDerivation::kNvmeCli,
     "19c3e6bf019121cbe18ea48ec3bf72e263849e90b4fc4e495dd37f025572358f807ac670027eaad01dafed55ca8a2e5d",
     "uhSvORj2jZU5S90Rlzjd9sLCUq8fzmDfR3VPJEDTfzVCxfNrFvmiUnuDVRIKGmzQ",
     "c804850d0d2d8316e116ed2d497ec55643a7d940871834709370d22354ed8487b5bc32f0612b4411aa080fc1284a83a3",
     "e91a521415267f0f8b7bb6a4fe0e7f44f60c5d1c578d37611ed737c99e0d6c4040a3e3ea834758d98b5ac07a78bfa487"},
};

TEST(TlsPsk, DerivationsMatchTheReference) {
  for (const Vector& v : kVectors) {
    SCOPED_TRACE(std::string(v.key) + " " + PskDerivationName(v.derivation));
    ConfiguredPsk psk;
    ASSERT_TRUE(ParsePskInterchange(v.key, &psk).ok());
    const std::string hh = psk.hash == PskHash::kSha384 ? "02" : "01";
    Secret retained;
    ASSERT_TRUE(DeriveRetainedPsk(psk, kHost, v.derivation, &retained).ok());
    EXPECT_EQ(Hex(retained), v.retained);
    std::string digest;
    ASSERT_TRUE(PskDigest(psk.hash, retained, kHost, kSub, &digest).ok());
    EXPECT_EQ(digest, v.digest);

    TlsPsk t0, t1;
    ASSERT_TRUE(DeriveTlsPsk(psk, kHost, kSub, 0, v.derivation, &t0).ok());
    EXPECT_EQ(t0.identity, "NVMe0R" + hh + " " + kHost + " " + kSub);
    EXPECT_EQ(Hex(t0.key), v.tls0);
    ASSERT_TRUE(DeriveTlsPsk(psk, kHost, kSub, 1, v.derivation, &t1).ok());
    EXPECT_EQ(t1.identity, "NVMe1R" + hh + " " + kHost + " " + kSub + " " + v.digest);
    EXPECT_EQ(Hex(t1.key), v.tls1);

    PskIdentityParts parts;
    ASSERT_TRUE(ParsePskIdentity(t1.identity, &parts));
    EXPECT_EQ(parts.version, 1);
    EXPECT_EQ(parts.hash, psk.hash);
    EXPECT_EQ(parts.hostnqn, kHost);
    EXPECT_EQ(parts.subnqn, kSub);
    EXPECT_EQ(parts.digest, v.digest);
    ASSERT_TRUE(ParsePskIdentity(t0.identity, &parts));
    EXPECT_EQ(parts.version, 0);
    EXPECT_TRUE(parts.digest.empty());
  }
}

void ExpectRefused(const std::string& key, const std::string& why) {
  ConfiguredPsk psk;
  Status s = ParsePskInterchange(key, &psk);
  EXPECT_FALSE(s.ok()) << key;
  EXPECT_NE(s.ToString().find(why), std::string::npos) << s.ToString();
}

TEST(TlsPsk, BadKeysAreRefusedWithAReason) {
  ExpectRefused("NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:", "CRC-32");
  ExpectRefused("NVMeTLSkey-1:03:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "hash identifier '03'");
  ExpectRefused("NVMeTLSkey-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "hash identifier '00'");
  // A 32-byte key labelled SHA-384.
  ExpectRefused("NVMeTLSkey-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "48-byte key");
  ExpectRefused("NVMeTLSkey-1:01:AAECAwQF:", "32-byte key");
  ExpectRefused("NVMeTLSkey-1:01:AAEC*wQF:", "base64");
  ExpectRefused("DHHC-1:01:AAECAwQF:", "interchange format");
  ExpectRefused("NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR", "interchange format");
}

TEST(TlsPsk, ErrorsNeverQuoteTheKey) {
  ConfiguredPsk psk;
  Status s = ParsePskInterchange("NVMeTLSkey-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:", &psk);
  EXPECT_EQ(s.ToString().find("AAECAwQF"), std::string::npos);
}

TEST(TlsPsk, KeyFromFile) {
  const std::string path = ::testing::TempDir() + "/tls_psk_test.key";
  {
    std::ofstream f(path);
    f << "  " << kKey01 << "\n";
  }
  std::string key;
  ASSERT_TRUE(ReadKeyArgument("@" + path, &key).ok());
  EXPECT_EQ(key, kKey01);
  EXPECT_FALSE(ReadKeyArgument("@/nonexistent/key", &key).ok());
  ASSERT_TRUE(ReadKeyArgument(kKey02, &key).ok());
  EXPECT_EQ(key, kKey02);
  std::remove(path.c_str());
}

TEST(TlsPsk, IdentitiesThatAreNot) {
  PskIdentityParts p;
  EXPECT_FALSE(ParsePskIdentity("NVMe2R01 a b", &p));
  EXPECT_FALSE(ParsePskIdentity("NVMe0R01 a", &p));
  EXPECT_FALSE(ParsePskIdentity("NVMe1R01 a b", &p));  // version 1 needs a digest
  EXPECT_FALSE(ParsePskIdentity("NVMe0R03 a b", &p));
  EXPECT_TRUE(ParsePskIdentity("NVMe0R02 a b", &p));
}

}  // namespace
}  // namespace nvmf::tcp
