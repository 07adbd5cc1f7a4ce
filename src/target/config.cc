// ParseNvmetcliConfig: reads the JSON file that Linux's nvmetcli writes with `saveconfig`
// (top-level "hosts", "ports" and "subsystems") into a TargetConfig.
//
// What is read:
//   ports[]       "portid" (required, 0-65535, unique), "addr": "trtype" ("tcp" or "rdma";
//                 tcp when absent), "adrfam" ("ipv4" or "ipv6"; inferred from the
//                 address when absent), "traddr" (required, a numeric address of that
//                 family; an IPv6 one may carry a %scope), "trsvcid" (required, a port
//                 number as a string or a number; "0" picks a free port), and
//                 "subsystems" (NQNs, each defined under "subsystems"). Like Linux, which
//                 enables a port only once a subsystem is linked to it, a port with no
//                 subsystem is left out: it does not listen.
//   subsystems[]  "nqn" (required), "attr": "allow_any_host" ("1"/"0", also true/false
//                 or 1/0; absent: 0, as Linux), "serial", "model"; "allowed_hosts" (host
//                 NQNs); "namespaces"[]: "nsid" (1-1024; absent: the next free
//                 one), "enable" (absent: 1), "device": "path" (required when enabled),
//                 "uuid" (optional, 8-4-4-4-12 hex digits).
//   hosts[]       "nqn" (required; a subsystem's "allowed_hosts" decide who may connect),
//                 and DH-HMAC-CHAP credentials where Linux keeps them: "dhchap_key",
//                 "dhchap_ctrl_key" (DHHC-1 secrets, or "@PATH" of a private file),
//                 "dhchap_hash" (hmac(sha256|sha384|sha512)), "dhchap_dhgroup" (null,
//                 ffdhe2048 ... ffdhe8192); checked when the target starts.
//   ANA: ports[].ana_groups[] "grpid" (1-32) with "ana": "state" (optimized, non-optimized,
//   inaccessible, persistent-loss, change), and namespaces[] "ana_grpid" (absent: 1).
//   TLS: ports[].addr "tsas" ("none" or "tls1.3") and "treq" ("required", "not required",
//   "not specified"; also as "addr_tsas"/"addr_treq", Linux's configfs names): tls1.3 with
//   required makes a TLS-only port, tls1.3 otherwise an optional one. The keys are not
//   in the file (Linux keeps them in a keyring): nvmf-target's --psk gives them.
// Everything else (attr.version, cntlid ranges, param, referrals, nguid, ...) is ignored.
//
// Namespace backends: "device.path" names a file or block device, which becomes
// "file:PATH". Our extension: a path that starts with "mem:", "null:" or "file:" is a
// backend spec used as is, e.g. "mem:64M" (a RAM disk) or "null:1G" (no storage), so that
// a configuration can be tried without a device.
//
// Errors name the place: `subsystems[1].namespaces[0]: "nsid" must be a number, not a
// string`, `port 2: transport fc is not supported (tcp or rdma)`. On error *out is unchanged. On
// success only out->ports, out->subsystems and out->hosts are replaced; the other fields (threads,
// queue sizes, log, ...) are left as the caller set them.
#include <arpa/inet.h>

#include <cctype>
#include <cstdint>
#include <exception>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nvmf/spec/admin.h"
#include "nvmf/target.h"
#include "nvmf/transport.h"
#include "target/reconfigure.h"

