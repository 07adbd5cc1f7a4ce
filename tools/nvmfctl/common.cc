#include "common.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iostream>

namespace nvmfctl {

namespace host = nvmf::host;

void AddConnFlags(CLI::App* sub, ConnFlags* f) {
  sub->add_option("-t,--transport", f->transport, "transport type: tcp or rdma")->capture_default_str();
  sub->add_option("-a,--traddr", f->traddr, "controller address (IPv4, IPv6 or host name)")->required();
  sub->add_option("-s,--trsvcid", f->trsvcid, "controller port")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  sub->add_option("-n,--nqn", f->nqn, "subsystem NQN");
  sub->add_option("-q,--hostnqn", f->hostnqn, "host NQN (default: /etc/nvme/hostnqn, else generated)");
  sub->add_option("-I,--hostid", f->hostid, "host ID, a UUID (default: /etc/nvme/hostid, else generated)");
  sub->add_option("-S,--dhchap-secret", f->dhchap_secret,
                  "DH-HMAC-CHAP host secret (DHHC-1:..:, or @FILE: a file only you may read), "
                  "for a controller that requires authentication");
  sub->add_option("-C,--dhchap-ctrl-secret", f->dhchap_ctrl_secret,
                  "DH-HMAC-CHAP controller secret (DHHC-1:..: or @FILE): the controller must "
                  "prove it knows it (bidirectional authentication)");
  sub->add_flag("-g,--hdr-digest", f->hdr_digest, "ask for header digests");
  sub->add_flag("-G,--data-digest", f->data_digest, "ask for data digests");
  sub->add_option("-i,--nr-io-queues", f->nr_io_queues, "number of I/O queues")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub->add_option("-Q,--queue-size", f->queue_size,
                  "I/O queue size in entries (default 128, or the queue depth + 1 when larger)")
      ->check(CLI::Range(2, 65535));
  sub->add_option("-k,--keep-alive-tmo", f->keep_alive_tmo,
                  "keep-alive timeout in seconds (default 5, 0 for discovery)")
      ->check(CLI::Range(int64_t{0}, int64_t{4294967}));
  sub->add_option("--timeout", f->timeout, "per-command timeout in seconds")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  sub->add_flag("--tls", f->tls, "TLS 1.3 with a pre-shared key (NVMe/TCP; needs --tls-key or --tls-key-file)");
  auto* key = sub->add_option("--tls-key", f->tls_key,
                              "TLS PSK, NVMeTLSkey-1:01|02:BASE64: (or @FILE; on the command line "
                              "it shows in ps: prefer --tls-key-file)");
  sub->add_option("--tls-key-file", f->tls_key_file, "file whose first line is the TLS PSK")
      ->excludes(key);
  sub->add_option("--psk-identity", f->psk_identity,
                  "PSK identity version: 1 (NVMe1R0h ... with the PSK digest) or 0")
      ->check(CLI::IsMember({0, 1}))
      ->capture_default_str();
  sub->add_option("--tls-derive", f->tls_derive,
                  "TLS PSK derivation: nvme-cli (as Linux's nvme-cli, default) or spec")
      ->check(CLI::IsMember({"nvme-cli", "spec"}))
      ->capture_default_str();
  sub->add_flag("--json", f->json, "JSON output");
  auto* mode = sub->add_option("--mode", f->mode,
                               "how the event loop waits: adaptive (poll while busy, sleep when "
                               "idle), poll (never sleep), wait (always sleep)")
                   ->check(CLI::IsMember({"adaptive", "poll", "wait"}))
                   ->capture_default_str();
  sub->add_flag("--poll", f->poll, "same as --mode poll")->excludes(mode);
  sub->add_option("--reconnect-delay", f->reconnect_delay,
                  "perf, verify: seconds between reconnection attempts after a lost connection")
      ->check(CLI::Range(int64_t{0}, int64_t{3600}))
      ->capture_default_str();
  sub->add_option("--ctrl-loss-tmo", f->ctrl_loss_tmo,
                  "perf, verify: seconds to keep reconnecting before failing (-1: forever, 0: never reconnect)")
      ->check(CLI::Range(int64_t{-1}, int64_t{86400}))
      ->capture_default_str();
  sub->add_option("--path", f->paths,
                  "perf, verify: another address of the same subsystem, ADDR:PORT (repeat for more): "
                  "multipath, with I/O on the optimized path by ANA and failover")
      ->type_name("ADDR:PORT");
  sub->add_option("--fast_io_fail_tmo", f->fast_io_fail_tmo,
                  "perf, verify: seconds after a loss when waiting commands fail (-1: off)")
      ->check(CLI::Range(int64_t{-1}, int64_t{86400}))
      ->capture_default_str();
}

namespace {

void PrintEvent(const std::string& prefix, const std::string& e) {
  std::fprintf(stderr, "nvmfctl: %s%s\n", prefix.c_str(), e.c_str());
}

void WaitConnected(Session& s, const host::ConnectOptions& o, uint32_t io_queues, bool* done, const Status& result) {
  s.loop->RunUntil([done] { return *done; }, o.connect_timeout * (2 + static_cast<int64_t>(io_queues)) +
                                                 o.admin_timeout * 2 + std::chrono::milliseconds(10000));
  if (!*done || !result.ok()) {
    Fail(fmt::format("cannot connect to {} at {} {}:{}", o.subnqn, nvmf::TransportTypeName(o.trtype), o.traddr,
                     o.trsvcid),
         *done ? result : Status::TimedOut("no answer"));
  }
}

}  // namespace

uint64_t IoSession::reconnects() const {
  if (!mp) return rc->reconnects();
  uint64_t n = 0;
  for (size_t i = 0; i < mp->path_count(); i++) n += mp->path(i).reconnects();
  return n;
}

uint64_t IoSession::resubmitted() const {
  if (!mp) return rc->resubmitted();
  uint64_t n = 0;
  for (size_t i = 0; i < mp->path_count(); i++) n += mp->path(i).resubmitted();
  return n;
}

void IoSession::Close() {
  if (mp) {
    for (size_t i = 0; i < mp->path_count(); i++) mp->path(i).Close();
  } else {
    rc->Close();
  }
}

std::unique_ptr<IoSession> ConnectIoAssociation(Session& s, const ConnFlags& f, uint32_t io_queues,
                                                const std::string& name) {
  host::ConnectOptions o = s.options;
  o.nr_io_queues = io_queues;
  auto io = std::make_unique<IoSession>();
  io->rc = std::make_unique<host::ResilientController>(s.loop.get(), o, ReconnectFlags(f));
  io->rc->SetEventCallback([name](const std::string& e) { PrintEvent(name, e); });
  bool done = false;
  Status result;
  io->rc->Connect([&](const Status& st) {
    result = st;
    done = true;
  });
  WaitConnected(s, o, io_queues, &done, result);
  return io;
}

std::unique_ptr<IoSession> ConnectIo(Session& s, const ConnFlags& f, uint32_t io_queues) {
  s.ctrl->Close();
  if (f.paths.empty()) return ConnectIoAssociation(s, f, io_queues, "");
  std::vector<host::ConnectOptions> paths;
  host::ConnectOptions o = s.options;
  o.nr_io_queues = io_queues;
  paths.push_back(o);
  for (const std::string& p : f.paths) {
    const size_t colon = p.rfind(':');
    if (colon == std::string::npos || colon + 1 == p.size()) Usage("--path must be ADDR:PORT, not '" + p + "'");
    std::string addr = p.substr(0, colon);
    if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']') addr = addr.substr(1, addr.size() - 2);
    unsigned long port = 0;
    try {
      port = std::stoul(p.substr(colon + 1));
    } catch (const std::exception&) {
      Usage("--path must be ADDR:PORT, not '" + p + "'");
    }
    if (port == 0 || port > 65535) Usage("--path must be ADDR:PORT, not '" + p + "'");
    o.traddr = addr;
    o.trsvcid = static_cast<uint16_t>(port);
    paths.push_back(o);
  }
  auto io = std::make_unique<IoSession>();
  io->mp = std::make_unique<host::MultipathController>(s.loop.get(), paths, ReconnectFlags(f));
  io->mp->SetEventCallback([](const std::string& e) { PrintEvent("", e); });
  bool done = false;
  Status result;
  io->mp->Connect([&](const Status& st) {
    result = st;
    done = true;
  });
  WaitConnected(s, s.options, io_queues, &done, result);
  return io;
}

