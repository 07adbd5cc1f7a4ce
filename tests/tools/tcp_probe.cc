// tcp_probe: drives our NVMe/TCP host transport against a real NVMe/TCP controller (the
// Linux kernel's nvmet-tcp, in tests/ and scripts/linux-peer-test) and reports each step.
//
//   tcp_probe --addr 127.0.0.1 --port P --nqn NQN [--hostnqn NQN] [--hostid UUID]
//             [-g] [-G] [--io] [--sizes 4k,128k,1m] [--max-h2c BYTES] [--kato MS]
//             [--timeout S] [--qd N]
//
// Steps: TCP connect + ICReq/ICResp of an admin queue pair; Fabrics Connect (qid 0);
// Property Get CAP and VS. With --io: Property Set CC.EN, wait for CSTS.RDY, Identify
// Controller and Namespace 1, an I/O queue pair (second connection, Connect qid 1), then
// for each size an NVM Write and a Read of the same blocks, comparing the data; with
// --qd N, N writes of mixed sizes in flight at once, then N reads of them; finally a
// Keep Alive. One line per step, "OK" or "FAIL"; exit status 0 only when every step
// passed. Connection-level failures (timeout, transport error, a failed Connect) end the
// run at once with exit status 1.
//
// Only the transport API is used (nvmf/transport.h, nvmf/tcp.h): this is a test of the
// transport against a peer written elsewhere, not of a host layer.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "nvmf/event_loop.h"
#include "nvmf/memdesc.h"
#include "nvmf/spec/fabrics.h"
#include "nvmf/spec/nvme.h"
#include "nvmf/status.h"
#include "nvmf/tcp.h"
#include "nvmf/transport.h"

namespace {

using namespace nvmf;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- options

struct Options {
  std::string addr = "127.0.0.1";
  uint16_t port = 4420;
  std::string nqn;
  std::string hostnqn;
  std::string hostid;  // UUID text
  bool hdgst = false;
  bool ddgst = false;
  bool io = false;
  std::vector<uint64_t> sizes = {4096, 128 * 1024, 1024 * 1024};
  uint32_t max_h2c = 0;  // 0: as negotiated
  uint32_t kato_ms = 30000;
  int timeout_s = 60;
  int qd = 0;  // > 0: also a batch of this many writes, then reads, in flight at once
};

[[noreturn]] void Usage(const char* msg) {
  if (msg != nullptr) std::fprintf(stderr, "tcp_probe: %s\n", msg);
  std::fprintf(stderr,
               "usage: tcp_probe --addr A --port P --nqn NQN [--hostnqn NQN] [--hostid UUID]\n"
               "                 [-g] [-G] [--io] [--sizes 4k,128k,1m] [--max-h2c BYTES]\n"
               "                 [--kato MS] [--timeout S] [--qd N]\n");
  std::exit(2);
}

bool ParseSize(const std::string& s, uint64_t* out) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (end == s.c_str()) return false;
  std::string suf(end);
  if (suf == "k" || suf == "K") v <<= 10;
  else if (suf == "m" || suf == "M") v <<= 20;
  else if (!suf.empty()) return false;
  *out = v;
  return v > 0;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--addr" || a == "-a") o.addr = value();
    else if (a == "--port" || a == "-s") o.port = static_cast<uint16_t>(std::atoi(value().c_str()));
    else if (a == "--nqn" || a == "-n") o.nqn = value();
    else if (a == "--hostnqn" || a == "-q") o.hostnqn = value();
    else if (a == "--hostid" || a == "-I") o.hostid = value();
    else if (a == "-g" || a == "--hdr-digest") o.hdgst = true;
    else if (a == "-G" || a == "--data-digest") o.ddgst = true;
    else if (a == "--io") o.io = true;
    else if (a == "--kato" || a == "-k") o.kato_ms = static_cast<uint32_t>(std::atoi(value().c_str()));
    else if (a == "--timeout") o.timeout_s = std::atoi(value().c_str());
    else if (a == "--qd") o.qd = std::atoi(value().c_str());
    else if (a == "--max-h2c") {
      uint64_t v;
      if (!ParseSize(value(), &v) || v > 0xFFFFFFFFu) Usage("bad --max-h2c");
      o.max_h2c = static_cast<uint32_t>(v);
    } else if (a == "--sizes") {
      o.sizes.clear();
      std::string list = value();
      size_t pos = 0;
      while (pos <= list.size()) {
        size_t comma = list.find(',', pos);
        std::string item = list.substr(pos, comma == std::string::npos ? std::string::npos
                                                                         : comma - pos);
        uint64_t v;
        if (!ParseSize(item, &v)) Usage("bad --sizes");
        o.sizes.push_back(v);
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
    } else if (a == "-h" || a == "--help") {
      Usage(nullptr);
    } else {
      Usage(("unknown option " + a).c_str());
    }
  }
  if (o.nqn.empty()) Usage("--nqn is required");
  if (o.port == 0) Usage("bad --port");
  if (o.timeout_s <= 0) Usage("bad --timeout");
  if (o.qd < 0 || o.qd > 31) Usage("--qd must be 0..31 (the I/O queue has 32 entries)");
  return o;
}

