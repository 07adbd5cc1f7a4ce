// Host-side helpers for tools: sizes, host identity, a fixed-size latency histogram, the
// verification data pattern, and names for discovery log fields. No I/O beyond reading
// /etc/nvme; nothing here allocates per I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "nvmf/spec/admin.h"
#include "nvmf/status.h"

namespace nvmf::host {

// "4096", "4k", "128K", "64M", "1G", "2T", "64MiB", "512KB": powers of 1024. False on
// garbage, on zero when !allow_zero, and on overflow.
bool ParseSize(const std::string& text, uint64_t* out, bool allow_zero = false);
// 67108864 -> "64 MiB", 1536 -> "1.5 KiB", 100 -> "100 B".
std::string FormatSize(uint64_t bytes);

// The host's identity: an NQN and a 16-byte host ID.
struct HostIdentity {
  std::string hostnqn;
  std::array<uint8_t, 16> hostid{};
};
bool ParseUuid(const std::string& text, std::array<uint8_t, 16>* out);
std::string FormatUuid(const std::array<uint8_t, 16>& id);
std::array<uint8_t, 16> RandomUuid();  // version 4
// Fills in what is empty: hostnqn from `etc_dir`/hostnqn, hostid from `etc_dir`/hostid;
// failing those, the UUID inside the host NQN, or a new random UUID (and the NQN
// nqn.2014-08.org.nvmexpress:uuid:<uuid>). Fails on a malformed --hostid text.
Status ResolveHostIdentity(const std::string& hostnqn, const std::string& hostid,
                           HostIdentity* out, const std::string& etc_dir = "/etc/nvme");

// Latency histogram with a fixed bucket array: exact below 64, then 32 buckets per power
// of two (relative error under 1/32). Record never allocates.
class LatencyHistogram {
 public:
  static constexpr int kSubBits = 5;
  static constexpr int kSub = 1 << kSubBits;                  // 32
  static constexpr int kLinear = 2 * kSub;                     // 64 exact values
  static constexpr int kBuckets = kLinear + (64 - kSubBits - 1) * kSub;

  void Record(uint64_t v) {
    counts_[Index(v)]++;
    count_++;
    sum_ += v;
    if (v < min_) min_ = v;
    if (v > max_) max_ = v;
  }
  void Merge(const LatencyHistogram& o);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The value at quantile q (0..1]: the upper end of the bucket holding it, never above max.
  uint64_t Percentile(double q) const;

  static int Index(uint64_t v) {
    if (v < static_cast<uint64_t>(kLinear)) return static_cast<int>(v);
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - kSubBits;
    const int sub = static_cast<int>((v >> shift) & (kSub - 1));
    return kLinear + (msb - kSubBits - 1) * kSub + sub;
  }
  // Largest value that falls in bucket i.
  static uint64_t BucketHigh(int i);

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

// The verification pattern: every block says which LBA it belongs to and which seed made
// it (first two 8-byte words), and the rest is a pseudo-random function of both.
void FillPattern(void* buf, size_t len, uint64_t first_lba, uint32_t block_size, uint64_t seed);
// The first block of buf that differs from the pattern, or -1 when all match.
int64_t CheckPattern(const void* buf, size_t len, uint64_t first_lba, uint32_t block_size,
                     uint64_t seed);
// What a block of pattern data claims to be: its LBA and seed words.
void PatternHeader(const void* block, uint64_t* lba, uint64_t* seed);

// Discovery log entry fields as people read them.
const char* TrtypeName(uint8_t trtype);
const char* AdrfamName(uint8_t adrfam);
const char* SubtypeName(uint8_t subtype);
std::string TreqString(uint8_t treq);
const char* SectypeName(uint8_t sectype);
// A fixed-size, space- or NUL-padded ASCII field as a string, trailing padding removed.
std::string FixedString(const char* p, size_t n);

// The LBA data size of a namespace's current format (bytes), 0 when not reported.
uint32_t NamespaceBlockSize(const spec::IdentifyNamespace& ns);
// The index of the namespace's current LBA format (FLBAS bits 3:0 and 6:5).
unsigned NamespaceFormatIndex(const spec::IdentifyNamespace& ns);

// A DH-HMAC-CHAP secret in the DHHC-1 representation, as nvme-cli's gen-dhchap-key makes
// it: hmac 0 (none) or 1-3 (SHA-256/384/512, which fixes the key length), key_len 32, 48
// or 64; hex_key: the key itself in hex (empty: random).
Status GenerateDhchapSecret(int hmac, size_t key_len, const std::string& hex_key, std::string* out);

}  // namespace nvmf::host
