// Writes the seed corpora of the fuzz targets: a handful of well-formed inputs each,
// built with the codec's own builders in the layout each target reads (see the header
// comment of each fuzz_*.cc). Run: fuzz_make_corpus fuzz/corpus
// The seeds are committed; rerun this after changing an input layout.
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "nvmf/spec/admin.h"
#include "nvmf/spec/fabrics.h"
#include "nvmf/spec/nvme.h"
#include "nvmf/spec/tcp.h"
#include "support.h"
#include "tcp/crc32c.h"
#include "tcp/pdu_codec.h"

namespace {

using namespace nvmf;
using namespace nvmf::tcp;
using fuzz::Writer;
using Bytes = std::vector<uint8_t>;

std::string g_root;

void Save(const std::string& target, const std::string& name, const Bytes& b) {
  std::string dir = g_root + "/" + target;
  mkdir(g_root.c_str(), 0755);
  mkdir(dir.c_str(), 0755);
  std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fwrite(b.data(), 1, b.size(), f);
  std::fclose(f);
}

// A whole PDU: header from a builder, then payload and data digest.
Bytes Pdu(const uint8_t* hdr, uint32_t hlen, const Bytes& data = {}, bool ddgst = false) {
  Bytes out(hdr, hdr + hlen);
  out.insert(out.end(), data.begin(), data.end());
  if (ddgst && !data.empty()) {
    uint32_t d = Crc32c(data.data(), data.size());
    const auto* p = reinterpret_cast<const uint8_t*>(&d);
    out.insert(out.end(), p, p + 4);
  }
  return out;
}

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

spec::Sqe Sqe(uint8_t opc, uint16_t cid, uint32_t nsid = 0) {
  spec::Sqe s{};
  s.opc = opc;
  s.cid = cid;
  s.nsid = nsid;
  return s;
}

// ---------------------------------------------------------------- fuzz_pdu_codec

void PduCodec() {
  alignas(8) uint8_t buf[kMaxHeaderBytes];
  int i = 0;
  auto add = [&](uint8_t cfg, uint32_t n, uint8_t build) {
    Writer w;
    w.U8(cfg);
    w.U32(0x1000);
    w.U32(0x2000);
    w.U32(0x10);
    w.U32(0x20000);
    w.U8(3);
    w.U8(build);
    w.Bytes(buf, n);
    Save("fuzz_pdu_codec", "seed-" + std::to_string(i++), w.out);
  };
  // cfg: bit0 controller, bit1 hdgst, bit2 ddgst, bit3 handshake, bits 4-6 pda index.
  add(0x09, BuildIcReq(buf, 0, true, true, 3), 0x85);
  add(0x08, BuildIcResp(buf, 0, true, false, 131072), 0x86);
  TxConfig plain{false, false, 4}, dig{true, true, 4}, dig8{true, true, 8};
  spec::Sqe sqe = Sqe(spec::kNvmWrite, 5, 1);
  add(0x01, BuildCapsuleCmd(buf, sqe, 0, plain), 0x80);
  add(0x07, BuildCapsuleCmd(buf, sqe, 512, dig), 0x80);
  add(0x17, BuildCapsuleCmd(buf, sqe, 512, dig8), 0x82);
  add(0x00, BuildCapsuleResp(buf, spec::Cqe{}, plain), 0x81);
  add(0x07, BuildH2CData(buf, 5, 0, 0, 4096, true, dig), 0x82);
  add(0x06, BuildC2HData(buf, 5, 0, 4096, true, true, dig), 0x83);
  add(0x02, BuildR2T(buf, 5, 1, 0, 8192, TxConfig{true, false, 4}), 0x84);
  uint8_t quote[24] = {4, 0, 72};
  add(0x01, BuildTermReq(buf, true, 1, 2, quote, sizeof(quote)), 0x87);
}

// ---------------------------------------------------------------- fuzz_nvmetcli_json

void NvmetcliJson() {
  const char* seeds[] = {
      R"({"hosts": [], "ports": [], "subsystems": []})",
      R"({"hosts": [{"nqn": "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"}],
 "ports": [{"portid": 1, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
   "trsvcid": "4420", "treq": "not specified", "tsas": "none"},
   "param": {"inline_data_size": "16384"}, "referrals": [],
   "subsystems": ["nqn.2024-01.io.nvmf:disk"]}],
 "subsystems": [{"nqn": "nqn.2024-01.io.nvmf:disk",
   "attr": {"allow_any_host": "1", "serial": "0123456789abcdef", "model": "Linux", "version": "1.3"},
   "allowed_hosts": [],
   "namespaces": [{"nsid": 1, "enable": 1, "device": {"path": "mem:64M",
     "uuid": "6a3a3d0c-1f5e-4a8b-9c3e-2a1b0c9d8e7f", "nguid": "00000000-0000-0000-0000-000000000000"},
     "ana_grpid": 1}]}]})",
      R"({"ports": [{"portid": 2, "addr": {"trtype": "tcp", "adrfam": "ipv6", "traddr": "::1",
   "trsvcid": 0}, "subsystems": ["nqn.2024-01.io.nvmf:a", "nqn.2024-01.io.nvmf:b"]},
   {"portid": 3, "addr": {"traddr": "fe80::1%lo", "trsvcid": "4421"}, "subsystems": []}],
 "subsystems": [{"nqn": "nqn.2024-01.io.nvmf:a", "attr": {"allow_any_host": false},
   "allowed_hosts": ["nqn.2024-01.io.nvmf:h1"],
   "namespaces": [{"device": {"path": "null:1G"}}, {"nsid": 7, "enable": 0, "device": {}}]},
  {"nqn": "nqn.2024-01.io.nvmf:b", "attr": {"allow_any_host": 1},
   "namespaces": [{"nsid": 4294967294, "device": {"path": "file:/dev/null"}}]}]})",
      R"({"ports": [{"portid": 1, "addr": {"trtype": "rdma", "traddr": "10.0.0.1", "trsvcid": "4420"},
   "subsystems": ["nqn.2024-01.io.nvmf:x"]}], "subsystems": [{"nqn": "nqn.2024-01.io.nvmf:x"}]})",
  };
  int i = 0;
  for (const char* s : seeds) {
    Save("fuzz_nvmetcli_json", "seed-" + std::to_string(i++),
         Bytes(s, s + std::strlen(s)));
  }
}

