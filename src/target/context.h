// TargetContext: what every queue handler of a target shares: the configuration, the
// subsystems, the controllers, the ports (for the discovery log), and logging.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/dhchap_controller.h"
#include "nvmf/target.h"
#include "target/controller.h"
#include "target/subsystem.h"

namespace nvmf::target {

inline bool ValidAnaState(uint8_t s) {
  return s == spec::kAnaOptimized || s == spec::kAnaNonOptimized || s == spec::kAnaInaccessible ||
         s == spec::kAnaPersistentLoss || s == spec::kAnaChange;
}

// What a port's connections read for every command: the ANA state of each ANA group
// through this port (relaxed atomics; a change is told to hosts by an event).
struct PortState {
  explicit PortState(uint16_t id) : portid(id) {
    for (auto& a : ana) a.store(spec::kAnaOptimized);
  }
  const uint16_t portid;
  std::atomic<uint8_t> ana[kMaxAnaGroups + 1];  // by ANA group ID; [0] unused
};

struct BoundPort {
  PortConfig config;
  uint16_t port = 0;  // as bound
  ControllerTransportValues values;  // what the port's transport reports in Identify
  spec::DiscoveryLogEntry entry{};   // the transport's fields of its discovery entries
  std::shared_ptr<PortState> state;
};

struct TargetContext {
  TargetConfig config;
  // Subsystems come and go while the target serves: under subsystems_mu. [0] is the
  // discovery subsystem, never removed. A removed subsystem moves to retired, where it
  // stays until the target is destroyed: controllers that were being torn down may still
  // point at it.
  mutable std::mutex subsystems_mu;
  std::vector<std::unique_ptr<Subsystem>> subsystems;
  std::vector<std::unique_ptr<Subsystem>> retired;
  std::vector<Subsystem*> Subsystems() const {
    std::lock_guard<std::mutex> lock(subsystems_mu);
    std::vector<Subsystem*> v;
    for (const auto& s : subsystems) v.push_back(s.get());
    return v;
  }
  // Ports come and go while the target serves (listeners added and removed): under
  // ports_mu; loops take a copy (Ports()).
  mutable std::mutex ports_mu;
  std::vector<BoundPort> ports;
  std::vector<BoundPort> Ports() const {
    std::lock_guard<std::mutex> lock(ports_mu);
    return ports;
  }
  // The ANA change count: moves with every ANA state change (any port).
  std::atomic<uint64_t> ana_change_count{1};
  ControllerRegistry controllers;

  Subsystem* FindSubsystem(const std::string& nqn) const {
    std::lock_guard<std::mutex> lock(subsystems_mu);
    for (const auto& s : subsystems) {
      if (s->nqn == nqn) return s.get();
    }
    return nullptr;
  }
  // Logs a line; bytes that could forge log lines or drive a terminal (control
  // characters, non-ASCII) are escaped as \xNN.
  void Log(const std::string& line) const;
  // Logs a limit being hit, at most once a second per limit.
  void LogLimit(const std::string& limit, const std::string& line) const;
  uint64_t MaxDataBytes() const { return 4096ull << config.mdts; }

  // DH-HMAC-CHAP: what each host NQN must prove, parsed from config.hosts at start and
  // read-only after. nullptr: the host need not authenticate.
  std::map<std::string, std::shared_ptr<const auth::ControllerAuthConfig>> host_auth;
  std::shared_ptr<const auth::ControllerAuthConfig> AuthFor(const std::string& hostnqn) const {
    auto it = host_auth.find(hostnqn);
    return it == host_auth.end() ? nullptr : it->second;
  }
  // Counts a failed authentication of the host and logs it (never a secret); any thread.
  void AuthFailed(const std::string& hostnqn, const std::string& who, const std::string& why);
  std::map<std::string, uint64_t> AuthFailures() const {
    std::lock_guard<std::mutex> lock(auth_mu);
    return auth_failures;
  }
  mutable std::mutex auth_mu;
  std::map<std::string, uint64_t> auth_failures;  // by host NQN, under auth_mu
};

// Parses every host's credentials (the secrets, files read); errors name the host and
// the field, never the secret.
Status BuildHostAuth(const TargetConfig& config,
                     std::map<std::string, std::shared_ptr<const auth::ControllerAuthConfig>>* out);

// n bytes of zeroes that never change, for padding data out to the length a host asked
// for (n <= kMaxZeroRegion). Read-only shared memory: costs no RSS.
inline constexpr size_t kMaxZeroRegion = size_t{64} << 20;
const uint8_t* ZeroRegion(size_t n);

// Log-safe text of a peer-supplied string.
std::string Escape(const std::string& s);

}  // namespace nvmf::target
