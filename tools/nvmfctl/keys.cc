// gen-dhchap-key: a DH-HMAC-CHAP secret for --dhchap-secret and nvmf-target's
// --dhchap-key, in the representation nvme-cli's gen-dhchap-key prints.
#include <cstdio>

#include "common.h"
#include "nvmf/host_util.h"

namespace nvmfctl {

namespace {

struct KeyFlags {
  int hmac = 0;
  size_t key_length = 32;
  std::string secret;
};

int RunGenKey(const KeyFlags& f) {
  std::string out;
  nvmf::Status s = nvmf::host::GenerateDhchapSecret(f.hmac, f.key_length, f.secret, &out);
  if (!s.ok()) Usage(s.message());
  std::printf("%s\n", out.c_str());
  return kExitOk;
}

}  // namespace

void RegisterKeys(CLI::App& app, Runner* run) {
  static KeyFlags f_storage;
  auto* f = &f_storage;
  CLI::App* sub = app.add_subcommand(
      "gen-dhchap-key", "print a new DH-HMAC-CHAP secret (DHHC-1:HH:BASE64:), as nvme gen-dhchap-key");
  sub->add_option("-m,--hmac", f->hmac,
                  "transform of the secret when used: 0 none, 1 SHA-256, 2 SHA-384, 3 SHA-512")
      ->check(CLI::Range(0, 3))
      ->capture_default_str();
  sub->add_option("-l,--key-length", f->key_length, "key length in bytes: 32, 48 or 64 (fixed by --hmac)")
      ->check(CLI::IsMember({32, 48, 64}))
      ->capture_default_str();
  sub->add_option("-s,--secret", f->secret, "the key in hex instead of a random one");
  sub->callback([f, run] { *run = [f] { return RunGenKey(*f); }; });
}

}  // namespace nvmfctl
