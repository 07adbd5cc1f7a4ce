// The NVMe-oF target: subsystems with namespaces and allowed hosts, served over NVMe/TCP
// and NVMe/RDMA (each port names its transport) by a dynamic-controller-model controller per association, plus the discovery
// subsystem (nqn.2014-08.org.nvmexpress.discovery) listing what this target serves.
//
// Threads: Start() runs `threads` event loops, one thread each. Listeners accept on the
// first loop and hand each negotiated connection to a loop in turn; every queue pair
// then lives on its loop. An association's admin queue and I/O queues may live on
// different loops; the controller state they share is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nvmf/event_loop.h"
#include "nvmf/status.h"
#include "nvmf/transport.h"

namespace nvmf::target {

// Asymmetric Namespace Access: each namespace belongs to an ANA group (1..kMaxAnaGroups);
// each port gives each group a state (spec::AnaState; optimized unless set otherwise).
inline constexpr uint32_t kMaxAnaGroups = 32;

struct NamespaceConfig {
  uint32_t nsid = 0;          // 0: the next free one
  std::string backend;        // "mem:64M", "null:1G", "file:/path"
  std::string uuid;           // optional, 36-character text form; derived when empty
  bool enabled = true;
  uint32_t ana_group = 1;
};

struct SubsystemConfig {
  std::string nqn;
  std::string serial;         // derived from the NQN when empty
  std::string model = "nvmf";
  std::vector<NamespaceConfig> namespaces;
  bool allow_any_host = true;
  std::vector<std::string> allowed_hosts;  // host NQNs, when !allow_any_host
};

struct PortConfig {
  uint16_t portid = 1;
  std::string addr = "127.0.0.1";
  uint16_t port = 4420;       // 0: a free one (see Target::ports)
  std::vector<std::string> subsystems;  // NQNs exposed here; empty: all of them
  TransportType trtype = TransportType::kTcp;
  std::map<uint32_t, uint8_t> ana_states;  // ANA group -> spec::AnaState; absent: optimized
  // Secure channel (NVMe/TCP TLS 1.3 with PSKs): not offered, optional or required. The
  // discovery log's TREQ and TSAS say it; TargetConfig::tls_keys holds the keys.
  SecureChannel tls = SecureChannel::kNone;
};

// DH-HMAC-CHAP credentials of one host NQN (docs/security.md). Each secret is in the
// DHHC-1 representation, or "@PATH" of a file only its owner may read that holds one.
// A host with a dhchap_key must authenticate on every queue of every I/O subsystem
// (never on the discovery subsystem), whether or not the subsystem allows any host.
struct HostCredentials {
  std::string dhchap_key;       // the host proves it knows this
  std::string dhchap_ctrl_key;  // the controller proves it when the host asks (optional)
  std::string dhchap_hash = "hmac(sha256)";  // preferred; else the first the host offers
  std::string dhchap_dhgroup = "null";       // null, ffdhe2048 ... ffdhe8192
};

struct TargetConfig {
  std::vector<PortConfig> ports;
  std::vector<SubsystemConfig> subsystems;
  std::map<std::string, HostCredentials> hosts;  // by host NQN
  int threads = 1;
  // How the event loops wait (nvmf/event_loop.h): adaptive polls while there is work and
  // sleeps when idle; poll never sleeps; wait always sleeps.
  EventLoop::Mode mode = EventLoop::Mode::kAdaptive;
  uint16_t max_queue_size = 128;
  uint16_t max_io_queues = 8;
  uint32_t in_capsule_data = 8192;  // I/O queue in-capsule data size (IOCCSZ), every transport
  uint32_t maxh2cdata = 131072;
  uint8_t mdts = 8;             // 2^mdts * 4 KiB = 1 MiB per command
  bool c2h_success = false;     // end reads with the C2HData SUCCESS flag

