// The host against a scripted controller in the same process: a tcp::Listener whose
// controller queue pairs answer Connect, Property Get/Set, Identify, Set Features, Get
// Log Page, Keep Alive, Read, Write and Flush, and can be told to drop a response, hold
// I/O, or fail a command. Everything runs on one EventLoop.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "support/alloc_counter.h"
#include "nvmf/host.h"
#include "nvmf/host_sync.h"
#include "nvmf/host_util.h"
#include "nvmf/spec/tcp.h"
#include "nvmf/tcp.h"
#include "nvmf/transport.h"


using nvmf::test::StartCountingAllocations;
using nvmf::test::StopCountingAllocations;

namespace nvmf::host {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kWait{10000};
constexpr uint32_t kBlock = 512;

// ---------------------------------------------------------------- scripted controller

class Scripted {
 public:
  struct Conn {
    Scripted* self = nullptr;
    Qpair* qp = nullptr;
    uint16_t qid = 0xffff;
    bool connected = false;
    spec::ConnectData data{};
    uint32_t in_flight = 0;
    uint32_t max_in_flight = 0;
    bool closed = false;
  };
  struct ConnectSeen {
    uint16_t qid, sqsize, cntlid;
    uint32_t kato;
    std::string subnqn, hostnqn;
    std::array<uint8_t, 16> hostid;
  };

  // What the controller reports and how it behaves.
  uint16_t mqes = 127;            // CAP.MQES, 0's based
  uint8_t cap_to = 2;             // CAP.TO, 500 ms units
  int ready_after_polls = 2;      // CSTS.RDY reads 0 this many times after CC.EN
  uint8_t mdts = 5;               // 128 KiB
  uint32_t nn = 1;
  uint64_t ns_blocks = 8192;      // 4 MiB namespace of 512-byte blocks
  uint8_t cntrltype = 1;
  uint32_t queues_granted = 64;   // Set Features Number of Queues answer
  uint16_t connect_status = 0;    // a non-zero status fails every Connect
  uint8_t drop_opcode_io = 0xff;  // the next I/O command with this opcode gets no answer
  uint8_t drop_opcode_admin = 0xff;
  uint16_t io_error_status = 0;   // every I/O command fails with this status
  bool hold_io = false;           // I/O commands wait in held until Release()
  std::vector<spec::DiscoveryLogEntry> discovery;
  int bump_genctr_reads = 0;      // the log's generation changes during this many reads

  // What it saw.
  std::vector<std::string> admin_log;  // "Connect", "PropertyGet 0x0", ...
  std::vector<ConnectSeen> connects;
  std::vector<Clock::time_point> keepalives;
  uint32_t cc = 0;
  uint64_t genctr = 1;
  uint64_t io_served = 0;
  std::vector<std::pair<Conn*, Capsule*>> held;
  std::vector<uint8_t> store;