std::string ReadFirstLine(const char* path) {
  std::ifstream f(path);
  std::string line;
  if (f) std::getline(f, line);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' ')) {
    line.pop_back();
  }
  return line;
}

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" to 16 bytes.
bool ParseUuid(const std::string& s, uint8_t out[16]) {
  std::string hex;
  for (char ch : s) {
    if (ch != '-') hex += ch;
  }
  if (hex.size() != 32) return false;
  for (int i = 0; i < 16; i++) {
    char b[3] = {hex[2 * i], hex[2 * i + 1], 0};
    char* end = nullptr;
    out[i] = static_cast<uint8_t>(std::strtoul(b, &end, 16));
    if (end != b + 2) return false;
  }
  return true;
}

std::string FormatUuid(const uint8_t u[16]) {
  char buf[40];
  std::snprintf(buf, sizeof(buf),
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
                u[14], u[15]);
  return buf;
}

void RandomBytes(void* p, size_t n) {
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  size_t got = 0;
  if (fd >= 0) {
    while (got < n) {
      ssize_t r = read(fd, static_cast<uint8_t*>(p) + got, n - got);
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    close(fd);
  }
  if (got < n) {  // no /dev/urandom: good enough for a test identity
    uint64_t x = static_cast<uint64_t>(Clock::now().time_since_epoch().count()) ^ getpid();
    for (size_t i = got; i < n; i++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(x >> 56);
    }
  }
}

// ---------------------------------------------------------------- reporting

int g_steps = 0;
int g_failed = 0;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

void Report(bool ok, const char* step, Clock::time_point t0, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
void Report(bool ok, const char* step, Clock::time_point t0, const char* fmt, ...) {
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  g_steps++;
  if (!ok) g_failed++;
  std::printf("%-4s %-28s %s (%.3f s)\n", ok ? "OK" : "FAIL", step, detail, Seconds(t0));
  std::fflush(stdout);
}

[[noreturn]] void Abort(const char* step, Clock::time_point t0, const std::string& why) {
  Report(false, step, t0, "%s", why.c_str());
  std::printf("RESULT FAIL: stopped at \"%s\" (%d of %d steps failed)\n", step, g_failed, g_steps);
  std::fflush(stdout);
  // Exit without tearing down: a timed-out command may still own buffers and capsules.
  std::_Exit(1);
}

std::string StatusText(uint16_t status) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "status 0x%04x (SCT 0x%x SC 0x%02x%s)", status,
                spec::StatusSct(status), spec::StatusSc(status),
                spec::StatusDnr(status) ? " DNR" : "");
  return buf;
}

// ---------------------------------------------------------------- a queue pair and one command at a time

struct Conn;

// One command in flight. Its CID is a multiple of kSlots plus the slot's index, so that
// CIDs vary from command to command while a response still finds its slot at once.
struct Slot {
  Conn* conn = nullptr;
  uint16_t cid = 0;
  bool busy = false;
  bool got_response = false;
  spec::Cqe cqe{};
  bool sqhd_valid = true;
  bool data_attached = false;
  bool data_done = false;
  size_t data_len = 0;
  size_t data_bytes = 0;
  Status data_status;
};
constexpr int kSlots = 64;

struct Conn {
  const char* name = "";
  EventLoop* loop = nullptr;
  Qpair* qp = nullptr;
  TcpQpairParams params;
  uint16_t qid = 0;
  uint32_t serial = 0;

  // Set by the error callback.
  bool ended = false;
  Status error;

  Slot slots[kSlots];
  spec::Cqe cqe{};  // the completion of the last Exec
  int stray_responses = 0;
};

void OnError(Conn* c, const Status& s) {
  c->ended = true;
  c->error = s;
}

void OnReceive(Conn* c, Capsule* cap) {
  const spec::Cqe& cqe = CapsuleCqe(cap);
  Slot& s = c->slots[cqe.cid % kSlots];
  if (s.busy && s.cid == cqe.cid && !s.got_response) {
    s.cqe = cqe;
    s.sqhd_valid = CapsuleSqhdValid(cap);
    s.got_response = true;
  } else {
    c->stray_responses++;
    std::printf("     note: %s queue: unexpected response cid %u %s\n", c->name, cqe.cid,
                StatusText(spec::StatusOf(cqe)).c_str());
  }
  FreeCapsule(cap);
}

void OnData(Slot* s, size_t bytes, const Status& st) {
  s->data_done = true;
  s->data_bytes = bytes;
  s->data_status = st;
}

bool SlotDone(const Slot* s) {
  return s->got_response && (!s->data_attached || s->data_done);
}

[[noreturn]] void AbortEnded(Conn* c, const char* step, Clock::time_point t0) {
  Abort(step, t0, std::string(c->name) + " queue ended: " +
                      (c->error.ok() ? std::string("the controller closed the connection")
                                     : c->error.ToString()));
}

