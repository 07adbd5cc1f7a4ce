// nvmf-target: the NVMe over Fabrics (NVMe/TCP) target daemon.
//
// Serves one subsystem from command-line flags (--nqn, --ns, --allow-host, --listen), or
// everything an nvmetcli JSON file describes (--config). Prints one line to standard
// output when it serves ("nvmf-target: ready: ..."; scripts wait for the word "ready")
// and "nvmf-target: stopped" after SIGINT or SIGTERM, then exits 0. Log lines go to
// standard error with a time stamp. Bad configuration: one line on standard error and
// exit code 2.
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>

#include "nvmf/target.h"
#include "nvmf/target_control.h"
#include "target/backend.h"  // ParseSize, to report namespace sizes as the target reads them

namespace {

using nvmf::Status;
using nvmf::target::NamespaceConfig;
using nvmf::target::PortConfig;
using nvmf::target::SubsystemConfig;
using nvmf::target::ControlServer;
using nvmf::target::Target;
using nvmf::target::TargetConfig;

constexpr int kExitConfig = 2;
constexpr uint16_t kDefaultPort = 4420;
constexpr const char* kDefaultNqn = "nqn.2024-01.io.nvmf:target";
constexpr const char* kDefaultNs = "mem:256M";

// A configuration error: one line, exit code 2.
int Fail(const std::string& message) {
  std::fprintf(stderr, "nvmf-target: %s\n", message.c_str());
  return kExitConfig;
}

// "[TRTYPE:]ADDR:PORT", "[TRTYPE:][V6ADDR]:PORT", or an address alone (port 4420);
// TRTYPE is tcp (the default) or rdma.
bool ParseListen(const std::string& spec, PortConfig* port, std::string* error) {
  std::string host;
  std::string svc;
  std::string s = spec;
  port->trtype = nvmf::TransportType::kTcp;
  for (const char* prefix : {"tcp:", "rdma:"}) {
    const std::string p = prefix;
    if (s.size() >= p.size() && strncasecmp(s.c_str(), prefix, p.size()) == 0) {
      nvmf::ParseTransportType(p.substr(0, p.size() - 1), &port->trtype);
      s = s.substr(p.size());
      break;
    }
  }
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) {
      *error = "missing ']' after the IPv6 address";
      return false;
    }
    host = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') {
        *error = "expected ':PORT' after ']'";
        return false;
      }
      svc = s.substr(close + 2);
      if (svc.empty()) {
        *error = "missing port after ':'";
        return false;
      }
    }
    if (host.find(':') == std::string::npos) {
      *error = "brackets are for IPv6 addresses";
      return false;
    }
  } else {
    size_t colon = s.find(':');
    if (colon != std::string::npos && s.find(':', colon + 1) != std::string::npos) {
      *error = "put an IPv6 address in brackets, e.g. [::1]:4420";
      return false;
    }
    host = s.substr(0, colon);
    if (colon != std::string::npos) {
      svc = s.substr(colon + 1);
      if (svc.empty()) {
        *error = "missing port after ':'";
        return false;
      }
    }
  }
  if (host.empty()) {
    *error = "missing address (0.0.0.0 or [::] listen on every address)";
    return false;
  }
  uint32_t n = kDefaultPort;
  if (!svc.empty()) {
    n = 0;
    if (svc.size() > 5) n = 65536;
    for (char c : svc) {
      if (c < '0' || c > '9') {
        *error = "port '" + svc + "' is not a number";
        return false;
      }
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    if (n > 65535) {
      *error = "port " + svc + " is out of range (0-65535)";
      return false;
    }
  }
  port->addr = host;
  port->port = static_cast<uint16_t>(n);
  return true;
}

std::string FormatEndpoint(const std::string& addr, uint16_t port) {
  if (addr.find(':') != std::string::npos) return "[" + addr + "]:" + std::to_string(port);
  return addr + ":" + std::to_string(port);
}

// 256 MiB, 1.5 GiB, 4 KiB, 512 B.
std::string FormatBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (u < 5 && bytes >= (uint64_t{1} << (10 * (u + 1)))) u++;
  uint64_t unit = uint64_t{1} << (10 * u);
  char buf[48];
  if (bytes % unit == 0) {
    std::snprintf(buf, sizeof(buf), "%llu %s", static_cast<unsigned long long>(bytes / unit),
                  kUnits[u]);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", static_cast<double>(bytes) / static_cast<double>(unit),
                  kUnits[u]);
  }
  return buf;
}