  explicit Scripted(EventLoop* loop) : loop_(loop) {
    store.assign(ns_blocks * kBlock, 0);
    conns_.reserve(256);
    held.reserve(1024);
    tcp::ControllerOptions o;
    o.max_icd = 8192;
    Status s = tcp::Listener::Listen(loop, "127.0.0.1", 0, o,
                                     [this](const TcpQpairParams& p) { Accept(p); }, &listener_);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~Scripted() {
    for (auto& h : held) FreeCapsule(h.second);
    held.clear();
    for (auto& c : conns_) {
      if (c->qp != nullptr) FreeQpair(c->qp);
    }
  }
  uint16_t port() const { return listener_->port(); }
  size_t io_connections() const {
    size_t n = 0;
    for (auto& c : conns_) n += c->qid > 0 && c->qid != 0xffff ? 1 : 0;
    return n;
  }
  uint32_t max_in_flight(uint16_t qid) const {
    uint32_t m = 0;
    for (auto& c : conns_) {
      if (c->qid == qid) m = std::max(m, c->max_in_flight);
    }
    return m;
  }
  // Closes every connection from the controller side.
  void Drop() {
    for (auto& h : held) FreeCapsule(h.second);
    held.clear();
    for (auto& c : conns_) {
      if (c->qp != nullptr) FreeQpair(c->qp);
      c->qp = nullptr;
    }
  }
  // Serves n held I/O commands (all when n < 0), oldest first.
  void Release(int n = -1) {
    size_t k = n < 0 ? held.size() : std::min<size_t>(static_cast<size_t>(n), held.size());
    std::vector<std::pair<Conn*, Capsule*>> now(held.begin(), held.begin() + static_cast<long>(k));
    held.erase(held.begin(), held.begin() + static_cast<long>(k));
    for (auto& h : now) ServeIo(h.first, h.second);
  }
  static constexpr uint32_t kIoccsz = (8192 + 64) / 16;

 private:
  void Accept(const TcpQpairParams& p) {
    auto conn = std::make_unique<Conn>();
    conn->self = this;
    QpairParams qp;
    qp.qsize = 64;
    qp.admin = false;  // not known before Connect; the transport only uses it for reporting
    qp.connection = tcp::WrapConnection(p);
    Conn* c = conn.get();
    Status s = AllocateQpair(
        loop_, TransportType::kTcp, Role::kController, qp,
        [c](const Status&) {
          c->closed = true;
          if (c->qp != nullptr) FreeQpair(c->qp);
          c->qp = nullptr;
        },
        [c](Capsule* cap) { c->self->Serve(c, cap); }, &conn->qp);
    EXPECT_TRUE(s.ok()) << s.ToString();
    conns_.push_back(std::move(conn));
  }

  void Respond(Conn* conn, Capsule* c, uint16_t status, uint32_t cdw0 = 0, uint32_t cdw1 = 0) {
    spec::Cqe cqe{};
    cqe.cid = CapsuleSqe(c).cid;
    cqe.sqid = conn->qid == 0xffff ? 0 : conn->qid;
    cqe.cdw0 = cdw0;
    cqe.cdw1 = cdw1;
    spec::SetStatus(cqe, status);
    if (conn->qp != nullptr) {
      Capsule* r = AllocateResponse(conn->qp, cqe);
      if (r != nullptr) {
        Transmit(r);
        FreeCapsule(r);
      }
    }
    FreeCapsule(c);
  }

  void Serve(Conn* conn, Capsule* c) {
    const spec::Sqe& sqe = CapsuleSqe(c);
    uint8_t v = ValidateCommandCapsule(c);
    if (v != spec::kScSuccess) return Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, v));
    if (sqe.opc == spec::kFabricsCommand) return ServeFabrics(conn, c);
    if (!conn->connected) {
      return Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, spec::kScCommandSequenceError));
    }
    if (conn->qid == 0) return ServeAdmin(conn, c);
    conn->in_flight++;
    conn->max_in_flight = std::max(conn->max_in_flight, conn->in_flight);
    if (sqe.opc == drop_opcode_io) {
      drop_opcode_io = 0xff;
      conn->in_flight--;
      FreeCapsule(c);  // never answered
      return;
    }
    if (hold_io) {
      held.emplace_back(conn, c);
      return;
    }
    ServeIo(conn, c);
  }

  void ServeFabrics(Conn* conn, Capsule* c) {
    const auto& f = reinterpret_cast<const spec::FabricsSqe&>(CapsuleSqe(c));
    if (f.fctype == spec::kFctypeConnect) {
      if (CapsuleDataLength(c) != sizeof(spec::ConnectData)) {
        return Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, spec::kScDataSglLengthInvalid));
      }
      Conn* cn = conn;
      ReceiveControllerData(c, 0, MemDesc::Buffer(&conn->data, sizeof(conn->data)),
                            sizeof(conn->data), [cn, c](size_t, const Status& s) {
                              cn->self->OnConnectData(cn, c, s);
                            });
      return;
    }
    if (!conn->connected || conn->qid != 0) {
      return Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, spec::kScCommandSequenceError));
    }
    if (f.fctype == spec::kFctypePropertyGet) {
      const auto& p = reinterpret_cast<const spec::PropertyGetSqe&>(CapsuleSqe(c));
      admin_log.push_back("PropertyGet " + std::to_string(p.ofst));
      uint64_t value = 0;
      switch (p.ofst) {
        case spec::kPropCap:
          value = mqes | uint64_t{cap_to} << 24 | uint64_t{1} << 37;
          break;
        case spec::kPropVs: value = 0x00010400; break;
        case spec::kPropCc: value = cc; break;
        case spec::kPropCsts:
          if ((cc & 1) != 0 && polls_++ >= ready_after_polls) value = spec::kCstsRdy;
          break;
        default: break;
      }
      return Respond(conn, c, 0, static_cast<uint32_t>(value), static_cast<uint32_t>(value >> 32));
    }
    if (f.fctype == spec::kFctypePropertySet) {
      const auto& p = reinterpret_cast<const spec::PropertySetSqe&>(CapsuleSqe(c));
      admin_log.push_back("PropertySet " + std::to_string(p.ofst) + " " + std::to_string(p.value));
      if (p.ofst == spec::kPropCc) cc = static_cast<uint32_t>(p.value);
      return Respond(conn, c, 0);
    }
    Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, spec::kScInvalidOpcode));
  }

  void OnConnectData(Conn* conn, Capsule* c, const Status& s) {
    if (!s.ok()) return Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, spec::kScDataTransferError));
    const auto& cs = reinterpret_cast<const spec::ConnectSqe&>(CapsuleSqe(c));
    ConnectSeen seen{cs.qid, cs.sqsize, conn->data.cntlid, cs.kato,
                     FixedString(conn->data.subnqn, 256), FixedString(conn->data.hostnqn, 256), {}};
    std::memcpy(seen.hostid.data(), conn->data.hostid, 16);
    connects.push_back(seen);
    if (cs.qid == 0) admin_log.push_back("Connect");
    if (connect_status != 0) return Respond(conn, c, connect_status);
    conn->qid = cs.qid;
    conn->connected = true;
    Respond(conn, c, 0, 7 /* cntlid */);
  }

  void ServeAdmin(Conn* conn, Capsule* c) {
    const spec::Sqe& sqe = CapsuleSqe(c);
    if (sqe.opc == drop_opcode_admin) {
      drop_opcode_admin = 0xff;
      FreeCapsule(c);
      return;
    }
    switch (sqe.opc) {
      case spec::kAdminKeepAlive:
        keepalives.push_back(Clock::now());
        return Respond(conn, c, 0);
      case spec::kAdminIdentify: {
        admin_log.push_back("Identify " + std::to_string(sqe.cdw10 & 0xff));
        uint8_t* page = page_;
        std::memset(page, 0, 4096);
        const uint8_t cns = sqe.cdw10 & 0xff;
        if (cns == spec::kCnsController) {
          auto* id = reinterpret_cast<spec::IdentifyController*>(page);
          id->vid = 0x1b36;
          std::memcpy(id->sn, "SCRIPTED0001        ", 20);
          std::memcpy(id->mn, "scripted controller                     ", 40);
          std::memcpy(id->fr, "1.0     ", 8);
          id->mdts = mdts;
          id->cntlid = 7;
          id->nn = nn;
          id->cntrltype = cntrltype;
          id->ioccsz = kIoccsz;
          id->iorcsz = 1;
          id->sqes = 0x66;
          id->cqes = 0x44;
          id->kas = 1;
        } else if (cns == spec::kCnsNamespace) {
          if (sqe.nsid == 0 || sqe.nsid > nn) {
            return Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, spec::kScInvalidNamespace, true));
          }
          auto* ns = reinterpret_cast<spec::IdentifyNamespace*>(page);
          ns->nsze = ns->ncap = ns->nuse = ns_blocks;
          ns->nlbaf = 0;
          ns->flbas = 0;
          ns->lbaf[0].lbads = 9;
        } else if (cns == spec::kCnsActiveNamespaces) {
          auto* list = reinterpret_cast<uint32_t*>(page);
          size_t k = 0;
          for (uint32_t id = sqe.nsid + 1; id <= nn && k < 1024; id++) list[k++] = id;
        }
        return SendAndRespond(conn, c, page, 4096);
      }
      case spec::kAdminSetFeatures:
        admin_log.push_back("SetFeatures " + std::to_string(sqe.cdw10 & 0xff) + " " +
                            std::to_string(sqe.cdw11));
        if ((sqe.cdw10 & 0xff) == spec::kFeatNumberOfQueues) {
          uint32_t n = queues_granted - 1;
          return Respond(conn, c, 0, n | n << 16);
        }
        return Respond(conn, c, 0);
      case spec::kAdminGetLogPage: {
        admin_log.push_back("GetLogPage " + std::to_string(spec::GetLogPageLid(sqe)));
        if (spec::GetLogPageLid(sqe) != spec::kLogDiscovery) {
          return Respond(conn, c, spec::MakeStatus(spec::kSctCommandSpecific, 0x09));
        }
        if (bump_genctr_reads > 0) {
          bump_genctr_reads--;
          genctr++;
        }
        log_.assign(1024 + discovery.size() * 1024, 0);
        spec::DiscoveryLogHeader h{};
        h.genctr = genctr;
        h.numrec = discovery.size();
        std::memcpy(log_.data(), &h, sizeof(h));
        if (!discovery.empty()) std::memcpy(log_.data() + 1024, discovery.data(), discovery.size() * 1024);
        const uint64_t off = spec::GetLogPageOffset(sqe);
        const uint64_t len = spec::GetLogPageBytes(sqe);
        std::vector<uint8_t>& out = logout_;
        out.assign(len, 0);
        if (off < log_.size()) std::memcpy(out.data(), log_.data() + off, std::min<uint64_t>(len, log_.size() - off));
        return SendAndRespond(conn, c, out.data(), len);
      }
      default:
        return Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, spec::kScInvalidOpcode));
    }
  }

  void SendAndRespond(Conn* conn, Capsule* c, void* buf, size_t len) {
    if (CapsuleDataLength(c) < len) len = CapsuleDataLength(c);
    uint16_t r = SendControllerData(c, 0, MemDesc::Buffer(buf, len), len, nullptr);
    if (r == kSendSuccessSent) {
      FreeCapsule(c);
      return;
    }
    Respond(conn, c, r);
  }

  void ServeIo(Conn* conn, Capsule* c) {
    const spec::Sqe& sqe = CapsuleSqe(c);
    io_served++;
    conn->in_flight--;
    if (io_error_status != 0) return Respond(conn, c, io_error_status);
    if (sqe.opc == spec::kNvmFlush) return Respond(conn, c, 0);
    if (sqe.opc != spec::kNvmRead && sqe.opc != spec::kNvmWrite) {
      return Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, spec::kScInvalidOpcode));
    }
    const uint64_t slba = uint64_t{sqe.cdw11} << 32 | sqe.cdw10;
    const uint64_t nlb = (sqe.cdw12 & 0xffff) + 1ull;
    if (sqe.nsid != 1) {
      return Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, spec::kScInvalidNamespace, true));
    }
    if (slba + nlb > ns_blocks) {
      return Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, spec::kScLbaOutOfRange, true));
    }
    const size_t len = nlb * kBlock;
    if (CapsuleDataLength(c) != len) {
      return Respond(conn, c, spec::MakeStatus(spec::kSctGeneric, spec::kScDataSglLengthInvalid, true));
    }
    MemDesc mem = MemDesc::Buffer(store.data() + slba * kBlock, len);
    if (sqe.opc == spec::kNvmRead) return SendAndRespond(conn, c, store.data() + slba * kBlock, len);
    Conn* cn = conn;
    ReceiveControllerData(c, 0, mem, len, [cn, c](size_t, const Status& s) {
      cn->self->Respond(cn, c, s.ok() ? 0 : spec::MakeStatus(spec::kSctGeneric, spec::kScDataTransferError));
    });
  }

  EventLoop* loop_;
  std::unique_ptr<tcp::Listener> listener_;
  std::vector<std::unique_ptr<Conn>> conns_;
  int polls_ = 0;
  alignas(8) uint8_t page_[4096];
  std::vector<uint8_t> log_;
  std::vector<uint8_t> logout_;
};

