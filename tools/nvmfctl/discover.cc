// nvmfctl discover: reads the discovery log page of a discovery controller.
#include <fmt/format.h>

#include "common.h"

namespace nvmfctl {
namespace host = nvmf::host;

namespace {

std::string EflagsString(uint16_t e) {
  if (e == 0) return "none";
  std::string s;
  auto add = [&](const char* n) { s += s.empty() ? n : std::string(", ") + n; };
  if (e & 1) add("explicit discovery connections");
  if (e & 2) add("duplicate returned information");
  if (e & 4) add("no cdc connectivity");
  if (e & ~7) add(fmt::format("{:#x}", e & ~7).c_str());
  return s;
}

int RunDiscover(const ConnFlags& f) {
  auto session = Connect(f, true);
  host::DiscoveryLog log;
  Status st = session->ctrl->Discovery(&log);
  if (!st.ok()) Fail("reading the discovery log", st);
  if (f.json) {
    Json records = Json::array();
    for (const auto& e : log.entries) {
      records.push_back({{"trtype", host::TrtypeName(e.trtype)},
                         {"adrfam", host::AdrfamName(e.adrfam)},
                         {"subtype", host::SubtypeName(e.subtype)},
                         {"treq", host::TreqString(e.treq)},
                         {"portid", e.portid},
                         {"trsvcid", host::FixedString(e.trsvcid, sizeof(e.trsvcid))},
                         {"subnqn", host::FixedString(e.subnqn, sizeof(e.subnqn))},
                         {"traddr", host::FixedString(e.traddr, sizeof(e.traddr))},
                         {"cntlid", e.cntlid},
                         {"asqsz", e.asqsz},
                         {"eflags", EflagsString(e.eflags)},
                         {"sectype", e.trtype == 3 ? host::SectypeName(e.tsas[0]) : "n/a"}});
    }
    PrintJson({{"genctr", log.genctr}, {"numrec", log.numrec}, {"records", records}});
    return kExitOk;
  }
  fmt::print("Discovery Log Number of Records {}, Generation counter {}\n", log.numrec, log.genctr);
  for (size_t i = 0; i < log.entries.size(); i++) {
    const auto& e = log.entries[i];
    fmt::print("===== Discovery Log Entry {} =====\n", i);
    fmt::print("trtype:  {}\n", host::TrtypeName(e.trtype));
    fmt::print("adrfam:  {}\n", host::AdrfamName(e.adrfam));
    fmt::print("subtype: {}\n", host::SubtypeName(e.subtype));
    fmt::print("treq:    {}\n", host::TreqString(e.treq));
    fmt::print("portid:  {}\n", e.portid);
    fmt::print("trsvcid: {}\n", host::FixedString(e.trsvcid, sizeof(e.trsvcid)));
    fmt::print("subnqn:  {}\n", host::FixedString(e.subnqn, sizeof(e.subnqn)));
    fmt::print("traddr:  {}\n", host::FixedString(e.traddr, sizeof(e.traddr)));
    fmt::print("eflags:  {}\n", EflagsString(e.eflags));
    if (e.trtype == 3) fmt::print("sectype: {}\n", host::SectypeName(e.tsas[0]));
  }
  return kExitOk;
}

}  // namespace

void RegisterDiscover(CLI::App& app, Runner* run) {
  static ConnFlags f_storage;  // lives as long as the program
  auto* f = &f_storage;
  CLI::App* sub = app.add_subcommand("discover", "print the discovery log of a discovery controller");
  AddConnFlags(sub, f);
  sub->callback([f, run] { *run = [f] { return RunDiscover(*f); }; });
}

}  // namespace nvmfctl
