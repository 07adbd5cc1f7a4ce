// Fuzzes the target's command handling (src/target: Fabrics Connect, properties, admin
// and NVM commands, discovery) through a real nvmf::target::Target (one per process, a
// mem: namespace, a free loopback port). Each input is a fresh association: a real
// ICReq/ICResp and a host queue pair of our own transport, a Fabrics Connect (admin, or an
// I/O queue of an enabled controller, or the fuzzer's own Connect), then the fuzzer's
// commands: SQE bytes plus data sent to the controller or a buffer to receive into. The
// transport frames them correctly, so the fuzzer explores command handling, not framing.
//
// Input: [mode u8][kato u8][connect sqsize u8] then records of
// [sqe 64 bytes][len u16][flags u8][data: len bytes when flags bit 0 (to controller)].
// mode bits 0-1: 0 admin queue of the I/O subsystem, 1 I/O queue, 2 no harness Connect
// (the first record should be one), 3 admin queue of the discovery subsystem; bit 2
// header digest; bit 3 data digest; bit 4 enable the controller (CC.EN) first.
// flags bit 1: wait for the command's completion before the next (else pipelined).
//
// A crash means memory misuse or UB in the target (or the transport under it), or a
// target that does not let go of an association or a connection (controllers or
// connections left after every connection closed, or descriptors left open), or a wait
// that outlived its deadline.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "nvmf/spec/admin.h"
#include "nvmf/spec/fabrics.h"
#include "nvmf/spec/nvme.h"
#include "nvmf/target.h"
#include "nvmf/tcp.h"
#include "nvmf/transport.h"
#include "support.h"
#include "tcp/handshake.h"

namespace {

using namespace nvmf;
using fuzz::Reader;

constexpr const char* kSubNqn = "nqn.2024-01.io.nvmf:fuzz";
constexpr const char* kHostNqn = "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100";
constexpr auto kCommandWait = std::chrono::milliseconds(20);

target::Target* TheTarget() {
  static target::Target* t = [] {
    target::TargetConfig cfg;
    target::PortConfig port;
    port.port = 0;
    cfg.ports.push_back(port);
    target::SubsystemConfig sub;
    sub.nqn = kSubNqn;
    sub.namespaces.push_back({1, "mem:1M", "", true});
    sub.namespaces.push_back({3, "mem:64K", "", true});
    cfg.subsystems.push_back(sub);
    target::SubsystemConfig closed;
    closed.nqn = "nqn.2024-01.io.nvmf:closed";
    closed.allow_any_host = false;
    closed.allowed_hosts.push_back("nqn.2024-01.io.nvmf:somebody-else");
    closed.namespaces.push_back({1, "mem:64K", "", true});
    cfg.subsystems.push_back(closed);
    cfg.max_queue_size = 32;
    cfg.max_io_queues = 2;
    cfg.log = [](const std::string&) {};
    std::unique_ptr<target::Target> out;
    Status s = target::Target::Start(cfg, &out);
    if (!s.ok()) {
      std::fprintf(stderr, "cannot start the target: %s\n", s.ToString().c_str());
      std::abort();
    }
    return out.release();
  }();
  return t;
}

EventLoop* Loop() {
  static EventLoop* loop = new EventLoop(EventLoop::Mode::kWait);
  return loop;
}

// One host queue pair to the target, driven synchronously with bounded waits.
class Conn {
 public:
  ~Conn() { Close(); }

  bool Open(bool hdgst, bool ddgst, bool admin) {
    EventLoop* loop = Loop();
    int fd = fuzz::ConnectLoopback(TheTarget()->ports()[0]);
    if (fd < 0) {
      std::fprintf(stderr, "connect to the target: %s (%zu connections open)\n",
                   std::strerror(errno), TheTarget()->connections());
      fuzz::Die("the target does not take connections");
    }
    tcp::TuneSocket(fd);
    tcp::HostOptions o;
    o.header_digest = hdgst;
    o.data_digest = ddgst;
    o.timeout = std::chrono::milliseconds(500);
    bool done = false;
    Status result;
    TcpQpairParams params;
    tcp::StartHostHandshake(loop, fd, o, [&](const Status& s, const TcpQpairParams& p) {
      done = true;
      result = s;
      params = p;
    });
    FUZZ_CHECK(fuzz::RunUntil(loop, [&] { return done; }, fuzz::After(std::chrono::seconds(3))));
    FUZZ_CHECK(result.ok());
    QpairParams qp;
    qp.admin = admin;
    qp.qsize = 32;
    qp.connection = tcp::WrapConnection(params);
    Status s = AllocateQpair(
        loop, TransportType::kTcp, Role::kHost, qp, [this](const Status&) { failed_ = true; },
        [this](Capsule* c) { OnResponse(c); }, &qp_);
    FUZZ_CHECK(s.ok());
    return true;
  }