// ---------------------------------------------------------------- fixture

class HostScripted : public ::testing::Test {
 protected:
  HostScripted() : ctrl(&loop), target(&loop) {}

  ConnectOptions Options() {
    ConnectOptions o;
    o.traddr = "127.0.0.1";
    o.trsvcid = target.port();
    o.subnqn = "nqn.2024-01.io.nvmf:scripted";
    o.hostnqn = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555";
    ParseUuid("11111111-2222-3333-4444-555555555555", &o.hostid);
    o.nr_io_queues = 2;
    o.queue_size = 32;
    o.kato_ms = 0;
    return o;
  }

  Status Connect(const ConnectOptions& o) {
    bool done = false;
    Status result;
    ctrl.Connect(o, [&](const Status& s) {
      result = s;
      done = true;
    });
    if (!loop.RunUntil([&] { return done; }, kWait)) return Status::TimedOut("test: connect");
    return result;
  }

  struct Result {
    bool done = false;
    int calls = 0;
    Status status;
    spec::Cqe cqe{};
  };
  static CommandCallback Into(Result* r) {
    return [r](const Status& s, const spec::Cqe& cqe) {
      r->done = true;
      r->calls++;
      r->status = s;
      r->cqe = cqe;
    };
  }
  bool Run(const std::function<bool()>& pred, std::chrono::milliseconds t = kWait) {
    return loop.RunUntil(pred, t);
  }