// Sends one command (with its data, if len > 0) and returns its slot.
Slot* Submit(Conn* c, const char* step, Clock::time_point t0, spec::Sqe sqe, void* data,
             size_t len, bool send) {
  if (c->ended) AbortEnded(c, step, t0);
  Slot* s = nullptr;
  int idx = 0;
  for (; idx < kSlots; idx++) {
    if (!c->slots[idx].busy) {
      s = &c->slots[idx];
      break;
    }
  }
  if (s == nullptr) Abort(step, t0, "probe error: more than 64 commands in flight");
  *s = Slot{};
  s->conn = c;
  s->busy = true;
  s->cid = static_cast<uint16_t>((c->serial++ % 1000 + 1) * kSlots + idx);
  s->data_attached = len > 0;
  s->data_len = len;
  sqe.cid = s->cid;

  Capsule* cap = AllocateCommand(c->qp, sqe);
  if (cap == nullptr) Abort(step, t0, std::string(c->name) + ": AllocateCommand returned null");
  if (len > 0) {
    if (len > MaxTransferSize(c->qp)) {
      FreeCapsule(cap);
      Abort(step, t0, "transfer of " + std::to_string(len) + " bytes exceeds MaxTransferSize " +
                          std::to_string(MaxTransferSize(c->qp)));
    }
    AppendData(cap, MemDesc::Buffer(data, len), len, send,
               [s](size_t bytes, const Status& st) { OnData(s, bytes, st); });
  }
  Status ts = Transmit(cap);
  FreeCapsule(cap);  // the transport keeps its own reference
  if (!ts.ok()) Abort(step, t0, "Transmit: " + ts.ToString());
  return s;
}

// Waits for the commands' responses and data. A timeout or a transport failure ends the
// run (Abort), as does a failed data transfer of a command that completed successfully.
void Wait(Conn* c, const char* step, Clock::time_point t0, Slot* const* slots, int n,
          int timeout_s) {
  bool done = c->loop->RunUntil(
      [c, slots, n] {
        if (c->ended) return true;
        for (int i = 0; i < n; i++) {
          if (!SlotDone(slots[i])) return false;
        }
        return true;
      },
      std::chrono::seconds(timeout_s));
  for (int i = 0; i < n; i++) {
    Slot* s = slots[i];
    if (!done) {
      if (SlotDone(s)) continue;
      std::string what = s->got_response
                             ? "the response came but the data transfer did not end"
                             : "no response";
      Abort(step, t0, "timed out after " + std::to_string(timeout_s) + " s: " + what + " (cid " +
                          std::to_string(s->cid) + ", " + c->name + " queue)");
    }
    if (!s->got_response) AbortEnded(c, step, t0);
    const uint16_t st = spec::StatusOf(s->cqe);
    if (s->data_attached && !s->data_status.ok() && st == spec::kStatusSuccess) {
      Abort(step, t0, "data transfer failed: " + s->data_status.ToString() +
                          " although the command succeeded (cid " + std::to_string(s->cid) + ")");
    }
    if (s->data_attached && st == spec::kStatusSuccess && s->data_bytes != s->data_len) {
      Abort(step, t0, "data transfer moved " + std::to_string(s->data_bytes) + " of " +
                          std::to_string(s->data_len) + " bytes (cid " + std::to_string(s->cid) +
                          ")");
    }
    if (s->sqhd_valid && s->cqe.sqid != c->qid) {
      std::printf("     note: %s queue: completion names SQID %u, expected %u\n", c->name,
                  s->cqe.sqid, c->qid);
    }
    s->busy = false;
  }
}

// Runs one command to completion (response and data); returns the completion's status
// field and leaves the completion in c->cqe.
uint16_t Exec(Conn* c, const char* step, Clock::time_point t0, spec::Sqe sqe, void* data,
              size_t len, bool send, int timeout_s) {
  Slot* s = Submit(c, step, t0, sqe, data, len, send);
  Wait(c, step, t0, &s, 1, timeout_s);
  c->cqe = s->cqe;
  if (s->data_attached && !s->data_status.ok()) {
    std::printf("     note: data transfer ended with %s (completion %s)\n",
                s->data_status.ToString().c_str(), StatusText(spec::StatusOf(s->cqe)).c_str());
  }
  return spec::StatusOf(c->cqe);
}

