// nvmfctl list: the controller's active namespaces with their sizes.
#include <fmt/format.h>

#include <vector>

#include "common.h"

namespace nvmfctl {
namespace host = nvmf::host;
namespace spec = nvmf::spec;

namespace {

int RunList(const ConnFlags& f) {
  auto session = Connect(f, false);
  host::SyncController& c = *session->ctrl;
  std::vector<uint32_t> nsids;
  Status st = c.ActiveNamespaces(&nsids);
  if (!st.ok()) {
    if (st.code() != Status::Code::kNvmeError) Fail("Identify (active namespace list)", st);
    // No active namespace list (an old controller): try 1..NN.
    nsids.clear();
    for (uint32_t i = 1; i <= c.identify().nn && i <= 4096; i++) nsids.push_back(i);
  }
  Json list = Json::array();
  for (uint32_t nsid : nsids) {
    spec::IdentifyNamespace id;
    st = c.IdentifyNamespace(nsid, &id);
    if (!st.ok()) {
      if (st.code() == Status::Code::kNvmeError) continue;
      Fail(fmt::format("Identify Namespace {}", nsid), st);
    }
    const uint32_t bs = host::NamespaceBlockSize(id);
    if (id.nsze == 0 || bs == 0) continue;  // inactive
    list.push_back({{"nsid", nsid},
                    {"size_bytes", id.nsze * bs},
                    {"lba_size", bs},
                    {"blocks", id.nsze},
                    {"capacity_blocks", id.ncap},
                    {"used_blocks", id.nuse}});
  }
  if (f.json) {
    PrintJson({{"subnqn", session->options.subnqn},
               {"cntlid", c.async().cntlid()},
               {"namespaces", list}});
    return kExitOk;
  }
  fmt::print("{:<6} {:>12} {:>9} {:>14} {:>14}\n", "NSID", "Size", "LBA size", "Blocks", "Used");
  for (const auto& n : list) {
    fmt::print("{:<6} {:>12} {:>9} {:>14} {:>14}\n", n["nsid"].get<uint32_t>(),
               host::FormatSize(n["size_bytes"].get<uint64_t>()), n["lba_size"].get<uint32_t>(),
               n["blocks"].get<uint64_t>(), n["used_blocks"].get<uint64_t>());
  }
  if (list.empty()) fmt::print("(no active namespaces)\n");
  return kExitOk;
}

}  // namespace

void RegisterList(CLI::App& app, Runner* run) {
  static ConnFlags f_storage;  // lives as long as the program
  auto* f = &f_storage;
  CLI::App* sub = app.add_subcommand("list", "list the active namespaces of a subsystem's controller");
  AddConnFlags(sub, f);
  sub->callback([f, run] { *run = [f] { return RunList(*f); }; });
}

}  // namespace nvmfctl
