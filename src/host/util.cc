#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "auth/dhchap.h"
#include "nvmf/host_util.h"

namespace nvmf::host {

// ---------------------------------------------------------------- sizes

bool ParseSize(const std::string& text, uint64_t* out, bool allow_zero) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) i++;
  if (i == text.size() || !std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  uint64_t v = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); i++) {
    uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  std::string suffix;
  for (; i < text.size(); i++) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) continue;
    suffix += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  }
  int shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      case 't': shift = 40; break;
      case 'p': shift = 50; break;
      case 'b': shift = 0; break;
      default: return false;
    }
    const std::string rest = suffix.substr(1);
    if (suffix[0] == 'b') {
      if (!rest.empty()) return false;
    } else if (!(rest.empty() || rest == "b" || rest == "ib")) {
      return false;
    }
  }
  if (shift > 0 && v > (UINT64_MAX >> shift)) return false;
  v <<= shift;
  if (v == 0 && !allow_zero) return false;
  *out = v;
  return true;
}

std::string FormatSize(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024.0 && u < 6) {
    v /= 1024.0;
    u++;
  }
  char b[32];
  if (u == 0) {
    std::snprintf(b, sizeof(b), "%llu B", static_cast<unsigned long long>(bytes));
  } else if (std::fabs(v - std::round(v)) < 0.005) {
    std::snprintf(b, sizeof(b), "%.0f %s", v, kUnits[u]);
  } else {
    std::snprintf(b, sizeof(b), "%.2f %s", v, kUnits[u]);
  }
  return b;
}

// ---------------------------------------------------------------- host identity

bool ParseUuid(const std::string& text, std::array<uint8_t, 16>* out) {
  std::array<uint8_t, 16> id{};
  size_t n = 0;
  int half = -1;
  for (char ch : text) {
    if (ch == '-') continue;
    int d;
    if (ch >= '0' && ch <= '9') {
      d = ch - '0';
    } else if (ch >= 'a' && ch <= 'f') {
      d = ch - 'a' + 10;
    } else if (ch >= 'A' && ch <= 'F') {
      d = ch - 'A' + 10;
    } else {
      return false;
    }
    if (n >= 16) return false;
    if (half < 0) {
      half = d;
    } else {
      id[n++] = static_cast<uint8_t>(half << 4 | d);
      half = -1;
    }
  }
  if (n != 16 || half >= 0) return false;
  *out = id;
  return true;
}

std::string FormatUuid(const std::array<uint8_t, 16>& id) {
  char b[40];
  std::snprintf(b, sizeof(b),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0],
                id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11],
                id[12], id[13], id[14], id[15]);
  return b;
}