// ---------------------------------------------------------------- fuzz_tcp_rx

struct RxSeed {
  uint8_t flags, params;
  uint8_t extra;
  std::vector<std::pair<uint8_t, uint16_t>> host_cmds;
  Bytes stream;
};

void SaveRx(const RxSeed& s, int i) {
  Writer w;
  w.U8(s.flags);
  w.U8(s.params);
  w.U16(static_cast<uint16_t>(0x1234 + i * 977));
  w.U8(s.extra);
  w.U8(static_cast<uint8_t>(s.host_cmds.size()));
  for (auto [opc, len] : s.host_cmds) {
    w.U8(opc);
    w.U16(len);
  }
  w.Bytes(s.stream);
  Save("fuzz_tcp_rx", "seed-" + std::to_string(i), w.out);
}

void TcpRx() {
  int i = 0;
  alignas(8) uint8_t h[kMaxHeaderBytes];
  for (int dg = 0; dg < 4; dg++) {
    const bool hd = dg & 1, dd = dg & 2;
    TxConfig tx{hd, dd, 4};
    // flags: bit0 host role, bit1 hd, bit2 dd, bits3-4 rx pda index (0: 4), bit5 fix
    // digests, bit6 admin, bit7 8 KiB ICD. params: bits 0 c2h_success, 1 ICD 4 KiB,
    // 2-3 maxh2cdata, 4-5 tx pda / maxr2t, 6-7 pieces.
    const uint8_t dflags = static_cast<uint8_t>((hd ? 2 : 0) | (dd ? 4 : 0) | 0x20 | 0x80);

    // The controller's first R2Ts take TTAGs 31, 30, ... (its transfer pool's order).
    // Controller role: a command without data, a write with in-capsule data, a write by
    // R2T answered with H2CData, a read, then a clean close.
    RxSeed c{static_cast<uint8_t>(dflags | 0x10), 0x04, 0, {}, {}};
    spec::Sqe sqe = Sqe(spec::kNvmFlush, 1, 1);
    sqe.fuse_psdt = spec::kPsdtSglMptrContig << 6;
    auto cat = [](Bytes& a, const Bytes& b) { a.insert(a.end(), b.begin(), b.end()); };
    cat(c.stream, Pdu(h, BuildCapsuleCmd(h, sqe, 0, tx)));
    sqe = Sqe(spec::kNvmWrite, 2, 1);
    sqe.fuse_psdt = spec::kPsdtSglMptrContig << 6;
    sqe.sgl1.length = 512;
    sqe.sgl1.type = spec::kSglInCapsule;
    cat(c.stream, Pdu(h, BuildCapsuleCmd(h, sqe, 512, tx), Pattern(512, 1), dd));
    sqe = Sqe(spec::kNvmWrite, 3, 1);
    sqe.fuse_psdt = spec::kPsdtSglMptrContig << 6;
    sqe.sgl1.length = 6000;
    sqe.sgl1.type = spec::kSglTransport;
    cat(c.stream, Pdu(h, BuildCapsuleCmd(h, sqe, 0, tx)));
    cat(c.stream, Pdu(h, BuildH2CData(h, 3, 31, 0, 4096, false, tx), Pattern(4096, 2), dd));
    cat(c.stream, Pdu(h, BuildH2CData(h, 3, 31, 4096, 1904, true, tx), Pattern(1904, 3), dd));
    sqe = Sqe(spec::kNvmRead, 4, 1);
    sqe.fuse_psdt = spec::kPsdtSglMptrContig << 6;
    sqe.sgl1.length = 8192;
    sqe.sgl1.type = spec::kSglTransport;
    cat(c.stream, Pdu(h, BuildCapsuleCmd(h, sqe, 0, tx)));
    SaveRx(c, i++);

    // Controller role, two pieces per command: two R2Ts, maxr2t 2.
    RxSeed c2{dflags, 0x50, static_cast<uint8_t>(dg == 3 ? 5 : 0), {}, {}};
    sqe = Sqe(spec::kNvmWrite, 9, 1);
    sqe.fuse_psdt = spec::kPsdtSglMptrContig << 6;
    sqe.sgl1.length = 8192;
    sqe.sgl1.type = spec::kSglTransport;
    cat(c2.stream, Pdu(h, BuildCapsuleCmd(h, sqe, 0, tx)));
    cat(c2.stream, Pdu(h, BuildH2CData(h, 9, 31, 0, 4096, true, tx), Pattern(4096, 4), dd));
    cat(c2.stream, Pdu(h, BuildH2CData(h, 9, 30, 4096, 4096, true, tx), Pattern(4096, 5), dd));
    SaveRx(c2, i++);

    // Host role: cid 0 reads 4 KiB, cid 1 writes 16 KiB by R2T, cid 2 has no data.
    RxSeed hs{static_cast<uint8_t>(dflags | 1 | 0x10), 0x12, static_cast<uint8_t>(dg == 2 ? 2 : 0),
              {{spec::kNvmRead, 4096}, {spec::kNvmWrite, 16384}, {spec::kNvmFlush, 0}}, {}};
    cat(hs.stream, Pdu(h, BuildC2HData(h, 0, 0, 2048, false, false, tx), Pattern(2048, 6), dd));
    cat(hs.stream, Pdu(h, BuildC2HData(h, 0, 2048, 2048, true, false, tx), Pattern(2048, 7), dd));
    spec::Cqe cqe{};
    cqe.cid = 0;
    cat(hs.stream, Pdu(h, BuildCapsuleResp(h, cqe, tx)));
    cat(hs.stream, Pdu(h, BuildR2T(h, 1, 0, 0, 8192, tx)));
    cat(hs.stream, Pdu(h, BuildR2T(h, 1, 1, 8192, 8192, tx)));
    cqe.cid = 1;
    cat(hs.stream, Pdu(h, BuildCapsuleResp(h, cqe, tx)));
    cqe.cid = 2;
    cat(hs.stream, Pdu(h, BuildCapsuleResp(h, cqe, tx)));
    SaveRx(hs, i++);

    // Host role: a read completed by the SUCCESS flag.
    RxSeed hs2{static_cast<uint8_t>(dflags | 1), 0x00, 0, {{spec::kNvmRead, 512}}, {}};
    cat(hs2.stream, Pdu(h, BuildC2HData(h, 0, 0, 512, true, true, tx), Pattern(512, 8), dd));
    SaveRx(hs2, i++);
  }
}

