// The transport-neutral secure channel helpers (nvmf/secure_channel.h), over NVMe/TCP's
// PSK code.
#include "nvmf/secure_channel.h"

#include <sys/stat.h>

#include "tcp/psk.h"

namespace nvmf {

const char* SecureChannelName(SecureChannel c) {
  switch (c) {
    case SecureChannel::kOptional:
      return "optional";
    case SecureChannel::kRequired:
      return "required";
    case SecureChannel::kNone:
      break;
  }
  return "none";
}

bool ParseSecureChannel(std::string_view name, SecureChannel* out) {
  if (name == "none") {
    *out = SecureChannel::kNone;
  } else if (name == "optional") {
    *out = SecureChannel::kOptional;
  } else if (name == "required") {
    *out = SecureChannel::kRequired;
  } else {
    return false;
  }
  return true;
}

Status CheckTlsKey(std::string_view key) {
  tcp::ConfiguredPsk psk;
  return tcp::ParsePskInterchange(key, &psk);
}

bool ValidTlsDerivation(std::string_view name) {
  tcp::PskDerivation d;
  return tcp::ParsePskDerivation(name, &d);
}

Status ReadSecretArgument(const std::string& arg, std::string* out, std::string* warning) {
  if (!arg.empty() && arg[0] == '@' && warning != nullptr) {
    struct stat st {};
    if (stat(arg.c_str() + 1, &st) == 0 && (st.st_mode & 077) != 0) {
      *warning = "key file " + arg.substr(1) + " is readable by group or others (chmod 600 it)";
    }
  }
  return tcp::ReadKeyArgument(arg, out);
}

}  // namespace nvmf
