#include "target/reconfigure.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "target/queue.h"

namespace nvmf::target {
namespace {

Status FindChangeable(TargetContext* tc, const std::string& subnqn, Subsystem** out) {
  for (Subsystem* s : tc->Subsystems()) {
    if (s->nqn != subnqn) continue;
    if (s->discovery) return Status::InvalidArgument("the discovery subsystem cannot be changed");
    *out = s;
    return Status::OK();
  }
  return Status::NotFound("no subsystem " + Escape(subnqn));
}

// Runs fn on the admin queue of each controller, on that queue's loop.
template <typename Fn>
void OnAdminQueues(TargetContext* tc, const Subsystem* sub, const std::string& hostnqn, Fn fn) {
  for (const auto& c : tc->controllers.All(sub)) {
    if (!hostnqn.empty() && c->hostnqn != hostnqn) continue;
    QueueRef a = c->AdminQueue();
    if (a.loop == nullptr) continue;
    a.loop->Post([w = a.handler, fn] {
      if (auto q = w.lock()) fn(q.get());
    });
  }
}

void NamespaceChanged(TargetContext* tc, const Subsystem* sub, uint32_t nsid) {
  OnAdminQueues(tc, sub, "", [nsid](QueueHandler* q) { q->NamespaceChanged(nsid); });
}

}  // namespace

void DiscoveryChanged(TargetContext* tc, const std::string& hostnqn) {
  OnAdminQueues(tc, tc->Subsystems()[0], hostnqn, [](QueueHandler* q) { q->DiscoveryChanged(); });
}

namespace {
constexpr std::pair<uint8_t, const char*> kAnaNames[] = {
    {spec::kAnaOptimized, "optimized"},       {spec::kAnaNonOptimized, "non-optimized"},
    {spec::kAnaInaccessible, "inaccessible"}, {spec::kAnaPersistentLoss, "persistent-loss"},
    {spec::kAnaChange, "change"},
};
}  // namespace

const char* AnaStateName(uint8_t state) {
  for (const auto& [s, name] : kAnaNames) {
    if (s == state) return name;
  }
  return "?";
}

bool ParseAnaState(const std::string& name, uint8_t* state) {
  for (const auto& [s, n] : kAnaNames) {
    if (name == n) {
      *state = s;
      return true;
    }
  }
  return false;
}

Status AddNamespace(TargetContext* tc, const std::string& subnqn, const NamespaceConfig& nc,
                    uint32_t* nsid) {
  Subsystem* sub = nullptr;
  Status s = FindChangeable(tc, subnqn, &sub);
  if (!s.ok()) return s;
  s = sub->AddNamespace(nc, nsid);
  if (!s.ok()) return s;
  tc->Log("namespace " + std::to_string(*nsid) + " added to " + subnqn + ": " + nc.backend);
  NamespaceChanged(tc, sub, *nsid);
  return Status::OK();
}

Status RemoveNamespace(TargetContext* tc, const std::string& subnqn, uint32_t nsid) {
  Subsystem* sub = nullptr;
  Status s = FindChangeable(tc, subnqn, &sub);
  if (!s.ok()) return s;
  s = sub->RemoveNamespace(nsid);
  if (!s.ok()) return s;
  NamespaceChanged(tc, sub, nsid);
  bool idle = sub->ReapRemoved();
  for (int i = 0; i < 1000 && !idle; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    idle = sub->ReapRemoved();
  }
  tc->Log("namespace " + std::to_string(nsid) + " removed from " + subnqn +
          (idle ? "" : " (its backend closes once the commands still inside have finished)"));
  return Status::OK();
}

Status ResizeNamespace(TargetContext* tc, const std::string& subnqn, uint32_t nsid, uint64_t bytes) {
  Subsystem* sub = nullptr;
  Status s = FindChangeable(tc, subnqn, &sub);
  if (!s.ok()) return s;
  s = sub->ResizeNamespace(nsid, bytes);
  if (!s.ok()) return s;
  tc->Log("namespace " + std::to_string(nsid) + " of " + subnqn + " resized to " +
          std::to_string(bytes) + " bytes");
  NamespaceChanged(tc, sub, nsid);
  return Status::OK();
}

Status AddHost(TargetContext* tc, const std::string& subnqn, const std::string& hostnqn) {
  Subsystem* sub = nullptr;
  Status s = FindChangeable(tc, subnqn, &sub);
  if (!s.ok()) return s;
  s = sub->AddHost(hostnqn);
  if (!s.ok()) return s;
  tc->Log("host " + hostnqn + " may now access " + subnqn);
  DiscoveryChanged(tc, hostnqn);
  return Status::OK();
}

Status RemoveHost(TargetContext* tc, const std::string& subnqn, const std::string& hostnqn) {
  Subsystem* sub = nullptr;
  Status s = FindChangeable(tc, subnqn, &sub);
  if (!s.ok()) return s;
  s = sub->RemoveHost(hostnqn);
  if (!s.ok()) return s;
  tc->Log("host " + hostnqn + " may no longer access " + subnqn + " (connected controllers stay)");
  DiscoveryChanged(tc, hostnqn);
  return Status::OK();
}

Status SetAllowAnyHost(TargetContext* tc, const std::string& subnqn, bool allow) {
  Subsystem* sub = nullptr;
  Status s = FindChangeable(tc, subnqn, &sub);
  if (!s.ok()) return s;
  sub->SetAllowAnyHost(allow);
  tc->Log(subnqn + (allow ? " now allows any host" : " now allows only its listed hosts"));
  DiscoveryChanged(tc, "");
  return Status::OK();
}

Status AddSubsystem(TargetContext* tc, const SubsystemConfig& sc) {
  if (tc->FindSubsystem(sc.nqn) != nullptr) return Status::AlreadyExists("subsystem " + Escape(sc.nqn) + " exists already");
  std::unique_ptr<Subsystem> sub;
  Status s = BuildSubsystem(sc, &sub);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(tc->subsystems_mu);
    for (const auto& other : tc->subsystems) {
      if (other->nqn == sc.nqn) return Status::AlreadyExists("subsystem " + Escape(sc.nqn) + " exists already");
    }
    tc->subsystems.push_back(std::move(sub));
  }
  {
    // Ports that list their subsystems list it too: it is served wherever the others are.
    std::lock_guard<std::mutex> lock(tc->ports_mu);
    for (BoundPort& bp : tc->ports) {
      if (!bp.config.subsystems.empty()) bp.config.subsystems.push_back(sc.nqn);
    }
  }
  tc->Log("subsystem added: " + DescribeSubsystem(*tc->FindSubsystem(sc.nqn)));
  DiscoveryChanged(tc, "");
  return Status::OK();
}