  EventLoop loop;
  Controller ctrl;
  Scripted target;
};

TEST_F(HostScripted, ConnectSequence) {
  target.mqes = 15;  // caps the I/O queue size at 16 entries
  ConnectOptions o = Options();
  o.kato_ms = 12000;
  Status s = Connect(o);
  ASSERT_TRUE(s.ok()) << s.ToString();

  // The admin sequence, in order.
  const std::vector<std::string>& log = target.admin_log;
  ASSERT_GE(log.size(), 8u);
  EXPECT_EQ(log[0], "Connect");
  EXPECT_EQ(log[1], "PropertyGet 0");  // CAP
  const uint32_t cc = MakeCc(true, 6, 4);
  EXPECT_EQ(log[2], "PropertySet 20 " + std::to_string(cc));  // CC: EN, IOSQES 6, IOCQES 4
  EXPECT_EQ(cc, 0x00460001u);
  size_t i = 3;
  int polls = 0;
  while (i < log.size() && log[i] == "PropertyGet 28") {  // CSTS until RDY
    i++;
    polls++;
  }
  EXPECT_EQ(polls, target.ready_after_polls + 1);
  ASSERT_LT(i + 1, log.size());
  EXPECT_EQ(log[i], "Identify 1");
  EXPECT_EQ(log[i + 1], "SetFeatures 7 " + std::to_string(1u | 1u << 16));  // 2 queues, 0's based

  // Connect commands: the admin queue, then each I/O queue with the admin's CNTLID.
  ASSERT_EQ(target.connects.size(), 3u);
  const auto& a = target.connects[0];
  EXPECT_EQ(a.qid, 0);
  EXPECT_EQ(a.sqsize, kAdminQueueSize - 1);
  EXPECT_EQ(a.cntlid, 0xFFFF);
  EXPECT_EQ(a.kato, 12000u);
  EXPECT_EQ(a.subnqn, o.subnqn);
  EXPECT_EQ(a.hostnqn, o.hostnqn);
  EXPECT_EQ(a.hostid, o.hostid);
  for (uint16_t q = 1; q <= 2; q++) {
    const auto& c = target.connects[q];
    EXPECT_EQ(c.qid, q);
    EXPECT_EQ(c.sqsize, 15);  // min(32, MQES + 1) - 1
    EXPECT_EQ(c.cntlid, 7);
    EXPECT_EQ(c.kato, 0u);
    EXPECT_EQ(c.hostnqn, o.hostnqn);
  }
  EXPECT_TRUE(ctrl.connected());
  EXPECT_FALSE(ctrl.is_discovery());
  EXPECT_EQ(ctrl.cntlid(), 7);
  EXPECT_EQ(ctrl.io_queue_count(), 2u);
  EXPECT_EQ(ctrl.queue_depth(0), kAdminQueueSize - 1u);
  EXPECT_EQ(ctrl.queue_depth(1), 15u);
  EXPECT_EQ(ctrl.max_transfer_size(), 128u * 1024);  // 2^MDTS * 4 KiB
  EXPECT_EQ(ctrl.identify().nn, 1u);
  EXPECT_EQ(FixedString(ctrl.identify().sn, 20), "SCRIPTED0001");
}

TEST_F(HostScripted, GrantedQueuesLimitTheCount) {
  target.queues_granted = 1;
  ConnectOptions o = Options();
  o.nr_io_queues = 4;
  ASSERT_TRUE(Connect(o).ok());
  EXPECT_EQ(ctrl.io_queue_count(), 1u);
  EXPECT_EQ(target.io_connections(), 1u);
}

TEST_F(HostScripted, ConnectRejected) {
  target.connect_status = spec::MakeStatus(spec::kSctCommandSpecific, spec::kScConnectInvalidHost, true);
  Status s = Connect(Options());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kNvmeError);
  EXPECT_NE(s.message().find("Connect Invalid Host"), std::string::npos) << s.ToString();
  EXPECT_FALSE(ctrl.connected());
}

TEST_F(HostScripted, ConnectRefused) {
  ConnectOptions o = Options();
  uint16_t port = target.port();
  {
    // A port nothing listens on: bind one, learn it, close it.
    Scripted other(&loop);
    port = other.port();
  }
  o.trsvcid = port;
  Status s = Connect(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kIoError) << s.ToString();
}

TEST_F(HostScripted, ControllerNeverReady) {
  target.ready_after_polls = 1000000;
  target.cap_to = 1;  // 500 ms
  auto t0 = Clock::now();
  Status s = Connect(Options());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kTimedOut) << s.ToString();
  EXPECT_NE(s.message().find("CSTS.RDY"), std::string::npos);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(450));
}

