#include "auth/dhchap.h"

#include <isa-l/crc.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/dh.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <memory>

namespace nvmf::auth {

SecretBytes& SecretBytes::operator=(const SecretBytes& o) {
  if (this != &o) {
    OPENSSL_cleanse(b_.data(), b_.size());
    b_ = o.b_;
  }
  return *this;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
  if (this != &o) {
    OPENSSL_cleanse(b_.data(), b_.size());
    b_ = std::move(o.b_);
  }
  return *this;
}

SecretBytes::~SecretBytes() { OPENSSL_cleanse(b_.data(), b_.size()); }

namespace {

const EVP_MD* Md(Hash h) {
  switch (h) {
    case Hash::kSha256: return EVP_sha256();
    case Hash::kSha384: return EVP_sha384();
    case Hash::kSha512: return EVP_sha512();
    case Hash::kNone: break;
  }
  return nullptr;
}

const char* GroupOsslName(DhGroup g) {
  switch (g) {
    case DhGroup::kFfdhe2048: return "ffdhe2048";
    case DhGroup::kFfdhe3072: return "ffdhe3072";
    case DhGroup::kFfdhe4096: return "ffdhe4096";
    case DhGroup::kFfdhe6144: return "ffdhe6144";
    case DhGroup::kFfdhe8192: return "ffdhe8192";
    case DhGroup::kNull: break;
  }
  return nullptr;
}

uint32_t Crc32(const uint8_t* p, size_t n) { return crc32_gzip_refl(0, p, n); }

struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

}  // namespace

size_t HashLength(Hash h) {
  const EVP_MD* md = Md(h);
  return md != nullptr ? static_cast<size_t>(EVP_MD_get_size(md)) : 0;
}

bool ParseHash(std::string_view name, Hash* out) {
  if (name.starts_with("hmac(") && name.ends_with(")")) name = name.substr(5, name.size() - 6);
  if (name == "sha256" || name == "1") {
    *out = Hash::kSha256;
  } else if (name == "sha384" || name == "2") {
    *out = Hash::kSha384;
  } else if (name == "sha512" || name == "3") {
    *out = Hash::kSha512;
  } else {
    return false;
  }
  return true;
}

const char* HashName(Hash h) {
  switch (h) {
    case Hash::kSha256: return "hmac(sha256)";
    case Hash::kSha384: return "hmac(sha384)";
    case Hash::kSha512: return "hmac(sha512)";
    case Hash::kNone: break;
  }
  return "none";
}

size_t DhValueLength(DhGroup g) {
  switch (g) {
    case DhGroup::kFfdhe2048: return 256;
    case DhGroup::kFfdhe3072: return 384;
    case DhGroup::kFfdhe4096: return 512;
    case DhGroup::kFfdhe6144: return 768;
    case DhGroup::kFfdhe8192: return 1024;
    case DhGroup::kNull: break;
  }
  return 0;
}

bool ParseDhGroup(std::string_view name, DhGroup* out) {
  static constexpr struct {
    const char* name;
    const char* bits;
    DhGroup g;
  } kGroups[] = {{"null", "0", DhGroup::kNull},
                 {"ffdhe2048", "2048", DhGroup::kFfdhe2048},
                 {"ffdhe3072", "3072", DhGroup::kFfdhe3072},
                 {"ffdhe4096", "4096", DhGroup::kFfdhe4096},
                 {"ffdhe6144", "6144", DhGroup::kFfdhe6144},
                 {"ffdhe8192", "8192", DhGroup::kFfdhe8192}};
  for (const auto& e : kGroups) {
    if (name == e.name || name == e.bits ||
        (name.size() == 1 && name[0] - '0' == static_cast<int>(e.g))) {
      *out = e.g;
      return true;
    }
  }
  return false;
}

const char* DhGroupName(DhGroup g) {
  const char* n = GroupOsslName(g);
  return n != nullptr ? n : "null";
}

Status ParseSecret(std::string_view text, Secret* out) {
  // DHHC-1:HH:BASE64:
  if (!text.starts_with("DHHC-1:") || text.size() < 11 || text[9] != ':' || !text.ends_with(":")) {
    return Status::InvalidArgument("a DH-HMAC-CHAP secret has the form DHHC-1:HH:BASE64:");
  }
  const std::string_view hh = text.substr(7, 2);
  Hash transform;
  if (hh == "00") {
    transform = Hash::kNone;
  } else if (hh == "01" || hh == "02" || hh == "03") {
    transform = static_cast<Hash>(hh[1] - '0');
  } else {
    return Status::InvalidArgument("a DH-HMAC-CHAP secret's transform must be 00, 01, 02 or 03");
  }
  const std::string_view b64 = text.substr(10, text.size() - 11);
  if (b64.empty() || b64.size() % 4 != 0 || b64.size() > 128) {
    return Status::InvalidArgument("a DH-HMAC-CHAP secret's key is not valid base64 of 36, 52 or 68 bytes");
  }
  std::vector<uint8_t> raw(b64.size() / 4 * 3);
  const int n = EVP_DecodeBlock(raw.data(), reinterpret_cast<const unsigned char*>(b64.data()),
                                static_cast<int>(b64.size()));
  if (n < 0) return Status::InvalidArgument("a DH-HMAC-CHAP secret's key is not valid base64");
  size_t len = static_cast<size_t>(n);
  for (size_t i = b64.size(); i > 0 && b64[i - 1] == '='; i--) len--;
  raw.resize(len);
  SecretBytes wipe(std::move(raw));
  const std::vector<uint8_t>& r = wipe.bytes();
  if (len != 36 && len != 52 && len != 68) {
    return Status::InvalidArgument("a DH-HMAC-CHAP secret's key must be 32, 48 or 64 bytes");
  }
  const size_t klen = len - 4;
  const uint32_t crc = static_cast<uint32_t>(r[klen]) | static_cast<uint32_t>(r[klen + 1]) << 8 |
                       static_cast<uint32_t>(r[klen + 2]) << 16 |
                       static_cast<uint32_t>(r[klen + 3]) << 24;
  if (crc != Crc32(r.data(), klen)) {
    return Status::InvalidArgument("a DH-HMAC-CHAP secret's CRC-32 does not match its key (mistyped?)");
  }
  if (transform != Hash::kNone && klen != HashLength(transform)) {
    return Status::InvalidArgument("a DH-HMAC-CHAP secret's key length does not match its transform");
  }
  out->transform = transform;
  out->key = SecretBytes(std::vector<uint8_t>(r.begin(), r.begin() + static_cast<long>(klen)));
  return Status::OK();
}

std::string FormatSecret(const Secret& s) {
  std::vector<uint8_t> raw = s.key.bytes();
  const uint32_t crc = Crc32(raw.data(), raw.size());
  for (int i = 0; i < 4; i++) raw.push_back(static_cast<uint8_t>(crc >> (8 * i)));
  std::string b64(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), raw.data(),
                                static_cast<int>(raw.size()));
  b64.resize(static_cast<size_t>(n));
  OPENSSL_cleanse(raw.data(), raw.size());
  char hh[3] = {'0', static_cast<char>('0' + static_cast<int>(s.transform)), 0};
  std::string out = std::string("DHHC-1:") + hh + ":" + b64 + ":";
  OPENSSL_cleanse(b64.data(), b64.size());
  return out;
}

