#include "target/subsystem.h"

#include <cstdio>
#include <cstring>

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

}  // namespace

bool LooksLikeNqn(const std::string& n) {
  return n.size() >= 5 && n.size() < spec::kNqnSize && n.compare(0, 4, "nqn.") == 0;
}

Status BuildSubsystems(const TargetConfig& config, std::vector<std::unique_ptr<Subsystem>>* out) {
  out->clear();
  auto disc = std::make_unique<Subsystem>();
  disc->nqn = spec::kDiscoveryNqn;
  disc->model = "nvmf discovery";
  disc->serial = "discovery";
  disc->discovery = true;
  out->push_back(std::move(disc));

  for (const SubsystemConfig& sc : config.subsystems) {
    // Linux's nvmet serves any name, and nvmetcli files and test suites use such names:
    // the target warns about one not in the nqn.yyyy-mm.domain: form (Target::Start) and
    // refuses only what cannot travel in Connect.
    if (!UsableNqn(sc.nqn)) {
      return Status::InvalidArgument("subsystem NQN '" + Escape(sc.nqn) +
                                     "' is empty, 256 bytes or longer, or holds control characters");
    }
    for (const auto& s : *out) {
      if (s->nqn == sc.nqn) return Status::InvalidArgument("subsystem " + sc.nqn + " is configured twice");
    }
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
    sub->allow_any_host = sc.allow_any_host;
    sub->allowed_hosts.insert(sc.allowed_hosts.begin(), sc.allowed_hosts.end());
    uint32_t next = 1;
    for (const NamespaceConfig& nc : sc.namespaces) {
      if (!nc.enabled) continue;
      uint32_t nsid = nc.nsid != 0 ? nc.nsid : next;
      if (nsid == 0 || nsid == 0xFFFFFFFFu) {
        return Status::InvalidArgument("namespace ID " + std::to_string(nsid) + " is reserved");
      }
      if (sub->namespaces.count(nsid) != 0) {
        return Status::InvalidArgument("namespace " + std::to_string(nsid) + " of " + sc.nqn +
                                       " is configured twice");
      }
      Namespace ns;
      ns.nsid = nsid;
      Status s = Backend::Open(nc.backend, &ns.backend);
      if (!s.ok()) {
        return Status::InvalidArgument("namespace " + std::to_string(nsid) + " of " + sc.nqn + ": " +
                                       s.message());
      }
      uint32_t bs = ns.backend->block_size();
      ns.lba_shift = 0;
      while ((1u << ns.lba_shift) < bs) ns.lba_shift++;
      ns.blocks = ns.backend->size() >> ns.lba_shift;
      if (ns.blocks == 0) {
        return Status::InvalidArgument("namespace " + std::to_string(nsid) + " of " + sc.nqn +
                                       " is smaller than one block");
      }
      if (nc.uuid.empty()) {
        DeriveId(sc.nqn + "/" + std::to_string(nsid), ns.uuid);
      } else if (!ParseUuid(nc.uuid, ns.uuid)) {
        return Status::InvalidArgument("namespace " + std::to_string(nsid) + ": bad UUID '" +
                                       nc.uuid + "'");
      }
      std::memcpy(ns.nguid, ns.uuid, 16);
      sub->namespaces.emplace(nsid, std::move(ns));
      next = nsid + 1;
    }
    out->push_back(std::move(sub));
  }
  return Status::OK();
}

std::string DescribeSubsystem(const Subsystem& s) {
  std::string d = s.nqn;
  for (const auto& [nsid, ns] : s.namespaces) {
    d += "  ns" + std::to_string(nsid) + " " + ns.backend->Describe();
  }
  if (!s.discovery && !s.allow_any_host) {
    d += "  hosts:";
    for (const auto& h : s.allowed_hosts) d += " " + h;
  }
  return d;
}

}  // namespace nvmf::target