TEST_F(HostScripted, IoRoundTrip) {
  ASSERT_TRUE(Connect(Options()).ok());
  // Small (in-capsule), one R2T, and the largest transfer, on both queues.
  for (uint32_t blocks : {8u, 64u, 256u}) {
    for (uint16_t qid = 1; qid <= 2; qid++) {
      const uint64_t slba = 100 + blocks * qid;
      std::vector<uint8_t> out(blocks * kBlock), in(blocks * kBlock, 0xEE);
      FillPattern(out.data(), out.size(), slba, kBlock, 42);
      Result w, r;
      ASSERT_TRUE(ctrl.Write(qid, 1, slba, blocks, MemDesc::Buffer(out.data(), out.size()), out.size(),
                             Into(&w)).ok());
      ASSERT_TRUE(Run([&] { return w.done; }));
      ASSERT_TRUE(w.status.ok()) << w.status.ToString();
      EXPECT_EQ(0, std::memcmp(target.store.data() + slba * kBlock, out.data(), out.size()));
      ASSERT_TRUE(ctrl.Read(qid, 1, slba, blocks, MemDesc::Buffer(in.data(), in.size()), in.size(),
                            Into(&r)).ok());
      ASSERT_TRUE(Run([&] { return r.done; }));
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      EXPECT_EQ(CheckPattern(in.data(), in.size(), slba, kBlock, 42), -1);
      EXPECT_EQ(r.calls, 1);
    }
  }
  Result f;
  ASSERT_TRUE(ctrl.Flush(1, 1, Into(&f)).ok());
  ASSERT_TRUE(Run([&] { return f.done; }));
  EXPECT_TRUE(f.status.ok());
  // Beyond the transport's largest transfer: refused at once, no callback.
  std::vector<uint8_t> big(16 << 20);
  Result b;
  Status s = ctrl.Read(1, 1, 0, 32768, MemDesc::Buffer(big.data(), big.size()), big.size(), Into(&b));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  loop.RunOnce();
  EXPECT_FALSE(b.done);
}

TEST_F(HostScripted, IoRoundTripWithDigests) {
  ConnectOptions o = Options();
  o.header_digest = o.data_digest = true;
  ASSERT_TRUE(Connect(o).ok());
  EXPECT_TRUE(ctrl.header_digest());
  EXPECT_TRUE(ctrl.data_digest());
  std::vector<uint8_t> out(64 * kBlock), in(64 * kBlock);
  FillPattern(out.data(), out.size(), 7, kBlock, 9);
  Result w, r;
  ASSERT_TRUE(ctrl.Write(1, 1, 7, 64, MemDesc::Buffer(out.data(), out.size()), out.size(), Into(&w)).ok());
  ASSERT_TRUE(Run([&] { return w.done; }));
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  ASSERT_TRUE(ctrl.Read(2, 1, 7, 64, MemDesc::Buffer(in.data(), in.size()), in.size(), Into(&r)).ok());
  ASSERT_TRUE(Run([&] { return r.done; }));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(in, out);
}

TEST_F(HostScripted, NvmeErrorReachesCaller) {
  ASSERT_TRUE(Connect(Options()).ok());
  std::vector<uint8_t> buf(8 * kBlock);
  Result r;
  ASSERT_TRUE(ctrl.Read(1, 1, target.ns_blocks - 4, 8, MemDesc::Buffer(buf.data(), buf.size()),
                        buf.size(), Into(&r)).ok());
  ASSERT_TRUE(Run([&] { return r.done; }));
  EXPECT_EQ(r.status.code(), Status::Code::kNvmeError);
  EXPECT_NE(r.status.message().find("LBA Out of Range"), std::string::npos) << r.status.ToString();
  EXPECT_NE(r.status.message().find("SC 80h"), std::string::npos) << r.status.ToString();
  EXPECT_NE(r.status.message().find("Read"), std::string::npos) << r.status.ToString();
  const uint16_t st = spec::StatusOf(r.cqe);
  EXPECT_EQ(spec::StatusSct(st), spec::kSctGeneric);
  EXPECT_EQ(spec::StatusSc(st), spec::kScLbaOutOfRange);
  EXPECT_TRUE(spec::StatusDnr(st));

  // A write with an error: the data was never fetched; the NVMe status wins.
  target.io_error_status = spec::MakeStatus(spec::kSctMediaError, 0x80);
  Result w2;
  ASSERT_TRUE(ctrl.Write(2, 1, 0, 8, MemDesc::Buffer(buf.data(), buf.size()), buf.size(), Into(&w2)).ok());
  ASSERT_TRUE(Run([&] { return w2.done; }));
  EXPECT_EQ(w2.status.code(), Status::Code::kNvmeError);
  EXPECT_NE(w2.status.message().find("Write Fault"), std::string::npos) << w2.status.ToString();

  // The association lives on.
  target.io_error_status = 0;
  Result ok;
  ASSERT_TRUE(ctrl.Read(1, 1, 0, 8, MemDesc::Buffer(buf.data(), buf.size()), buf.size(), Into(&ok)).ok());
  ASSERT_TRUE(Run([&] { return ok.done; }));
  EXPECT_TRUE(ok.status.ok()) << ok.status.ToString();
  EXPECT_TRUE(ctrl.connected());
}