// ---------------------------------------------------------------- fuzz_handshake

void Handshake() {
  alignas(8) uint8_t h[kMaxHeaderBytes];
  int i = 0;
  auto add = [&](uint8_t opt, const Bytes& b) {
    Writer w;
    w.U8(opt);
    w.U8(static_cast<uint8_t>(17 * i + 3));
    w.Bytes(b);
    Save("fuzz_handshake", "seed-" + std::to_string(i++), w.out);
  };
  // opt bit0: host role; bits 1-2: digests allowed/asked; 4-6 pda.
  add(0x06, Pdu(h, BuildIcReq(h, 0, true, true, 0)));
  add(0x00, Pdu(h, BuildIcReq(h, 3, false, false, 15)));
  add(0x16, Pdu(h, BuildIcReq(h, 1, true, false, 0xffffffff)));
  add(0x07, Pdu(h, BuildIcResp(h, 0, true, true, 131072)));
  add(0x01, Pdu(h, BuildIcResp(h, 2, false, false, 8192)));
  add(0x03, Pdu(h, BuildIcResp(h, 0, true, false, 4096)));
  uint8_t quote[8] = {0, 0, 128};
  add(0x01, Pdu(h, BuildTermReq(h, false, 6, 8, quote, sizeof(quote))));
}