std::array<uint8_t, 16> RandomUuid() {
  std::random_device rd;
  std::array<uint8_t, 16> id{};
  for (size_t i = 0; i < 16; i += 4) {
    uint32_t r = rd();
    std::memcpy(&id[i], &r, 4);
  }
  id[6] = static_cast<uint8_t>((id[6] & 0x0f) | 0x40);  // version 4
  id[8] = static_cast<uint8_t>((id[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return id;
}

namespace {

std::string ReadTrimmed(const std::string& path) {
  std::ifstream f(path);
  if (!f) return "";
  std::string line;
  std::getline(f, line);
  size_t b = 0, e = line.size();
  while (b < e && std::isspace(static_cast<unsigned char>(line[b]))) b++;
  while (e > b && std::isspace(static_cast<unsigned char>(line[e - 1]))) e--;
  return line.substr(b, e - b);
}

bool UuidFromNqn(const std::string& nqn, std::array<uint8_t, 16>* out) {
  const std::string tag = ":uuid:";
  size_t p = nqn.find(tag);
  return p != std::string::npos && ParseUuid(nqn.substr(p + tag.size()), out);
}

}  // namespace

Status ResolveHostIdentity(const std::string& hostnqn, const std::string& hostid,
                           HostIdentity* out, const std::string& etc_dir) {
  out->hostnqn = hostnqn;
  if (out->hostnqn.empty()) out->hostnqn = ReadTrimmed(etc_dir + "/hostnqn");
  bool have_id = false;
  if (!hostid.empty()) {
    if (!ParseUuid(hostid, &out->hostid)) {
      return Status::InvalidArgument("host ID '" + hostid + "' is not a UUID");
    }
    have_id = true;
  } else {
    std::string file_id = ReadTrimmed(etc_dir + "/hostid");
    have_id = !file_id.empty() && ParseUuid(file_id, &out->hostid);
  }
  if (!have_id && !out->hostnqn.empty()) have_id = UuidFromNqn(out->hostnqn, &out->hostid);
  if (!have_id) out->hostid = RandomUuid();
  if (out->hostnqn.empty()) {
    out->hostnqn = "nqn.2014-08.org.nvmexpress:uuid:" + FormatUuid(out->hostid);
  }
  if (out->hostnqn.size() > 223) {
    return Status::InvalidArgument("host NQN longer than 223 bytes");
  }
  return Status::OK();
}

// ---------------------------------------------------------------- histogram

uint64_t LatencyHistogram::BucketHigh(int i) {
  if (i < kLinear) return static_cast<uint64_t>(i);
  const int k = i - kLinear;
  const int msb = k / kSub + kSubBits + 1;
  const int sub = k % kSub;
  const int shift = msb - kSubBits;
  const uint64_t low = static_cast<uint64_t>(kSub + sub) << shift;
  return low + ((uint64_t{1} << shift) - 1);
}

void LatencyHistogram::Merge(const LatencyHistogram& o) {
  for (int i = 0; i < kBuckets; i++) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  if (o.count_ > 0) {
    if (o.min_ < min_) min_ = o.min_;
    if (o.max_ > max_) max_ = o.max_;
  }
}

void LatencyHistogram::Reset() { *this = LatencyHistogram(); }

uint64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  if (q <= 0) return min();
  if (q >= 1) return max_;
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; i++) {
    seen += counts_[i];
    if (seen >= rank) {
      uint64_t v = BucketHigh(i);
      if (v > max_) v = max_;
      if (v < min()) v = min();
      return v;
    }
  }
  return max_;
}

// ---------------------------------------------------------------- pattern

namespace {

inline uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline uint64_t Word(uint64_t block_key, uint64_t w) { return Mix(block_key + w * 0xD6E8FEB86659FD93ull); }

inline uint64_t BlockKey(uint64_t lba, uint64_t seed) { return Mix(lba ^ Mix(seed)); }

void FillBlock(uint8_t* p, size_t n, uint64_t lba, uint64_t seed) {
  const uint64_t key = BlockKey(lba, seed);
  size_t off = 0;
  uint64_t w = 0;
  for (; off + 8 <= n; off += 8, w++) {
    uint64_t v = w == 0 ? lba : w == 1 ? seed : Word(key, w);
    std::memcpy(p + off, &v, 8);
  }
  if (off < n) {
    uint64_t v = w == 0 ? lba : w == 1 ? seed : Word(key, w);
    std::memcpy(p + off, &v, n - off);
  }
}

}  // namespace

void FillPattern(void* buf, size_t len, uint64_t first_lba, uint32_t block_size, uint64_t seed) {
  auto* p = static_cast<uint8_t*>(buf);
  for (size_t off = 0, i = 0; off < len; off += block_size, i++) {
    const size_t n = len - off < block_size ? len - off : block_size;
    FillBlock(p + off, n, first_lba + i, seed);
  }
}

int64_t CheckPattern(const void* buf, size_t len, uint64_t first_lba, uint32_t block_size,
                     uint64_t seed) {
  const auto* p = static_cast<const uint8_t*>(buf);
  for (size_t off = 0, i = 0; off < len; off += block_size, i++) {
    const size_t n = len - off < block_size ? len - off : block_size;
    const uint64_t lba = first_lba + i;
    const uint64_t key = BlockKey(lba, seed);
    size_t o = 0;
    uint64_t w = 0;
    for (; o + 8 <= n; o += 8, w++) {
      uint64_t want = w == 0 ? lba : w == 1 ? seed : Word(key, w);
      uint64_t got;
      std::memcpy(&got, p + off + o, 8);
      if (got != want) return static_cast<int64_t>(i);
    }
    if (o < n) {
      uint64_t want = w == 0 ? lba : w == 1 ? seed : Word(key, w);
      if (std::memcmp(p + off + o, &want, n - o) != 0) return static_cast<int64_t>(i);
    }
  }
  return -1;
}

void PatternHeader(const void* block, uint64_t* lba, uint64_t* seed) {
  std::memcpy(lba, block, 8);
  std::memcpy(seed, static_cast<const uint8_t*>(block) + 8, 8);
}

// ---------------------------------------------------------------- discovery names

const char* TrtypeName(uint8_t t) {
  switch (t) {
    case 1: return "rdma";
    case 2: return "fc";
    case 3: return "tcp";
    case 254: return "loop";
    default: return "unrecognized";
  }
}

const char* AdrfamName(uint8_t a) {
  switch (a) {
    case 1: return "ipv4";
    case 2: return "ipv6";
    case 3: return "infiniband";
    case 4: return "fibre-channel";
    case 254: return "intra-host";
    default: return "unrecognized";
  }
}

const char* SubtypeName(uint8_t s) {
  switch (s) {
    case spec::kSubtypeReferral: return "discovery subsystem referral";
    case spec::kSubtypeNvme: return "nvme subsystem";
    case spec::kSubtypeCurrentDiscovery: return "current discovery subsystem";
    default: return "unrecognized";
  }
}

std::string TreqString(uint8_t treq) {
  std::string s;
  switch (treq & 3) {
    case 0: s = "not specified"; break;
    case 1: s = "required"; break;
    case 2: s = "not required"; break;
    default: s = "reserved"; break;
  }
  if ((treq & 4) != 0) s += ", sq flow control disable supported";
  return s;
}

const char* SectypeName(uint8_t s) {
  switch (s) {
    case 0: return "none";
    case 1: return "tls1.2";
    case 2: return "tls1.3";
    default: return "unrecognized";
  }
}

std::string FixedString(const char* p, size_t n) {
  size_t e = 0;
  while (e < n && p[e] != '\0') e++;
  while (e > 0 && (p[e - 1] == ' ' || p[e - 1] == '\0')) e--;
  return std::string(p, e);
}

unsigned NamespaceFormatIndex(const spec::IdentifyNamespace& ns) {
  unsigned idx = ns.flbas & 0xf;
  if (ns.nlbaf >= 16) idx |= static_cast<unsigned>(ns.flbas >> 5 & 3) << 4;
  return idx;
}

uint32_t NamespaceBlockSize(const spec::IdentifyNamespace& ns) {
  unsigned idx = NamespaceFormatIndex(ns);
  if (idx >= 64) return 0;
  uint8_t lbads = ns.lbaf[idx].lbads;
  if (lbads < 9 || lbads > 31) return 0;
  return 1u << lbads;
}

Status GenerateDhchapSecret(int hmac, size_t key_len, const std::string& hex_key, std::string* out) {
  if (hmac < 0 || hmac > 3) return Status::InvalidArgument("--hmac must be 0 (none), 1, 2 or 3 (SHA-256/384/512)");
  const auto transform = static_cast<auth::Hash>(hmac);
  auth::Secret s;
  if (hex_key.empty()) {
    Status st = auth::GenerateSecret(transform, key_len, &s);
    if (!st.ok()) return st;
  } else {
    if (hex_key.size() % 2 != 0) return Status::InvalidArgument("--secret must be hex digits");
    std::vector<uint8_t> k;
    for (size_t i = 0; i < hex_key.size(); i += 2) {
      if (!std::isxdigit(static_cast<unsigned char>(hex_key[i])) ||
          !std::isxdigit(static_cast<unsigned char>(hex_key[i + 1]))) {
        return Status::InvalidArgument("--secret must be hex digits");
      }
      k.push_back(static_cast<uint8_t>(std::stoi(hex_key.substr(i, 2), nullptr, 16)));
    }
    const size_t want = transform == auth::Hash::kNone ? k.size() : auth::HashLength(transform);
    if ((k.size() != 32 && k.size() != 48 && k.size() != 64) || k.size() != want) {
      return Status::InvalidArgument("--secret must be 32, 48 or 64 bytes, as --hmac requires");
    }
    s.transform = transform;
    s.key = auth::SecretBytes(std::move(k));
  }
  *out = auth::FormatSecret(s);
  return Status::OK();
}

}  // namespace nvmf::host
