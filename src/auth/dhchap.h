// DH-HMAC-CHAP's primitives (NVMe Base, "DH-HMAC-CHAP protocol"), shared by the host and
// the controller: secrets in the DHHC-1 representation and their transform, the hash
// functions and finite-field Diffie-Hellman groups the protocol names, and the response
// both sides compute. OpenSSL does the cryptography.
//
// Secrets are key material: nothing here logs or formats them into messages; errors
// say what is wrong with a secret, never what it is. Buffers that held keys are wiped
// when they go (SecretBytes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nvmf/status.h"

namespace nvmf::auth {

// Bytes that are wiped (OPENSSL_cleanse) when they are destroyed or reassigned.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::vector<uint8_t> b) : b_(std::move(b)) {}
  SecretBytes(const SecretBytes& o) : b_(o.b_) {}
  SecretBytes& operator=(const SecretBytes& o);
  SecretBytes(SecretBytes&& o) noexcept : b_(std::move(o.b_)) {}
  SecretBytes& operator=(SecretBytes&& o) noexcept;
  ~SecretBytes();
  const std::vector<uint8_t>& bytes() const { return b_; }
  const uint8_t* data() const { return b_.data(); }
  size_t size() const { return b_.size(); }
  bool empty() const { return b_.empty(); }
  bool operator==(const SecretBytes& o) const { return b_ == o.b_; }

 private:
  std::vector<uint8_t> b_;
};

// Hash identifiers of the protocol (and of a secret's transform, 01..03).
enum class Hash : uint8_t { kNone = 0, kSha256 = 1, kSha384 = 2, kSha512 = 3 };
// Digest length in bytes (0 for kNone).
size_t HashLength(Hash h);
// "sha256", "hmac(sha256)" (Linux's spelling) or "1" ... -> the hash; false if unknown.
bool ParseHash(std::string_view name, Hash* out);
const char* HashName(Hash h);  // "hmac(sha256)", as nvmet names them

// Diffie-Hellman group identifiers: null (no DH) and the RFC 7919 groups.
enum class DhGroup : uint8_t {
  kNull = 0, kFfdhe2048 = 1, kFfdhe3072 = 2, kFfdhe4096 = 3, kFfdhe6144 = 4, kFfdhe8192 = 5
};
size_t DhValueLength(DhGroup g);  // bytes of a public value (0 for null)
bool ParseDhGroup(std::string_view name, DhGroup* out);  // "null", "ffdhe2048", "2048", "1"
const char* DhGroupName(DhGroup g);

// A secret: "DHHC-1:HH:BASE64(KEY || CRC-32(KEY) little endian):", KEY 32, 48 or 64
// bytes, HH 00 (used as is) or 01/02/03 (transformed with SHA-256/384/512 first).
struct Secret {
  Hash transform = Hash::kNone;
  SecretBytes key;
  bool empty() const { return key.empty(); }
};
// Parses a secret; the error names the field at fault, never the key.
Status ParseSecret(std::string_view text, Secret* out);
std::string FormatSecret(const Secret& s);
// A secret given as "@PATH" is read from that file (its first line); anything else is
// the secret itself. Files that others can read are refused.
Status LoadSecret(const std::string& arg, Secret* out);
// A new random secret of key_len bytes (32, 48 or 64; the transform's length if any).
Status GenerateSecret(Hash transform, size_t key_len, Secret* out);

// The key the responses use: KEY itself, or HMAC-H(KEY, nqn || "NVMe-over-Fabrics")
// where H is the secret's transform and nqn names its owner (the host NQN for a host
// secret, the subsystem NQN for a controller secret).
SecretBytes TransformedKey(const Secret& s, std::string_view nqn);

std::vector<uint8_t> Hmac(Hash h, const uint8_t* key, size_t key_len, const uint8_t* data,
                          size_t len);
std::vector<uint8_t> Digest(Hash h, const uint8_t* data, size_t len);
void RandomBytes(uint8_t* p, size_t n);
// Constant-time comparison of equal-length byte strings.
bool SameBytes(const std::vector<uint8_t>& a, const uint8_t* b, size_t len);

// An ephemeral DH key pair of a group, for one transaction.
class DhKey {
 public:
  DhKey() = default;
  DhKey(const DhKey&) = delete;
  DhKey& operator=(const DhKey&) = delete;
  ~DhKey();
  Status Generate(DhGroup g);
  // The public value g^x mod p, big endian, DhValueLength(g) bytes.
  const std::vector<uint8_t>& public_value() const { return pub_; }
  // g^xy mod p from the peer's public value, padded to the group's size. Refuses a
  // public value of the wrong length or outside the group's valid range.
  Status Derive(const uint8_t* peer, size_t len, SecretBytes* shared) const;

 private:
  DhGroup group_ = DhGroup::kNull;
  void* pkey_ = nullptr;  // EVP_PKEY
  std::vector<uint8_t> pub_;
};

// The response to a challenge: HMAC-H(key, Ca || seqnum || t_id || 00h || role || nqn1 ||
// 00h || nqn2), where Ca is the challenge, augmented (HMAC-H(H(shared), C)) when a DH
// exchange took place (shared not empty). role: "HostHost" with (host NQN, subsystem NQN)
// for the host's response, "Controller" with (subsystem NQN, host NQN) for the
// controller's.
std::vector<uint8_t> ChallengeResponse(Hash h, const SecretBytes& key, const uint8_t* challenge,
                                       size_t hl, uint32_t seqnum, uint16_t t_id,
                                       std::string_view role, std::string_view nqn1,
                                       std::string_view nqn2, const SecretBytes& shared);

}  // namespace nvmf::auth