// ---------------------------------------------------------------- fuzz_target_commands

struct Cmd {
  spec::Sqe sqe;
  uint16_t len;
  uint8_t flags;  // bit0 to controller, bit1 wait
  Bytes data;
};

void SaveTarget(const std::string& name, uint8_t mode, const std::vector<Cmd>& cmds) {
  Writer w;
  w.U8(mode);
  w.U8(0);   // kato
  w.U8(31);  // sqsize
  for (const Cmd& c : cmds) {
    w.Bytes(&c.sqe, sizeof(c.sqe));
    w.U16(c.len);
    w.U8(c.flags);
    if (c.flags & 1) {
      Bytes d = c.data;
      d.resize(c.len);
      w.Bytes(d);
    }
  }
  Save("fuzz_target_commands", name, w.out);
}

void TargetCommands() {
  // Admin: Identify controller, namespace list, namespace 1; Get Log Page (error, SMART);
  // Get/Set Features; Keep Alive.
  std::vector<Cmd> admin;
  auto identify = [](uint8_t cns, uint32_t nsid) {
    spec::Sqe s = Sqe(spec::kAdminIdentify, 0, nsid);
    s.cdw10 = cns;
    return Cmd{s, 4096, 2, {}};
  };
  admin.push_back(identify(1, 0));
  admin.push_back(identify(2, 0));
  admin.push_back(identify(0, 1));
  admin.push_back(identify(3, 1));
  for (uint8_t lid : {1, 2, 3}) {
    spec::Sqe s = Sqe(spec::kAdminGetLogPage, 0, 0xffffffff);
    s.cdw10 = lid | (127u << 16);  // NUMDL: 128 dwords
    admin.push_back({s, 512, 2, {}});
  }
  spec::Sqe sf = Sqe(spec::kAdminSetFeatures, 0);
  sf.cdw10 = 0x07;  // number of queues
  sf.cdw11 = 0x00010001;
  admin.push_back({sf, 0, 2, {}});
  spec::Sqe gf = Sqe(spec::kAdminGetFeatures, 0);
  gf.cdw10 = 0x0f;  // keep alive timer
  admin.push_back({gf, 0, 2, {}});
  admin.push_back({Sqe(spec::kAdminKeepAlive, 0), 0, 2, {}});
  admin.push_back({Sqe(spec::kAdminAsyncEventRequest, 0), 0, 0, {}});
  SaveTarget("seed-admin", 0x00, admin);
  SaveTarget("seed-admin-enabled-digests", 0x1c, admin);

  // I/O: write 4 KiB in the capsule, write 16 KiB by R2T, read both back, write zeroes,
  // deallocate, flush; and an out-of-range read.
  std::vector<Cmd> io;
  auto rw = [](uint8_t opc, uint64_t slba, uint16_t nlb, uint32_t nsid = 1) {
    spec::Sqe s = Sqe(opc, 0, nsid);
    s.cdw10 = static_cast<uint32_t>(slba);
    s.cdw11 = static_cast<uint32_t>(slba >> 32);
    s.cdw12 = static_cast<uint16_t>(nlb - 1);
    return s;
  };
  io.push_back({rw(spec::kNvmWrite, 0, 8), 4096, 3, Pattern(4096, 9)});
  io.push_back({rw(spec::kNvmWrite, 8, 32), 16384, 3, Pattern(16384, 10)});
  io.push_back({rw(spec::kNvmRead, 0, 8), 4096, 2, {}});
  io.push_back({rw(spec::kNvmRead, 8, 32), 16384, 0, {}});
  io.push_back({rw(spec::kNvmWriteZeroes, 16, 32), 0, 2, {}});
  spec::Sqe dsm = Sqe(spec::kNvmDatasetManagement, 0, 1);
  dsm.cdw11 = 4;  // deallocate
  Bytes range(16, 0);
  range[4] = 16;  // nlb 16
  range[8] = 32;  // slba 32
  io.push_back({dsm, 16, 3, range});
  io.push_back({Sqe(spec::kNvmFlush, 0, 1), 0, 2, {}});
  io.push_back({rw(spec::kNvmRead, 2040, 16), 8192, 2, {}});
  io.push_back({rw(spec::kNvmRead, 0, 8, 3), 4096, 2, {}});
  SaveTarget("seed-io", 0x01, io);
  SaveTarget("seed-io-digests", 0x0d, io);

  // Discovery: Identify, the log page header, then the whole log.
  std::vector<Cmd> disc;
  disc.push_back(identify(1, 0));
  spec::Sqe lp = Sqe(spec::kAdminGetLogPage, 0);
  lp.cdw10 = spec::kLogDiscovery | (255u << 16);
  disc.push_back({lp, 1024, 2, {}});
  lp.cdw10 = spec::kLogDiscovery | (1023u << 16);
  disc.push_back({lp, 4096, 2, {}});
  SaveTarget("seed-discovery", 0x03, disc);

  // The fuzzer's own Connect (admin), then Property Get CAP and Set CC.
  std::vector<Cmd> raw;
  spec::Sqe cs{};
  auto* c = reinterpret_cast<spec::ConnectSqe*>(&cs);
  c->opc = spec::kFabricsCommand;
  c->fctype = spec::kFctypeConnect;
  c->sqsize = 31;
  spec::ConnectData d{};
  d.cntlid = spec::kDynamicControllerId;
  std::strcpy(d.subnqn, "nqn.2024-01.io.nvmf:fuzz");
  std::strcpy(d.hostnqn, "nqn.2024-01.io.nvmf:fuzz-host");
  Bytes db(reinterpret_cast<uint8_t*>(&d), reinterpret_cast<uint8_t*>(&d) + sizeof(d));
  raw.push_back({cs, 1024, 3, db});
  spec::Sqe pg{};
  auto* g = reinterpret_cast<spec::PropertyGetSqe*>(&pg);
  g->opc = spec::kFabricsCommand;
  g->fctype = spec::kFctypePropertyGet;
  g->attrib = 1;
  g->ofst = spec::kPropCap;
  raw.push_back({pg, 0, 2, {}});
  spec::Sqe ps{};
  auto* p = reinterpret_cast<spec::PropertySetSqe*>(&ps);
  p->opc = spec::kFabricsCommand;
  p->fctype = spec::kFctypePropertySet;
  p->ofst = spec::kPropCc;
  p->value = 0x00460001;
  raw.push_back({ps, 0, 2, {}});
  spec::Sqe disconnect{};
  disconnect.opc = spec::kFabricsCommand;
  reinterpret_cast<spec::FabricsSqe*>(&disconnect)->fctype = spec::kFctypeDisconnect;
  raw.push_back({disconnect, 0, 2, {}});
  SaveTarget("seed-raw-connect", 0x02, raw);
}