// TCP connect plus ICReq/ICResp, then the queue pair.
void OpenQueue(Conn* c, EventLoop* loop, const Options& o, bool admin, uint32_t max_icd,
               const char* step) {
  auto t0 = Clock::now();
  c->loop = loop;
  c->name = admin ? "admin" : "io";
  c->qid = admin ? 0 : 1;
  tcp::HostOptions ho;
  ho.header_digest = o.hdgst;
  ho.data_digest = o.ddgst;
  ho.timeout = std::chrono::seconds(o.timeout_s);
  bool done = false;
  Status cs;
  TcpQpairParams params;
  tcp::Connect(loop, o.addr, o.port, ho, [&](const Status& s, const TcpQpairParams& p) {
    done = true;
    cs = s;
    params = p;
  });
  if (!loop->RunUntil([&] { return done; }, std::chrono::seconds(o.timeout_s + 5))) {
    Abort(step, t0, "tcp::Connect did not call back in time");
  }
  if (!cs.ok()) Abort(step, t0, "tcp::Connect to " + o.addr + ":" + std::to_string(o.port) +
                                    ": " + cs.ToString());
  if (params.header_digest != o.hdgst || params.data_digest != o.ddgst) {
    Abort(step, t0, std::string("digests not as asked: header ") +
                        (params.header_digest ? "on" : "off") + ", data " +
                        (params.data_digest ? "on" : "off"));
  }
  const uint32_t negotiated_h2c = params.maxh2cdata;
  if (!admin) {
    params.max_icd = max_icd;
    if (o.max_h2c != 0 && o.max_h2c < params.maxh2cdata) params.maxh2cdata = o.max_h2c;
  }
  c->params = params;
  QpairParams qp;
  qp.admin = admin;
  qp.qsize = 32;
  qp.max_icd = params.max_icd;
  qp.connection = tcp::WrapConnection(params);
  Status as = AllocateQpair(
      loop, TransportType::kTcp, Role::kHost, qp, [c](const Status& s) { OnError(c, s); },
      [c](Capsule* cap) { OnReceive(c, cap); }, &c->qp);
  if (!as.ok()) Abort(step, t0, "AllocateQpair: " + as.ToString());
  char h2c[64] = "";
  if (params.maxh2cdata != negotiated_h2c) {
    std::snprintf(h2c, sizeof(h2c), " (our H2CData PDUs at most %u)", params.maxh2cdata);
  }
  Report(true, step, t0, "%s:%u hdgst=%d ddgst=%d cpda=%u(%u bytes) maxh2cdata=%u%s max_icd=%u",
         o.addr.c_str(), o.port, params.header_digest, params.data_digest,
         params.tx_pda / 4 - 1, params.tx_pda, negotiated_h2c, h2c, params.max_icd);
}

// Fabrics Connect for c's queue; returns the controller ID.
uint16_t FabricsConnect(Conn* c, const Options& o, const uint8_t hostid[16], uint16_t cntlid,
                        const char* step) {
  auto t0 = Clock::now();
  spec::ConnectSqe cs{};
  cs.opc = spec::kFabricsCommand;
  cs.fctype = spec::kFctypeConnect;
  cs.recfmt = 0;
  cs.qid = c->qid;
  cs.sqsize = 31;  // 0's based: 32 entries, our queue size
  cs.kato = c->qid == 0 ? o.kato_ms : 0;
  spec::Sqe sqe;
  std::memcpy(&sqe, &cs, sizeof(sqe));
  spec::ConnectData data{};
  std::memcpy(data.hostid, hostid, 16);
  data.cntlid = cntlid;
  std::snprintf(data.subnqn, sizeof(data.subnqn), "%s", o.nqn.c_str());
  std::snprintf(data.hostnqn, sizeof(data.hostnqn), "%s", o.hostnqn.c_str());
  uint16_t st = Exec(c, step, t0, sqe, &data, sizeof(data), true, o.timeout_s);
  spec::ConnectCqe cc;
  std::memcpy(&cc, &c->cqe, sizeof(cc));
  if (st != spec::kStatusSuccess) {
    std::string why = "Connect failed: " + StatusText(st);
    if (spec::StatusSct(st) == spec::kSctCommandSpecific &&
        spec::StatusSc(st) == spec::kScConnectInvalidParameters) {
      why += " invalid parameter at offset " + std::to_string(cc.invalid.ipo) + " of the " +
             ((cc.invalid.iattr & 1) ? "Connect data" : "SQE");
    }
    Abort(step, t0, why);
  }
  if (cc.success.authreq != 0) {
    Abort(step, t0, "controller requires authentication (AUTHREQ " +
                        std::to_string(cc.success.authreq) + "), which the probe does not do");
  }
  Report(true, step, t0, "qid=%u sqsize=31 kato=%ums cntlid=%u (0x%04x)", c->qid, cs.kato,
         cc.success.cntlid, cc.success.cntlid);
  return cc.success.cntlid;
}

spec::Sqe PropertyGetSqe(uint32_t ofst, bool eight) {
  spec::PropertyGetSqe p{};
  p.opc = spec::kFabricsCommand;
  p.fctype = spec::kFctypePropertyGet;
  p.attrib = eight ? spec::kProperty8Bytes : spec::kProperty4Bytes;
  p.ofst = ofst;
  spec::Sqe sqe;
  std::memcpy(&sqe, &p, sizeof(sqe));
  return sqe;
}

// Property Get; false on a bad status (reported).
bool PropertyGet(Conn* c, const Options& o, uint32_t ofst, bool eight, const char* step,
                 Clock::time_point t0, uint64_t* value) {
  uint16_t st = Exec(c, step, t0, PropertyGetSqe(ofst, eight), nullptr, 0, false, o.timeout_s);
  if (st != spec::kStatusSuccess) {
    Report(false, step, t0, "Property Get 0x%x: %s", ofst, StatusText(st).c_str());
    return false;
  }
  spec::PropertyGetCqe pc;
  std::memcpy(&pc, &c->cqe, sizeof(pc));
  *value = eight ? pc.value : static_cast<uint32_t>(pc.value);
  return true;
}

