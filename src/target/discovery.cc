#include "target/discovery.h"

#include <algorithm>
#include <cstring>

#include "nvmf/spec/admin.h"

namespace nvmf::target {
namespace {

void CopyField(char* dst, size_t n, const std::string& s, char pad) {
  std::memset(dst, pad, n);
  std::memcpy(dst, s.data(), std::min(n, s.size()));
}

bool Exposed(const PortConfig& p, const std::string& nqn) {
  return p.subsystems.empty() ||
         std::find(p.subsystems.begin(), p.subsystems.end(), nqn) != p.subsystems.end();
}

}  // namespace

std::vector<uint8_t> BuildDiscoveryLog(const TargetContext& tc, const std::string& hostnqn) {
  std::vector<spec::DiscoveryLogEntry> entries;
  for (const BoundPort& bp : tc.Ports()) {
    for (const Subsystem* sub : tc.Subsystems()) {
      if (!sub->discovery && (!Exposed(bp.config, sub->nqn) || !sub->HostAllowed(hostnqn))) continue;
      spec::DiscoveryLogEntry e = bp.entry;  // TRTYPE, ADRFAM, TREQ, TSAS from the transport
      e.subtype = sub->discovery ? spec::kSubtypeCurrentDiscovery : spec::kSubtypeNvme;
      e.portid = bp.config.portid;
      e.cntlid = 0xFFFF;
      e.asqsz = 32;
      CopyField(e.trsvcid, sizeof(e.trsvcid), std::to_string(bp.port), '\0');
      CopyField(e.subnqn, sizeof(e.subnqn), sub->nqn, '\0');
      CopyField(e.traddr, sizeof(e.traddr), bp.config.addr, '\0');
      entries.push_back(e);
    }
  }
  std::vector<uint8_t> page(sizeof(spec::DiscoveryLogHeader) +
                            entries.size() * sizeof(spec::DiscoveryLogEntry));
  spec::DiscoveryLogHeader h{};
  h.genctr = 1;  // the configuration is fixed while the target runs
  h.numrec = entries.size();
  std::memcpy(page.data(), &h, sizeof(h));
  if (!entries.empty()) {
    std::memcpy(page.data() + sizeof(h), entries.data(), entries.size() * sizeof(entries[0]));
  }
  return page;
}

}  // namespace nvmf::target