Status RemoveSubsystem(TargetContext* tc, const std::string& nqn) {
  Subsystem* sub = nullptr;
  Status s = FindChangeable(tc, nqn, &sub);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(tc->subsystems_mu);
    auto it = std::find_if(tc->subsystems.begin(), tc->subsystems.end(),
                           [sub](const std::unique_ptr<Subsystem>& p) { return p.get() == sub; });
    tc->retired.push_back(std::move(*it));
    tc->subsystems.erase(it);
  }
  {
    std::lock_guard<std::mutex> lock(tc->ports_mu);
    for (BoundPort& bp : tc->ports) std::erase(bp.config.subsystems, nqn);
  }
  // Its controllers end (their hosts see the connections close), then its namespaces go
  // as a removal does: after their last commands.
  size_t ended = 0;
  OnAdminQueues(tc, sub, "", [](QueueHandler* q) { q->Close("subsystem removed"); });
  for (const auto& c : tc->controllers.All(sub)) ended += c != nullptr;
  // The snapshot is held while it is walked: each removal publishes a new one, and a
  // range-for over *Namespaces() would keep only the map's reference, not the map.
  const std::shared_ptr<const NamespaceMap> all = sub->Namespaces();
  for (const auto& [nsid, ns] : *all) sub->RemoveNamespace(nsid);
  bool idle = sub->ReapRemoved();
  for (int i = 0; i < 1000 && !idle; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    idle = sub->ReapRemoved();
  }
  tc->Log("subsystem " + nqn + " removed (" + std::to_string(ended) + " controllers closed)");
  DiscoveryChanged(tc, "");
  return Status::OK();
}

TargetConfig RunningConfig(const TargetContext& tc) {
  TargetConfig c = tc.config;
  c.ports.clear();
  for (const BoundPort& p : tc.Ports()) {
    PortConfig pc = p.config;
    pc.port = p.port;
    pc.ana_states.clear();
    for (uint32_t g = 1; g <= kMaxAnaGroups; g++) {
      const uint8_t st = p.state->ana[g].load();
      if (st != spec::kAnaOptimized) pc.ana_states[g] = st;
    }
    c.ports.push_back(pc);
  }
  c.subsystems.clear();
  for (const Subsystem* s : tc.Subsystems()) {
    if (!s->discovery) c.subsystems.push_back(s->Config());
  }
  return c;
}

}  // namespace nvmf::target