host::ReconnectOptions ReconnectFlags(const ConnFlags& f) {
  host::ReconnectOptions r;
  r.reconnect_delay = std::chrono::seconds(f.reconnect_delay);
  r.ctrl_loss_tmo = std::chrono::seconds(f.ctrl_loss_tmo);
  // ctrl_loss_tmo 0: the first loss is final (the give-up check runs at the first attempt).
  if (f.ctrl_loss_tmo == 0) r.reconnect_delay = std::chrono::milliseconds(0);
  r.fast_io_fail_tmo = std::chrono::seconds(f.fast_io_fail_tmo);
  return r;
}

void CloseIo(Session& s, IoSession& io) {
  bool done = false;
  auto cb = [&done](const Status&) { done = true; };
  if (io.mp) {
    io.mp->Disconnect(cb);
  } else {
    io.rc->Disconnect(cb);
  }
  s.loop->RunUntil([&done] { return done; }, s.options.shutdown_timeout + std::chrono::milliseconds(1000));
}

std::string IoSummary(const IoSession& io) {
  std::string out;
  if (io.reconnects() > 0) {
    out += fmt::format("reconnected {} time{}; {} commands submitted again", io.reconnects(),
                       io.reconnects() == 1 ? "" : "s", io.resubmitted());
  }
  if (io.failovers() > 0) {
    out += fmt::format("{}{} commands moved to another path", out.empty() ? "" : "; ", io.failovers());
  }
  return out;
}

