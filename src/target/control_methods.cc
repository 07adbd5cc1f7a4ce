// HandleControlRequest: the JSON-RPC methods of the control interface, each a thin layer
// over one of Target's reconfiguration calls.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nvmf/spec/admin.h"
#include "nvmf/target_control.h"
#include "target/backend.h"
#include "target/reconfigure.h"

namespace nvmf::target {
namespace {

using json = nlohmann::json;

constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;

// A failed call: its JSON-RPC code and message.
struct Failure {
  int code;
  std::string message;
};

int CodeOf(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument: return kInvalidParams;
    case Status::Code::kNotFound: return -32001;
    case Status::Code::kAlreadyExists: return -32002;
    case Status::Code::kNotSupported: return -32003;
    default: return -32000;
  }
}

// Parameter access with errors that name the parameter.
class Params {
 public:
  explicit Params(const json& p) : p_(p) {}
  std::string String(const char* key) const {
    const json* v = Find(key);
    if (v == nullptr) throw Failure{kInvalidParams, std::string("missing parameter \"") + key + "\""};
    if (!v->is_string()) throw Failure{kInvalidParams, std::string("\"") + key + "\" must be a string"};
    return v->get<std::string>();
  }
  std::string String(const char* key, const std::string& dflt) const {
    return Find(key) == nullptr ? dflt : String(key);
  }
  uint64_t Uint(const char* key, uint64_t max, bool required = true, uint64_t dflt = 0) const {
    const json* v = Find(key);
    if (v == nullptr) {
      if (required) throw Failure{kInvalidParams, std::string("missing parameter \"") + key + "\""};
      return dflt;
    }
    if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
      throw Failure{kInvalidParams,
                    std::string("\"") + key + "\" must be a whole number from 0 to " + std::to_string(max)};
    }
    return v->get<uint64_t>();
  }
  bool Bool(const char* key, bool dflt) const { return Find(key) == nullptr ? dflt : Bool(key); }
  std::vector<std::string> Strings(const char* key) const {
    const json* v = Find(key);
    if (v == nullptr) return {};
    std::vector<std::string> out;
    if (v->is_array()) {
      for (const json& e : *v) {
        if (!e.is_string()) break;
        out.push_back(e.get<std::string>());
      }
      if (out.size() == v->size()) return out;
    }
    throw Failure{kInvalidParams, std::string("\"") + key + "\" must be a list of strings"};
  }
  bool Bool(const char* key) const {
    const json* v = Find(key);
    if (v == nullptr) throw Failure{kInvalidParams, std::string("missing parameter \"") + key + "\""};
    if (!v->is_boolean()) throw Failure{kInvalidParams, std::string("\"") + key + "\" must be true or false"};
    return v->get<bool>();
  }
  // A size: bytes as a number, or text such as "2G".
  uint64_t Size(const char* key) const {
    const json* v = Find(key);
    if (v != nullptr && v->is_string()) {
      uint64_t n = 0;
      if (!ParseSize(v->get<std::string>(), &n)) {
        throw Failure{kInvalidParams, std::string("\"") + key + "\" is not a size (such as 4096, 64M, 2G)"};
      }
      return n;
    }
    return Uint(key, UINT64_MAX);
  }

 private:
  const json* Find(const char* key) const {
    auto it = p_.find(key);
    return it == p_.end() || it->is_null() ? nullptr : &*it;
  }
  const json& p_;
};

void Check(const Status& s) {
  if (!s.ok()) throw Failure{CodeOf(s), s.message()};
}

json SubsystemsJson(const TargetConfig& c) {
  json subs = json::array();
  for (const SubsystemConfig& s : c.subsystems) {
    json nss = json::array();
    for (const NamespaceConfig& n : s.namespaces) {
      nss.push_back({{"nsid", n.nsid}, {"backend", n.backend}, {"uuid", n.uuid}, {"ana_group", n.ana_group}});
    }
    subs.push_back({{"nqn", s.nqn},
                    {"serial", s.serial},
                    {"model", s.model},
                    {"allow_any_host", s.allow_any_host},
                    {"hosts", s.allowed_hosts},
                    {"namespaces", nss}});
  }
  return subs;
}