Status LoadSecret(const std::string& arg, Secret* out) {
  if (arg.empty() || arg[0] != '@') return ParseSecret(arg, out);
  const std::string path = arg.substr(1);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Status::InvalidArgument("secret file " + path + ": cannot read it");
  if ((st.st_mode & 077) != 0) {
    return Status::InvalidArgument("secret file " + path +
                                   " may be read by others: make it private (chmod 600)");
  }
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line)) return Status::InvalidArgument("secret file " + path + ": cannot read it");
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  Status s = ParseSecret(line, out);
  OPENSSL_cleanse(line.data(), line.size());
  return s.ok() ? s : s.Annotate("secret file " + path);
}

Status GenerateSecret(Hash transform, size_t key_len, Secret* out) {
  if (transform != Hash::kNone) key_len = HashLength(transform);
  if (key_len != 32 && key_len != 48 && key_len != 64) {
    return Status::InvalidArgument("a DH-HMAC-CHAP key is 32, 48 or 64 bytes");
  }
  std::vector<uint8_t> k(key_len);
  RandomBytes(k.data(), k.size());
  out->transform = transform;
  out->key = SecretBytes(std::move(k));
  return Status::OK();
}

SecretBytes TransformedKey(const Secret& s, std::string_view nqn) {
  if (s.transform == Hash::kNone) return s.key;
  std::string msg(nqn);
  msg += "NVMe-over-Fabrics";
  return SecretBytes(Hmac(s.transform, s.key.data(), s.key.size(),
                          reinterpret_cast<const uint8_t*>(msg.data()), msg.size()));
}

std::vector<uint8_t> Hmac(Hash h, const uint8_t* key, size_t key_len, const uint8_t* data,
                          size_t len) {
  std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int n = 0;
  if (HMAC(Md(h), key, static_cast<int>(key_len), data, len, out.data(), &n) == nullptr) n = 0;
  out.resize(n);
  return out;
}