  // Limits: what a peer can make the target hold (docs/reliability.md). Each is logged
  // when hit.
  uint32_t max_connections = 4096;       // open connections, handshaking or connected
  uint32_t max_controllers_per_host = 128;  // associations per host NQN
  // I/O buffer memory (write data until it is verified and applied, digest-covered read
  // snapshots, file backend bounce buffers), shared by the loops; a command that does not
  // fit waits for room.
  uint64_t max_buffer_memory = 512ull << 20;
  uint64_t max_queue_buffer = 32ull << 20;  // of which one queue may hold
  // A connection that sends no Connect within this is closed (0: never).
  std::chrono::milliseconds connect_timeout{10000};
  // Keep-alive for discovery controllers whose host asked for none (KATO 0), as Linux's
  // nvmet does (0: none).
  uint32_t discovery_kato_ms = 120000;
  // TCP keepalive on every connection: idle seconds before probing (0: off).
  uint32_t tcp_keepalive_s = 60;
  // TLS PSKs by host NQN, in the interchange format (secrets: never logged), for ports
  // with a secure channel; and how they become TLS PSKs for identity version 0 hosts
  // (nvmf/secure_channel.h: "nvme-cli" or "spec"; version 1 identities say which).
  std::map<std::string, std::string> tls_keys;
  std::string tls_derivation = kDefaultTlsDerivation;
  // Receives log lines (connections, errors); null: standard error.
  std::function<void(const std::string&)> log;
};

class Target {
 public:
  // Opens the backends, binds every port, starts the loops. A clear error for bad
  // configuration (duplicate NQNs or NSIDs, a bad backend spec, a port in use, ...).
  static Status Start(const TargetConfig& config, std::unique_ptr<Target>* out);
  virtual ~Target() = default;
  // Closes every connection and listener and joins the loops. Idempotent.
  virtual void Stop() = 0;
  // The bound ports, in configuration order (useful with port 0).
  virtual std::vector<uint16_t> ports() const = 0;
  // Number of live controllers (associations), for tests and logs.
  virtual size_t controllers() const = 0;
  // Connections handed to a loop and not yet fully released (every request finished):
  // returns to zero once all hosts are gone, whatever they left half done.
  virtual size_t connections() const = 0;

  // Changes while the target serves. Any thread but a loop's; changes are serialised.
  // A subsystem more: served on every port (ports that list their subsystems get it
  // added); discovery controllers get a Discovery Log Page Change event.
  virtual Status AddSubsystem(const SubsystemConfig& subsystem) = 0;
  // Closes its controllers (their hosts see the connections end), removes its namespaces
  // (after their last commands) and takes it off the ports and the discovery log.
  virtual Status RemoveSubsystem(const std::string& subnqn) = 0;
  // Each applies whole or returns an error (kNotFound, kAlreadyExists, kInvalidArgument,
  // kNotSupported) and changes nothing. I/O on other namespaces and connections goes on
  // undisturbed; controllers that asked for them get asynchronous events (Namespace
  // Attribute Changed with the Changed Namespace List; Discovery Log Page Change).
  //   *nsid: in, the ID wanted (0: the lowest free one); out, the ID given.
  virtual Status AddNamespace(const std::string& subnqn, const NamespaceConfig& ns, uint32_t* nsid) = 0;
  // Commands on the namespace from then on fail with Invalid Namespace; those already
  // running finish before its backend closes.
  virtual Status RemoveNamespace(const std::string& subnqn, uint32_t nsid) = 0;
  // null: and regular-file namespaces (a file grows or shrinks); others: kNotSupported.
  virtual Status ResizeNamespace(const std::string& subnqn, uint32_t nsid, uint64_t bytes) = 0;
  // Access is checked at Connect: a host that loses it keeps the controllers it has.
  virtual Status AddHost(const std::string& subnqn, const std::string& hostnqn) = 0;
  virtual Status RemoveHost(const std::string& subnqn, const std::string& hostnqn) = 0;
  virtual Status SetAllowAnyHost(const std::string& subnqn, bool allow) = 0;
  // A listener more (port.port 0: a free one; *bound: the port it got). Discovery
  // controllers get a Discovery Log Page Change event.
  virtual Status AddListener(const PortConfig& port, uint16_t* bound) = 0;
  // Stops listening on the port and closes every connection that came in through it (its
  // hosts fail over to their other paths, or reconnect when it comes back).
  virtual Status RemoveListener(uint16_t portid) = 0;
  // The ANA state (spec::AnaState) of an ANA group through a port. I/O commands through
  // that port on the group's namespaces then complete with the matching path-related
  // status when it is inaccessible, persistent loss or change; controllers that came in
  // through the port get an ANA Change event.
  virtual Status SetAnaState(uint16_t portid, uint32_t ana_group, uint8_t state) = 0;
  // The configuration running now (ports as bound), for saving.
  virtual TargetConfig RunningConfig() const = 0;
};

// Reads the JSON that Linux's nvmetcli saves (ports, subsystems, namespaces, hosts).
Status ParseNvmetcliConfig(const std::string& json, TargetConfig* out);
// Writes ports, subsystems, namespaces and hosts as nvmetcli saves them; what
// ParseNvmetcliConfig reads back is the same configuration.
std::string FormatNvmetcliConfig(const TargetConfig& config);

}  // namespace nvmf::target