json PortsJson(const TargetConfig& c) {
  json ports = json::array();
  for (const PortConfig& p : c.ports) {
    json ana = json::object();
    for (uint32_t g = 1; g <= kMaxAnaGroups; g++) {
      auto it = p.ana_states.find(g);
      if (it != p.ana_states.end() || g == 1) {
        ana[std::to_string(g)] = AnaStateName(it == p.ana_states.end() ? uint8_t{spec::kAnaOptimized} : it->second);
      }
    }
    ports.push_back({{"portid", p.portid},
                     {"trtype", TransportTypeName(p.trtype)},
                     {"traddr", p.addr},
                     {"trsvcid", std::to_string(p.port)},
                     {"subsystems", p.subsystems},
                     {"tls", SecureChannelName(p.tls)},
                     {"ana_states", ana}});
  }
  return ports;
}

// Writes the file whole or not at all: a temporary file beside it, then a rename.
void WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Failure{-32000, "cannot write " + tmp + ": " + std::strerror(errno)};
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      close(fd);
      unlink(tmp.c_str());
      throw Failure{-32000, "cannot write " + tmp + ": " + std::strerror(err)};
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    throw Failure{-32000, "cannot write " + path + ": " + std::strerror(err)};
  }
}

using Method = std::function<json(Target*, const Params&)>;