TEST_F(HostScripted, CommandTimeoutFailsAssociation) {
  ConnectOptions o = Options();
  o.io_timeout = std::chrono::milliseconds(300);
  ASSERT_TRUE(Connect(o).ok());
  Status failure;
  int failures = 0;
  ctrl.SetFailureCallback([&](const Status& s) {
    failure = s;
    failures++;
  });
  std::vector<uint8_t> a(8 * kBlock), b(8 * kBlock);
  target.drop_opcode_io = spec::kNvmRead;  // the first read is never answered
  target.hold_io = true;                   // and the next is held
  Result r1, r2;
  auto t0 = Clock::now();
  ASSERT_TRUE(ctrl.Read(1, 1, 0, 8, MemDesc::Buffer(a.data(), a.size()), a.size(), Into(&r1)).ok());
  ASSERT_TRUE(ctrl.Read(2, 1, 0, 8, MemDesc::Buffer(b.data(), b.size()), b.size(), Into(&r2)).ok());
  ASSERT_TRUE(Run([&] { return r1.done && r2.done; }));
  auto took = Clock::now() - t0;
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::milliseconds(3000));
  EXPECT_EQ(r1.status.code(), Status::Code::kTimedOut) << r1.status.ToString();
  EXPECT_EQ(r2.status.code(), Status::Code::kTimedOut) << r2.status.ToString();
  EXPECT_EQ(r1.calls, 1);
  EXPECT_EQ(r2.calls, 1);
  EXPECT_EQ(failures, 1);
  EXPECT_EQ(failure.code(), Status::Code::kTimedOut);
  EXPECT_TRUE(ctrl.failed());
  // Nothing more can be submitted, and no callback runs for the refusal.
  Result r3;
  EXPECT_FALSE(ctrl.Read(1, 1, 0, 8, MemDesc::Buffer(a.data(), a.size()), a.size(), Into(&r3)).ok());
  loop.RunOnce();
  EXPECT_FALSE(r3.done);
  // The controller sees its connections close.
  EXPECT_TRUE(Run([&] {
    target.Release();
    return true;
  }));
}

TEST_F(HostScripted, AdminTimeoutDuringConnect) {
  target.drop_opcode_admin = spec::kAdminIdentify;
  ConnectOptions o = Options();
  o.admin_timeout = std::chrono::milliseconds(250);
  Status s = Connect(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kTimedOut) << s.ToString();
  EXPECT_NE(s.message().find("Identify"), std::string::npos) << s.ToString();
}

TEST_F(HostScripted, KeepAliveWithinKato) {
  ConnectOptions o = Options();
  o.kato_ms = 1000;  // Keep Alive every 500 ms; the bound below leaves room for a busy machine
  ASSERT_TRUE(Connect(o).ok());
  EXPECT_EQ(ctrl.kato_ms(), 1000u);
  auto t0 = Clock::now();
  target.keepalives.clear();
  Run([&] { return false; }, std::chrono::milliseconds(3200));
  ASSERT_GE(target.keepalives.size(), 5u);
  EXPECT_LT(target.keepalives.front() - t0, std::chrono::milliseconds(1000));
  for (size_t i = 1; i < target.keepalives.size(); i++) {
    EXPECT_LT(target.keepalives[i] - target.keepalives[i - 1], std::chrono::milliseconds(1000));
  }
  EXPECT_TRUE(ctrl.connected());
}

TEST_F(HostScripted, UnansweredKeepAliveLosesTheControllerWithinKato) {
  ConnectOptions o = Options();
  o.kato_ms = 400;
  o.admin_timeout = o.io_timeout = std::chrono::milliseconds(30000);
  ASSERT_TRUE(Connect(o).ok());
  Status failure;
  ctrl.SetFailureCallback([&](const Status& s) { failure = s; });
  target.drop_opcode_admin = spec::kAdminKeepAlive;  // the next Keep Alive is never answered
  const auto t0 = Clock::now();
  // I/O keeps completing meanwhile: only Keep Alive goes unanswered.
  std::vector<uint8_t> a(8 * kBlock);
  int reads = 0;
  std::function<void()> issue = [&] {
    Status st = ctrl.Read(1, 1, 0, 8, MemDesc::Buffer(a.data(), a.size()), a.size(),
                          [&](const Status& s, const spec::Cqe&) {
                            if (!s.ok()) return;
                            reads++;
                            issue();
                          });
    (void)st;
  };
  issue();
  ASSERT_TRUE(Run([&] { return ctrl.failed(); }, std::chrono::milliseconds(5000)));
  const auto took = Clock::now() - t0;
  EXPECT_LT(took, std::chrono::milliseconds(1500));  // KATO/2 to send, KATO to give up
  EXPECT_GT(reads, 10);
  EXPECT_EQ(failure.code(), Status::Code::kTimedOut) << failure.ToString();
  EXPECT_NE(failure.message().find("Keep Alive"), std::string::npos) << failure.ToString();
}

TEST_F(HostScripted, NoKeepAliveWithKatoZero) {
  ASSERT_TRUE(Connect(Options()).ok());
  Run([&] { return false; }, std::chrono::milliseconds(300));
  EXPECT_TRUE(target.keepalives.empty());
}

