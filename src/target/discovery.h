// The discovery log page: one entry per (port, subsystem the host may use on it), plus
// one for the discovery subsystem itself on each port.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "target/context.h"

namespace nvmf::target {

std::vector<uint8_t> BuildDiscoveryLog(const TargetContext& tc, const std::string& hostnqn);

}  // namespace nvmf::target
