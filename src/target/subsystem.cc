#include "target/subsystem.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "nvmf/spec/fabrics.h"
#include "target/context.h"

namespace nvmf::target {
namespace {

// FNV-1a, twice with different seeds: a stable 16-byte identity from a name.
void DeriveId(const std::string& name, uint8_t out[16]) {
  uint64_t h[2] = {1469598103934665603ull, 1099511628211ull * 31};
  for (int k = 0; k < 2; k++) {
    for (unsigned char c : name) {
      h[k] ^= c;
      h[k] *= 1099511628211ull;
    }
    h[k] ^= static_cast<uint64_t>(k) + 1;
    h[k] *= 1099511628211ull;
  }
  std::memcpy(out, h, 16);
  out[6] = static_cast<uint8_t>((out[6] & 0x0f) | 0x50);  // a name-based UUID (version 5 form)
  out[8] = static_cast<uint8_t>((out[8] & 0x3f) | 0x80);
}

bool ParseUuid(const std::string& s, uint8_t out[16]) {
  if (s.size() != 36) return false;
  int j = 0;
  for (size_t i = 0; i < s.size(); i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
      continue;
    }
    unsigned v;
    if (std::sscanf(s.c_str() + i, "%2x", &v) != 1) return false;
    out[j++] = static_cast<uint8_t>(v);
    i++;
  }
  return j == 16;
}

// What fits the Connect data's NUL-terminated field and prints safely.
bool UsableNqn(const std::string& n) {
  if (n.empty() || n.size() >= spec::kNqnSize) return false;
  for (unsigned char ch : n) {
    if (ch < 0x20 || ch == 0x7f) return false;
  }
  return true;
}

std::string FormatUuid(const uint8_t u[16]) {
  char b[37];
  std::snprintf(b, sizeof(b), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  return b;
}

}  // namespace

bool LooksLikeNqn(const std::string& n) {
  return n.size() >= 5 && n.size() < spec::kNqnSize && n.compare(0, 4, "nqn.") == 0;
}

// ---------------------------------------------------------------- Namespace

namespace {
std::atomic<unsigned> next_slot{0};
// Threads beyond the slot count share slots; the counts stay right (atomic adds), they
// only share a cache line.
unsigned ThreadSlot(unsigned slots) {
  thread_local unsigned slot = next_slot.fetch_add(1);
  return slot % slots;
}
}  // namespace

bool Namespace::Enter() {
  std::atomic<int64_t>& n = inside_[ThreadSlot(kSlots)].n;
  n.fetch_add(1);
  // Ordered against MarkRemoved then Idle (all sequentially consistent): either the
  // remover sees this command inside, or this command sees the namespace removed.
  if (removed_.load()) {
    n.fetch_sub(1, std::memory_order_release);
    return false;
  }
  return true;
}

void Namespace::Exit() { inside_[ThreadSlot(kSlots)].n.fetch_sub(1, std::memory_order_release); }

bool Namespace::Idle() const {
  int64_t sum = 0;
  for (const Slot& s : inside_) sum += s.n.load();
  return sum == 0;
}

// ---------------------------------------------------------------- Subsystem

std::shared_ptr<const NamespaceMap> Subsystem::Namespaces() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ns_;
}

bool Subsystem::HostAllowed(const std::string& hostnqn) const {
  if (discovery) return true;
  std::lock_guard<std::mutex> lock(mu_);
  return allow_any_host_ || allowed_hosts_.count(hostnqn) != 0;
}