std::chrono::milliseconds StallLimit(const Session& s, const ConnFlags& f) {
  auto limit = s.options.io_timeout + std::chrono::milliseconds(10000);
  if (f.ctrl_loss_tmo < 0) return std::chrono::hours(24 * 365);
  return limit + std::chrono::seconds(f.ctrl_loss_tmo + f.reconnect_delay);
}

void Usage(const std::string& message) { throw Failure{kExitUsage, message}; }
void Fail(const std::string& message) { throw Failure{kExitError, message}; }
void Fail(const std::string& what, const Status& s) { throw Failure{kExitError, what + ": " + s.ToString()}; }

std::unique_ptr<Session> Connect(const ConnFlags& f, bool discovery, uint32_t io_queues_override,
                                 uint32_t min_queue_size) {
  nvmf::TransportType trtype;
  if (!nvmf::ParseTransportType(f.transport, &trtype)) {
    Usage("transport '" + f.transport + "' is not supported (tcp or rdma)");
  }
  if (f.traddr.empty()) Usage("--traddr is required");
  if (!discovery && f.nqn.empty()) Usage("--nqn (the subsystem NQN) is required");

  auto s = std::make_unique<Session>();
  host::ConnectOptions& o = s->options;
  o.trtype = trtype;
  o.traddr = f.traddr;
  o.trsvcid = f.trsvcid;
  o.subnqn = f.nqn.empty() ? std::string(nvmf::spec::kDiscoveryNqn) : f.nqn;
  if (o.subnqn.size() > 223) Usage("--nqn is longer than 223 bytes");
  host::HostIdentity id;
  Status st = host::ResolveHostIdentity(f.hostnqn, f.hostid, &id);
  if (!st.ok()) Usage(st.message());
  o.hostnqn = id.hostnqn;
  o.hostid = id.hostid;
  o.header_digest = f.hdr_digest;
  o.dhchap_secret = f.dhchap_secret;
  o.dhchap_ctrl_secret = f.dhchap_ctrl_secret;
  o.data_digest = f.data_digest;
  if (f.tls || !f.tls_key.empty() || !f.tls_key_file.empty()) {
    if (f.tls_key.empty() && f.tls_key_file.empty()) Usage("--tls needs --tls-key or --tls-key-file");
    o.tls.enabled = true;
    std::string warning;
    st = nvmf::ReadSecretArgument(f.tls_key_file.empty() ? f.tls_key : "@" + f.tls_key_file,
                                  &o.tls.key, &warning);
    if (st.ok()) st = nvmf::CheckTlsKey(o.tls.key);
    if (!st.ok()) Usage(st.message());
    if (!warning.empty()) std::fprintf(stderr, "nvmfctl: warning: %s\n", warning.c_str());
    o.tls.identity_version = f.psk_identity;
    o.tls.derivation = f.tls_derive;
  }
  o.nr_io_queues = io_queues_override > 0 ? io_queues_override : f.nr_io_queues;
  uint32_t qs = f.queue_size != 0 ? f.queue_size : std::max<uint32_t>(128, min_queue_size);
  o.queue_size = static_cast<uint16_t>(std::min<uint32_t>(qs, 65535));
  o.kato_ms = f.keep_alive_tmo < 0 ? -1 : f.keep_alive_tmo * 1000;
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(f.timeout * 1000)));
  o.admin_timeout = o.io_timeout = timeout;
  o.connect_timeout = std::max(timeout, std::chrono::milliseconds(10000));

  auto mode = nvmf::EventLoop::Mode::kAdaptive;
  nvmf::ParseLoopMode(f.poll ? "poll" : f.mode, &mode);  // checked by the flag's validator
  s->loop = std::make_unique<nvmf::EventLoop>(mode);
  if (!s->loop->ok()) Fail("cannot create an event loop");
  s->ctrl = std::make_unique<host::SyncController>(s->loop.get());
  st = s->ctrl->Connect(o);
  if (!st.ok()) {
    Fail(fmt::format("cannot connect to {} at {} {}:{}", o.subnqn, nvmf::TransportTypeName(trtype),
                     o.traddr, o.trsvcid),
         st);
  }
  return s;
}

