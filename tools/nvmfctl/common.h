// nvmfctl: what the subcommands share: nvme-cli's connection flags, connecting, output.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nvmf/event_loop.h"
#include "nvmf/host.h"
#include "nvmf/host_multipath.h"
#include "nvmf/host_resilient.h"
#include "nvmf/host_sync.h"
#include "nvmf/host_util.h"

namespace nvmfctl {

using nvmf::Status;
using Json = nlohmann::ordered_json;

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;     // a failed command, a connection failure, a mismatch
inline constexpr int kExitUsage = 2;     // bad arguments

// nvme-cli's connection flags, on every subcommand.
struct ConnFlags {
  std::string transport = "tcp";
  std::string traddr;
  uint16_t trsvcid = 4420;
  std::string nqn;
  std::string hostnqn;
  std::string hostid;
  bool hdr_digest = false;
  bool data_digest = false;
  uint32_t nr_io_queues = 1;
  uint32_t queue_size = 0;      // 0: 128, or more when a subcommand needs a deeper queue
  int64_t keep_alive_tmo = -1;  // seconds; -1: the host's default
  double timeout = 30;          // seconds, per command
  bool json = false;
  bool poll = false;
  std::string mode = "adaptive";
  // Reconnection (perf and verify), as nvme-cli names it; seconds.
  int64_t reconnect_delay = 2;
  int64_t ctrl_loss_tmo = 60;    // -1: forever; 0: no reconnection
  int64_t fast_io_fail_tmo = -1;  // -1: off
  std::vector<std::string> paths;  // perf, verify: more addresses of the subsystem (ADDR:PORT)
  // DH-HMAC-CHAP, as nvme-cli names it: DHHC-1 secrets or @FILE.
  std::string dhchap_secret;
  std::string dhchap_ctrl_secret;
  // TLS 1.3 with a PSK (NVMe/TCP).
  bool tls = false;
  std::string tls_key;        // interchange format, or @FILE
  std::string tls_key_file;
  int psk_identity = 1;
  std::string tls_derive = nvmf::kDefaultTlsDerivation;
};

void AddConnFlags(CLI::App* sub, ConnFlags* f);

// A usage error or a failure: thrown by subcommands, printed once by main.
struct Failure {
  int code;
  std::string message;
};
[[noreturn]] void Usage(const std::string& message);
[[noreturn]] void Fail(const std::string& message);
[[noreturn]] void Fail(const std::string& what, const Status& s);

// A connected association on a loop of its own, run on this thread.
struct Session {
  std::unique_ptr<nvmf::EventLoop> loop;
  std::unique_ptr<nvmf::host::SyncController> ctrl;
  nvmf::host::ConnectOptions options;
};
// Validates the flags and connects; discovery picks the discovery NQN when -n is empty.
// Fails (throws Failure) with a one-line message.
std::unique_ptr<Session> Connect(const ConnFlags& f, bool discovery, uint32_t io_queues_override = 0,
                                 uint32_t min_queue_size = 0);

// The I/O side of perf and verify: one association that reconnects after a loss as the
// reconnect flags say (ResilientController), or with --path several paths to the
// subsystem (MultipathController, I/O on the optimized one); either says on standard
// error when it loses and regains a controller.
struct IoSession {
  std::unique_ptr<nvmf::host::ResilientController> rc;
  std::unique_ptr<nvmf::host::MultipathController> mp;

  Status Read(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const nvmf::MemDesc& mem, size_t len,
              nvmf::host::CommandCallback cb) {
    return mp ? mp->Read(qid, nsid, slba, nlb, mem, len, cb) : rc->Read(qid, nsid, slba, nlb, mem, len, cb);
  }
  Status Write(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const nvmf::MemDesc& mem, size_t len,
               nvmf::host::CommandCallback cb) {
    return mp ? mp->Write(qid, nsid, slba, nlb, mem, len, cb) : rc->Write(qid, nsid, slba, nlb, mem, len, cb);
  }
  // A connected association (the first live path), for what the controller reports.
  nvmf::host::Controller& first() {
    if (!mp) return rc->controller();
    for (size_t i = 0; i < mp->path_count(); i++) {
      if (mp->path_live(i)) return mp->path(i).controller();
    }
    return mp->path(0).controller();
  }
  uint32_t io_queue_count() const { return mp ? mp->io_queue_count() : rc->io_queue_count(); }
  uint64_t reconnects() const;
  uint64_t resubmitted() const;
  uint64_t failovers() const { return mp ? mp->failovers() : 0; }
  void Close();  // at once: what is in flight fails
};
// Connects the I/O side. Closes s.ctrl first (a clean close), so that the host holds one
// association per path, not two.
std::unique_ptr<IoSession> ConnectIo(Session& s, const ConnFlags& f, uint32_t io_queues);
// One more association like the first (perf --associations), on the first address.
std::unique_ptr<IoSession> ConnectIoAssociation(Session& s, const ConnFlags& f, uint32_t io_queues,
                                                const std::string& name);
// The reconnect flags as the host takes them.
nvmf::host::ReconnectOptions ReconnectFlags(const ConnFlags& f);
// The clean close of an I/O side (Fabrics Disconnect, shutdown), waited for.
void CloseIo(Session& s, IoSession& io);
// What the I/O side went through, for the last lines of the output ("" when nothing).
std::string IoSummary(const IoSession& io);
// How long perf and verify wait for any progress before giving up on the association:
// the command timeout, and the time reconnection may take.
std::chrono::milliseconds StallLimit(const Session& s, const ConnFlags& f);

struct NamespaceInfo {
  uint32_t nsid = 0;
  uint64_t blocks = 0;
  uint32_t block_size = 0;
  nvmf::spec::IdentifyNamespace id{};
};
NamespaceInfo GetNamespace(nvmf::host::SyncController& c, uint32_t nsid);

// Size flags ("64M", "128k", "4096").
uint64_t SizeFlag(const std::string& name, const std::string& text, bool allow_zero = false);

void PrintJson(const Json& j);
std::string Hex(uint64_t v, int width = 0);

// Each subcommand registers itself; the callback set here runs after parsing.
using Runner = std::function<int()>;
void RegisterDiscover(CLI::App& app, Runner* run);
void RegisterIdentify(CLI::App& app, Runner* run);
void RegisterList(CLI::App& app, Runner* run);
void RegisterReadWrite(CLI::App& app, Runner* run);
void RegisterVerify(CLI::App& app, Runner* run);
void RegisterPerf(CLI::App& app, Runner* run);
void RegisterKeys(CLI::App& app, Runner* run);
void RegisterResv(CLI::App& app, Runner* run);  // resv-register, -acquire, -release, -report

}  // namespace nvmfctl