const std::map<std::string, Method>& Methods() {
  static const std::map<std::string, Method> methods = {
      {"get_subsystems",
       [](Target* t, const Params&) { return SubsystemsJson(t->RunningConfig()); }},
      {"get_ports", [](Target* t, const Params&) { return PortsJson(t->RunningConfig()); }},
      {"get_config",
       [](Target* t, const Params&) { return json::parse(FormatNvmetcliConfig(t->RunningConfig())); }},
      {"save",
       [](Target* t, const Params& p) {
         const std::string path = p.String("path");
         WriteFileAtomically(path, FormatNvmetcliConfig(t->RunningConfig()));
         return json{{"path", path}};
       }},
      {"add_namespace",
       [](Target* t, const Params& p) {
         NamespaceConfig nc;
         nc.backend = p.String("backend");
         nc.uuid = p.String("uuid", "");
         nc.ana_group = static_cast<uint32_t>(p.Uint("ana_group", kMaxAnaGroups, false, 1));
         uint32_t nsid = static_cast<uint32_t>(p.Uint("nsid", 0xFFFFFFFFu, false, 0));
         Check(t->AddNamespace(p.String("nqn"), nc, &nsid));
         return json{{"nsid", nsid}};
       }},
      {"remove_namespace",
       [](Target* t, const Params& p) {
         Check(t->RemoveNamespace(p.String("nqn"), static_cast<uint32_t>(p.Uint("nsid", 0xFFFFFFFEu))));
         return json(true);
       }},
      {"resize_namespace",
       [](Target* t, const Params& p) {
         Check(t->ResizeNamespace(p.String("nqn"), static_cast<uint32_t>(p.Uint("nsid", 0xFFFFFFFEu)),
                                  p.Size("size")));
         return json(true);
       }},
      {"add_host",
       [](Target* t, const Params& p) {
         Check(t->AddHost(p.String("nqn"), p.String("host")));
         return json(true);
       }},
      {"remove_host",
       [](Target* t, const Params& p) {
         Check(t->RemoveHost(p.String("nqn"), p.String("host")));
         return json(true);
       }},
      {"add_subsystem",
       [](Target* t, const Params& p) {
         SubsystemConfig sc;
         sc.nqn = p.String("nqn");
         sc.serial = p.String("serial", "");
         sc.model = p.String("model", "nvmf");
         sc.allow_any_host = p.Bool("allow_any_host", true);
         sc.allowed_hosts = p.Strings("hosts");
         Check(t->AddSubsystem(sc));
         return json(true);
       }},
      {"remove_subsystem",
       [](Target* t, const Params& p) {
         Check(t->RemoveSubsystem(p.String("nqn")));
         return json(true);
       }},
      {"add_listener",
       [](Target* t, const Params& p) {
         PortConfig pc;
         pc.portid = static_cast<uint16_t>(p.Uint("portid", 65535));
         if (!ParseTransportType(p.String("trtype", "tcp"), &pc.trtype)) {
           throw Failure{kInvalidParams, "\"trtype\" must be tcp or rdma"};
         }
         pc.addr = p.String("traddr");
         pc.port = static_cast<uint16_t>(p.Uint("trsvcid", 65535));
         if (!ParseSecureChannel(p.String("tls", "none"), &pc.tls)) {
           throw Failure{kInvalidParams, "\"tls\" must be none, optional or required"};
         }
         uint16_t bound = 0;
         Check(t->AddListener(pc, &bound));
         return json{{"portid", pc.portid}, {"trsvcid", std::to_string(bound)}};
       }},
      {"remove_listener",
       [](Target* t, const Params& p) {
         Check(t->RemoveListener(static_cast<uint16_t>(p.Uint("portid", 65535))));
         return json(true);
       }},
      {"set_ana_state",
       [](Target* t, const Params& p) {
         uint8_t st = 0;
         if (!ParseAnaState(p.String("state"), &st)) {
           throw Failure{kInvalidParams,
                         "\"state\" must be optimized, non-optimized, inaccessible, persistent-loss or change"};
         }
         Check(t->SetAnaState(static_cast<uint16_t>(p.Uint("portid", 65535)),
                              static_cast<uint32_t>(p.Uint("ana_group", kMaxAnaGroups, false, 1)), st));
         return json(true);
       }},
      {"set_allow_any_host",
       [](Target* t, const Params& p) {
         Check(t->SetAllowAnyHost(p.String("nqn"), p.Bool("allow")));
         return json(true);
       }},
  };
  return methods;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string ErrorResponse(const json& id, int code, const std::string& message) {
  return Dump({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
}

}  // namespace

std::string HandleControlRequest(Target* target, const std::string& line) {
  json req;
  try {
    req = json::parse(line);
  } catch (const json::exception&) {
    return ErrorResponse(nullptr, kParseError, "parse error: the request is not JSON");
  }
  if (req.is_array()) return ErrorResponse(nullptr, kInvalidRequest, "batches are not supported");
  if (!req.is_object()) return ErrorResponse(nullptr, kInvalidRequest, "a request is a JSON object");
  json id = nullptr;
  const bool notification = !req.contains("id");
  if (!notification) {
    id = req["id"];
    if (!id.is_null() && !id.is_string() && !id.is_number()) {
      return ErrorResponse(nullptr, kInvalidRequest, "\"id\" must be a string or a number");
    }
  }
  try {
    if (req.value("jsonrpc", json()) != "2.0") throw Failure{kInvalidRequest, "\"jsonrpc\" must be \"2.0\""};
    auto m = req.find("method");
    if (m == req.end() || !m->is_string()) throw Failure{kInvalidRequest, "\"method\" must be a string"};
    const auto& methods = Methods();
    auto it = methods.find(m->get<std::string>());
    if (it == methods.end()) throw Failure{kMethodNotFound, "no method \"" + m->get<std::string>() + "\""};
    json params = json::object();
    if (auto p = req.find("params"); p != req.end() && !p->is_null()) {
      if (!p->is_object()) throw Failure{kInvalidParams, "\"params\" must be an object"};
      params = *p;
    }
    json result = it->second(target, Params(params));
    if (notification) return "";
    return Dump(json{{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
  } catch (const Failure& f) {
    if (notification) return "";
    return ErrorResponse(id, f.code, f.message);
  } catch (const std::exception& e) {
    if (notification) return "";
    return ErrorResponse(id, -32000, e.what());
  }
}

}  // namespace nvmf::target
