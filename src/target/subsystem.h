// Subsystems and namespaces as the target serves them: immutable once the target runs,
// so every loop reads them without locks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nvmf/target.h"
#include "target/backend.h"

namespace nvmf::target {

struct Namespace {
  uint32_t nsid = 0;
  std::unique_ptr<Backend> backend;
  uint32_t lba_shift = 9;
  uint64_t blocks = 0;
  uint8_t uuid[16] = {};
  uint8_t nguid[16] = {};
};

struct Subsystem {
  std::string nqn;
  std::string serial;
  std::string model;
  bool discovery = false;
  bool allow_any_host = true;
  std::set<std::string> allowed_hosts;
  std::map<uint32_t, Namespace> namespaces;

  bool HostAllowed(const std::string& hostnqn) const {
    return discovery || allow_any_host || allowed_hosts.count(hostnqn) != 0;
  }
  const Namespace* Find(uint32_t nsid) const {
    auto it = namespaces.find(nsid);
    return it == namespaces.end() ? nullptr : &it->second;
  }
};

// Builds the subsystems from the configuration: opens backends, checks names and NSIDs.
// True for a name in the nqn.yyyy-mm.reverse-domain:name form.
bool LooksLikeNqn(const std::string& nqn);
Status BuildSubsystems(const TargetConfig& config,
                       std::vector<std::unique_ptr<Subsystem>>* out);

// Text for logs, e.g. "nqn...:  ns1 mem:64MiB".
std::string DescribeSubsystem(const Subsystem& s);

}  // namespace nvmf::target