// The size of a namespace's backend, as far as the spec tells it (0 when unknown).
uint64_t BackendSize(const std::string& spec) {
  size_t colon = spec.find(':');
  if (colon == std::string::npos) return 0;
  std::string kind = spec.substr(0, colon);
  std::string arg = spec.substr(colon + 1);
  uint64_t size = 0;
  if (kind == "mem" || kind == "null") {
    if (!nvmf::target::ParseSize(arg, &size)) return 0;
    return size;
  }
  if (kind == "file") {
    struct stat st;
    if (stat(arg.c_str(), &st) != 0) return 0;
    if (S_ISBLK(st.st_mode)) {
      int fd = open(arg.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return 0;
      if (ioctl(fd, BLKGETSIZE64, &size) != 0) size = 0;
      close(fd);
      return size;
    }
    return static_cast<uint64_t>(st.st_size);
  }
  return 0;
}

std::string ReadyLine(const TargetConfig& config, const std::vector<uint16_t>& bound) {
  std::string line = "nvmf-target: ready: ";
  if (config.subsystems.empty()) {
    line += "no subsystem";
  } else {
    for (size_t i = 0; i < config.subsystems.size(); i++) {
      if (i > 0) line += ", ";
      line += config.subsystems[i].nqn;
    }
  }
  line += " on ";
  for (size_t i = 0; i < config.ports.size(); i++) {
    if (i > 0) line += ", ";
    uint16_t port = i < bound.size() ? bound[i] : config.ports[i].port;
    if (config.ports[i].trtype != nvmf::TransportType::kTcp) {
      line += std::string(nvmf::TransportTypeName(config.ports[i].trtype)) + ":";
    }
    line += FormatEndpoint(config.ports[i].addr, port);
  }
  size_t namespaces = 0;
  uint64_t bytes = 0;
  for (const SubsystemConfig& sub : config.subsystems) {
    for (const NamespaceConfig& ns : sub.namespaces) {
      if (!ns.enabled) continue;
      namespaces++;
      bytes += BackendSize(ns.backend);
    }
  }
  line += " (" + std::to_string(namespaces) + (namespaces == 1 ? " namespace" : " namespaces");
  if (namespaces > 0) line += ", " + FormatBytes(bytes);
  line += ")";
  return line;
}

// "2024-05-01 12:34:56.789" in local time.
std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03d", static_cast<int>(ms));
  return buf;
}

void LogLine(const std::string& line) {
  static std::mutex mu;
  std::string out = Timestamp() + " nvmf-target: " + line + "\n";
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}

bool ReadFile(const std::string& path, std::string* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  *out = ss.str();
  return true;
}

struct Options {
  std::vector<std::string> listen;
  std::string nqn = kDefaultNqn;
  std::vector<std::string> namespaces;
  std::vector<std::string> allowed_hosts;
  std::string config_file;
  int threads = 1;
  bool poll = false;
  std::string mode = "adaptive";
  uint32_t queue_size = 128;
  uint32_t io_queues = 8;
  uint32_t in_capsule = 8192;
  bool quiet = false;
  // Limits (docs/reliability.md); defaults from TargetConfig.
  TargetConfig limits;
  std::string buffer_memory;
  std::string queue_buffer;
  uint32_t connect_timeout_ms = 0;
  std::string control_socket;
  std::string control_mode = "0600";
  // DH-HMAC-CHAP (docs/security.md): NQN=SECRET pairs.
  std::vector<std::string> dhchap_keys;
  std::vector<std::string> dhchap_ctrl_keys;
  std::string dhchap_hash = "hmac(sha256)";
  std::string dhchap_dhgroup = "null";
  std::string tls;
  std::vector<std::string> psks;
  std::string tls_derive = nvmf::kDefaultTlsDerivation;
};

// --dhchap-key / --dhchap-ctrl-key values (NQN=SECRET) into the hosts' credentials.
bool AddCredentials(const Options& o, TargetConfig* tc, std::string* error) {
  auto split = [error](const std::string& flag, const std::string& v, std::string* nqn,
                       std::string* secret) {
    const size_t eq = v.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
      *error = flag + " takes HOSTNQN=SECRET (SECRET: DHHC-1:..: or @FILE)";
      return false;
    }
    *nqn = v.substr(0, eq);
    *secret = v.substr(eq + 1);
    return true;
  };
  std::string nqn, secret;
  for (const std::string& v : o.dhchap_keys) {
    if (!split("--dhchap-key", v, &nqn, &secret)) return false;
    nvmf::target::HostCredentials& c = tc->hosts[nqn];
    c.dhchap_key = secret;
    c.dhchap_hash = o.dhchap_hash;
    c.dhchap_dhgroup = o.dhchap_dhgroup;
  }
  for (const std::string& v : o.dhchap_ctrl_keys) {
    if (!split("--dhchap-ctrl-key", v, &nqn, &secret)) return false;
    tc->hosts[nqn].dhchap_ctrl_key = secret;
  }
  return true;
}

