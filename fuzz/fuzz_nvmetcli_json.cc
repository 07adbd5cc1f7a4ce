// Fuzzes nvmf::target::ParseNvmetcliConfig (src/target/config.cc) with arbitrary bytes as
// the JSON text that nvmetcli's saveconfig writes.
//
// A crash means the parser read out of bounds, overflowed, threw an exception it should
// have turned into a Status, or broke its contract: on error *out must be unchanged, and
// on success only ports and subsystems may change, and every port it keeps must have a
// subsystem (Linux does not enable a port without one).
#include <cstddef>
#include <cstdint>
#include <string>

#include "nvmf/target.h"
#include "support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nvmf::target::TargetConfig;
  const std::string text(reinterpret_cast<const char*>(data), size);
  TargetConfig cfg;
  cfg.threads = 3;
  cfg.max_queue_size = 77;
  cfg.ports.push_back({});
  cfg.ports[0].portid = 4242;
  nvmf::Status s = nvmf::target::ParseNvmetcliConfig(text, &cfg);
  FUZZ_CHECK(cfg.threads == 3 && cfg.max_queue_size == 77);
  if (!s.ok()) {
    FUZZ_CHECK(cfg.ports.size() == 1 && cfg.ports[0].portid == 4242);
    FUZZ_CHECK(cfg.subsystems.empty());
    FUZZ_CHECK(!s.ToString().empty());
    return 0;
  }
  for (const auto& p : cfg.ports) FUZZ_CHECK(!p.subsystems.empty());
  for (const auto& sub : cfg.subsystems) FUZZ_CHECK(!sub.nqn.empty());
  return 0;
}