std::vector<uint8_t> Digest(Hash h, const uint8_t* data, size_t len) {
  std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int n = 0;
  if (EVP_Digest(data, len, out.data(), &n, Md(h), nullptr) != 1) n = 0;
  out.resize(n);
  return out;
}

void RandomBytes(uint8_t* p, size_t n) {
  if (RAND_bytes(p, static_cast<int>(n)) != 1) {
    // No entropy is no authentication: better to stop than to use a guessable challenge.
    std::abort();
  }
}

bool SameBytes(const std::vector<uint8_t>& a, const uint8_t* b, size_t len) {
  return a.size() == len && CRYPTO_memcmp(a.data(), b, len) == 0;
}

DhKey::~DhKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

Status DhKey::Generate(DhGroup g) {
  const char* name = GroupOsslName(g);
  if (name == nullptr) return Status::InvalidArgument("no Diffie-Hellman group");
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "DH", nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1) return Status::IoError("OpenSSL: DH key generation");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(name), 0),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* k = nullptr;
  if (EVP_PKEY_CTX_set_params(ctx.get(), params) != 1 || EVP_PKEY_generate(ctx.get(), &k) != 1) {
    return Status::IoError(std::string("OpenSSL: DH key generation in ") + name);
  }
  BIGNUM* pub = nullptr;
  if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PUB_KEY, &pub) != 1) {
    EVP_PKEY_free(k);
    return Status::IoError("OpenSSL: DH public value");
  }
  EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
  pkey_ = k;
  group_ = g;
  pub_.assign(DhValueLength(g), 0);
  BN_bn2binpad(pub, pub_.data(), static_cast<int>(pub_.size()));
  BN_free(pub);
  return Status::OK();
}

Status DhKey::Derive(const uint8_t* peer, size_t len, SecretBytes* shared) const {
  if (pkey_ == nullptr) return Status::InvalidArgument("no DH key");
  if (len != DhValueLength(group_)) {
    return Status::InvalidArgument("the peer's DH value has " + std::to_string(len) +
                                   " bytes, not the group's " + std::to_string(DhValueLength(group_)));
  }
  BIGNUM* bn = BN_bin2bn(peer, static_cast<int>(len), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  if (bn != nullptr && bld != nullptr &&
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, GroupOsslName(group_), 0) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, bn) == 1) {
    params = OSSL_PARAM_BLD_to_param(bld);
  }
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  if (params == nullptr) return Status::IoError("OpenSSL: DH peer value");
  Pkey peer_key;
  {
    PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "DH", nullptr));
    EVP_PKEY* k = nullptr;
    if (ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
        EVP_PKEY_fromdata(ctx.get(), &k, EVP_PKEY_PUBLIC_KEY, params) == 1) {
      peer_key.reset(k);
    }
  }
  OSSL_PARAM_free(params);
  if (!peer_key) return Status::InvalidArgument("the peer's DH value is not a valid public value");
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, static_cast<EVP_PKEY*>(pkey_), nullptr));
  size_t n = 0;
  // Validation refuses 0, 1, p-1 and values outside the group: a peer cannot force a
  // known shared value.
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_dh_pad(ctx.get(), 1) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), peer_key.get(), 1) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &n) != 1) {
    return Status::InvalidArgument("the peer's DH value is not a valid public value");
  }
  std::vector<uint8_t> out(n);
  if (EVP_PKEY_derive(ctx.get(), out.data(), &n) != 1) return Status::IoError("OpenSSL: DH derive");
  out.resize(n);
  *shared = SecretBytes(std::move(out));
  return Status::OK();
}

std::vector<uint8_t> ChallengeResponse(Hash h, const SecretBytes& key, const uint8_t* challenge,
                                       size_t hl, uint32_t seqnum, uint16_t t_id,
                                       std::string_view role, std::string_view nqn1,
                                       std::string_view nqn2, const SecretBytes& shared) {
  std::vector<uint8_t> c(challenge, challenge + hl);
  if (!shared.empty()) {
    const std::vector<uint8_t> hk = Digest(h, shared.data(), shared.size());
    SecretBytes wipe(hk);
    c = Hmac(h, hk.data(), hk.size(), c.data(), c.size());
  }
  std::vector<uint8_t> m = c;
  for (int i = 0; i < 4; i++) m.push_back(static_cast<uint8_t>(seqnum >> (8 * i)));
  m.push_back(static_cast<uint8_t>(t_id));
  m.push_back(static_cast<uint8_t>(t_id >> 8));
  m.push_back(0);
  m.insert(m.end(), role.begin(), role.end());
  m.insert(m.end(), nqn1.begin(), nqn1.end());
  m.push_back(0);
  m.insert(m.end(), nqn2.begin(), nqn2.end());
  return Hmac(h, key.data(), key.size(), m.data(), m.size());
}

}  // namespace nvmf::auth