  bool failed() const { return failed_; }

  // Sends a command; with wait, runs the loop until its completion (or the deadline).
  // Returns the CQE when it completed.
  bool Submit(spec::Sqe sqe, const uint8_t* data, size_t len, bool send, bool wait,
              spec::Cqe* out = nullptr) {
    if (failed_ || qp_ == nullptr) return false;
    sqe.cid = next_cid_++;
    Capsule* c = AllocateCommand(qp_, sqe);
    if (c == nullptr) return false;
    cmds_.emplace_back();
    Cmd* cmd = &cmds_.back();
    cmd->capsule = c;
    cmd->cid = sqe.cid;
    if (len > 0) {
      cmd->buf.assign(len, 0);
      if (send && data != nullptr) std::memcpy(cmd->buf.data(), data, len);
      cmd->data_pending = true;
      AppendData(c, MemDesc::Buffer(cmd->buf.data(), len), len, send,
                 [cmd](size_t, const Status&) {
                   FUZZ_CHECK(cmd->data_pending);
                   cmd->data_pending = false;
                 });
    }
    if (!Transmit(c).ok()) {
      cmd->data_pending = false;  // not sent: no callback
      cmd->done = true;
      return false;
    }
    if (!wait) return true;
    fuzz::RunUntil(Loop(), [&] { return cmd->done || failed_; }, fuzz::After(kCommandWait));
    if (cmd->done && out != nullptr) *out = cmd->cqe;
    return cmd->done && !failed_;
  }

  // Waits a little for what is still in flight.
  void Settle() {
    fuzz::RunUntil(
        Loop(),
        [&] {
          if (failed_) return true;
          for (const Cmd& c : cmds_) {
            if (!c.done) return false;
          }
          return true;
        },
        fuzz::After(kCommandWait));
  }

  void Close() {
    if (qp_ == nullptr) return;
    FreeQpair(qp_);
    qp_ = nullptr;
    for (Capsule* r : responses_) FreeCapsule(r);
    responses_.clear();
    for (Cmd& c : cmds_) FreeCapsule(c.capsule);
    for (Cmd& c : cmds_) FUZZ_CHECK(!c.data_pending);  // data callbacks ran exactly once
    cmds_.clear();
  }

 private:
  struct Cmd {
    Capsule* capsule = nullptr;
    uint16_t cid = 0;
    std::vector<uint8_t> buf;
    bool data_pending = false;
    bool done = false;
    spec::Cqe cqe{};
  };

  void OnResponse(Capsule* r) {
    const uint16_t cid = CapsuleCqe(r).cid;
    for (Cmd& c : cmds_) {
      if (c.cid == cid && !c.done) {
        c.done = true;
        c.cqe = CapsuleCqe(r);
        break;
      }
    }
    responses_.push_back(r);
  }

