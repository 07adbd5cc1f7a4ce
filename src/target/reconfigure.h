// Changes to a running target: namespaces, allowed hosts, and the configuration they add
// up to. Each change applies whole or not at all, and tells the controllers it concerns
// (asynchronous events): a namespace added, removed or resized joins the Changed
// Namespace List of every controller of its subsystem; a change of who may reach a
// subsystem changes the discovery log of the hosts concerned.
//
// Threads: any thread but an event loop's (a change may open a file or wait for a
// namespace's last commands), one change at a time: Target serialises them.
#pragma once

#include <cstdint>
#include <string>

#include "nvmf/target.h"
#include "target/context.h"

namespace nvmf::target {

Status AddNamespace(TargetContext* tc, const std::string& subnqn, const NamespaceConfig& nc,
                    uint32_t* nsid);
// Commands already inside the namespace finish first (waited for, up to a second; later
// than that its backend closes when they have).
Status RemoveNamespace(TargetContext* tc, const std::string& subnqn, uint32_t nsid);
Status ResizeNamespace(TargetContext* tc, const std::string& subnqn, uint32_t nsid, uint64_t bytes);
// Connected hosts stay connected when they lose access, as with Linux's nvmet: access is
// checked at Connect.
Status AddHost(TargetContext* tc, const std::string& subnqn, const std::string& hostnqn);
Status RemoveHost(TargetContext* tc, const std::string& subnqn, const std::string& hostnqn);
Status SetAllowAnyHost(TargetContext* tc, const std::string& subnqn, bool allow);

// A subsystem more (as configured at start), or one less: its controllers are closed and
// its namespaces removed (after their last commands).
Status AddSubsystem(TargetContext* tc, const SubsystemConfig& sc);
Status RemoveSubsystem(TargetContext* tc, const std::string& nqn);

// Tells persistent discovery controllers (of hostnqn; empty: of every host) that the
// discovery log changed.
void DiscoveryChanged(TargetContext* tc, const std::string& hostnqn);
const char* AnaStateName(uint8_t state);
// The state spec::AnaState for "optimized", "non-optimized", "inaccessible",
// "persistent-loss", "change"; false for another name.
bool ParseAnaState(const std::string& name, uint8_t* state);

// The configuration the target runs now: as started, with every change since.
TargetConfig RunningConfig(const TargetContext& tc);

}  // namespace nvmf::target