Status Subsystem::AddNamespace(const NamespaceConfig& nc, uint32_t* nsid_io) {
  if (discovery) return Status::InvalidArgument("the discovery subsystem has no namespaces");
  const std::string where = [&] {
    return (*nsid_io != 0 ? "namespace " + std::to_string(*nsid_io) : std::string("a new namespace")) + " of " + nqn;
  }();
  if (*nsid_io > kMaxNsid) {
    return Status::InvalidArgument("namespace ID " + std::to_string(*nsid_io) + " is above " +
                                   std::to_string(kMaxNsid) + ", the most this target serves");
  }
  if (nc.ana_group < 1 || nc.ana_group > kMaxAnaGroups) {
    return Status::InvalidArgument(where + ": ANA group " + std::to_string(nc.ana_group) + " outside 1.." +
                                   std::to_string(kMaxAnaGroups));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (*nsid_io != 0 && ns_->count(*nsid_io) != 0) {
      return Status::AlreadyExists(where + " exists already");
    }
  }
  // Opening a backend may take a while (a file, memory to populate): not under the lock.
  auto ns = std::make_shared<Namespace>();
  Status s = Backend::Open(nc.backend, &ns->backend);
  if (!s.ok()) return Status::InvalidArgument(where + ": " + s.message());
  const uint32_t bs = ns->backend->block_size();
  while ((1u << ns->lba_shift) < bs) ns->lba_shift++;
  if (bs < 512) ns->lba_shift = 9;
  ns->blocks = ns->backend->size() >> ns->lba_shift;
  if (ns->blocks == 0) return Status::InvalidArgument(where + " is smaller than one block");
  ns->config = nc;
  ns->config.enabled = true;
  const std::string state = ns->backend->StatePath();
  ns->reservation = std::make_unique<Reservation>(state.empty() ? state : state + kReservationStateSuffix);
  s = ns->reservation->Load();
  if (!s.ok()) return Status::InvalidArgument(where + ": " + s.message());

  std::lock_guard<std::mutex> lock(mu_);
  uint32_t nsid = *nsid_io;
  if (nsid == 0) {
    nsid = 1;
    for (const auto& [id, n] : *ns_) {
      if (id != nsid) break;
      nsid++;
    }
  }
  if (nsid > kMaxNsid) return Status::ResourceExhausted(nqn + " has no free namespace ID");
  if (ns_->count(nsid) != 0) return Status::AlreadyExists(where + " exists already");
  ns->nsid = nsid;
  ns->config.nsid = nsid;
  if (nc.uuid.empty()) {
    DeriveId(nqn + "/" + std::to_string(nsid), ns->uuid);
  } else if (!ParseUuid(nc.uuid, ns->uuid)) {
    return Status::InvalidArgument("namespace " + std::to_string(nsid) + ": bad UUID '" + nc.uuid + "'");
  }
  std::memcpy(ns->nguid, ns->uuid, 16);
  auto next = std::make_shared<NamespaceMap>(*ns_);
  next->emplace(nsid, std::move(ns));
  ns_ = std::move(next);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  *nsid_io = nsid;
  return Status::OK();
}

Status Subsystem::RemoveNamespace(uint32_t nsid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ns_->find(nsid);
  if (it == ns_->end()) {
    return Status::NotFound("namespace " + std::to_string(nsid) + " of " + nqn + " does not exist");
  }
  std::shared_ptr<Namespace> gone = it->second;
  gone->MarkRemoved();  // no command enters it from here on
  auto next = std::make_shared<NamespaceMap>(*ns_);
  next->erase(nsid);
  ns_ = std::move(next);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  removed_.push_back(std::move(gone));
  return Status::OK();
}

bool Subsystem::ReapRemoved() {
  std::lock_guard<std::mutex> lock(mu_);
  // A queue that has not refreshed its snapshot still points at the Namespace, but never
  // at its backend again (Enter fails): the backend, and its memory or file, goes now.
  std::erase_if(removed_, [](const std::shared_ptr<Namespace>& n) {
    if (!n->Idle()) return false;
    n->backend.reset();
    return true;
  });
  return removed_.empty();
}

Status Subsystem::ResizeNamespace(uint32_t nsid, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ns_->find(nsid);
  if (it == ns_->end()) {
    return Status::NotFound("namespace " + std::to_string(nsid) + " of " + nqn + " does not exist");
  }
  Namespace& ns = *it->second;
  const uint64_t block = 1ull << ns.lba_shift;
  if (bytes < block || bytes % block != 0) {
    return Status::InvalidArgument("the new size must be a non-zero multiple of the block size (" +
                                   std::to_string(block) + " bytes)");
  }
  Status s = ns.backend->Resize(bytes);
  if (!s.ok()) return s.Annotate("namespace " + std::to_string(nsid));
  ns.blocks.store(bytes >> ns.lba_shift);
  if (ns.config.backend.rfind("null:", 0) == 0) ns.config.backend = "null:" + std::to_string(bytes);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  return Status::OK();
}

Status Subsystem::AddHost(const std::string& hostnqn) {
  if (!UsableNqn(hostnqn)) {
    return Status::InvalidArgument("host NQN '" + Escape(hostnqn) +
                                   "' is empty, 256 bytes or longer, or holds control characters");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!allowed_hosts_.insert(hostnqn).second) {
    return Status::AlreadyExists("host " + hostnqn + " is already allowed to " + nqn);
  }
  return Status::OK();
}

Status Subsystem::RemoveHost(const std::string& hostnqn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (allowed_hosts_.erase(hostnqn) == 0) {
    return Status::NotFound("host " + Escape(hostnqn) + " is not in the allowed hosts of " + nqn);
  }
  return Status::OK();
}

