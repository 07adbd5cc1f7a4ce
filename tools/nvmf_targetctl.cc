// nvmf-targetctl: changes a running nvmf-target through its control socket
// (--control-socket; JSON-RPC 2.0, include/nvmf/target_control.h), for an administrator
// who should not have to write JSON.
//
//   nvmf-targetctl show
//   nvmf-targetctl subsys-add NQN [--host HOSTNQN]... [--serial S] [--model M] | subsys-remove NQN
//   nvmf-targetctl ns-add NQN BACKEND [--nsid N] [--uuid UUID]
//   nvmf-targetctl ns-remove NQN NSID
//   nvmf-targetctl ns-resize NQN NSID SIZE
//   nvmf-targetctl host-add NQN HOSTNQN | host-remove NQN HOSTNQN | allow-any-host NQN yes|no
//   nvmf-targetctl listener-add PORTID [tcp|rdma:]ADDR:PORT [--tls none|optional|required] | listener-remove PORTID
//   nvmf-targetctl ana-state PORTID STATE [--group G]
//   nvmf-targetctl save PATH
//   nvmf-targetctl call METHOD [PARAMS-JSON]
//
// Exit status: 0 done, 1 the target refused (its message is printed), 2 usage, 3 the
// socket could not be reached or answered nonsense.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

using json = nlohmann::json;

constexpr const char* kDefaultSocket = "/var/tmp/nvmf-target.sock";

[[noreturn]] void Die(int code, const std::string& msg) {
  std::fprintf(stderr, "nvmf-targetctl: %s\n", msg.c_str());
  std::exit(code);
}