// ---------------------------------------------------------------- fuzz_host_responses

struct Answer {
  uint8_t action = 0;
  uint32_t cdw0 = 0, cdw1 = 0;
  uint16_t status = 0;
  Bytes data;
};

void SaveHost(const std::string& name, uint8_t opt, const std::vector<Answer>& answers) {
  Writer w;
  w.U8(opt);
  for (const Answer& a : answers) {
    w.U8(a.action);
    w.U32(a.cdw0);
    w.U32(a.cdw1);
    w.U16(a.status);
    w.U16(static_cast<uint16_t>(a.data.size()));
    w.Bytes(a.data);
  }
  Save("fuzz_host_responses", name, w.out);
}

Bytes IdentifyData(uint8_t cntrltype) {
  spec::IdentifyController id{};
  std::memcpy(id.sn, "fuzz0001            ", 20);
  std::memcpy(id.mn, "fuzz controller                         ", 40);
  id.mdts = 5;
  id.cntrltype = cntrltype;
  id.maxcmd = 128;
  id.sgls = 0x100005;
  id.ioccsz = (8192 + 64) / 16;
  Bytes b(sizeof(id));
  std::memcpy(b.data(), &id, sizeof(id));
  return b;
}

std::vector<Answer> ConnectAnswers(uint8_t cntrltype) {
  std::vector<Answer> a;
  a.push_back({0, 1, 0, 0, {}});                               // Connect: cntlid 1
  a.push_back({0, 0x0201007f, 0x00000020, 0, {}});             // CAP: MQES 127, TO 1 s, CSS NVM
  a.push_back({0, 0, 0, 0, {}});                               // Property Set CC
  a.push_back({0, 1, 0, 0, {}});                               // CSTS: RDY
  a.push_back({0, 0, 0, 0, IdentifyData(cntrltype)});          // Identify
  return a;
}