TEST_F(HostScripted, SubmissionsBeyondDepthWait) {
  ConnectOptions o = Options();
  o.nr_io_queues = 1;
  o.queue_size = 4;  // 3 commands in flight
  ASSERT_TRUE(Connect(o).ok());
  ASSERT_EQ(ctrl.queue_depth(1), 3u);
  target.hold_io = true;
  constexpr int kN = 10;
  std::vector<std::vector<uint8_t>> bufs(kN, std::vector<uint8_t>(kBlock));
  std::vector<int> order;
  struct Ctx {
    std::vector<int>* order;
    int i;
  };
  std::vector<Ctx> ctx(kN);
  std::vector<Status> st(kN);
  for (int i = 0; i < kN; i++) {
    FillPattern(bufs[i].data(), kBlock, static_cast<uint64_t>(i), kBlock, 5);
    ctx[i] = {&order, i};
    Ctx* c = &ctx[i];
    Status* sp = &st[i];
    ASSERT_TRUE(ctrl.Write(1, 1, static_cast<uint64_t>(i), 1, MemDesc::Buffer(bufs[i].data(), kBlock), kBlock,
                           [c, sp](const Status& s, const spec::Cqe&) {
                             *sp = s;
                             c->order->push_back(c->i);
                           }).ok());
  }
  EXPECT_EQ(ctrl.queue_in_flight(1), 3u);
  EXPECT_EQ(ctrl.queue_waiting(1), 7u);
  ASSERT_TRUE(Run([&] { return target.held.size() == 3; }));
  Run([&] { return false; }, std::chrono::milliseconds(50));
  EXPECT_EQ(target.held.size(), 3u);  // never more than the depth reaches the controller
  while (order.size() < kN) {
    target.Release(1);
    size_t before = order.size();
    ASSERT_TRUE(Run([&] { return order.size() > before; }));
    Run([&] { return target.held.size() == std::min<size_t>(3, kN - order.size()); },
        std::chrono::milliseconds(2000));
  }
  for (int i = 0; i < kN; i++) {
    EXPECT_EQ(order[i], i);
    EXPECT_TRUE(st[i].ok()) << st[i].ToString();
  }
  EXPECT_EQ(target.max_in_flight(1), 3u);
  EXPECT_EQ(ctrl.queue_waiting(1), 0u);
  std::vector<uint8_t> all(kN * kBlock);
  target.hold_io = false;
  Result r;
  ASSERT_TRUE(ctrl.Read(1, 1, 0, kN, MemDesc::Buffer(all.data(), all.size()), all.size(), Into(&r)).ok());
  ASSERT_TRUE(Run([&] { return r.done; }));
  EXPECT_EQ(CheckPattern(all.data(), all.size(), 0, kBlock, 5), -1);
}

TEST_F(HostScripted, ControllerDisconnectFailsPending) {
  ASSERT_TRUE(Connect(Options()).ok());
  Status failure;
  ctrl.SetFailureCallback([&](const Status& s) { failure = s; });
  target.hold_io = true;
  std::vector<uint8_t> buf(kBlock);
  Result r;
  ASSERT_TRUE(ctrl.Read(1, 1, 0, 1, MemDesc::Buffer(buf.data(), buf.size()), buf.size(), Into(&r)).ok());
  ASSERT_TRUE(Run([&] { return target.held.size() == 1; }));
  target.Drop();
  ASSERT_TRUE(Run([&] { return r.done; }));
  EXPECT_EQ(r.status.code(), Status::Code::kIoError) << r.status.ToString();
  EXPECT_FALSE(failure.ok());
  EXPECT_TRUE(ctrl.failed());
}

TEST_F(HostScripted, CloseAbortsPendingAndReconnects) {
  ASSERT_TRUE(Connect(Options()).ok());
  target.hold_io = true;
  std::vector<uint8_t> buf(kBlock);
  Result r;
  ASSERT_TRUE(ctrl.Read(1, 1, 0, 1, MemDesc::Buffer(buf.data(), buf.size()), buf.size(), Into(&r)).ok());
  ctrl.Close();
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.status.code(), Status::Code::kAborted);
  target.Drop();
  target.hold_io = false;
  Status s = Connect(Options());
  ASSERT_TRUE(s.ok()) << s.ToString();
  Result r2;
  ASSERT_TRUE(ctrl.Read(1, 1, 0, 1, MemDesc::Buffer(buf.data(), buf.size()), buf.size(), Into(&r2)).ok());
  ASSERT_TRUE(Run([&] { return r2.done; }));
  EXPECT_TRUE(r2.status.ok()) << r2.status.ToString();
}

TEST_F(HostScripted, DiscoveryController) {
  target.cntrltype = 2;
  for (int i = 0; i < 3; i++) {
    spec::DiscoveryLogEntry e{};
    e.trtype = 3;
    e.adrfam = 1;
    e.subtype = spec::kSubtypeNvme;
    e.treq = 2;
    e.portid = static_cast<uint16_t>(i + 1);
    e.cntlid = 0xffff;
    std::snprintf(e.trsvcid, sizeof(e.trsvcid), "%d", 4420 + i);
    std::snprintf(e.subnqn, sizeof(e.subnqn), "nqn.2024-01.io.nvmf:sub%d", i);
    std::snprintf(e.traddr, sizeof(e.traddr), "10.0.0.%d", i + 1);
    target.discovery.push_back(e);
  }
  target.bump_genctr_reads = 3;  // the log changes under the first attempt
  ConnectOptions o = Options();
  o.subnqn = spec::kDiscoveryNqn;
  o.kato_ms = -1;
  ASSERT_TRUE(Connect(o).ok());
  EXPECT_TRUE(ctrl.is_discovery());
  EXPECT_EQ(ctrl.io_queue_count(), 0u);
  EXPECT_EQ(target.io_connections(), 0u);
  EXPECT_EQ(ctrl.kato_ms(), 0u);
  EXPECT_EQ(target.connects[0].kato, 0u);
  for (const std::string& l : target.admin_log) EXPECT_EQ(l.find("SetFeatures"), std::string::npos);

  bool done = false;
  Status st;
  DiscoveryLog log;
  ctrl.GetDiscoveryLog([&](const Status& s, const DiscoveryLog& l) {
    st = s;
    log = l;
    done = true;
  });
  ASSERT_TRUE(Run([&] { return done; }));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(log.numrec, 3u);
  ASSERT_EQ(log.entries.size(), 3u);
  EXPECT_EQ(log.genctr, target.genctr);
  EXPECT_EQ(FixedString(log.entries[2].subnqn, 256), "nqn.2024-01.io.nvmf:sub2");
  EXPECT_EQ(FixedString(log.entries[1].trsvcid, 32), "4421");
  int reads = 0;
  for (const std::string& l : target.admin_log) reads += l == "GetLogPage 112";
  EXPECT_GE(reads, 5);  // header, body, header (changed), body, header
}

