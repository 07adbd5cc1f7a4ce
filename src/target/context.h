// TargetContext: what every queue handler of a target shares: the configuration, the
// subsystems, the controllers, the ports (for the discovery log), and logging.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nvmf/target.h"
#include "target/controller.h"
#include "target/subsystem.h"

namespace nvmf::target {

struct BoundPort {
  PortConfig config;
  uint16_t port = 0;  // as bound
};

struct TargetContext {
  TargetConfig config;
  std::vector<std::unique_ptr<Subsystem>> subsystems;  // [0] is the discovery subsystem
  std::vector<BoundPort> ports;
  ControllerRegistry controllers;

  const Subsystem* FindSubsystem(const std::string& nqn) const {
    for (const auto& s : subsystems) {
      if (s->nqn == nqn) return s.get();
    }
    return nullptr;
  }
  void Log(const std::string& line) const;
};

}  // namespace nvmf::target