std::string Trimmed(const uint8_t* p, size_t n) {
  std::string s(reinterpret_cast<const char*>(p), n);
  size_t end = s.find_last_not_of(" \0", std::string::npos, 2);
  s.erase(end == std::string::npos ? 0 : end + 1);
  for (char& ch : s) {
    if (ch < 0x20 || ch > 0x7e) ch = '?';
  }
  return s;
}

uint32_t Le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t Le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// The data written to LBA slba onwards: a function of the run's seed and the byte offset,
// so that stale data from an earlier run or another size never matches.
void FillPattern(uint8_t* p, size_t len, uint64_t seed, uint64_t byte_base) {
  for (size_t i = 0; i < len; i += 8) {
    uint64_t x = seed ^ (byte_base + i) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    std::memcpy(p + i, &x, len - i >= 8 ? 8 : len - i);
  }
}

std::string SizeText(uint64_t n) {
  if (n % (1 << 20) == 0) return std::to_string(n >> 20) + "MiB";
  if (n % 1024 == 0) return std::to_string(n >> 10) + "KiB";
  return std::to_string(n) + "B";
}

int Run(const Options& o) {
  EventLoop loop(EventLoop::Mode::kWait);
  if (!loop.ok()) {
    std::printf("FAIL event loop: cannot create\n");
    return 1;
  }
  uint8_t hostid[16];
  if (!ParseUuid(o.hostid, hostid)) RandomBytes(hostid, sizeof(hostid));
  Options opt = o;
  if (opt.hostnqn.empty()) opt.hostnqn = "nqn.2014-08.org.nvmexpress:uuid:" + FormatUuid(hostid);
  std::printf("tcp_probe: target %s:%u subnqn %s hostnqn %s hostid %s hdgst=%d ddgst=%d io=%d\n",
              opt.addr.c_str(), opt.port, opt.nqn.c_str(), opt.hostnqn.c_str(),
              FormatUuid(hostid).c_str(), opt.hdgst, opt.ddgst, opt.io);

  // ---- admin queue
  Conn admin;
  OpenQueue(&admin, &loop, opt, true, 0, "admin tcp connect+icreq");
  const uint16_t cntlid =
      FabricsConnect(&admin, opt, hostid, spec::kDynamicControllerId, "admin fabrics connect");

  uint64_t cap = 0;
  {
    auto t0 = Clock::now();
    if (PropertyGet(&admin, opt, spec::kPropCap, true, "property get CAP", t0, &cap)) {
      Report(true, "property get CAP", t0,
             "CAP=0x%016" PRIx64 " MQES=%u(0's based) CQR=%u AMS=%u TO=%u(x500ms) DSTRD=%u CSS=0x%02x "
             "MPSMIN=%u MPSMAX=%u",
             cap, static_cast<unsigned>(cap & 0xFFFF), static_cast<unsigned>(cap >> 16 & 1),
             static_cast<unsigned>(cap >> 17 & 3), static_cast<unsigned>(cap >> 24 & 0xFF),
             static_cast<unsigned>(cap >> 32 & 0xF), static_cast<unsigned>(cap >> 37 & 0xFF),
             static_cast<unsigned>(cap >> 48 & 0xF), static_cast<unsigned>(cap >> 52 & 0xF));
    }
  }
  {
    auto t0 = Clock::now();
    uint64_t vs = 0;
    if (PropertyGet(&admin, opt, spec::kPropVs, false, "property get VS", t0, &vs)) {
      Report(true, "property get VS", t0, "VS=0x%08x (NVMe %u.%u.%u)",
             static_cast<unsigned>(vs), static_cast<unsigned>(vs >> 16),
             static_cast<unsigned>(vs >> 8 & 0xFF), static_cast<unsigned>(vs & 0xFF));
    }
  }

  if (opt.io) {
    // ---- enable the controller
    {
      const char* step = "property set CC.EN=1";
      auto t0 = Clock::now();
      spec::PropertySetSqe ps{};
      ps.opc = spec::kFabricsCommand;
      ps.fctype = spec::kFctypePropertySet;
      ps.attrib = spec::kProperty4Bytes;
      ps.ofst = spec::kPropCc;
      ps.value = 0x00460001;  // IOCQES=4 (16 B), IOSQES=6 (64 B), CSS=NVM, MPS=4 KiB, EN=1
      spec::Sqe sqe;
      std::memcpy(&sqe, &ps, sizeof(sqe));
      uint16_t st = Exec(&admin, step, t0, sqe, nullptr, 0, false, opt.timeout_s);
      if (st != spec::kStatusSuccess) Abort(step, t0, "Property Set CC: " + StatusText(st));
      Report(true, step, t0, "CC=0x00460001");
    }
    {
      const char* step = "wait CSTS.RDY";
      auto t0 = Clock::now();
      const int to_units = static_cast<int>(cap >> 24 & 0xFF);
      const auto limit = std::chrono::seconds(std::max(opt.timeout_s, to_units / 2 + 1));
      uint64_t csts = 0;
      int polls = 0;
      for (;;) {
        polls++;
        if (!PropertyGet(&admin, opt, spec::kPropCsts, false, step, t0, &csts)) {
          Abort(step, t0, "cannot read CSTS");
        }
        if (csts & 2) Abort(step, t0, "CSTS.CFS is set (controller fatal status)");
        if (csts & 1) break;
        if (Clock::now() - t0 > limit) Abort(step, t0, "CSTS.RDY did not become 1 in time");
        loop.RunUntil([] { return false; }, std::chrono::milliseconds(50));
      }
      Report(true, step, t0, "CSTS=0x%08x after %d poll(s)", static_cast<unsigned>(csts), polls);
    }

    // ---- Identify
    std::vector<uint8_t> idc(4096, 0xEE);
    uint32_t ioccsz = 0;
    uint64_t max_xfer = 0;  // 0: no limit
    {
      const char* step = "identify controller";
      auto t0 = Clock::now();
      spec::Sqe sqe{};
      sqe.opc = spec::kAdminIdentify;
      sqe.cdw10 = 1;  // CNS 1: controller
      uint16_t st = Exec(&admin, step, t0, sqe, idc.data(), idc.size(), false, opt.timeout_s);
      if (st != spec::kStatusSuccess) Abort(step, t0, "Identify: " + StatusText(st));
      const uint8_t mdts = idc[77];
      uint16_t id_cntlid;
      std::memcpy(&id_cntlid, &idc[78], 2);
      ioccsz = Le32(&idc[1792]);
      const uint32_t iorcsz = Le32(&idc[1796]);
      uint16_t icdoff;
      std::memcpy(&icdoff, &idc[1800], 2);
      const uint32_t sgls = Le32(&idc[536]);
      const unsigned mpsmin = 1u << (12 + (cap >> 48 & 0xF));
      if (mdts != 0) max_xfer = static_cast<uint64_t>(mpsmin) << mdts;
      bool ok = true;
      std::string why;
      if (id_cntlid != cntlid) {
        ok = false;
        why += " CNTLID in Identify differs from Connect's;";
      }
      if (ioccsz < 4) {
        ok = false;
        why += " IOCCSZ below the 64-byte SQE;";
      }
      if (icdoff != 0) {
        ok = false;
        why += " ICDOFF is not 0 (our transport puts in-capsule data at offset 0);";
      }
      Report(ok, step, t0,
             "MN='%s' SN='%s' FR='%s' MDTS=%u(%s) CNTLID=%u IOCCSZ=%u(%u bytes in-capsule) "
             "IORCSZ=%u ICDOFF=%u SGLS=0x%08x SUBNQN='%s'%s",
             Trimmed(&idc[24], 40).c_str(), Trimmed(&idc[4], 20).c_str(),
             Trimmed(&idc[64], 8).c_str(), mdts,
             max_xfer ? SizeText(max_xfer).c_str() : "no limit", id_cntlid, ioccsz,
             ioccsz >= 4 ? ioccsz * 16 - 64 : 0, iorcsz, icdoff, sgls,
             Trimmed(&idc[768], 256).c_str(), why.c_str());
      if (!ok) Abort(step, t0, "cannot open an I/O queue with these values");
    }
    uint32_t lba_size = 512;
    uint64_t nsze = 0;
    {
      const char* step = "identify namespace 1";
      auto t0 = Clock::now();
      std::vector<uint8_t> idn(4096, 0xEE);
      spec::Sqe sqe{};
      sqe.opc = spec::kAdminIdentify;
      sqe.nsid = 1;
      sqe.cdw10 = 0;  // CNS 0: namespace
      uint16_t st = Exec(&admin, step, t0, sqe, idn.data(), idn.size(), false, opt.timeout_s);
      if (st != spec::kStatusSuccess) Abort(step, t0, "Identify: " + StatusText(st));
      nsze = Le64(&idn[0]);
      const uint8_t nlbaf = idn[25];
      const uint8_t flbas = idn[26];
      const unsigned fmt = (flbas & 0xF) | ((nlbaf > 15 ? (flbas >> 5 & 3) : 0) << 4);
      const uint8_t* lbaf = &idn[128 + 4 * fmt];
      uint16_t ms;
      std::memcpy(&ms, lbaf, 2);
      const unsigned lbads = lbaf[2];
      bool ok = nsze > 0 && lbads >= 9 && lbads < 32 && ms == 0;
      if (ok) lba_size = 1u << lbads;
      Report(ok, step, t0, "NSZE=%" PRIu64 " NLBAF=%u FLBAS=0x%02x LBAF%u: LBADS=%u (%u-byte blocks) MS=%u%s",
             nsze, nlbaf, flbas, fmt, lbads, ok ? lba_size : 0, ms,
             ok ? "" : " (unusable: empty, bad LBADS, or metadata)");
      if (!ok) Abort(step, t0, "namespace 1 cannot be used");
    }

    // ---- I/O queue
    Conn io;
    OpenQueue(&io, &loop, opt, false, ioccsz * 16 - 64, "io tcp connect+icreq");
    const uint16_t io_cntlid = FabricsConnect(&io, opt, hostid, cntlid, "io fabrics connect");
    if (io_cntlid != cntlid) {
      Report(false, "io fabrics connect cntlid", Clock::now(),
             "I/O Connect returned CNTLID %u, the admin queue's is %u", io_cntlid, cntlid);
    }

    uint64_t seed;
    RandomBytes(&seed, sizeof(seed));
    std::printf("     I/O: lba size %u, namespace %" PRIu64 " blocks, pattern seed 0x%016" PRIx64
                ", in-capsule up to %u bytes, H2CData up to %u bytes\n",
                lba_size, nsze, seed, io.params.max_icd, io.params.maxh2cdata);
    uint64_t slba = 0;
    for (uint64_t size : opt.sizes) {
      std::string label = SizeText(size);
      std::string wstep = "write " + label;
      std::string rstep = "read " + label;
      if (size % lba_size != 0) {
        Report(false, wstep.c_str(), Clock::now(), "size is not a multiple of the %u-byte LBA",
               lba_size);
        continue;
      }
      if (max_xfer != 0 && size > max_xfer) {
        std::printf("SKIP %-28s larger than the controller's MDTS limit %s\n", wstep.c_str(),
                    SizeText(max_xfer).c_str());
        continue;
      }
      const uint64_t nlb = size / lba_size;
      if (nlb > 0x10000) {
        Report(false, wstep.c_str(), Clock::now(), "more than 65536 blocks in one command");
        continue;
      }
      if (slba + nlb > nsze) slba = 0;
      if (nlb > nsze) {
        Report(false, wstep.c_str(), Clock::now(), "namespace too small");
        continue;
      }
      std::vector<uint8_t> wbuf(size), rbuf(size);
      FillPattern(wbuf.data(), size, seed, slba * lba_size);
      const char* how = size <= io.params.max_icd ? "in-capsule" : "R2T+H2CData";
      {
        auto t0 = Clock::now();
        spec::Sqe sqe{};
        sqe.opc = spec::kNvmWrite;
        sqe.nsid = 1;
        sqe.cdw10 = static_cast<uint32_t>(slba);
        sqe.cdw11 = static_cast<uint32_t>(slba >> 32);
        sqe.cdw12 = static_cast<uint32_t>(nlb - 1);
        uint16_t st = Exec(&io, wstep.c_str(), t0, sqe, wbuf.data(), size, true, opt.timeout_s);
        Report(st == spec::kStatusSuccess, wstep.c_str(), t0, "slba=%" PRIu64 " nlb=%" PRIu64 " %s: %s",
               slba, nlb, how, st == spec::kStatusSuccess ? "success" : StatusText(st).c_str());
      }
      {
        auto t0 = Clock::now();
        std::memset(rbuf.data(), 0xA5, size);
        spec::Sqe sqe{};
        sqe.opc = spec::kNvmRead;
        sqe.nsid = 1;
        sqe.cdw10 = static_cast<uint32_t>(slba);
        sqe.cdw11 = static_cast<uint32_t>(slba >> 32);
        sqe.cdw12 = static_cast<uint32_t>(nlb - 1);
        uint16_t st = Exec(&io, rstep.c_str(), t0, sqe, rbuf.data(), size, false, opt.timeout_s);
        if (st != spec::kStatusSuccess) {
          Report(false, rstep.c_str(), t0, "slba=%" PRIu64 " nlb=%" PRIu64 ": %s", slba, nlb,
                 StatusText(st).c_str());
        } else if (std::memcmp(rbuf.data(), wbuf.data(), size) != 0) {
          size_t first = 0;
          while (rbuf[first] == wbuf[first]) first++;
          size_t bad = 0;
          for (size_t i = 0; i < size; i++) bad += rbuf[i] != wbuf[i];
          Report(false, rstep.c_str(), t0,
                 "slba=%" PRIu64 " nlb=%" PRIu64 ": data differs from what was written: first "
                 "at byte %zu (got 0x%02x, wrote 0x%02x), %zu bytes differ",
                 slba, nlb, first, rbuf[first], wbuf[first], bad);
        } else {
          Report(true, rstep.c_str(), t0, "slba=%" PRIu64 " nlb=%" PRIu64 ": data matches", slba,
                 nlb);
        }
      }
      slba += nlb;
    }

    // ---- many commands in flight at once: writes of mixed sizes, then reads of them
    if (opt.qd > 0) {
      static const uint64_t kMix[] = {4096, 131072, 512, 65536, 16896, 1048576, 8192, 36864};
      struct Cmd {
        uint64_t slba, nlb, size;
        std::vector<uint8_t> wbuf, rbuf;
      };
      std::vector<Cmd> cmds;
      uint64_t lba = nsze / 2;
      for (int i = 0; static_cast<int>(cmds.size()) < opt.qd && i < 8 * opt.qd; i++) {
        uint64_t size = kMix[i % 8];
        if (size % lba_size != 0 || (max_xfer != 0 && size > max_xfer)) continue;
        uint64_t nlb = size / lba_size;
        if (lba + nlb > nsze) break;
        Cmd c{lba, nlb, size, std::vector<uint8_t>(size), std::vector<uint8_t>(size, 0xA5)};
        FillPattern(c.wbuf.data(), size, seed, lba * lba_size);
        cmds.push_back(std::move(c));
        lba += nlb;
      }
      uint64_t total = 0;
      for (const Cmd& c : cmds) total += c.size;
      std::vector<Slot*> slots(cmds.size());
      std::string wstep = "write qd=" + std::to_string(cmds.size());
      std::string rstep = "read qd=" + std::to_string(cmds.size());
      {
        auto t0 = Clock::now();
        for (size_t i = 0; i < cmds.size(); i++) {
          spec::Sqe sqe{};
          sqe.opc = spec::kNvmWrite;
          sqe.nsid = 1;
          sqe.cdw10 = static_cast<uint32_t>(cmds[i].slba);
          sqe.cdw11 = static_cast<uint32_t>(cmds[i].slba >> 32);
          sqe.cdw12 = static_cast<uint32_t>(cmds[i].nlb - 1);
          slots[i] = Submit(&io, wstep.c_str(), t0, sqe, cmds[i].wbuf.data(), cmds[i].size, true);
        }
        Wait(&io, wstep.c_str(), t0, slots.data(), static_cast<int>(slots.size()), opt.timeout_s);
        int bad = 0;
        std::string first;
        for (size_t i = 0; i < cmds.size(); i++) {
          uint16_t st = spec::StatusOf(slots[i]->cqe);
          if (st != spec::kStatusSuccess && bad++ == 0) {
            first = SizeText(cmds[i].size) + " at slba " + std::to_string(cmds[i].slba) + ": " +
                    StatusText(st);
          }
        }
        Report(bad == 0, wstep.c_str(), t0, "%zu writes, %s in all, mixed sizes 512B..1MiB%s%s",
               cmds.size(), SizeText(total).c_str(), bad ? "; failed: " : "", first.c_str());
      }
      {
        auto t0 = Clock::now();
        for (size_t i = 0; i < cmds.size(); i++) {
          spec::Sqe sqe{};
          sqe.opc = spec::kNvmRead;
          sqe.nsid = 1;
          sqe.cdw10 = static_cast<uint32_t>(cmds[i].slba);
          sqe.cdw11 = static_cast<uint32_t>(cmds[i].slba >> 32);
          sqe.cdw12 = static_cast<uint32_t>(cmds[i].nlb - 1);
          slots[i] = Submit(&io, rstep.c_str(), t0, sqe, cmds[i].rbuf.data(), cmds[i].size, false);
        }
        Wait(&io, rstep.c_str(), t0, slots.data(), static_cast<int>(slots.size()), opt.timeout_s);
        int bad = 0;
        std::string first;
        for (size_t i = 0; i < cmds.size(); i++) {
          uint16_t st = spec::StatusOf(slots[i]->cqe);
          std::string why;
          if (st != spec::kStatusSuccess) {
            why = StatusText(st);
          } else if (cmds[i].rbuf != cmds[i].wbuf) {
            why = "data differs from what was written";
          }
          if (!why.empty() && bad++ == 0) {
            first = SizeText(cmds[i].size) + " at slba " + std::to_string(cmds[i].slba) + ": " + why;
          }
        }
        Report(bad == 0, rstep.c_str(), t0, "%zu reads, %s in all: %s%s", cmds.size(),
               SizeText(total).c_str(), bad ? "failed: " : "data matches", first.c_str());
      }
    }

    // ---- keep alive on the admin queue (also shows the association is still healthy)
    {
      const char* step = "keep alive";
      auto t0 = Clock::now();
      spec::Sqe sqe{};
      sqe.opc = spec::kAdminKeepAlive;
      uint16_t st = Exec(&admin, step, t0, sqe, nullptr, 0, false, opt.timeout_s);
      Report(st == spec::kStatusSuccess, step, t0, "%s",
             st == spec::kStatusSuccess ? "success" : StatusText(st).c_str());
    }
    if (io.stray_responses != 0) {
      Report(false, "io stray responses", Clock::now(), "%d unexpected response(s)",
             io.stray_responses);
    }
    FreeQpair(io.qp);
  }

  if (admin.stray_responses != 0) {
    Report(false, "admin stray responses", Clock::now(), "%d unexpected response(s)",
           admin.stray_responses);
  }
  FreeQpair(admin.qp);
  if (g_failed == 0) {
    std::printf("RESULT PASS: %d steps\n", g_steps);
    return 0;
  }
  std::printf("RESULT FAIL: %d of %d steps failed\n", g_failed, g_steps);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  if (o.hostnqn.empty()) o.hostnqn = ReadFirstLine("/etc/nvme/hostnqn");
  if (o.hostid.empty()) o.hostid = ReadFirstLine("/etc/nvme/hostid");
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return Run(o);
}
