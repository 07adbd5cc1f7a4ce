// Backend::Open (the spec parser) and ParseSize.
#include "target/backend.h"

#include <cctype>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "target/backend_internal.h"

namespace nvmf::target {
namespace {

constexpr uint64_t kSector = 512;

Status BadSpec(const std::string& spec, const std::string& why) {
  return Status::InvalidArgument("backend '" + spec + "': " + why);
}

// "mem:SIZE" and "null:SIZE": the size, checked.
Status SizeArg(const std::string& spec, const std::string& arg, uint64_t* size) {
  if (arg.empty()) return BadSpec(spec, "missing size (e.g. 64M, 1G)");
  if (!ParseSize(arg, size)) {
    return BadSpec(spec, "bad size '" + arg +
                             "' (a non-zero number of bytes with an optional K, M, G or T "
                             "suffix, powers of 1024)");
  }
  if (*size % kSector != 0) {
    return BadSpec(spec, "size " + std::to_string(*size) + " is not a multiple of 512 bytes");
  }
  return Status::OK();
}

// Kinds registered by RegisterBackendKind (tests).
std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, BackendFactory>& Registry() {
  static std::map<std::string, BackendFactory> kinds;
  return kinds;
}
BackendFactory RegisteredKind(const std::string& kind) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  auto it = Registry().find(kind);
  return it == Registry().end() ? BackendFactory() : it->second;
}

}  // namespace

bool ParseSize(const std::string& s, uint64_t* out) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;  // overflow
    v = v * 10 + d;
    i++;
  }
  if (i == 0) return false;  // no digits (also rejects a sign or leading blanks)
  int shift = 0;
  if (i < s.size()) {
    constexpr std::string_view kUnits = "KMGT";  // powers of 1024
    size_t u = kUnits.find(static_cast<char>(std::toupper(static_cast<unsigned char>(s[i]))));
    if (u == std::string_view::npos) return false;
    shift = 10 * static_cast<int>(u + 1);
    i++;
    // "64MiB" too, so that what Describe() prints reads back.
    if (s.compare(i, std::string::npos, "iB") == 0) i += 2;
  }
  if (i != s.size() || v == 0) return false;
  if (shift > 0 && v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

std::string FormatSize(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && bytes != 0 && bytes % 1024 == 0) {
    bytes /= 1024;
    u++;
  }
  return std::to_string(bytes) + kUnits[u];
}

Status RangeError(const char* what, uint64_t offset, uint64_t len, uint64_t size) {
  return Status::InvalidArgument(std::string(what) + " of " + std::to_string(len) +
                                 " bytes at offset " + std::to_string(offset) +
                                 " is outside the backend's " + std::to_string(size) +
                                 " bytes or its buffer");
}

Status Backend::Open(const std::string& spec, std::unique_ptr<Backend>* out) {
  if (spec.empty()) return Status::InvalidArgument("empty backend spec");
  size_t colon = spec.find(':');
  std::string kind = spec.substr(0, colon);
  std::string arg = colon == std::string::npos ? std::string() : spec.substr(colon + 1);
  if (kind == "mem" || kind == "null") {
    uint64_t size;
    Status s = SizeArg(spec, arg, &size);
    if (!s.ok()) return s;
    if (kind == "null") {
      *out = NewNullBackend(size);
      return Status::OK();
    }
    return NewMemoryBackend(size, out);
  }
  if (kind == "file") {
    if (arg.empty()) return BadSpec(spec, "missing path (file:PATH)");
    return OpenFileBackend(arg, out);
  }
  if (BackendFactory f = RegisteredKind(kind); f) return f(arg, out);
  return BadSpec(spec, "unknown kind '" + kind + "' (expected mem:SIZE, null:SIZE or file:PATH)");
}

void RegisterBackendKind(const std::string& kind, BackendFactory factory) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  if (factory) {
    Registry()[kind] = std::move(factory);
  } else {
    Registry().erase(kind);
  }
}

}  // namespace nvmf::target
