// The transport-neutral set-up (nvmf/transport.h): transport types by name, the registry's
// errors for transports that are not there, ConnectTransport/ListenTransport over NVMe/TCP
// end to end, the values a listener reports for Identify and the discovery log, and a
// machine without RDMA devices answering with an error, not a crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>

#include "nvmf/event_loop.h"
#include "nvmf/spec/nvme.h"
#include "nvmf/transport.h"

namespace nvmf {
namespace {

constexpr std::chrono::milliseconds kWait{10000};

TEST(TransportSetup, TypesByName) {
  TransportType t = TransportType::kFc;
  EXPECT_TRUE(ParseTransportType("tcp", &t));
  EXPECT_EQ(t, TransportType::kTcp);
  EXPECT_TRUE(ParseTransportType("RDMA", &t));
  EXPECT_EQ(t, TransportType::kRdma);
  EXPECT_FALSE(ParseTransportType("fc", &t));
  EXPECT_FALSE(ParseTransportType("", &t));
  EXPECT_FALSE(ParseTransportType("tcp ", &t));
  EXPECT_STREQ(TransportTypeName(TransportType::kTcp), "tcp");
  EXPECT_STREQ(TransportTypeName(TransportType::kRdma), "rdma");
}

TEST(TransportSetup, UnknownTransportIsAnErrorReportedLater) {
  EventLoop loop;
  bool called = false;
  Status got;
  ConnectTransport(&loop, {TransportType::kFc, "127.0.0.1", "4420"}, {},
                   [&](const Status& s, Connection c) {
                     called = true;
                     got = s;
                     EXPECT_EQ(c, nullptr);
                   });
  EXPECT_FALSE(called);  // never inside the call
  ASSERT_TRUE(loop.RunUntil([&] { return called; }, kWait));
  EXPECT_EQ(got.code(), Status::Code::kNotSupported);
  EXPECT_NE(got.message().find("transport fc"), std::string::npos) << got.ToString();

  std::unique_ptr<TransportListener> l;
  Status s = ListenTransport(&loop, {TransportType::kFc, "127.0.0.1", "0"}, {},
                             [](Connection) {}, &l);
  EXPECT_EQ(s.code(), Status::Code::kNotSupported);
  EXPECT_EQ(l, nullptr);
}

TEST(TransportSetup, AllocateQpairChecksTheConnection) {
  EventLoop loop;
  Qpair* qp = nullptr;
  QpairParams p;
  Status s = AllocateQpair(&loop, TransportType::kTcp, Role::kHost, p, [](const Status&) {},
                           [](Capsule*) {}, &qp);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(qp, nullptr);
}

TEST(TransportSetup, TcpServiceIdMustBeAPort) {
  EventLoop loop;
  bool called = false;
  Status got;
  ConnectTransport(&loop, {TransportType::kTcp, "127.0.0.1", "nvme"}, {},
                   [&](const Status& s, Connection) {
                     called = true;
                     got = s;
                   });
  ASSERT_TRUE(loop.RunUntil([&] { return called; }, kWait));
  EXPECT_EQ(got.code(), Status::Code::kInvalidArgument) << got.ToString();
  std::unique_ptr<TransportListener> l;
  EXPECT_EQ(ListenTransport(&loop, {TransportType::kTcp, "127.0.0.1", "70000"}, {},
                            [](Connection) {}, &l)
                .code(),
            Status::Code::kInvalidArgument);
}

// Both ends through the neutral API only: listen, connect, make the queue pairs from the
// opaque connections, and pass a command and its response.
TEST(TransportSetup, TcpEndToEndThroughTheNeutralApi) {
  EventLoop loop;
  ListenParams lp;
  lp.max_icd = 4096;
  lp.max_transfer = 1 << 20;
  Connection accepted;
  std::unique_ptr<TransportListener> l;
  ASSERT_TRUE(ListenTransport(&loop, {TransportType::kTcp, "127.0.0.1", "0"}, lp,
                              [&](Connection c) { accepted = c; }, &l)
                  .ok());
  ASSERT_NE(l->port(), 0);
  EXPECT_EQ(l->trtype(), TransportType::kTcp);
  ControllerTransportValues v = l->ControllerValues();
  EXPECT_EQ(v.ioccsz, (64u + 4096) / 16);
  EXPECT_EQ(v.iorcsz, 1u);
  EXPECT_EQ(v.sgls, 0x100005u);
  EXPECT_EQ(v.max_transfer, 1u << 20);
  spec::DiscoveryLogEntry e{};
  l->FillDiscoveryEntry(&e);
  EXPECT_EQ(e.trtype, 3);
  EXPECT_EQ(e.adrfam, spec::kAdrfamIpv4);
  EXPECT_EQ(e.tsas[0], 0);

  Connection host;
  bool connected = false;
  HostConnectParams hp;
  hp.qsize = 8;
  ConnectTransport(&loop, {TransportType::kTcp, "127.0.0.1", std::to_string(l->port())}, hp,
                   [&](const Status& s, Connection c) {
                     EXPECT_TRUE(s.ok()) << s.ToString();
                     host = c;
                     connected = true;
                   });
  ASSERT_TRUE(loop.RunUntil([&] { return connected && accepted != nullptr; }, kWait));
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(ConnectionTransport(host), TransportType::kTcp);

  Capsule* got_cmd = nullptr;
  Capsule* got_rsp = nullptr;
  Qpair* ctrl = nullptr;
  Qpair* hq = nullptr;
  QpairParams cp;
  cp.connection = accepted;
  ASSERT_TRUE(AllocateQpair(&loop, TransportType::kTcp, Role::kController, cp,
                            [](const Status&) {}, [&](Capsule* c) { got_cmd = c; }, &ctrl)
                  .ok());
  QpairParams hqp;
  hqp.qsize = 8;
  hqp.connection = host;
  ASSERT_TRUE(AllocateQpair(&loop, TransportType::kTcp, Role::kHost, hqp, [](const Status&) {},
                            [&](Capsule* c) { got_rsp = c; }, &hq)
                  .ok());
  // A used connection cannot make a second queue pair: its socket went to the first.
  Qpair* again = nullptr;
  EXPECT_FALSE(AllocateQpair(&loop, TransportType::kTcp, Role::kHost, hqp, [](const Status&) {},
                             [](Capsule*) {}, &again)
                   .ok());
  EXPECT_EQ(QpairControllerValues(ctrl).ioccsz, (64u + 4096) / 16);
  EXPECT_NE(QpairPeerName(ctrl).find("127.0.0.1:"), std::string::npos) << QpairPeerName(ctrl);

  spec::Sqe sqe{};
  sqe.opc = 0x18;  // Keep Alive
  sqe.cid = 7;
  Capsule* cmd = AllocateCommand(hq, sqe);
  ASSERT_TRUE(Transmit(cmd).ok());
  ASSERT_TRUE(loop.RunUntil([&] { return got_cmd != nullptr; }, kWait));
  EXPECT_EQ(CapsuleSqe(got_cmd).cid, 7);
  spec::Cqe cqe{};
  cqe.cid = 7;
  Capsule* rsp = AllocateResponse(ctrl, cqe);
  ASSERT_TRUE(Transmit(rsp).ok());
  FreeCapsule(rsp);
  FreeCapsule(got_cmd);
  ASSERT_TRUE(loop.RunUntil([&] { return got_rsp != nullptr; }, kWait));
  EXPECT_EQ(CapsuleCqe(got_rsp).cid, 7);
  FreeCapsule(got_rsp);
  FreeCapsule(cmd);
  FreeQpair(hq);
  FreeQpair(ctrl);
}

// This machine (and CI) has no RDMA device: listening and connecting over RDMA fail with
// a clear error.
TEST(TransportSetup, RdmaWithoutDeviceIsAClearError) {
  if (access("/dev/infiniband/rdma_cm", F_OK) == 0) GTEST_SKIP() << "this machine has RDMA";
  EventLoop loop;
  std::unique_ptr<TransportListener> l;
  Status s = ListenTransport(&loop, {TransportType::kRdma, "127.0.0.1", "4420"}, {},
                             [](Connection) {}, &l);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("RDMA"), std::string::npos) << s.ToString();
  bool called = false;
  Status got;
  ConnectTransport(&loop, {TransportType::kRdma, "127.0.0.1", "4420"}, {},
                   [&](const Status& st, Connection c) {
                     called = true;
                     got = st;
                     EXPECT_EQ(c, nullptr);
                   });
  ASSERT_TRUE(loop.RunUntil([&] { return called; }, kWait));
  EXPECT_FALSE(got.ok());
  EXPECT_NE(got.message().find("RDMA"), std::string::npos) << got.ToString();
}

}  // namespace
}  // namespace nvmf