  Qpair* qp_ = nullptr;
  bool failed_ = false;
  uint16_t next_cid_ = 1;
  std::list<Cmd> cmds_;
  std::vector<Capsule*> responses_;
};

spec::Sqe ConnectSqe(uint16_t qid, uint16_t sqsize, uint32_t kato) {
  spec::Sqe sqe{};
  auto* c = reinterpret_cast<spec::ConnectSqe*>(&sqe);
  c->opc = spec::kFabricsCommand;
  c->fctype = spec::kFctypeConnect;
  c->qid = qid;
  c->sqsize = sqsize;
  c->kato = kato;
  return sqe;
}

spec::ConnectData ConnectDataFor(const char* subnqn, uint16_t cntlid) {
  spec::ConnectData d{};
  for (int i = 0; i < 16; i++) d.hostid[i] = static_cast<uint8_t>(15 - i);
  d.cntlid = cntlid;
  std::strncpy(d.subnqn, subnqn, sizeof(d.subnqn) - 1);
  std::strncpy(d.hostnqn, kHostNqn, sizeof(d.hostnqn) - 1);
  return d;
}

bool Connect(Conn* c, const char* subnqn, uint16_t qid, uint16_t cntlid, uint16_t sqsize,
             uint32_t kato, uint16_t* got_cntlid) {
  spec::ConnectData d = ConnectDataFor(subnqn, cntlid);
  spec::Cqe cqe{};
  if (!c->Submit(ConnectSqe(qid, sqsize, kato), reinterpret_cast<uint8_t*>(&d), sizeof(d), true,
                 true, &cqe)) {
    return false;
  }
  if (spec::StatusOf(cqe) != spec::kStatusSuccess) return false;
  if (got_cntlid != nullptr) *got_cntlid = static_cast<uint16_t>(cqe.cdw0);
  return true;
}

bool Enable(Conn* c) {
  spec::Sqe sqe{};
  auto* p = reinterpret_cast<spec::PropertySetSqe*>(&sqe);
  p->opc = spec::kFabricsCommand;
  p->fctype = spec::kFctypePropertySet;
  p->ofst = spec::kPropCc;
  p->value = 0x00460001;  // EN, IOSQES 6, IOCQES 4
  spec::Cqe cqe{};
  if (!c->Submit(sqe, nullptr, 0, false, true, &cqe)) return false;
  // CSTS.RDY follows.
  for (int i = 0; i < 20; i++) {
    spec::Sqe g{};
    auto* q = reinterpret_cast<spec::PropertyGetSqe*>(&g);
    q->opc = spec::kFabricsCommand;
    q->fctype = spec::kFctypePropertyGet;
    q->ofst = spec::kPropCsts;
    if (!c->Submit(g, nullptr, 0, false, true, &cqe)) return false;
    if (cqe.cdw0 & 1) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  target::Target* t = TheTarget();
  const int fds_before = fuzz::FdCount();
  Reader in(data, size);
  const uint8_t mode = in.U8();
  const uint32_t kato = in.U8() * 1000u;  // 0 or >= 1 s: no keep-alive expiry mid-input
  const uint16_t sqsize = in.U8();
  const bool hd = mode & 4, dd = mode & 8;
  const int kind = mode & 3;

  {
    Conn admin, io;
    Conn* target_conn = &admin;
    bool ready = admin.Open(hd, dd, kind != 1 ? true : true);
    if (kind == 0 || kind == 1) {
      uint16_t cntlid = 0;
      ready = Connect(&admin, kSubNqn, 0, spec::kDynamicControllerId, 31, kato, &cntlid);
      if (ready && ((mode & 0x10) || kind == 1)) ready = Enable(&admin);
      if (ready && kind == 1) {
        io.Open(hd, dd, false);
        ready = Connect(&io, kSubNqn, 1, cntlid, sqsize == 0 ? 1 : sqsize, 0, nullptr);
        target_conn = &io;
      }
    } else if (kind == 3) {
      ready = Connect(&admin, spec::kDiscoveryNqn, 0, spec::kDynamicControllerId, sqsize, kato,
                      nullptr);
    }
    (void)ready;  // a refused Connect is fine: the commands then test an unconnected queue

    std::vector<uint8_t> buf;
    for (int i = 0; i < 64 && !in.empty() && !target_conn->failed(); i++) {
      spec::Sqe sqe;
      in.Bytes(&sqe, sizeof(sqe));
      const uint16_t len = in.U16();
      const uint8_t flags = in.U8();
      const bool send = flags & 1;
      buf.assign(len, 0);
      if (send) in.Bytes(buf.data(), len);
      target_conn->Submit(sqe, buf.data(), len, send, flags & 2);
    }
    target_conn->Settle();
    io.Close();
    admin.Close();
  }
  // Every association ends with its connections.
  FUZZ_CHECK(fuzz::RunUntil(Loop(), [&] { return t->controllers() == 0 && t->connections() == 0; },
                            fuzz::After(std::chrono::seconds(5))));
  fuzz::CheckNoFdLeak(Loop(), fds_before);
  return 0;
}
