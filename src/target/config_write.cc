// FormatNvmetcliConfig: a TargetConfig as the JSON that nvmetcli's saveconfig writes, and
// that ParseNvmetcliConfig (config.cc) reads back to the same configuration.
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "nvmf/spec/admin.h"
#include "nvmf/target.h"
#include "nvmf/transport.h"
#include "target/reconfigure.h"

namespace nvmf::target {

std::string FormatNvmetcliConfig(const TargetConfig& config) {
  using json = nlohmann::ordered_json;
  json hosts = json::array();
  std::set<std::string> host_nqns;
  json subsystems = json::array();
  for (const SubsystemConfig& s : config.subsystems) {
    json nss = json::array();
    for (const NamespaceConfig& n : s.namespaces) {
      // A file's spec is its path, as Linux writes it; other backends keep their spec.
      const std::string path = n.backend.rfind("file:", 0) == 0 ? n.backend.substr(5) : n.backend;
      json dev = {{"path", path}};
      if (!n.uuid.empty()) dev["uuid"] = n.uuid;
      nss.push_back({{"nsid", n.nsid}, {"enable", n.enabled ? 1 : 0}, {"ana_grpid", n.ana_group}, {"device", dev}});
    }
    json attr = {{"allow_any_host", s.allow_any_host ? "1" : "0"}};
    if (!s.serial.empty()) attr["serial"] = s.serial;
    if (!s.model.empty()) attr["model"] = s.model;
    for (const std::string& h : s.allowed_hosts) host_nqns.insert(h);
    subsystems.push_back({{"nqn", s.nqn},
                          {"attr", attr},
                          {"allowed_hosts", s.allowed_hosts},
                          {"namespaces", nss}});
  }
  for (const auto& [nqn, creds] : config.hosts) host_nqns.insert(nqn);
  for (const std::string& h : host_nqns) {
    json entry = {{"nqn", h}};
    // Secrets are written as they were given: a "@PATH" stays a path.
    if (auto it = config.hosts.find(h); it != config.hosts.end()) {
      const HostCredentials& c = it->second;
      if (!c.dhchap_key.empty()) entry["dhchap_key"] = c.dhchap_key;
      if (!c.dhchap_ctrl_key.empty()) entry["dhchap_ctrl_key"] = c.dhchap_ctrl_key;
      if (!c.dhchap_key.empty()) {
        entry["dhchap_hash"] = c.dhchap_hash;
        entry["dhchap_dhgroup"] = c.dhchap_dhgroup;
      }
    }
    hosts.push_back(entry);
  }
  json ports = json::array();
  for (const PortConfig& p : config.ports) {
    std::vector<std::string> subs = p.subsystems;
    if (subs.empty()) {  // every subsystem: nvmetcli lists them
      for (const SubsystemConfig& s : config.subsystems) subs.push_back(s.nqn);
    }
    const bool v6 = p.addr.find(':') != std::string::npos;
    json groups = json::array();
    std::set<uint32_t> used = {1};
    for (const SubsystemConfig& s : config.subsystems) {
      for (const NamespaceConfig& n : s.namespaces) used.insert(n.ana_group);
    }
    for (const auto& [grp, st] : p.ana_states) used.insert(grp);
    for (uint32_t grp : used) {
      auto it = p.ana_states.find(grp);
      const uint8_t st = it == p.ana_states.end() ? uint8_t{spec::kAnaOptimized} : it->second;
      groups.push_back({{"grpid", grp}, {"ana", {{"state", AnaStateName(st)}}}});
    }
    json addr = {{"trtype", TransportTypeName(p.trtype)},
                 {"adrfam", v6 ? "ipv6" : "ipv4"},
                 {"traddr", p.addr},
                 {"trsvcid", std::to_string(p.port)}};
    if (p.tls != SecureChannel::kNone) {  // as nvmetcli names them; keys stay out
      addr["tsas"] = "tls1.3";
      addr["treq"] = p.tls == SecureChannel::kRequired ? "required" : "not required";
    }
    ports.push_back({{"portid", p.portid},
                     {"addr", addr},
                     {"ana_groups", groups},
                     {"subsystems", subs}});
  }
  json root = {{"hosts", hosts}, {"ports", ports}, {"subsystems", subsystems}};
  return root.dump(2) + "\n";
}

}  // namespace nvmf::target
