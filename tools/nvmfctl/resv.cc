// nvmfctl resv-register / resv-acquire / resv-release / resv-report: the reservation
// commands, with nvme-cli's option names. Where nvme-cli's short option is taken by a
// connection flag (-n NQN, -k keep-alive, -t transport, -a address, -i queues) only the
// long form is offered: --namespace-id, --nrkey, --rtype, --racqa, --iekey.
#include <fmt/format.h>

#include "common.h"
#include "nvmf/host_resv.h"

namespace nvmfctl {
namespace host = nvmf::host;
namespace spec = nvmf::spec;

namespace {

struct ResvFlags {
  ConnFlags conn;
  uint32_t nsid = 1;
  std::string crkey = "0", other = "0";  // other: NRKEY (register) or PRKEY (acquire)
  uint32_t action = 0;                   // RREGA, RACQA or RRELA
  uint32_t rtype = 0;
  uint32_t cptpl = 0;
  bool iekey = false;
  bool eds = true;  // accepted, always on
  std::string output = "normal";
};

uint64_t Key(const std::string& name, const std::string& text) {
  try {
    size_t used = 0;
    const uint64_t v = std::stoull(text, &used, 0);  // decimal, or 0x hex
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  Usage(fmt::format("{} '{}' is not a 64-bit number", name, text));
}

uint8_t Type(uint32_t rtype) {
  if (rtype < spec::kResvWriteExclusive || rtype > spec::kResvExclusiveAccessAllRegistrants) {
    Usage(fmt::format("--rtype {} is not a reservation type (1..6)", rtype));
  }
  return static_cast<uint8_t>(rtype);
}

// Connects, runs one command, says what happened.
int RunCommand(const ResvFlags& f, const char* what, const std::function<Status(host::SyncController&)>& cmd) {
  auto session = Connect(f.conn, false);
  Status st = cmd(*session->ctrl);
  if (!st.ok()) Fail(what, st);
  if (f.conn.json) {
    PrintJson({{"op", what}, {"nsid", f.nsid}, {"status", "success"}});
  } else {
    fmt::print("{}: success on namespace {}\n", what, f.nsid);
  }
  return kExitOk;
}

int RunReport(const ResvFlags& f) {
  auto session = Connect(f.conn, false);
  host::ResvReport r;
  Status st = host::ResvReportGet(*session->ctrl, f.nsid, &r);
  if (!st.ok()) Fail("resv-report", st);
  if (f.conn.json || f.output == "json") {
    Json regs = Json::array();
    for (const auto& g : r.registrants) {
      regs.push_back({{"cntlid", g.cntlid}, {"hostid", host::FormatUuid(g.hostid)}, {"rkey", Hex(g.key)},
                      {"holder", g.holder}});
    }
    PrintJson({{"nsid", f.nsid}, {"generation", r.generation}, {"rtype", r.rtype},
               {"type", host::ResvTypeName(r.rtype)}, {"ptpl", r.ptpl}, {"registrants", regs}});
    return kExitOk;
  }
  fmt::print("namespace {}: generation {}, reservation: {}{}, persist through power loss: {}\n", f.nsid,
             r.generation, host::ResvTypeName(r.rtype), r.rtype != 0 ? fmt::format(" ({})", r.rtype) : "",
             r.ptpl ? "on" : "off");
  fmt::print("{} registrant{}\n", r.registrants.size(), r.registrants.size() == 1 ? "" : "s");
  if (r.registrants.empty()) return kExitOk;
  fmt::print("  {:<36}  {:<18}  {:<6}  {}\n", "host ID", "key", "cntlid", "holder");
  for (const auto& g : r.registrants) {
    fmt::print("  {:<36}  {:<18}  {:<6}  {}\n", host::FormatUuid(g.hostid), Hex(g.key), Hex(g.cntlid, 4),
               g.holder ? "yes" : "no");
  }
  return kExitOk;
}

CLI::App* AddResvCommand(CLI::App& app, const char* name, const char* help, ResvFlags* f) {
  CLI::App* sub = app.add_subcommand(name, help);
  AddConnFlags(sub, &f->conn);
  sub->add_option("--ns,--namespace-id", f->nsid, "namespace ID")->capture_default_str();
  return sub;
}

void AddKeyFlags(CLI::App* sub, ResvFlags* f) {
  sub->add_option("-c,--crkey", f->crkey, "current reservation key (decimal or 0x hex)")->capture_default_str();
  sub->add_flag("--iekey", f->iekey, "ignore the existing key");
}

}  // namespace

void RegisterResv(CLI::App& app, Runner* run) {
  static ResvFlags reg, acq, rel, rep;  // live as long as the program

  CLI::App* sub = AddResvCommand(app, "resv-register", "Reservation Register: register, unregister or replace a key", &reg);
  AddKeyFlags(sub, &reg);
  sub->add_option("--nrkey", reg.other, "new reservation key")->capture_default_str();
  sub->add_option("-r,--rrega", reg.action, "action: 0 register, 1 unregister, 2 replace")
      ->check(CLI::Range(0, 2))
      ->capture_default_str();
  sub->add_option("-p,--cptpl", reg.cptpl,
                  "change persist through power loss: 0 no change, 2 clear (lost at power loss), 3 persist")
      ->check(CLI::IsMember({0u, 2u, 3u}))
      ->capture_default_str();
  sub->callback([run] {
    *run = [] {
      const host::ResvRegisterArgs a{static_cast<uint8_t>(reg.action), Key("--crkey", reg.crkey),
                                     Key("--nrkey", reg.other), reg.iekey, static_cast<uint8_t>(reg.cptpl)};
      return RunCommand(reg, "resv-register",
                        [&a](host::SyncController& c) { return host::ResvRegister(c, reg.nsid, a); });
    };
  });

  sub = AddResvCommand(app, "resv-acquire", "Reservation Acquire: acquire, preempt, or preempt and abort", &acq);
  AddKeyFlags(sub, &acq);
  sub->add_option("-p,--prkey", acq.other, "preempt reservation key")->capture_default_str();
  sub->add_option("--rtype", acq.rtype,
                  "type: 1 write exclusive, 2 exclusive access, 3/4 the same for registrants only, "
                  "5/6 for all registrants")
      ->required();
  sub->add_option("--racqa", acq.action, "action: 0 acquire, 1 preempt, 2 preempt and abort")
      ->check(CLI::Range(0, 2))
      ->capture_default_str();
  sub->callback([run] {
    *run = [] {
      const host::ResvAcquireArgs a{static_cast<uint8_t>(acq.action), Type(acq.rtype), Key("--crkey", acq.crkey),
                                    Key("--prkey", acq.other), acq.iekey};
      return RunCommand(acq, "resv-acquire",
                        [&a](host::SyncController& c) { return host::ResvAcquire(c, acq.nsid, a); });
    };
  });

  sub = AddResvCommand(app, "resv-release", "Reservation Release: release the reservation, or clear every registration", &rel);
  AddKeyFlags(sub, &rel);
  sub->add_option("--rtype", rel.rtype, "type of the reservation held (as acquired; any for clear)")
      ->capture_default_str();
  sub->add_option("-r,--rrela", rel.action, "action: 0 release, 1 clear")->check(CLI::Range(0, 1))->capture_default_str();
  sub->callback([run] {
    *run = [] {
      const host::ResvReleaseArgs a{static_cast<uint8_t>(rel.action), static_cast<uint8_t>(rel.rtype),
                                    Key("--crkey", rel.crkey), rel.iekey};
      return RunCommand(rel, "resv-release",
                        [&a](host::SyncController& c) { return host::ResvRelease(c, rel.nsid, a); });
    };
  });

  sub = AddResvCommand(app, "resv-report", "Reservation Report: generation, type and registrants", &rep);
  // Fabrics hosts have 128-bit IDs, which only the extended format carries: it is always
  // asked for, and -e is taken for nvme-cli's sake.
  sub->add_flag("-e,--eds", rep.eds, "extended data structure (always used: fabrics host IDs are 128-bit)");
  sub->add_option("-o,--output-format", rep.output, "normal or json")
      ->check(CLI::IsMember({"normal", "json"}))
      ->capture_default_str();
  sub->callback([run] { *run = [] { return RunReport(rep); }; });
}

}  // namespace nvmfctl
