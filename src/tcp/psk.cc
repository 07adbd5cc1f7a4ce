// TLS PSK derivation with OpenSSL's HKDF and HMAC (see psk.h for the two encodings).
#include "tcp/psk.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <cstring>
#include <fstream>
#include <memory>

namespace nvmf::tcp {

Secret& Secret::operator=(const Secret& o) {
  if (this != &o) {
    if (!b_.empty()) OPENSSL_cleanse(b_.data(), b_.size());
    b_ = o.b_;
  }
  return *this;
}

Secret::~Secret() {
  if (!b_.empty()) OPENSSL_cleanse(b_.data(), b_.size());
}

namespace {

constexpr std::string_view kPrefix = "NVMeTLSkey-1:";

size_t HashLen(PskHash h) { return h == PskHash::kSha384 ? 48 : 32; }
const char* HashName(PskHash h) { return h == PskHash::kSha384 ? "SHA384" : "SHA256"; }

// CRC-32 (IEEE, reflected), as the interchange format appends it. A few dozen bytes: a
// bitwise loop is enough.
uint32_t Crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

bool Base64Decode(std::string_view in, std::vector<uint8_t>* out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  out->assign(in.size() / 4 * 3, 0);
  int n = EVP_DecodeBlock(out->data(), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return false;
  size_t pad = 0;
  if (in.back() == '=') pad++;
  if (in.size() >= 2 && in[in.size() - 2] == '=') pad++;
  out->resize(static_cast<size_t>(n) - pad);
  return true;
}

std::string Base64Encode(const uint8_t* p, size_t n) {
  std::string s((n + 2) / 3 * 4 + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(s.data()), p, static_cast<int>(n));
  s.resize(static_cast<size_t>(len));
  return s;
}

// HKDF-Expand-Label(HKDF-Extract(0, ikm), label, context, len) with the info encoded as d
// says.
Status ExpandLabel(PskHash hash, const Secret& ikm, std::string_view label,
                   std::string_view context, PskDerivation d, Secret* out) {
  const size_t len = ikm.size();
  std::vector<uint8_t> info;
  const std::string full = std::string("tls13 ") + std::string(label);
  info.reserve(4 + full.size() + context.size());
  if (d == PskDerivation::kSpec) {
    info.push_back(static_cast<uint8_t>(len >> 8));
    info.push_back(static_cast<uint8_t>(len));
    info.push_back(static_cast<uint8_t>(full.size()));
    info.insert(info.end(), full.begin(), full.end());
    info.push_back(static_cast<uint8_t>(context.size()));
  } else {
    info.push_back(static_cast<uint8_t>(len));
    info.push_back(static_cast<uint8_t>(len >> 8));
    info.insert(info.end(), full.begin(), full.end());
  }
  info.insert(info.end(), context.begin(), context.end());

  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr),
                                                       &EVP_KDF_free);
  if (!kdf) return Status::NotSupported("OpenSSL has no HKDF");
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()),
                                                               &EVP_KDF_CTX_free);
  char digest[16];
  std::strcpy(digest, HashName(hash));
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                        const_cast<uint8_t*>(ikm.bytes().data()), ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end()};
  std::vector<uint8_t> key(len);
  if (!ctx || EVP_KDF_derive(ctx.get(), key.data(), key.size(), params) != 1) {
    return Status::IoError("HKDF failed");
  }
  *out = Secret(std::move(key));
  return Status::OK();
}

}  // namespace

Status ParsePskInterchange(std::string_view text, ConfiguredPsk* out) {
  const std::string_view what = "TLS PSK: ";
  if (text.substr(0, kPrefix.size()) != kPrefix) {
    return Status::InvalidArgument(std::string(what) + "not in the interchange format (NVMeTLSkey-1:HH:BASE64:)");
  }
  text.remove_prefix(kPrefix.size());
  if (text.size() < 4 || text[2] != ':' || text.back() != ':') {
    return Status::InvalidArgument(std::string(what) + "not in the interchange format (NVMeTLSkey-1:HH:BASE64:)");
  }
  const std::string_view hh = text.substr(0, 2);
  PskHash hash;
  if (hh == "01") {
    hash = PskHash::kSha256;
  } else if (hh == "02") {
    hash = PskHash::kSha384;
  } else {
    return Status::InvalidArgument(std::string(what) + "hash identifier '" + std::string(hh) +
                                   "' is not 01 (SHA-256) or 02 (SHA-384)");
  }
  std::vector<uint8_t> raw;
  if (!Base64Decode(text.substr(3, text.size() - 4), &raw)) {
    return Status::InvalidArgument(std::string(what) + "the key is not valid base64");
  }
  Secret guard(raw);  // wiped on every return
  OPENSSL_cleanse(raw.data(), raw.size());
  const size_t want = HashLen(hash);
  if (guard.size() != want + 4) {
    return Status::InvalidArgument(std::string(what) + "hash " + std::string(hh) + " needs a " +
                                   std::to_string(want) + "-byte key, this one has " +
                                   std::to_string(guard.size() < 4 ? 0 : guard.size() - 4));
  }
  const uint8_t* b = guard.bytes().data();
  const uint32_t crc = static_cast<uint32_t>(b[want]) | static_cast<uint32_t>(b[want + 1]) << 8 |
                       static_cast<uint32_t>(b[want + 2]) << 16 |
                       static_cast<uint32_t>(b[want + 3]) << 24;
  if (Crc32(b, want) != crc) {
    return Status::InvalidArgument(std::string(what) + "CRC-32 mismatch (a mistyped key?)");
  }
  out->hash = hash;
  out->key = Secret(std::vector<uint8_t>(b, b + want));
  return Status::OK();
}