void Subsystem::SetAllowAnyHost(bool allow) {
  std::lock_guard<std::mutex> lock(mu_);
  allow_any_host_ = allow;
}

SubsystemConfig Subsystem::Config() const {
  std::lock_guard<std::mutex> lock(mu_);
  SubsystemConfig c;
  c.nqn = nqn;
  c.serial = serial;
  c.model = model;
  c.allow_any_host = allow_any_host_;
  c.allowed_hosts.assign(allowed_hosts_.begin(), allowed_hosts_.end());
  for (const auto& [nsid, ns] : *ns_) {
    NamespaceConfig nc = ns->config;
    nc.uuid = FormatUuid(ns->uuid);
    c.namespaces.push_back(nc);
  }
  return c;
}

// ---------------------------------------------------------------- building

Status BuildSubsystems(const TargetConfig& config, std::vector<std::unique_ptr<Subsystem>>* out) {
  out->clear();
  auto disc = std::make_unique<Subsystem>();
  disc->nqn = spec::kDiscoveryNqn;
  disc->model = "nvmf discovery";
  disc->serial = "discovery";
  disc->discovery = true;
  out->push_back(std::move(disc));

  for (const SubsystemConfig& sc : config.subsystems) {
    for (const auto& s : *out) {
      if (s->nqn == sc.nqn) return Status::InvalidArgument("subsystem " + sc.nqn + " is configured twice");
    }
    std::unique_ptr<Subsystem> sub;
    Status s = BuildSubsystem(sc, &sub);
    if (!s.ok()) return s;
    out->push_back(std::move(sub));
  }
  return Status::OK();
}

Status BuildSubsystem(const SubsystemConfig& sc, std::unique_ptr<Subsystem>* out) {
  // Linux's nvmet serves any name, and nvmetcli files and test suites use such names:
  // the target warns about one not in the nqn.yyyy-mm.domain: form (Target::Start) and
  // refuses only what cannot travel in Connect.
  if (!UsableNqn(sc.nqn)) {
    return Status::InvalidArgument("subsystem NQN '" + Escape(sc.nqn) +
                                   "' is empty, 256 bytes or longer, or holds control characters");
  }
  if (sc.nqn == spec::kDiscoveryNqn) return Status::InvalidArgument("the discovery NQN names no storage subsystem");
  auto sub = std::make_unique<Subsystem>();
  sub->nqn = sc.nqn;
  sub->model = sc.model.empty() ? "nvmf" : sc.model;
  if (sc.serial.empty()) {
    uint8_t id[16];
    DeriveId(sc.nqn, id);
    char buf[21];
    std::snprintf(buf, sizeof(buf), "%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x", id[0], id[1], id[2],
                  id[3], id[4], id[5], id[6], id[7], id[8], id[9]);
    sub->serial = buf;
  } else {
    sub->serial = sc.serial.substr(0, 20);
  }
  sub->allow_any_host_ = sc.allow_any_host;
  sub->allowed_hosts_.insert(sc.allowed_hosts.begin(), sc.allowed_hosts.end());
  uint32_t next = 1;
  for (const NamespaceConfig& nc : sc.namespaces) {
    if (!nc.enabled) continue;
    uint32_t nsid = nc.nsid != 0 ? nc.nsid : next;
    if (nsid == 0 || nsid == 0xFFFFFFFFu) {
      return Status::InvalidArgument("namespace ID " + std::to_string(nsid) + " is reserved");
    }
    if (sub->ns_->count(nsid) != 0) {
      return Status::InvalidArgument("namespace " + std::to_string(nsid) + " of " + sc.nqn +
                                     " is configured twice");
    }
    Status s = sub->AddNamespace(nc, &nsid);
    if (!s.ok()) return Status::InvalidArgument(s.message());
    next = nsid + 1;
  }
  *out = std::move(sub);
  return Status::OK();
}

std::string DescribeSubsystem(const Subsystem& s) {
  std::string d = s.nqn;
  const std::shared_ptr<const NamespaceMap> all = s.Namespaces();  // held while walked
  for (const auto& [nsid, ns] : *all) {
    d += "  ns" + std::to_string(nsid) + " " + ns->backend->Describe();
  }
  const SubsystemConfig c = s.Config();
  if (!s.discovery && !c.allow_any_host) {
    d += "  hosts:";
    for (const auto& h : c.allowed_hosts) d += " " + h;
  }
  return d;
}

}  // namespace nvmf::target