// --psk HOSTNQN=KEY or HOSTNQN=@FILE into tc.tls_keys. Errors never quote the key.
bool ParsePsks(const std::vector<std::string>& psks, TargetConfig* tc, std::string* error) {
  for (const std::string& arg : psks) {
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      *error = "--psk takes HOSTNQN=KEY or HOSTNQN=@FILE";
      return false;
    }
    const std::string host = arg.substr(0, eq);
    std::string key, warning;
    Status s = nvmf::ReadSecretArgument(arg.substr(eq + 1), &key, &warning);
    if (s.ok()) s = nvmf::CheckTlsKey(key);
    if (!s.ok()) {
      *error = "--psk for " + host + ": " + s.message();
      return false;
    }
    if (!warning.empty()) LogLine("warning: " + warning);
    tc->tls_keys[host] = key;
  }
  return true;
}

int Run(int argc, char** argv) {
  Options o;
  CLI::App app{
      "nvmf-target: an NVMe over Fabrics target (NVMe/TCP).\n"
      "Serves one subsystem from the flags below, or what an nvmetcli JSON file (the file\n"
      "Linux's `nvmetcli saveconfig` writes) describes with --config. In that file a\n"
      "namespace's device path may also be a backend spec: mem:SIZE, null:SIZE, file:PATH.",
      "nvmf-target"};
  app.option_defaults()->always_capture_default();
  auto* listen = app.add_option("--listen", o.listen,
                                "Address and port to listen on (repeatable): [tcp:]ADDR:PORT for "
                                "NVMe/TCP, rdma:ADDR:PORT for NVMe/RDMA; [V6ADDR]:PORT for IPv6; "
                                "port 0 picks a free one")
                     ->type_name("[TRTYPE:]ADDR:PORT")
                     ->default_str("127.0.0.1:4420");
  auto* nqn = app.add_option("--nqn", o.nqn, "Subsystem NQN")->type_name("NQN");
  auto* ns = app.add_option("--ns", o.namespaces,
                            "A namespace (repeatable; NSIDs 1, 2, ... in order): mem:SIZE (RAM), "
                            "null:SIZE (no storage), file:PATH (file or block device); SIZE like "
                            "64M, 1G")
                 ->type_name("SPEC")
                 ->default_str(kDefaultNs);
  app.add_option("--dhchap-key", o.dhchap_keys,
                 "Require DH-HMAC-CHAP of this host (repeatable): HOSTNQN=SECRET, the secret as "
                 "DHHC-1:..: (nvme gen-dhchap-key, nvmfctl gen-dhchap-key) or @FILE (a file only "
                 "its owner may read; keeps it out of ps)")
      ->type_name("NQN=SECRET");
  app.add_option("--dhchap-ctrl-key", o.dhchap_ctrl_keys,
                 "The controller's secret for this host (repeatable), proved when the host asks "
                 "(bidirectional authentication): HOSTNQN=SECRET or HOSTNQN=@FILE")
      ->type_name("NQN=SECRET");
  app.add_option("--dhchap-hash", o.dhchap_hash,
                 "Hash to challenge with, when the host offers it: hmac(sha256), hmac(sha384), "
                 "hmac(sha512)")
      ->type_name("HASH");
  app.add_option("--dhchap-dhgroup", o.dhchap_dhgroup,
                 "Diffie-Hellman group required of hosts: null, ffdhe2048, ffdhe3072, ffdhe4096, "
                 "ffdhe6144, ffdhe8192")
      ->type_name("GROUP");
  auto* hosts = app.add_option("--allow-host", o.allowed_hosts,
                               "Allow this host NQN (repeatable); when given, only these hosts "
                               "may connect")
                    ->type_name("NQN")
                    ->default_str("any host");
  auto* config = app.add_option("--config", o.config_file,
                                "nvmetcli JSON configuration (instead of --listen, --nqn, --ns, "
                                "--allow-host)")
                     ->type_name("FILE");
  app.add_option("--threads", o.threads, "Event loop threads")->check(CLI::Range(1, 64));
  auto* mode = app.add_option("--mode", o.mode,
                              "How event loops wait: adaptive (poll while busy, sleep when idle), "
                              "poll (never sleep: full cores), wait (always sleep)")
                  ->check(CLI::IsMember({"adaptive", "poll", "wait"}));
  app.add_flag("--poll", o.poll, "Same as --mode poll")->excludes(mode);
  app.add_option("--queue-size", o.queue_size, "Largest queue size a host may ask for")
      ->check(CLI::Range(2u, 65535u));
  app.add_option("--io-queues", o.io_queues, "Most I/O queues per controller")
      ->check(CLI::Range(1u, 65535u));
  app.add_option("--in-capsule", o.in_capsule,
                 "In-capsule data size of I/O queues, in bytes (a multiple of 16, at most 1 MiB)")
      ->type_name("BYTES")
      ->check(CLI::Range(0u, 1u << 20));
  app.add_option("--control-socket", o.control_socket,
                 "Serve the control interface (JSON-RPC 2.0; nvmf-targetctl is its client) on this "
                 "Unix socket, e.g. /var/tmp/nvmf-target.sock")
      ->type_name("PATH");
  app.add_option("--control-socket-mode", o.control_mode, "Access mode of the control socket (octal)")
      ->type_name("MODE");
  auto* tls = app.add_option("--tls", o.tls,
                             "Secure channel on every port: required (TLS 1.3 only), optional "
                             "(TLS or plain), none (default; with --config, the file's "
                             "tsas/treq decide)")
                  ->check(CLI::IsMember({"required", "optional", "none"}));
  app.add_option("--psk", o.psks,
                 "A host's TLS PSK (repeatable): HOSTNQN=NVMeTLSkey-1:01:...: or "
                 "HOSTNQN=@FILE (the key is the file's first line; keeps it out of ps)")
      ->type_name("HOSTNQN=KEY");
  app.add_option("--tls-derive", o.tls_derive,
                 "How a PSK becomes the TLS PSK for identity version 0 hosts: nvme-cli "
                 "(as Linux's nvme-cli) or spec; version 1 identities show which, both work")
      ->check(CLI::IsMember({"nvme-cli", "spec"}));
  app.add_flag("--quiet", o.quiet, "Log nothing but the ready and stopped lines and errors");
  // Limits: what a peer can make the target hold. Each is logged when hit.
  TargetConfig& lim = o.limits;
  o.connect_timeout_ms = static_cast<uint32_t>(lim.connect_timeout.count());
  app.add_option("--max-connections", lim.max_connections,
                 "Most open connections; more are closed at once")
      ->check(CLI::Range(1u, 1u << 20));
  app.add_option("--max-controllers-per-host", lim.max_controllers_per_host,
                 "Most controllers (associations) one host NQN may hold; more Connects are "
                 "refused as Controller Busy")
      ->check(CLI::Range(1u, 65519u));
  app.add_option("--buffer-memory", o.buffer_memory,
                 "I/O buffer memory shared by all queues (write data until verified, "
                 "digest-covered read copies); commands wait for room when it is spent")
      ->type_name("SIZE")
      ->default_str("512M");
  app.add_option("--queue-buffer", o.queue_buffer, "Of which one queue may hold")
      ->type_name("SIZE")
      ->default_str("32M");
  app.add_option("--connect-timeout", o.connect_timeout_ms,
                 "Close a connection that sends no Connect within this many ms (0: never)");
  app.add_option("--discovery-kato", lim.discovery_kato_ms,
                 "Keep-alive timeout (ms) for discovery controllers whose host asks for none "
                 "(0: none)");
  app.add_option("--tcp-keepalive", lim.tcp_keepalive_s,
                 "TCP keepalive: idle seconds before probing a silent peer (0: off)");
  app.add_option("--mdts", lim.mdts, "Largest command: 2^MDTS x 4 KiB")->check(CLI::Range(1, 14));
  for (CLI::Option* opt : {listen, ns, hosts}) {
    opt->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  }
  (void)nqn;

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return Fail(std::string(e.what()) + " (see --help)");
  }

  TargetConfig tc = o.limits;
  tc.connect_timeout = std::chrono::milliseconds(o.connect_timeout_ms);
  for (auto [flag, text, out] : {std::tuple{"--buffer-memory", &o.buffer_memory, &tc.max_buffer_memory},
                                 std::tuple{"--queue-buffer", &o.queue_buffer, &tc.max_queue_buffer}}) {
    if (text->empty()) continue;
    uint64_t v = 0;
    if (!nvmf::target::ParseSize(*text, &v)) {
      return Fail(std::string(flag) + " " + *text + ": not a size (like 64M, 1G)");
    }
    *out = v;
  }
  tc.threads = o.threads;
  if (o.poll) o.mode = "poll";
  nvmf::ParseLoopMode(o.mode, &tc.mode);  // checked by the flag's validator
  tc.max_queue_size = static_cast<uint16_t>(o.queue_size);
  tc.max_io_queues = static_cast<uint16_t>(o.io_queues);
  if (o.in_capsule % 16 != 0) {
    return Fail("--in-capsule " + std::to_string(o.in_capsule) + " is not a multiple of 16");
  }
  tc.in_capsule_data = o.in_capsule;
  if (o.quiet) {
    tc.log = [](const std::string&) {};
  } else {
    tc.log = LogLine;
  }

  if (config->count() > 0) {
    for (CLI::Option* opt : {nqn, ns, hosts, listen}) {
      if (opt->count() > 0) {
        return Fail(opt->get_name() + " cannot be used with --config (the file says it)");
      }
    }
    std::string text, error;
    if (!ReadFile(o.config_file, &text, &error)) return Fail(error);
    Status s = nvmf::target::ParseNvmetcliConfig(text, &tc);
    if (!s.ok()) return Fail(o.config_file + ": " + s.message());
    if (tc.ports.empty()) {
      return Fail(o.config_file +
                  ": no port to listen on (a port listens once a subsystem is linked to it)");
    }
  } else {
    if (o.listen.empty()) o.listen.push_back("127.0.0.1:4420");
    uint16_t portid = 1;
    for (const std::string& l : o.listen) {
      PortConfig p;
      std::string error;
      if (!ParseListen(l, &p, &error)) return Fail("--listen " + l + ": " + error);
      p.portid = portid++;
      tc.ports.push_back(p);
    }
    SubsystemConfig sub;
    sub.nqn = o.nqn;
    if (o.namespaces.empty()) o.namespaces.push_back(kDefaultNs);
    for (const std::string& spec : o.namespaces) {
      NamespaceConfig nc;
      nc.backend = spec;
      sub.namespaces.push_back(nc);
    }
    if (!o.allowed_hosts.empty()) {
      sub.allow_any_host = false;
      sub.allowed_hosts = o.allowed_hosts;
    }
    tc.subsystems.push_back(sub);
  }

  {
    std::string error;
    if (!AddCredentials(o, &tc, &error)) return Fail(error);
  }
  if (tls->count() > 0) {
    nvmf::SecureChannel sc = nvmf::SecureChannel::kNone;
    nvmf::ParseSecureChannel(o.tls, &sc);  // checked by the flag's validator
    for (PortConfig& p : tc.ports) p.tls = sc;
  }
  {
    std::string error;
    if (!ParsePsks(o.psks, &tc, &error)) return Fail(error);
  }
  tc.tls_derivation = o.tls_derive;

  // Every thread the target starts inherits this mask, so that the signals reach only
  // sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  int rc = pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  if (rc != 0) return Fail(std::string("cannot block signals: ") + std::strerror(rc));
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<Target> target;
  Status s = Target::Start(tc, &target);
  if (!s.ok()) return Fail("cannot start: " + s.message());

  std::unique_ptr<ControlServer> control;
  if (!o.control_socket.empty()) {
    char* end = nullptr;
    const unsigned long m = std::strtoul(o.control_mode.c_str(), &end, 8);
    if (o.control_mode.empty() || *end != '\0' || m > 0777) {
      target->Stop();
      return Fail("--control-socket-mode must be an octal mode such as 0600, not '" + o.control_mode + "'");
    }
    s = ControlServer::Start(target.get(), o.control_socket, static_cast<mode_t>(m), &control);
    if (!s.ok()) {
      target->Stop();
      return Fail("cannot start the control interface: " + s.ToString());
    }
    if (!o.quiet) LogLine("control interface on " + o.control_socket);
  }

  std::string ready = ReadyLine(tc, target->ports());
  std::fprintf(stdout, "%s\n", ready.c_str());
  std::fflush(stdout);

  int sig = 0;
  for (;;) {
    rc = sigwait(&stop_signals, &sig);
    if (rc == 0) break;
    if (rc != EINTR) {
      LogLine(std::string("sigwait: ") + std::strerror(rc) + "; stopping");
      break;
    }
  }
  if (!o.quiet && sig != 0) LogLine(std::string("got ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
  control.reset();  // no more changes while the target stops
  target->Stop();
  target.reset();
  std::fprintf(stdout, "nvmf-target: stopped\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    return Fail(std::string("error: ") + e.what());
  } catch (...) {
    return Fail("unexpected error");
  }
}