// One request, one response line.
json Call(const std::string& path, const std::string& method, const json& params) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) Die(2, "socket path too long: " + path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Die(3, "cannot reach the target's control socket " + path + ": " + std::strerror(errno) +
               " (is nvmf-target running with --control-socket " + path + "?)");
  }
  const std::string req = json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}}.dump() + "\n";
  for (size_t done = 0; done < req.size();) {
    ssize_t n = send(fd, req.data() + done, req.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Die(3, std::string("sending the request: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  std::string in;
  char buf[65536];
  while (in.find('\n') == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 60000) == 0) Die(3, "no answer from the target within 60 s");
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Die(3, "the target closed the control connection without an answer");
    in.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  json resp;
  try {
    resp = json::parse(in.substr(0, in.find('\n')));
  } catch (const json::exception&) {
    Die(3, "the target's answer is not JSON");
  }
  if (resp.contains("error")) {
    const json& e = resp["error"];
    Die(1, e.value("message", std::string("error")) + " (" + std::to_string(e.value("code", 0)) + ")");
  }
  return resp.value("result", json());
}

void Show(const json& subs) {
  for (const json& s : subs) {
    std::printf("%s\n", s.value("nqn", "").c_str());
    std::printf("  serial %s, model %s\n", s.value("serial", "").c_str(), s.value("model", "").c_str());
    if (s.value("allow_any_host", false)) {
      std::printf("  hosts: any\n");
    } else {
      std::string hosts;
      for (const json& h : s["hosts"]) hosts += " " + h.get<std::string>();
      std::printf("  hosts:%s\n", hosts.empty() ? " none" : hosts.c_str());
    }
    if (s["namespaces"].empty()) std::printf("  no namespaces\n");
    for (const json& n : s["namespaces"]) {
      std::printf("  ns %-4u %-40s uuid %s\n", n.value("nsid", 0u), n.value("backend", "").c_str(),
                  n.value("uuid", "").c_str());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nvmf-targetctl: change a running nvmf-target through its control socket", "nvmf-targetctl"};
  std::string sock = kDefaultSocket;
  app.add_option("-s,--socket", sock, "The target's --control-socket")->capture_default_str();
  app.require_subcommand(1);
  std::string nqn, backend, uuid, host, size, path, method, params, yesno, listen, state;
  uint32_t nsid = 0, group = 1, ana_group = 1;
  uint16_t portid = 0;

  auto* show = app.add_subcommand("show", "subsystems, their namespaces and allowed hosts");
  auto* ports = app.add_subcommand("ports", "the ports the target listens on");
  std::vector<std::string> hosts;
  std::string serial, model = "nvmf";
  auto* sa = app.add_subcommand("subsys-add", "add a subsystem (any host may connect unless --host is given)");
  sa->add_option("nqn", nqn, "subsystem NQN")->required();
  sa->add_option("--host", hosts, "a host NQN allowed to connect (repeat for more)");
  sa->add_option("--serial", serial, "serial number (default: derived from the NQN)");
  sa->add_option("--model", model, "model number")->capture_default_str();
  auto* sr = app.add_subcommand("subsys-remove", "remove a subsystem: its controllers close, its namespaces go");
  sr->add_option("nqn", nqn, "subsystem NQN")->required();
  auto* add = app.add_subcommand("ns-add", "add a namespace (hosts are told: Namespace Attribute Changed)");
  add->add_option("nqn", nqn, "subsystem NQN")->required();
  add->add_option("backend", backend, "mem:SIZE, null:SIZE or file:PATH")->required();
  add->add_option("--nsid", nsid, "the namespace ID (default: the lowest free one)");
  add->add_option("--uuid", uuid, "the namespace UUID (default: derived from NQN and NSID)");
  add->add_option("--ana-group", ana_group, "its ANA group (default 1)");
  auto* rm = app.add_subcommand("ns-remove", "remove a namespace (its running commands finish first)");
  rm->add_option("nqn", nqn, "subsystem NQN")->required();
  rm->add_option("nsid", nsid, "namespace ID")->required();
  auto* rs = app.add_subcommand("ns-resize", "resize a null: or file namespace");
  rs->add_option("nqn", nqn, "subsystem NQN")->required();
  rs->add_option("nsid", nsid, "namespace ID")->required();
  rs->add_option("size", size, "new size: bytes, or 64M, 2G, ...")->required();
  auto* ha = app.add_subcommand("host-add", "allow a host NQN to connect to a subsystem");
  ha->add_option("nqn", nqn, "subsystem NQN")->required();
  ha->add_option("host", host, "host NQN")->required();
  auto* hr = app.add_subcommand("host-remove", "stop allowing a host NQN (its connections stay)");
  hr->add_option("nqn", nqn, "subsystem NQN")->required();
  hr->add_option("host", host, "host NQN")->required();
  auto* any = app.add_subcommand("allow-any-host", "let any host connect (yes) or only the listed ones (no)");
  any->add_option("nqn", nqn, "subsystem NQN")->required();
  any->add_option("allow", yesno, "yes or no")->required()->check(CLI::IsMember({"yes", "no"}));
  auto* la = app.add_subcommand("listener-add", "listen on one more port (discovery hosts are told)");
  la->add_option("portid", portid, "port ID (as in nvmetcli)")->required();
  la->add_option("address", listen, "[tcp:|rdma:]ADDR:PORT (PORT 0: a free one)")->required();
  std::string tls = "none";
  la->add_option("--tls", tls, "secure channel: none, optional or required (keys: nvmf-target --psk)")
      ->check(CLI::IsMember({"none", "optional", "required"}));
  auto* lr = app.add_subcommand("listener-remove", "stop listening on a port and close its connections");
  lr->add_option("portid", portid, "port ID")->required();
  auto* ana = app.add_subcommand("ana-state", "set an ANA group's state through a port (hosts are told)");
  ana->add_option("portid", portid, "port ID")->required();
  ana->add_option("state", state, "optimized, non-optimized, inaccessible, persistent-loss or change")
      ->required()
      ->check(CLI::IsMember({"optimized", "non-optimized", "inaccessible", "persistent-loss", "change"}));
  ana->add_option("--group", group, "ANA group (default 1)");
  auto* save = app.add_subcommand("save", "write the running configuration as nvmetcli JSON (for --config)");
  save->add_option("path", path, "file to write")->required();
  auto* call = app.add_subcommand("call", "call any method with JSON parameters; prints the result");
  call->add_option("method", method, "method name")->required();
  call->add_option("params", params, "parameters, a JSON object");
  CLI11_PARSE(app, argc, argv);

  if (show->parsed()) {
    Show(Call(sock, "get_subsystems", json::object()));
  } else if (ports->parsed()) {
    for (const json& p : Call(sock, "get_ports", json::object())) {
      std::string states;
      for (const auto& [g, st] : p["ana_states"].items()) states += " group " + g + " " + st.get<std::string>();
      std::printf("port %u: %s %s:%s, ANA:%s\n", p.value("portid", 0u), p.value("trtype", "").c_str(),
                  p.value("traddr", "").c_str(), p.value("trsvcid", "").c_str(), states.c_str());
    }
  } else if (sa->parsed()) {
    json p = {{"nqn", nqn}, {"model", model}, {"allow_any_host", hosts.empty()}, {"hosts", hosts}};
    if (!serial.empty()) p["serial"] = serial;
    Call(sock, "add_subsystem", p);
    std::printf("subsystem %s added\n", nqn.c_str());
  } else if (sr->parsed()) {
    Call(sock, "remove_subsystem", {{"nqn", nqn}});
    std::printf("subsystem %s removed\n", nqn.c_str());
  } else if (add->parsed()) {
    json p = {{"nqn", nqn}, {"backend", backend}};
    if (nsid != 0) p["nsid"] = nsid;
    if (!uuid.empty()) p["uuid"] = uuid;
    if (ana_group != 1) p["ana_group"] = ana_group;
    json r = Call(sock, "add_namespace", p);
    std::printf("namespace %u added to %s\n", r.value("nsid", 0u), nqn.c_str());
  } else if (rm->parsed()) {
    Call(sock, "remove_namespace", {{"nqn", nqn}, {"nsid", nsid}});
    std::printf("namespace %u removed from %s\n", nsid, nqn.c_str());
  } else if (rs->parsed()) {
    Call(sock, "resize_namespace", {{"nqn", nqn}, {"nsid", nsid}, {"size", size}});
    std::printf("namespace %u of %s resized to %s\n", nsid, nqn.c_str(), size.c_str());
  } else if (ha->parsed()) {
    Call(sock, "add_host", {{"nqn", nqn}, {"host", host}});
    std::printf("%s may connect to %s\n", host.c_str(), nqn.c_str());
  } else if (hr->parsed()) {
    Call(sock, "remove_host", {{"nqn", nqn}, {"host", host}});
    std::printf("%s may no longer connect to %s\n", host.c_str(), nqn.c_str());
  } else if (any->parsed()) {
    Call(sock, "set_allow_any_host", {{"nqn", nqn}, {"allow", yesno == "yes"}});
    std::printf("%s: %s\n", nqn.c_str(), yesno == "yes" ? "any host may connect" : "only listed hosts may connect");
  } else if (la->parsed()) {
    std::string trtype = "tcp", rest = listen;
    if (rest.rfind("tcp:", 0) == 0 || rest.rfind("rdma:", 0) == 0) {
      trtype = rest.substr(0, rest.find(':'));
      rest = rest.substr(rest.find(':') + 1);
    }
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos) Die(2, "address must be [tcp:|rdma:]ADDR:PORT");
    std::string addr = rest.substr(0, colon);
    if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']') addr = addr.substr(1, addr.size() - 2);
    unsigned long port = 0;
    try {
      port = std::stoul(rest.substr(colon + 1));
    } catch (const std::exception&) {
      Die(2, "bad port in " + listen);
    }
    if (port > 65535) Die(2, "bad port in " + listen);
    json r = Call(sock, "add_listener",
                  {{"portid", portid}, {"trtype", trtype}, {"traddr", addr}, {"trsvcid", port}, {"tls", tls}});
    std::printf("port %u listening on %s %s:%s\n", portid, trtype.c_str(), addr.c_str(),
                r.value("trsvcid", "").c_str());
  } else if (lr->parsed()) {
    Call(sock, "remove_listener", {{"portid", portid}});
    std::printf("port %u removed\n", portid);
  } else if (ana->parsed()) {
    Call(sock, "set_ana_state", {{"portid", portid}, {"ana_group", group}, {"state", state}});
    std::printf("port %u: ANA group %u %s\n", portid, group, state.c_str());
  } else if (save->parsed()) {
    json r = Call(sock, "save", {{"path", path}});
    std::printf("saved to %s\n", r.value("path", path).c_str());
  } else if (call->parsed()) {
    json p = json::object();
    if (!params.empty()) {
      try {
        p = json::parse(params);
      } catch (const json::exception&) {
        Die(2, "params must be a JSON object");
      }
    }
    std::printf("%s\n", Call(sock, method, p).dump(2).c_str());
  }
  return 0;
}