Status ReadKeyArgument(const std::string& arg, std::string* out) {
  if (arg.empty() || arg[0] != '@') {
    *out = arg;
    return Status::OK();
  }
  const std::string path = arg.substr(1);
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line)) {
    return Status::InvalidArgument("cannot read a key from " + path);
  }
  const size_t b = line.find_first_not_of(" \t\r");
  const size_t e = line.find_last_not_of(" \t\r");
  *out = b == std::string::npos ? std::string() : line.substr(b, e - b + 1);
  OPENSSL_cleanse(line.data(), line.size());
  return Status::OK();
}

Status DeriveRetainedPsk(const ConfiguredPsk& psk, std::string_view hostnqn, PskDerivation d,
                         Secret* out) {
  return ExpandLabel(psk.hash, psk.key, "HostNQN", hostnqn, d, out);
}

Status PskDigest(PskHash hash, const Secret& retained, std::string_view hostnqn,
                 std::string_view subnqn, std::string* out) {
  const std::string msg =
      std::string(hostnqn) + " " + std::string(subnqn) + " NVMe-over-Fabrics";
  uint8_t mac[EVP_MAX_MD_SIZE];
  size_t maclen = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, HashName(hash), nullptr, retained.bytes().data(),
                retained.size(), reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), mac,
                sizeof(mac), &maclen) == nullptr) {
    return Status::IoError("HMAC failed");
  }
  *out = Base64Encode(mac, maclen);
  return Status::OK();
}

Status DeriveTlsPsk(const ConfiguredPsk& psk, std::string_view hostnqn, std::string_view subnqn,
                    int version, PskDerivation d, TlsPsk* out) {
  if (version != 0 && version != 1) {
    return Status::InvalidArgument("PSK identity version must be 0 or 1");
  }
  Secret retained;
  Status s = DeriveRetainedPsk(psk, hostnqn, d, &retained);
  if (!s.ok()) return s;
  const std::string hh = psk.hash == PskHash::kSha384 ? "02" : "01";
  std::string identity = "NVMe" + std::to_string(version) + "R" + hh + " " +
                         std::string(hostnqn) + " " + std::string(subnqn);
  std::string context = identity;
  if (version == 1) {
    std::string digest;
    s = PskDigest(psk.hash, retained, hostnqn, subnqn, &digest);
    if (!s.ok()) return s;
    identity += " " + digest;
    context = hh + " " + digest;
  }
  s = ExpandLabel(psk.hash, retained, "nvme-tls-psk", context, d, &out->key);
  if (!s.ok()) return s;
  out->identity = std::move(identity);
  out->hash = psk.hash;
  return Status::OK();
}

bool ParsePskIdentity(std::string_view id, PskIdentityParts* out) {
  if (id.size() < 9 || id.substr(0, 4) != "NVMe" || (id[4] != '0' && id[4] != '1') ||
      id[5] != 'R' || id[6] != '0' || (id[7] != '1' && id[7] != '2') || id[8] != ' ') {
    return false;
  }
  out->version = id[4] - '0';
  out->hash = id[7] == '2' ? PskHash::kSha384 : PskHash::kSha256;
  std::vector<std::string> parts;
  std::string_view rest = id.substr(9);
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    parts.emplace_back(rest.substr(0, sp));
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  }
  if (parts.size() != (out->version == 1 ? 3u : 2u)) return false;
  out->hostnqn = parts[0];
  out->subnqn = parts[1];
  out->digest = out->version == 1 ? parts[2] : std::string();
  return true;
}

const char* PskDerivationName(PskDerivation d) {
  return d == PskDerivation::kSpec ? "spec" : "nvme-cli";
}

bool ParsePskDerivation(std::string_view name, PskDerivation* out) {
  if (name == "nvme-cli") {
    *out = PskDerivation::kNvmeCli;
  } else if (name == "spec") {
    *out = PskDerivation::kSpec;
  } else {
    return false;
  }
  return true;
}

}  // namespace nvmf::tcp
