// nvmfctl identify: the Identify Controller data, or a namespace's with --ns.
#include <fmt/format.h>

#include <cstring>

#include "common.h"

namespace nvmfctl {
namespace host = nvmf::host;
namespace spec = nvmf::spec;

namespace {

struct IdentifyFlags {
  ConnFlags conn;
  uint32_t nsid = 0;
};

std::string HexBytes(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; i++) s += fmt::format("{:02x}", p[i]);
  return s;
}

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != 0) return false;
  }
  return true;
}

std::string Version(uint32_t v) {
  if (v == 0) return "not reported";
  return fmt::format("{}.{}.{}", v >> 16, v >> 8 & 0xff, v & 0xff);
}

const char* CntrlType(uint8_t t) {
  switch (t) {
    case 1: return "I/O controller";
    case 2: return "discovery controller";
    case 3: return "administrative controller";
    default: return "not reported";
  }
}

int RunController(const IdentifyFlags& f) {
  auto session = Connect(f.conn, false);
  spec::IdentifyController id;
  Status st = session->ctrl->IdentifyController(&id);
  if (!st.ok()) Fail("Identify Controller", st);
  const std::string ieee = fmt::format("{:02x}{:02x}{:02x}", id.ieee[2], id.ieee[1], id.ieee[0]);
  const uint64_t mdts_bytes = id.mdts == 0 ? 0 : (uint64_t{1} << id.mdts) * 4096;
  Json j = {{"vid", Hex(id.vid, 4)},
            {"ssvid", Hex(id.ssvid, 4)},
            {"sn", host::FixedString(id.sn, sizeof(id.sn))},
            {"mn", host::FixedString(id.mn, sizeof(id.mn))},
            {"fr", host::FixedString(id.fr, sizeof(id.fr))},
            {"rab", id.rab},
            {"ieee", ieee},
            {"cmic", Hex(id.cmic)},
            {"mdts", id.mdts},
            {"cntlid", Hex(id.cntlid, 4)},
            {"ver", Version(id.ver)},
            {"oaes", Hex(id.oaes)},
            {"ctratt", Hex(id.ctratt)},
            {"cntrltype", CntrlType(id.cntrltype)},
            {"oacs", Hex(id.oacs)},
            {"acl", id.acl},
            {"aerl", id.aerl},
            {"lpa", Hex(id.lpa)},
            {"elpe", id.elpe},
            {"kas", id.kas},
            {"sqes", Hex(id.sqes)},
            {"cqes", Hex(id.cqes)},
            {"maxcmd", id.maxcmd},
            {"nn", id.nn},
            {"oncs", Hex(id.oncs)},
            {"fuses", Hex(id.fuses)},
            {"vwc", Hex(id.vwc)},
            {"sgls", Hex(id.sgls)},
            {"subnqn", host::FixedString(id.subnqn, sizeof(id.subnqn))},
            {"ioccsz", id.ioccsz},
            {"iorcsz", id.iorcsz},
            {"icdoff", id.icdoff},
            {"fcatt", Hex(id.fcatt)},
            {"msdbd", id.msdbd}};
  if (f.conn.json) {
    j["max_transfer_bytes"] = session->ctrl->async().max_transfer_size();
    PrintJson(j);
    return kExitOk;
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string v = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
    if (it.key() == "mdts") {
      v += id.mdts == 0 ? " (no limit)" : " (" + host::FormatSize(mdts_bytes) + ")";
    } else if (it.key() == "ioccsz") {
      v += fmt::format(" ({} bytes of in-capsule data)", id.ioccsz >= 4 ? id.ioccsz * 16 - 64 : 0);
    } else if (it.key() == "kas" && id.kas != 0) {
      v += fmt::format(" ({} ms)", id.kas * 100);
    }
    fmt::print("{:<10}: {}\n", it.key(), v);
  }
  return kExitOk;
}