TEST_F(HostScripted, SyncWrapper) {
  SyncController sync(&loop);
  ConnectOptions o = Options();
  ASSERT_TRUE(sync.Connect(o).ok());
  spec::IdentifyController id;
  ASSERT_TRUE(sync.IdentifyController(&id).ok());
  EXPECT_EQ(id.vid, 0x1b36);
  spec::IdentifyNamespace ns;
  ASSERT_TRUE(sync.IdentifyNamespace(1, &ns).ok());
  EXPECT_EQ(ns.nsze, target.ns_blocks);
  EXPECT_EQ(NamespaceBlockSize(ns), kBlock);
  Status bad = sync.IdentifyNamespace(5, &ns);
  EXPECT_EQ(bad.code(), Status::Code::kNvmeError);
  EXPECT_NE(bad.message().find("Invalid Namespace or Format"), std::string::npos) << bad.ToString();
  EXPECT_EQ(spec::StatusSc(spec::StatusOf(sync.last_cqe())), spec::kScInvalidNamespace);
  std::vector<uint32_t> nsids;
  ASSERT_TRUE(sync.ActiveNamespaces(&nsids).ok());
  EXPECT_EQ(nsids, std::vector<uint32_t>{1});
  uint64_t cap = 0;
  ASSERT_TRUE(sync.PropertyGet(spec::kPropCap, true, &cap).ok());
  EXPECT_EQ(CapMqes(cap), target.mqes);

  // 1 MiB: eight commands of the 128 KiB MDTS, over both queues.
  std::vector<uint8_t> out(1 << 20), in(1 << 20);
  FillPattern(out.data(), out.size(), 1000, kBlock, 77);
  ASSERT_TRUE(sync.Write(1, 1000, out.size() / kBlock, kBlock, out.data()).ok());
  ASSERT_TRUE(sync.Flush(1).ok());
  ASSERT_TRUE(sync.Read(1, 1000, in.size() / kBlock, kBlock, in.data()).ok());
  EXPECT_EQ(CheckPattern(in.data(), in.size(), 1000, kBlock, 77), -1);
  Status oor = sync.Read(1, target.ns_blocks - 8, 16, kBlock, in.data());
  EXPECT_EQ(oor.code(), Status::Code::kNvmeError);
  sync.Close();
}

TEST_F(HostScripted, SteadyStateAllocatesNothingPerIo) {
  ConnectOptions o = Options();
  o.nr_io_queues = 2;
  o.queue_size = 32;
  o.kato_ms = 0;
  o.io_timeout = o.admin_timeout = std::chrono::milliseconds(60000);  // scan tick: 1 s
  ASSERT_TRUE(Connect(o).ok());
  constexpr int kDepth = 16;
  std::vector<uint8_t> bufs(2 * kDepth * 8192);
  struct Loop {
    Controller* ctrl;
    uint8_t* bufs;
    uint64_t done = 0;
    uint64_t limit = 0;
    uint64_t errors = 0;
    uint64_t submitted = 0;
    void Submit(int slot) {
      const uint16_t qid = static_cast<uint16_t>(1 + slot % 2);
      uint8_t* b = bufs + slot * 8192;
      Loop* self = this;
      CommandCallback cb = [self, slot](const Status& s, const spec::Cqe&) { self->Done(slot, s); };
      const uint32_t blocks = (submitted % 3 == 0) ? 16 : 4;  // 8 KiB (R2T) and 2 KiB (ICD)
      Status s = (submitted++ % 2 == 0)
                     ? ctrl->Write(qid, 1, slot * 16u, blocks, MemDesc::Buffer(b, 8192), blocks * kBlock, cb)
                     : ctrl->Read(qid, 1, slot * 16u, blocks, MemDesc::Buffer(b, 8192), blocks * kBlock, cb);
      if (!s.ok()) errors++;
    }
    void Done(int slot, const Status& s) {
      done++;
      if (!s.ok()) errors++;
      if (submitted < limit) Submit(slot);
    }
  };
  Loop l{&ctrl, bufs.data()};
  auto round = [&](uint64_t n) {
    const uint64_t want = l.done + n;
    l.limit = l.submitted + n;
    for (int s = 0; s < 2 * kDepth; s++) l.Submit(s);
    Loop* lp = &l;
    ASSERT_TRUE(Run([lp, want] { return lp->done >= want; }, std::chrono::milliseconds(60000)));
  };
  round(2000);  // warm-up
  StartCountingAllocations();
  round(5000);
  const uint64_t allocs = StopCountingAllocations();
  EXPECT_EQ(l.errors, 0u);
  // The timeout scan re-arms its timer once a second (one map node); nothing per I/O.
  EXPECT_LE(allocs, 4u) << "heap allocations during 5000 I/O commands";
}

}  // namespace
}  // namespace nvmf::host