void HostResponses() {
  // I/O controller, one I/O queue: Set Features, I/O Connect, then the harness's read 4K,
  // write 4K (in capsule), write 64K (R2T), read 64K (in two PDUs), flush.
  for (int dg = 0; dg < 4; dg++) {
    std::vector<Answer> a = ConnectAnswers(1);
    a.push_back({0, 0, 0, 0, {}});  // Set Features Number of Queues: 1 and 1
    a.push_back({0, 1, 0, 0, {}});  // I/O Connect
    a.push_back({0, 0, 0, 0, Pattern(4096, 11)});
    a.push_back({0, 0, 0, 0, {}});
    a.push_back({0x10, 0, 0, 0, {}});
    a.push_back({0x08, 0, 0, 0, Pattern(4096, 12)});
    a.push_back({0, 0, 0, 0, {}});
    SaveHost("seed-io-" + std::to_string(dg), static_cast<uint8_t>(dg << 1), a);
  }
  // With the SUCCESS flag on reads, and an error status.
  {
    std::vector<Answer> a = ConnectAnswers(1);
    a.push_back({0, 0, 0, 0, {}});
    a.push_back({0, 1, 0, 0, {}});
    a.push_back({0x03, 0, 0, 0, Pattern(16, 13)});
    a.push_back({0, 0, 0, static_cast<uint16_t>(spec::MakeStatus(0, 0x80) << 1), {}});
    a.push_back({0x10, 0, 0, 0, {}});
    a.push_back({0x03, 0, 0, 0, {}});
    a.push_back({0, 0, 0, 0, {}});
    SaveHost("seed-success-flag", 0x00, a);
  }
  // Two I/O queues.
  {
    std::vector<Answer> a = ConnectAnswers(1);
    a.push_back({0, 0x00010001, 0, 0, {}});
    a.push_back({0, 1, 0, 0, {}});
    a.push_back({0, 1, 0, 0, {}});
    SaveHost("seed-two-queues", 0x08, a);
  }
  // Discovery: the log header (two records), the body, the header again.
  {
    std::vector<Answer> a = ConnectAnswers(2);
    Bytes page(1024 + 2 * 1024, 0);
    spec::DiscoveryLogHeader hdr{};
    hdr.genctr = 7;
    hdr.numrec = 2;
    std::memcpy(page.data(), &hdr, sizeof(hdr));
    for (int e = 0; e < 2; e++) {
      spec::DiscoveryLogEntry ent{};
      ent.trtype = 3;
      ent.adrfam = 1;
      ent.subtype = e == 0 ? 3 : 2;
      ent.portid = 1;
      ent.cntlid = 0xffff;
      std::strcpy(ent.trsvcid, "4420");
      std::strcpy(ent.traddr, "127.0.0.1");
      std::strcpy(ent.subnqn, e == 0 ? spec::kDiscoveryNqn : "nqn.2024-01.io.nvmf:disk");
      std::memcpy(page.data() + 1024 * (e + 1), &ent, sizeof(ent));
    }
    a.push_back({0, 0, 0, 0, page});
    a.push_back({0, 0, 0, 0, page});
    a.push_back({0, 0, 0, 0, page});
    SaveHost("seed-discovery", 0x01, a);
  }
}

}  // namespace

int main(int argc, char** argv) {
  g_root = argc > 1 ? argv[1] : "fuzz/corpus";
  PduCodec();
  NvmetcliJson();
  TcpRx();
  Handshake();
  TargetCommands();
  HostResponses();
  std::printf("seed corpora written under %s\n", g_root.c_str());
  return 0;
}