int RunNamespace(const IdentifyFlags& f) {
  auto session = Connect(f.conn, false);
  NamespaceInfo ns = GetNamespace(*session->ctrl, f.nsid);
  const spec::IdentifyNamespace& id = ns.id;
  // Namespace identification descriptors (CNS 03h): UUID, NGUID, EUI-64. Optional.
  std::string uuid, nguid = AllZero(id.nguid, 16) ? "" : HexBytes(id.nguid, 16),
                    eui64 = AllZero(id.eui64, 8) ? "" : HexBytes(id.eui64, 8);
  alignas(8) uint8_t desc[4096];
  if (session->ctrl->Identify(spec::kCnsNamespaceDescriptors, f.nsid, desc).ok()) {
    size_t off = 0;
    while (off + sizeof(spec::NidHeader) <= sizeof(desc)) {
      spec::NidHeader h;
      std::memcpy(&h, desc + off, sizeof(h));
      if (h.nidt == 0 || h.nidl == 0 || off + 4 + h.nidl > sizeof(desc)) break;
      const uint8_t* v = desc + off + 4;
      if (h.nidt == spec::kNidUuid && h.nidl == 16) {
        std::array<uint8_t, 16> u;
        std::memcpy(u.data(), v, 16);
        uuid = host::FormatUuid(u);
      } else if (h.nidt == spec::kNidNguid && h.nidl == 16 && nguid.empty()) {
        nguid = HexBytes(v, 16);
      } else if (h.nidt == spec::kNidEui64 && h.nidl == 8 && eui64.empty()) {
        eui64 = HexBytes(v, 8);
      }
      off += 4 + h.nidl;
    }
  }
  const unsigned cur = host::NamespaceFormatIndex(id);
  Json formats = Json::array();
  for (unsigned i = 0; i <= id.nlbaf && i < 64; i++) {
    formats.push_back({{"index", i},
                       {"ms", id.lbaf[i].ms},
                       {"lbads", id.lbaf[i].lbads},
                       {"rp", id.lbaf[i].rp},
                       {"in_use", i == cur}});
  }
  Json j = {{"nsid", f.nsid},
            {"nsze", id.nsze},
            {"ncap", id.ncap},
            {"nuse", id.nuse},
            {"nsfeat", Hex(id.nsfeat)},
            {"nlbaf", id.nlbaf},
            {"flbas", Hex(id.flbas)},
            {"mc", Hex(id.mc)},
            {"dpc", Hex(id.dpc)},
            {"dps", Hex(id.dps)},
            {"nmic", Hex(id.nmic)},
            {"dlfeat", id.dlfeat},
            {"nguid", nguid.empty() ? std::string(32, '0') : nguid},
            {"eui64", eui64.empty() ? std::string(16, '0') : eui64},
            {"uuid", uuid},
            {"size_bytes", ns.blocks * ns.block_size},
            {"lba_size", ns.block_size},
            {"lbaf", formats}};
  if (f.conn.json) {
    PrintJson(j);
    return kExitOk;
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "lbaf" || (it.key() == "uuid" && uuid.empty())) continue;
    std::string v = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
    if (it.key() == "nsze" || it.key() == "ncap" || it.key() == "nuse") {
      v += fmt::format(" ({})", host::FormatSize(it.value().get<uint64_t>() * ns.block_size));
    }
    fmt::print("{:<10}: {}\n", it.key(), v);
  }
  for (unsigned i = 0; i <= id.nlbaf && i < 64; i++) {
    const auto& l = id.lbaf[i];
    fmt::print("lbaf {:>2}   : ms:{:<3} lbads:{:<2} rp:{:#x}{}\n", i, l.ms, l.lbads, l.rp,
               i == cur ? " (in use)" : "");
  }
  return kExitOk;
}

}  // namespace

void RegisterIdentify(CLI::App& app, Runner* run) {
  static IdentifyFlags f_storage;  // lives as long as the program
  auto* f = &f_storage;
  CLI::App* sub = app.add_subcommand("identify", "Identify Controller, or a namespace with --ns");
  AddConnFlags(sub, &f->conn);
  CLI::Option* ns = sub->add_option("--ns,--namespace-id", f->nsid,
                                    "namespace ID (identify that namespace)");
  sub->callback([f, run, ns] {
    const bool want_ns = ns->count() > 0;
    *run = [f, want_ns] { return want_ns ? RunNamespace(*f) : RunController(*f); };
  });
}

}  // namespace nvmfctl