NamespaceInfo GetNamespace(host::SyncController& c, uint32_t nsid) {
  if (nsid == 0 || nsid == 0xFFFFFFFFu) Usage(fmt::format("namespace ID {} is not valid", nsid));
  NamespaceInfo ns;
  ns.nsid = nsid;
  Status st = c.IdentifyNamespace(nsid, &ns.id);
  if (!st.ok()) Fail(fmt::format("Identify Namespace {}", nsid), st);
  ns.blocks = ns.id.nsze;
  ns.block_size = host::NamespaceBlockSize(ns.id);
  if (ns.blocks == 0 || ns.block_size == 0) {
    Fail(fmt::format("namespace {} is not active on this controller", nsid));
  }
  return ns;
}

uint64_t SizeFlag(const std::string& name, const std::string& text, bool allow_zero) {
  uint64_t v = 0;
  if (!host::ParseSize(text, &v, allow_zero)) {
    Usage(fmt::format("{} '{}' is not a size (examples: 4096, 128k, 64M, 1G)", name, text));
  }
  return v;
}

void PrintJson(const Json& j) { std::cout << j.dump(2) << std::endl; }

std::string Hex(uint64_t v, int width) {
  return width > 0 ? fmt::format("{:#0{}x}", v, width + 2) : fmt::format("{:#x}", v);
}

}  // namespace nvmfctl
