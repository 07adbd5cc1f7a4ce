// Secure channels, transport-neutral: what a host asks for and what a port offers. NVMe/TCP
// implements them as TLS 1.3 with pre-shared keys (TP 8011; src/tcp/tls.h); other
// transports refuse a host that asks for one and never offer one.
//
// Keys are NVMe TLS PSK interchange strings ("NVMeTLSkey-1:01:BASE64:"). They are secrets:
// nothing in this library logs them, and errors about them never quote them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "nvmf/status.h"

namespace nvmf {

// A port's secure channel requirement; the discovery log's TREQ and TSAS follow it.
enum class SecureChannel : uint8_t {
  kNone,      // not offered: TREQ "not required", TSAS security type none
  kOptional,  // TLS or plain, as the host likes: TREQ "not required", TSAS TLS 1.3
  kRequired,  // TLS only; a plain ICReq is refused: TREQ "required", TSAS TLS 1.3
};
const char* SecureChannelName(SecureChannel c);  // "none", "optional", "required"
bool ParseSecureChannel(std::string_view name, SecureChannel* out);

// How a configured PSK becomes the TLS PSK: "nvme-cli" (default: what Linux's nvme-cli
// puts into the kernel's keyring, so Linux hosts and targets set up with it interoperate)
// or "spec" (HKDF-Expand-Label exactly as the specification and RFC 8446 say).
inline constexpr char kDefaultTlsDerivation[] = "nvme-cli";

// The host's side.
struct HostTlsConfig {
  bool enabled = false;
  std::string key;                 // interchange format (a secret)
  int identity_version = 1;        // 1: "NVMe1R0h HOST SUB DIGEST"; 0: "NVMe0R0h HOST SUB"
  std::string derivation = kDefaultTlsDerivation;
};

// A port's side: which keys it knows. key_for_host returns false for a host it has none
// for. derivation applies to version 0 identities; a version 1 identity's digest tells
// which derivation the host used, and both are accepted.
struct PortTlsConfig {
  SecureChannel channel = SecureChannel::kNone;
  std::function<bool(const std::string& hostnqn, std::string* key)> key_for_host;
  std::string derivation = kDefaultTlsDerivation;
};

// Checks that key is a well-formed interchange string (CRC included).
Status CheckTlsKey(std::string_view key);
bool ValidTlsDerivation(std::string_view name);
// "@PATH": the key is the first line of that file (a warning goes to *warning when the
// file is readable by others). Anything else is the key itself.
Status ReadSecretArgument(const std::string& arg, std::string* out, std::string* warning = nullptr);

}  // namespace nvmf