namespace nvmf::target {
namespace {

using json = nlohmann::json;

Status Bad(const std::string& where, const std::string& what) {
  return Status::InvalidArgument(where + ": " + what);
}

std::string Quote(const std::string& key) { return "\"" + key + "\""; }

Status WrongType(const std::string& where, const std::string& key, const char* want,
                 const json& got) {
  return Bad(where, Quote(key) + " must be " + want + ", not " + got.type_name());
}

// The member `key` of obj, or nullptr (JSON null counts as absent).
const json* Member(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// A string member. `name` is the key as shown in messages ("addr.traddr").
Status GetString(const json& obj, const char* key, const std::string& where,
                 const std::string& name, bool required, std::string* out) {
  const json* v = Member(obj, key);
  if (v == nullptr) {
    if (required) return Bad(where, "missing " + Quote(name));
    return Status::OK();
  }
  if (!v->is_string()) return WrongType(where, name, "a string", *v);
  *out = v->get<std::string>();
  return Status::OK();
}

// A whole-number member in [lo, hi]. *present tells whether it was there.
Status GetUint(const json& obj, const char* key, const std::string& where,
               const std::string& name, bool required, uint64_t lo, uint64_t hi, uint64_t* out,
               bool* present = nullptr) {
  const json* v = Member(obj, key);
  if (present != nullptr) *present = v != nullptr;
  if (v == nullptr) {
    if (required) return Bad(where, "missing " + Quote(name));
    return Status::OK();
  }
  if (!v->is_number()) return WrongType(where, name, "a number", *v);
  std::string range = "between " + std::to_string(lo) + " and " + std::to_string(hi);
  if (!v->is_number_unsigned()) {
    // Negative, or not whole (nlohmann keeps non-negative integers as unsigned).
    return Bad(where, Quote(name) + " must be a whole number " + range + ", not " + v->dump());
  }
  uint64_t n = v->get<uint64_t>();
  if (n < lo || n > hi) {
    return Bad(where, Quote(name) + " must be " + range + ", not " + std::to_string(n));
  }
  *out = n;
  return Status::OK();
}

// A flag written as "1"/"0" (nvmetcli's attributes), 1/0 or true/false.
Status GetFlag(const json& obj, const char* key, const std::string& where,
               const std::string& name, bool* out) {
  const json* v = Member(obj, key);
  if (v == nullptr) return Status::OK();
  if (v->is_boolean()) {
    *out = v->get<bool>();
    return Status::OK();
  }
  if (v->is_number_unsigned() && v->get<uint64_t>() <= 1) {
    *out = v->get<uint64_t>() == 1;
    return Status::OK();
  }
  if (v->is_string()) {
    const std::string& s = v->get_ref<const std::string&>();
    if (s == "1" || s == "0") {
      *out = s == "1";
      return Status::OK();
    }
  }
  return Bad(where, Quote(name) + " must be \"1\" or \"0\" (or true/false), not " + v->dump());
}

// An array member (absent: empty).
Status GetArray(const json& obj, const char* key, const std::string& where,
                const std::string& name, const json** out) {
  static const json kEmpty = json::array();
  const json* v = Member(obj, key);
  if (v == nullptr) {
    *out = &kEmpty;
    return Status::OK();
  }
  if (!v->is_array()) return WrongType(where, name, "an array", *v);
  *out = v;
  return Status::OK();
}

bool IsUuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

bool IsIpv4(const std::string& s) {
  in_addr a;
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool IsIpv6(const std::string& s) {
  std::string addr = s.substr(0, s.find('%'));  // fe80::1%eth0
  if (addr.size() != s.size() && addr.size() + 1 == s.size()) return false;  // empty scope
  in6_addr a;
  return inet_pton(AF_INET6, addr.c_str(), &a) == 1;
}

std::string BackendSpec(const std::string& path) {
  for (const char* prefix : {"mem:", "null:", "file:"}) {
    if (path.rfind(prefix, 0) == 0) return path;
  }
  return "file:" + path;
}

Status ParseNamespace(const json& j, const std::string& where, NamespaceConfig* ns) {
  if (!j.is_object()) return Bad(where, std::string("must be an object, not ") + j.type_name());
  uint64_t nsid = 0;
  Status s = GetUint(j, "nsid", where, "nsid", false, 1, 1024, &nsid);
  if (!s.ok()) return s;
  ns->nsid = static_cast<uint32_t>(nsid);
  bool enabled = true;
  s = GetFlag(j, "enable", where, "enable", &enabled);
  if (!s.ok()) return s;
  ns->enabled = enabled;
  uint64_t grp = 1;
  s = GetUint(j, "ana_grpid", where, "ana_grpid", false, 1, kMaxAnaGroups, &grp);
  if (!s.ok()) return s;
  ns->ana_group = static_cast<uint32_t>(grp);

  std::string path;
  const json* dev = Member(j, "device");
  if (dev != nullptr) {
    if (!dev->is_object()) return WrongType(where, "device", "an object", *dev);
    s = GetString(*dev, "path", where, "device.path", false, &path);
    if (!s.ok()) return s;
    s = GetString(*dev, "uuid", where, "device.uuid", false, &ns->uuid);
    if (!s.ok()) return s;
    if (!ns->uuid.empty() && !IsUuid(ns->uuid)) {
      return Bad(where, "\"device.uuid\" '" + ns->uuid +
                            "' is not a UUID (8-4-4-4-12 hexadecimal digits)");
    }
  }
  if (path.empty()) {
    // Linux keeps a namespace without a device, but cannot enable it.
    if (enabled) return Bad(where, "missing \"device.path\" (an enabled namespace needs one)");
  } else {
    ns->backend = BackendSpec(path);
  }
  return Status::OK();
}

Status ParseSubsystem(const json& j, const std::string& where, SubsystemConfig* sub) {
  if (!j.is_object()) return Bad(where, std::string("must be an object, not ") + j.type_name());
  Status s = GetString(j, "nqn", where, "nqn", true, &sub->nqn);
  if (!s.ok()) return s;
  if (sub->nqn.empty()) return Bad(where, "\"nqn\" is empty");

  sub->allow_any_host = false;  // Linux's default for a new subsystem
  if (const json* attr = Member(j, "attr")) {
    if (!attr->is_object()) return WrongType(where, "attr", "an object", *attr);
    s = GetFlag(*attr, "allow_any_host", where, "attr.allow_any_host", &sub->allow_any_host);
    if (!s.ok()) return s;
    s = GetString(*attr, "serial", where, "attr.serial", false, &sub->serial);
    if (!s.ok()) return s;
    s = GetString(*attr, "model", where, "attr.model", false, &sub->model);
    if (!s.ok()) return s;
  }

  const json* hosts;
  s = GetArray(j, "allowed_hosts", where, "allowed_hosts", &hosts);
  if (!s.ok()) return s;
  for (size_t k = 0; k < hosts->size(); k++) {
    const json& h = (*hosts)[k];
    if (!h.is_string() || h.get_ref<const std::string&>().empty()) {
      return Bad(where + ".allowed_hosts[" + std::to_string(k) + "]",
                 std::string("must be a host NQN string, not ") +
                     (h.is_string() ? "an empty one" : h.type_name()));
    }
    sub->allowed_hosts.push_back(h.get<std::string>());
  }

  const json* nss;
  s = GetArray(j, "namespaces", where, "namespaces", &nss);
  if (!s.ok()) return s;
  std::map<uint32_t, size_t> seen;  // nsid -> index
  for (size_t k = 0; k < nss->size(); k++) {
    std::string nwhere = where + ".namespaces[" + std::to_string(k) + "]";
    NamespaceConfig ns;
    s = ParseNamespace((*nss)[k], nwhere, &ns);
    if (!s.ok()) return s;
    if (ns.nsid != 0) {
      auto [it, fresh] = seen.emplace(ns.nsid, k);
      if (!fresh) {
        return Bad(nwhere, "nsid " + std::to_string(ns.nsid) + " is also used by " + where +
                               ".namespaces[" + std::to_string(it->second) + "]");
      }
    }
    sub->namespaces.push_back(std::move(ns));
  }
  return Status::OK();
}

// The secure channel from "addr"'s "tsas" ("none" or "tls1.3") and "treq" ("required",
// "not required", "not specified"), also under Linux's configfs names "addr_tsas" and
// "addr_treq". TLS 1.3 required makes the port TLS-only; otherwise TLS is optional.
Status ParsePortTls(const json& addr, const std::string& where, PortConfig* port) {
  std::string tsas, treq;
  for (const char* key : {"tsas", "addr_tsas"}) {
    Status s = GetString(addr, key, where, std::string("addr.") + key, false, &tsas);
    if (!s.ok()) return s;
  }
  for (const char* key : {"treq", "addr_treq"}) {
    Status s = GetString(addr, key, where, std::string("addr.") + key, false, &treq);
    if (!s.ok()) return s;
  }
  if (!treq.empty() && treq != "required" && treq != "not required" && treq != "not specified") {
    return Bad(where, "\"addr.treq\" must be required, not required or not specified, not '" + treq + "'");
  }
  if (tsas.empty() || tsas == "none") {
    if (treq == "required") return Bad(where, "\"addr.treq\" required needs \"addr.tsas\" tls1.3");
    port->tls = SecureChannel::kNone;
    return Status::OK();
  }
  if (tsas != "tls1.3") {
    return Bad(where, "\"addr.tsas\" must be none or tls1.3, not '" + tsas + "'");
  }
  if (port->trtype != TransportType::kTcp) return Bad(where, "TLS is for NVMe/TCP ports only");
  port->tls = treq == "required" ? SecureChannel::kRequired : SecureChannel::kOptional;
  return Status::OK();
}

Status ParsePort(const json& j, const std::string& index_where,
                 const std::set<std::string>& subsystem_nqns, PortConfig* port) {
  if (!j.is_object()) {
    return Bad(index_where, std::string("must be an object, not ") + j.type_name());
  }
  uint64_t portid = 0;
  Status s = GetUint(j, "portid", index_where, "portid", true, 0, 65535, &portid);
  if (!s.ok()) return s;
  port->portid = static_cast<uint16_t>(portid);
  const std::string where = "port " + std::to_string(portid);

  const json* addr = Member(j, "addr");
  if (addr == nullptr) return Bad(where, "missing \"addr\"");
  if (!addr->is_object()) return WrongType(where, "addr", "an object", *addr);

  std::string trtype = "tcp";
  s = GetString(*addr, "trtype", where, "addr.trtype", false, &trtype);
  if (!s.ok()) return s;
  if (!ParseTransportType(trtype, &port->trtype)) {
    return Bad(where, "transport " + trtype + " is not supported (tcp or rdma)");
  }

  std::string adrfam;
  s = GetString(*addr, "adrfam", where, "addr.adrfam", false, &adrfam);
  if (!s.ok()) return s;
  if (!adrfam.empty() && adrfam != "ipv4" && adrfam != "ipv6") {
    return Bad(where, "address family " + adrfam + " is not supported (ipv4 or ipv6)");
  }
  s = GetString(*addr, "traddr", where, "addr.traddr", true, &port->addr);
  if (!s.ok()) return s;
  bool v4 = IsIpv4(port->addr);
  bool v6 = !v4 && IsIpv6(port->addr);
  if (adrfam == "ipv4" && !v4) {
    return Bad(where, "\"addr.traddr\" '" + port->addr + "' is not an IPv4 address");
  }
  if (adrfam == "ipv6" && !v6) {
    return Bad(where, "\"addr.traddr\" '" + port->addr + "' is not an IPv6 address");
  }
  if (!v4 && !v6) {
    return Bad(where, "\"addr.traddr\" '" + port->addr + "' is not an IPv4 or IPv6 address");
  }

  const json* svc = Member(*addr, "trsvcid");
  if (svc == nullptr) return Bad(where, "missing \"addr.trsvcid\"");
  if (svc->is_string()) {
    const std::string& t = svc->get_ref<const std::string&>();
    uint32_t n = 0;
    bool ok = !t.empty() && t.size() <= 5;
    for (char c : t) {
      if (c < '0' || c > '9') ok = false;
      if (ok) n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    if (!ok || n > 65535) {
      return Bad(where, "\"addr.trsvcid\" must be a TCP port number (0-65535), not '" + t + "'");
    }
    port->port = static_cast<uint16_t>(n);
  } else if (svc->is_number()) {
    uint64_t n = 0;
    s = GetUint(*addr, "trsvcid", where, "addr.trsvcid", true, 0, 65535, &n);
    if (!s.ok()) return s;
    port->port = static_cast<uint16_t>(n);
  } else {
    return WrongType(where, "addr.trsvcid", "a string", *svc);
  }

  s = ParsePortTls(*addr, where, port);
  if (!s.ok()) return s;

  const json* groups;
  s = GetArray(j, "ana_groups", where, "ana_groups", &groups);
  if (!s.ok()) return s;
  for (size_t k = 0; k < groups->size(); k++) {
    const json& g = (*groups)[k];
    const std::string gwhere = where + ": ana_groups[" + std::to_string(k) + "]";
    if (!g.is_object()) return Bad(gwhere, std::string("must be an object, not ") + g.type_name());
    uint64_t grpid = 0;
    s = GetUint(g, "grpid", gwhere, "grpid", true, 1, kMaxAnaGroups, &grpid);
    if (!s.ok()) return s;
    std::string state = "optimized";
    if (const json* ana = Member(g, "ana")) {
      if (!ana->is_object()) return WrongType(gwhere, "ana", "an object", *ana);
      s = GetString(*ana, "state", gwhere, "ana.state", false, &state);
      if (!s.ok()) return s;
    }
    uint8_t st = 0;
    if (!ParseAnaState(state, &st)) {
      return Bad(gwhere, "ANA state '" + state +
                             "' is not optimized, non-optimized, inaccessible, persistent-loss or change");
    }
    if (st != spec::kAnaOptimized) port->ana_states[static_cast<uint32_t>(grpid)] = st;
  }

  const json* subs;
  s = GetArray(j, "subsystems", where, "subsystems", &subs);
  if (!s.ok()) return s;
  for (size_t k = 0; k < subs->size(); k++) {
    const json& n = (*subs)[k];
    std::string swhere = where + ": subsystems[" + std::to_string(k) + "]";
    if (!n.is_string()) {
      return Bad(swhere, std::string("must be a subsystem NQN string, not ") + n.type_name());
    }
    const std::string& nqn = n.get_ref<const std::string&>();
    if (subsystem_nqns.count(nqn) == 0) {
      return Bad(swhere, "subsystem " + nqn + " is not defined under \"subsystems\"");
    }
    port->subsystems.push_back(nqn);
  }
  return Status::OK();
}

Status Parse(const std::string& text, TargetConfig* out) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 3, column 7: ...".
    std::string what = e.what();
    size_t close = what.find("] ");
    if (what.rfind("[json.exception.", 0) == 0 && close != std::string::npos) {
      what = what.substr(close + 2);
    }
    return Status::InvalidArgument("not valid JSON: " + what);
  }
  if (!root.is_object()) {
    return Status::InvalidArgument(std::string("the configuration must be a JSON object, not ") +
                                   root.type_name());
  }

  const json* hosts;
  std::map<std::string, HostCredentials> host_creds;
  Status s = GetArray(root, "hosts", "configuration", "hosts", &hosts);
  if (!s.ok()) return s;
  for (size_t i = 0; i < hosts->size(); i++) {
    std::string where = "hosts[" + std::to_string(i) + "]";
    const json& h = (*hosts)[i];
    if (!h.is_object()) return Bad(where, std::string("must be an object, not ") + h.type_name());
    std::string nqn;
    s = GetString(h, "nqn", where, "nqn", true, &nqn);
    if (!s.ok()) return s;
    HostCredentials creds;
    for (auto [key, field] : {std::pair{"dhchap_key", &creds.dhchap_key},
                              std::pair{"dhchap_ctrl_key", &creds.dhchap_ctrl_key},
                              std::pair{"dhchap_hash", &creds.dhchap_hash},
                              std::pair{"dhchap_dhgroup", &creds.dhchap_dhgroup}}) {
      s = GetString(h, key, where, key, false, field);
      if (!s.ok()) return s;
    }
    if (!creds.dhchap_key.empty() || !creds.dhchap_ctrl_key.empty()) host_creds[nqn] = creds;
  }

  std::vector<SubsystemConfig> subsystems;
  std::map<std::string, size_t> nqns;  // -> index
  const json* subs;
  s = GetArray(root, "subsystems", "configuration", "subsystems", &subs);
  if (!s.ok()) return s;
  for (size_t i = 0; i < subs->size(); i++) {
    std::string where = "subsystems[" + std::to_string(i) + "]";
    SubsystemConfig sub;
    s = ParseSubsystem((*subs)[i], where, &sub);
    if (!s.ok()) return s;
    auto [it, fresh] = nqns.emplace(sub.nqn, i);
    if (!fresh) {
      return Bad(where, "subsystem " + sub.nqn + " is also defined by subsystems[" +
                            std::to_string(it->second) + "]");
    }
    subsystems.push_back(std::move(sub));
  }
  std::set<std::string> nqn_set;
  for (const auto& [nqn, i] : nqns) nqn_set.insert(nqn);

  std::vector<PortConfig> ports;
  std::map<uint16_t, size_t> portids;  // -> index
  const json* jports;
  s = GetArray(root, "ports", "configuration", "ports", &jports);
  if (!s.ok()) return s;
  for (size_t i = 0; i < jports->size(); i++) {
    std::string where = "ports[" + std::to_string(i) + "]";
    PortConfig port;
    s = ParsePort((*jports)[i], where, nqn_set, &port);
    if (!s.ok()) return s;
    auto [it, fresh] = portids.emplace(port.portid, i);
    if (!fresh) {
      return Bad(where, "portid " + std::to_string(port.portid) + " is also used by ports[" +
                            std::to_string(it->second) + "]");
    }
    if (port.subsystems.empty()) continue;  // not enabled (see above)
    ports.push_back(std::move(port));
  }

  out->ports = std::move(ports);
  out->subsystems = std::move(subsystems);
  out->hosts = std::move(host_creds);
  return Status::OK();
}

}  // namespace

Status ParseNvmetcliConfig(const std::string& json_text, TargetConfig* out) {
  if (out == nullptr) return Status::InvalidArgument("no TargetConfig to fill");
  try {
    return Parse(json_text, out);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("cannot read the configuration: ") + e.what());
  } catch (...) {
    return Status::InvalidArgument("cannot read the configuration");
  }
}

}  // namespace nvmf::target
