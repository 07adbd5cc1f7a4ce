// NVMe/TCP TLS pre-shared keys (NVMe TCP transport specification, TP 8011): the PSK
// interchange format, the retained PSK, the PSK identity (versions 0 and 1) and the TLS PSK
// that TLS 1.3 uses as its external PSK.
//
// Two derivations exist in the field. kSpec encodes HKDF-Expand-Label's info as RFC 8446's
// HkdfLabel says (length bytes before label and context, output length big endian).
// kNvmeCli reproduces what nvme-cli/libnvme 1.x put into Linux's .nvme keyring: the same
// HKDF with the info's label and context not length-prefixed and the output length little
// endian. Linux hosts and targets set up with nvme-cli use the latter, so it is the default.
//
// Everything here is pure computation (no I/O, any thread). Key bytes live in Secret, which
// wipes them when destroyed; nothing here logs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nvmf/status.h"

namespace nvmf::tcp {

// Bytes that must not outlive their use: cleared on destruction.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::vector<uint8_t> b) : b_(std::move(b)) {}
  Secret(const Secret& o) = default;
  Secret& operator=(const Secret& o);
  ~Secret();
  const std::vector<uint8_t>& bytes() const { return b_; }
  std::vector<uint8_t>& mutable_bytes() { return b_; }
  size_t size() const { return b_.size(); }

 private:
  std::vector<uint8_t> b_;
};

enum class PskHash : uint8_t { kSha256 = 1, kSha384 = 2 };
enum class PskDerivation : uint8_t { kNvmeCli, kSpec };

// A configured PSK: "NVMeTLSkey-1:HH:BASE64(KEY || CRC-32(KEY) little endian):", HH 01 (a
// 32-byte key, SHA-256) or 02 (48 bytes, SHA-384).
struct ConfiguredPsk {
  PskHash hash = PskHash::kSha256;
  Secret key;
};
// Parses the interchange format; the error says what is wrong (never the key).
Status ParsePskInterchange(std::string_view text, ConfiguredPsk* out);
// Reads a key given as "@PATH" from that file (first line, surrounding blanks dropped);
// anything else is returned as is.
Status ReadKeyArgument(const std::string& arg, std::string* out);

// The derived values for one (host, subsystem, identity version, derivation).
struct TlsPsk {
  std::string identity;  // "NVMe0R0h HOSTNQN SUBNQN" or "NVMe1R0h HOSTNQN SUBNQN DIGEST"
  PskHash hash = PskHash::kSha256;
  Secret key;            // the TLS PSK, as long as the configured key
};

Status DeriveRetainedPsk(const ConfiguredPsk& psk, std::string_view hostnqn, PskDerivation d,
                         Secret* out);
// Base64 of HMAC-H(retained, HOSTNQN " " SUBNQN " NVMe-over-Fabrics") (identity version 1).
Status PskDigest(PskHash hash, const Secret& retained, std::string_view hostnqn,
                 std::string_view subnqn, std::string* out);
// The whole chain: configured PSK -> retained -> identity and TLS PSK. version 0 or 1.
Status DeriveTlsPsk(const ConfiguredPsk& psk, std::string_view hostnqn, std::string_view subnqn,
                    int version, PskDerivation d, TlsPsk* out);

// A PSK identity taken apart ("NVMe1R01 HOSTNQN SUBNQN DIGEST"). False if it is not one.
struct PskIdentityParts {
  int version = 0;
  PskHash hash = PskHash::kSha256;
  std::string hostnqn, subnqn, digest;
};
bool ParsePskIdentity(std::string_view identity, PskIdentityParts* out);

const char* PskDerivationName(PskDerivation d);  // "nvme-cli", "spec"
bool ParsePskDerivation(std::string_view name, PskDerivation* out);

}  // namespace nvmf::tcp
