// What the NVMe/TCP queue pairs do with bad input, digests that do not match, limits,
// and peers that vanish: a RawPeer plays the other side byte by byte.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "support/loopback.h"
#include "tcp/pdu_codec.h"

namespace nvmf::test {
namespace {

namespace wire = spec::tcp;
using tcp::TxConfig;

struct DataResult {
  bool done = false;
  size_t bytes = 0;
  Status status;
};
DataCallback Record(DataResult* r) {
  return [r](size_t bytes, const Status& s) {
    r->done = true;
    r->bytes = bytes;
    r->status = s;
  };
}

uint16_t Fes(const std::vector<uint8_t>& pdu) {
  uint16_t v;
  std::memcpy(&v, pdu.data() + 8, 2);
  return v;
}
uint32_t Fei(const std::vector<uint8_t>& pdu) {
  uint32_t v;
  std::memcpy(&v, pdu.data() + 10, 4);
  return v;
}

// Our controller behind a listener; the test is the host.
class ControllerSide : public ::testing::Test {
 protected:
  void Listen(const tcp::ControllerOptions& o = tcp::ControllerOptions()) {
    ASSERT_TRUE(tcp::Listener::Listen(
                    &loop, "127.0.0.1", 0, o,
                    [this](const TcpQpairParams& p) {
                      QpairParams qp;
                      qp.qsize = 16;
                      qp.connection = tcp::WrapConnection(p);
                      ASSERT_TRUE(AllocateQpair(&loop, TransportType::kTcp, Role::kController, qp,
                                                ctrl.OnError(), ctrl.OnReceive(), &ctrl.qp)
                                      .ok());
                    },
                    &listener)
                    .ok());
  }
  void Connect(bool hdgst = false, bool ddgst = false) {
    ASSERT_TRUE(raw.ConnectHost(listener->port(), hdgst, ddgst));
    ASSERT_TRUE(loop.RunUntil([&] { return ctrl.qp != nullptr; }, kWait));
  }
  TxConfig Tx() const { return {raw.hdgst, raw.ddgst, 4}; }
  void SendCommand(const spec::Sqe& sqe, const std::vector<uint8_t>& icd = {}) {
    uint8_t hdr[tcp::kMaxHeaderBytes];
    uint32_t n = tcp::BuildCapsuleCmd(hdr, sqe, static_cast<uint32_t>(icd.size()), Tx());
    ASSERT_TRUE(raw.Send(WithPayload(hdr, n, icd.data(), static_cast<uint32_t>(icd.size()), raw.ddgst)));
  }
  Capsule* WaitCommand() {
    loop.RunUntil([&] { return !ctrl.received.empty() || ctrl.failed; }, kWait);
    return ctrl.Pop();
  }
  // Expects a C2HTermReq with fes/fei, then the connection closing and the error callback.
  void ExpectTermReq(uint16_t fes, uint32_t fei) {
    std::vector<uint8_t> pdu = raw.RecvPdu();
    ASSERT_GE(pdu.size(), sizeof(wire::TermReq));
    EXPECT_EQ(pdu[0], wire::kC2HTermReq);
    EXPECT_EQ(Fes(pdu), fes);
    EXPECT_EQ(Fei(pdu), fei);
    EXPECT_GT(pdu.size(), sizeof(wire::TermReq)) << "quotes the offending header";
    EXPECT_TRUE(raw.WaitClosed());
    EXPECT_TRUE(loop.RunUntil([&] { return ctrl.failed; }, kWait));
    EXPECT_EQ(ctrl.error.code(), Status::Code::kProtocolError) << ctrl.error.ToString();
  }
  spec::Sqe WriteSqe(uint16_t cid, uint32_t len, bool icd) {
    spec::Sqe s = MakeSqe(spec::kNvmWrite, cid);
    s.fuse_psdt = spec::kPsdtSglMptrContig << 6;
    s.sgl1.length = len;
    s.sgl1.type = icd ? spec::kSglInCapsule : spec::kSglTransport;
    return s;
  }
  void TearDown() override {
    ctrl.Close();
    raw.Close();
    listener.reset();
  }

  EventLoop loop;
  std::unique_ptr<tcp::Listener> listener;
  Endpoint ctrl;
  RawPeer raw{&loop};
};

TEST_F(ControllerSide, WrongHlenIsAnsweredWithTermReqNamingHlen) {
  Listen();
  Connect();
  uint8_t hdr[tcp::kMaxHeaderBytes];
  tcp::BuildCapsuleCmd(hdr, MakeSqe(spec::kAdminKeepAlive, 1), 0, Tx());
  hdr[2] = 70;  // HLEN of a CapsuleCmd is 72
  ASSERT_TRUE(raw.Send(hdr, 72));
  ExpectTermReq(wire::kFesInvalidHeaderField, 2);
}

TEST_F(ControllerSide, LowestBadFieldIsReported) {
  Listen();
  Connect();
  uint8_t hdr[tcp::kMaxHeaderBytes];
  tcp::BuildCapsuleCmd(hdr, MakeSqe(spec::kAdminKeepAlive, 1), 0, Tx());
  hdr[1] = 0x40;  // a flag no CapsuleCmd has
  hdr[2] = 70;    // and a bad HLEN: FLAGS (offset 1) is reported
  ASSERT_TRUE(raw.Send(hdr, 72));
  ExpectTermReq(wire::kFesInvalidHeaderField, 1);
}

TEST_F(ControllerSide, CorruptedHeaderDigestEndsTheConnection) {
  Listen();
  Connect(true, false);
  uint8_t hdr[tcp::kMaxHeaderBytes];
  uint32_t n = tcp::BuildCapsuleCmd(hdr, MakeSqe(spec::kAdminKeepAlive, 1), 0, Tx());
  hdr[72] ^= 0x01;
  ASSERT_TRUE(raw.Send(hdr, n));
  ExpectTermReq(wire::kFesHeaderDigestError, 0);
}

TEST_F(ControllerSide, CorruptedInCapsuleDataDigestFailsOnlyThatCommand) {
  Listen();
  Connect(false, true);
  std::vector<uint8_t> data(512, 0x5a);
  uint8_t hdr[tcp::kMaxHeaderBytes];
  uint32_t n = tcp::BuildCapsuleCmd(hdr, WriteSqe(1, 512, true), 512, Tx());
  std::vector<uint8_t> pdu = WithPayload(hdr, n, data.data(), 512, true);
  pdu.back() ^= 0xff;
  ASSERT_TRUE(raw.Send(pdu));
  Capsule* c = WaitCommand();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(ValidateCommandCapsule(c), spec::kScTransientTransportError);
  std::vector<uint8_t> in(512);
  DataResult r;
  ReceiveControllerData(c, 0, MemDesc::Buffer(in.data(), 512), 512, Record(&r));
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.status.code(), Status::Code::kDataDigestError);
  FreeCapsule(c);
  // The connection lives on.
  SendCommand(WriteSqe(2, 512, true), data);
  Capsule* c2 = WaitCommand();
  ASSERT_NE(c2, nullptr);
  EXPECT_EQ(ValidateCommandCapsule(c2), spec::kScSuccess);
  FreeCapsule(c2);
  EXPECT_FALSE(ctrl.failed);
}

// Fetches a write's data through R2Ts; returns the capsule.
class R2TFlow : public ControllerSide {
 protected:
  Capsule* StartWrite(uint16_t cid, uint32_t len) {
    SendCommand(WriteSqe(cid, len, false));
    return WaitCommand();
  }
  std::vector<uint8_t> NextR2T() {
    std::vector<uint8_t> pdu = raw.RecvPdu();
    EXPECT_FALSE(pdu.empty());
    if (!pdu.empty()) {
      EXPECT_EQ(pdu[0], wire::kR2T);
    }
    return pdu;
  }
  void SendH2C(uint16_t cid, uint16_t ttag, uint32_t off, const uint8_t* d, uint32_t len, bool last,
               bool corrupt = false) {
    uint8_t hdr[tcp::kMaxHeaderBytes];
    uint32_t n = tcp::BuildH2CData(hdr, cid, ttag, off, len, last, Tx());
    std::vector<uint8_t> pdu = WithPayload(hdr, n, d, len, raw.ddgst);
    if (corrupt) pdu.back() ^= 0x10;
    ASSERT_TRUE(raw.Send(pdu));
  }
};

TEST_F(R2TFlow, NeverMoreR2TsOutstandingThanTheHostAllows) {
  Listen();
  Connect();  // RawPeer's ICReq declares MAXR2T 0: one outstanding R2T per command
  Capsule* c = StartWrite(9, 4 * 4096);
  ASSERT_NE(c, nullptr);
  std::vector<uint8_t> in(4 * 4096);
  DataResult res[4];
  for (int i = 0; i < 4; i++) {
    ReceiveControllerData(c, i * 4096, MemDesc::Buffer(in.data() + i * 4096, 4096), 4096,
                          Record(&res[i]));
  }
  std::vector<uint8_t> data(4 * 4096);
  Fill(data, 9);
  for (int i = 0; i < 4; i++) {
    std::vector<uint8_t> r2t = NextR2T();
    ASSERT_EQ(r2t.size(), sizeof(wire::R2T));
    wire::R2T h;
    std::memcpy(&h, r2t.data(), sizeof(h));
    EXPECT_EQ(h.cccid, 9);
    EXPECT_EQ(h.r2to, static_cast<uint32_t>(i * 4096));
    EXPECT_EQ(h.r2tl, 4096u);
    // While this R2T is unanswered no other may come.
    EXPECT_TRUE(raw.RecvPdu(std::chrono::milliseconds(50)).empty()) << "R2T " << i;
    SendH2C(9, h.ttag, h.r2to, data.data() + h.r2to, 4096, true);
    ASSERT_TRUE(loop.RunUntil([&] { return res[i].done; }, kWait));
    EXPECT_TRUE(res[i].status.ok());
  }
  EXPECT_EQ(in, data);
  FreeCapsule(c);
}

TEST_F(R2TFlow, CorruptedH2CDataDigestFailsThatTransferOnly) {
  Listen();
  Connect(false, true);
  Capsule* c = StartWrite(3, 4096);
  ASSERT_NE(c, nullptr);
  std::vector<uint8_t> in(4096), data(4096, 7);
  DataResult r;
  ReceiveControllerData(c, 0, MemDesc::Buffer(in.data(), 4096), 4096, Record(&r));
  std::vector<uint8_t> r2t = NextR2T();
  ASSERT_FALSE(r2t.empty());
  wire::R2T h;
  std::memcpy(&h, r2t.data(), sizeof(h));
  SendH2C(3, h.ttag, 0, data.data(), 4096, true, /*corrupt=*/true);
  ASSERT_TRUE(loop.RunUntil([&] { return r.done; }, kWait));
  EXPECT_EQ(r.status.code(), Status::Code::kDataDigestError);
  FreeCapsule(c);
  EXPECT_FALSE(ctrl.failed);
}

TEST_F(R2TFlow, UnknownTtagIsReported) {
  Listen();
  Connect();
  Capsule* c = StartWrite(4, 4096);
  ASSERT_NE(c, nullptr);
  std::vector<uint8_t> in(4096), data(4096, 1);
  DataResult r;
  ReceiveControllerData(c, 0, MemDesc::Buffer(in.data(), 4096), 4096, Record(&r));
  std::vector<uint8_t> r2t = NextR2T();
  wire::R2T h;
  std::memcpy(&h, r2t.data(), sizeof(h));
  SendH2C(4, static_cast<uint16_t>(h.ttag + 1000), 0, data.data(), 4096, true);
  ExpectTermReq(wire::kFesInvalidHeaderField, offsetof(wire::H2CData, ttag));
  EXPECT_TRUE(r.done);
  EXPECT_FALSE(r.status.ok()) << "the transfer fails with the connection";
  FreeCapsule(c);
}

TEST_F(R2TFlow, DataBeyondTheR2TIsOutOfRange) {
  Listen();
  Connect();
  Capsule* c = StartWrite(5, 8192);
  ASSERT_NE(c, nullptr);
  std::vector<uint8_t> in(8192), data(8192, 1);
  DataResult r;
  ReceiveControllerData(c, 0, MemDesc::Buffer(in.data(), 4096), 4096, Record(&r));
  std::vector<uint8_t> r2t = NextR2T();
  wire::R2T h;
  std::memcpy(&h, r2t.data(), sizeof(h));
  SendH2C(5, h.ttag, 0, data.data(), 8192, true);
  ExpectTermReq(wire::kFesDataOutOfRange, 0);
  FreeCapsule(c);
}

TEST_F(R2TFlow, HostVanishingMidTransferFailsTheTransfer) {
  Listen();
  Connect();
  Capsule* c = StartWrite(6, 65536);
  ASSERT_NE(c, nullptr);
  std::vector<uint8_t> in(65536), data(65536, 3);
  DataResult r;
  ReceiveControllerData(c, 0, MemDesc::Buffer(in.data(), 65536), 65536, Record(&r));
  std::vector<uint8_t> r2t = NextR2T();
  wire::R2T h;
  std::memcpy(&h, r2t.data(), sizeof(h));
  uint8_t hdr[tcp::kMaxHeaderBytes];
  uint32_t n = tcp::BuildH2CData(hdr, 6, h.ttag, 0, 65536, true, Tx());
  std::vector<uint8_t> pdu = WithPayload(hdr, n, data.data(), 65536, false);
  ASSERT_TRUE(raw.Send(pdu.data(), pdu.size() / 2));
  raw.Close();
  ASSERT_TRUE(loop.RunUntil([&] { return ctrl.failed && r.done; }, kWait));
  EXPECT_EQ(ctrl.error.code(), Status::Code::kIoError) << ctrl.error.ToString();
  EXPECT_FALSE(r.status.ok());
  EXPECT_LT(r.bytes, 65536u);
  FreeCapsule(c);
}

TEST_F(ControllerSide, TermReqFromTheHostEndsTheQueuePair) {
  Listen();
  Connect();
  uint8_t pdu[tcp::kMaxHeaderBytes];
  uint32_t n = tcp::BuildTermReq(pdu, true, wire::kFesPduSequenceError, 0, nullptr, 0);
  ASSERT_TRUE(raw.Send(pdu, n));
  ASSERT_TRUE(loop.RunUntil([&] { return ctrl.failed; }, kWait));
  EXPECT_EQ(ctrl.error.code(), Status::Code::kPeerTerminated);
}

TEST_F(ControllerSide, BadIcReqIsRefusedBeforeAnyQueuePair) {
  Listen();
  ASSERT_TRUE(raw.ConnectHost(listener->port(), false, false, /*icreq=*/false));
  uint8_t req[128];
  tcp::BuildIcReq(req, 0, false, false, 0);
  req[8] = 1;  // PFV 1 does not exist
  ASSERT_TRUE(raw.Send(req, sizeof(req)));
  std::vector<uint8_t> pdu = raw.RecvPdu();
  ASSERT_GE(pdu.size(), sizeof(wire::TermReq));
  EXPECT_EQ(pdu[0], wire::kC2HTermReq);
  EXPECT_EQ(Fes(pdu), wire::kFesUnsupportedParameter);
  EXPECT_EQ(Fei(pdu), offsetof(wire::IcReq, pfv));
  EXPECT_TRUE(raw.WaitClosed());
  EXPECT_EQ(ctrl.qp, nullptr);
}

TEST_F(ControllerSide, DuplicateCidAndBadSglGetNvmeStatus) {
  Listen();
  Connect();
  SendCommand(WriteSqe(8, 4096, false));
  spec::Sqe bad = WriteSqe(8, 4096, false);
  SendCommand(bad);
  spec::Sqe bad_sgl = WriteSqe(10, 4096, false);
  bad_sgl.sgl1.type = 0x20;  // a segment descriptor: not for NVMe/TCP
  SendCommand(bad_sgl);
  spec::Sqe prp = WriteSqe(11, 0, false);
  prp.fuse_psdt = 0;  // PRPs are not for fabrics
  SendCommand(prp);
  ASSERT_TRUE(loop.RunUntil([&] { return ctrl.received.size() == 4; }, kWait));
  EXPECT_EQ(ValidateCommandCapsule(ctrl.received[0]), spec::kScSuccess);
  EXPECT_EQ(ValidateCommandCapsule(ctrl.received[1]), spec::kScCommandIdConflict);
  EXPECT_EQ(ValidateCommandCapsule(ctrl.received[2]), spec::kScSglDescriptorTypeInvalid);
  EXPECT_EQ(ValidateCommandCapsule(ctrl.received[3]), spec::kScInvalidField);
  EXPECT_FALSE(ctrl.failed);
}

TEST_F(ControllerSide, MoreCommandsThanTheQueueHoldsEndTheConnection) {
  Listen();
  Connect();
  for (uint16_t cid = 0; cid < 200; cid++) SendCommand(MakeSqe(spec::kAdminKeepAlive, cid));
  std::vector<uint8_t> pdu = raw.RecvPdu();
  ASSERT_GE(pdu.size(), sizeof(wire::TermReq));
  EXPECT_EQ(pdu[0], wire::kC2HTermReq);
  EXPECT_TRUE(loop.RunUntil([&] { return ctrl.failed; }, kWait));
}

// Our host connected to a RawPeer controller.
class HostSide : public ::testing::Test {
 protected:
  void Open(bool hdgst = false, bool ddgst = false, uint32_t maxh2cdata = 131072) {
    uint16_t port;
    lfd = ListenAnyPort(&port);
    ASSERT_GE(lfd, 0);
    tcp::HostOptions o;
    o.header_digest = hdgst;
    o.data_digest = ddgst;
    tcp::Connect(&loop, "127.0.0.1", port, o, [this](const Status& s, const TcpQpairParams& p) {
      connect_status = s;
      connected = true;
      if (!s.ok()) return;
      QpairParams qp;
      qp.qsize = 16;
      qp.connection = tcp::WrapConnection(p);
      ASSERT_TRUE(AllocateQpair(&loop, TransportType::kTcp, Role::kHost, qp, host.OnError(),
                                host.OnReceive(), &host.qp)
                      .ok());
    });
    ASSERT_TRUE(raw.AcceptController(lfd, hdgst, ddgst, maxh2cdata, answer));
    if (answer) {
      ASSERT_TRUE(loop.RunUntil([&] { return connected; }, kWait));
    }
  }
  TxConfig Tx() const { return {raw.hdgst, raw.ddgst, 4}; }
  // Sends a read command for len bytes into out; returns the capsule.
  Capsule* Read(uint16_t cid, std::vector<uint8_t>& out, DataResult* r) {
    Capsule* c = AllocateCommand(host.qp, MakeSqe(spec::kNvmRead, cid));
    AppendData(c, MemDesc::Buffer(out.data(), out.size()), out.size(), false, Record(r));
    EXPECT_TRUE(Transmit(c).ok());
    std::vector<uint8_t> cmd = raw.RecvPdu();
    EXPECT_FALSE(cmd.empty());
    if (!cmd.empty()) {
      EXPECT_EQ(cmd[0], wire::kCapsuleCmd);
    }
    return c;
  }
  void SendC2H(uint16_t cid, uint32_t off, const std::vector<uint8_t>& d, bool last,
               bool corrupt = false) {
    uint8_t hdr[tcp::kMaxHeaderBytes];
    uint32_t n = tcp::BuildC2HData(hdr, cid, off, static_cast<uint32_t>(d.size()), last, false, Tx());
    std::vector<uint8_t> pdu = WithPayload(hdr, n, d.data(), static_cast<uint32_t>(d.size()), raw.ddgst);
    if (corrupt) pdu.back() ^= 1;
    ASSERT_TRUE(raw.Send(pdu));
  }
  void SendResp(uint16_t cid) {
    spec::Cqe cqe{};
    cqe.cid = cid;
    uint8_t hdr[tcp::kMaxHeaderBytes];
    uint32_t n = tcp::BuildCapsuleResp(hdr, cqe, Tx());
    ASSERT_TRUE(raw.Send(hdr, n));
  }
  void TearDown() override {
    host.Close();
    raw.Close();
    if (lfd >= 0) close(lfd);
  }

  EventLoop loop;
  Endpoint host;
  RawPeer raw{&loop};
  int lfd = -1;
  bool connected = false;
  bool answer = true;
  Status connect_status;
};

TEST_F(HostSide, CorruptedC2HDataDigestFailsTheReadButNotTheConnection) {
  Open(false, true);
  std::vector<uint8_t> out(4096), data(4096, 0x42);
  DataResult r;
  Capsule* c = Read(1, out, &r);
  SendC2H(1, 0, data, true, /*corrupt=*/true);
  SendResp(1);
  ASSERT_TRUE(loop.RunUntil([&] { return !host.received.empty(); }, kWait));
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.status.code(), Status::Code::kDataDigestError);
  EXPECT_FALSE(host.failed);
  FreeCapsule(c);
}

TEST_F(HostSide, ControllerVanishingMidReadFailsTheRead) {
  Open();
  std::vector<uint8_t> out(65536), data(65536, 9);
  DataResult r;
  Capsule* c = Read(2, out, &r);
  uint8_t hdr[tcp::kMaxHeaderBytes];
  uint32_t n = tcp::BuildC2HData(hdr, 2, 0, 65536, true, false, Tx());
  std::vector<uint8_t> pdu = WithPayload(hdr, n, data.data(), 65536, false);
  ASSERT_TRUE(raw.Send(pdu.data(), 30000));
  raw.Close();
  ASSERT_TRUE(loop.RunUntil([&] { return host.failed && r.done; }, kWait));
  EXPECT_EQ(host.error.code(), Status::Code::kIoError);
  EXPECT_EQ(r.status.code(), Status::Code::kIoError);
  EXPECT_LT(r.bytes, 65536u);
  FreeCapsule(c);
}

TEST_F(HostSide, CleanCloseWithAReadInFlightFailsTheRead) {
  Open();
  std::vector<uint8_t> out(65536), data(16384, 5);
  DataResult r;
  Capsule* c = Read(5, out, &r);
  SendC2H(5, 0, data, false);  // a quarter of the data, then a FIN between PDUs
  raw.Close();
  ASSERT_TRUE(loop.RunUntil([&] { return host.failed && r.done; }, kWait));
  EXPECT_TRUE(host.error.ok()) << "the connection itself closed cleanly";
  EXPECT_FALSE(r.status.ok()) << "but the read did not complete";
  EXPECT_EQ(r.bytes, 16384u);
  FreeCapsule(c);
}

TEST_F(HostSide, EarlyResponseWithdrawsTheWriteData) {
  Open();
  constexpr uint32_t kLen = 4 << 20;
  std::vector<uint8_t> buf(kLen, 0x11);
  DataResult r;
  std::vector<uint8_t>* bufp = &buf;
  DataResult* rp = &r;
  Capsule* c = AllocateCommand(host.qp, MakeSqe(spec::kNvmWrite, 7));
  AppendData(c, MemDesc::Buffer(buf.data(), kLen), kLen, true, [bufp, rp](size_t n, const Status& s) {
    rp->done = true;
    rp->bytes = n;
    rp->status = s;
    std::fill(bufp->begin(), bufp->end(), 0xDD);  // the buffer is ours again
  });
  ASSERT_TRUE(Transmit(c).ok());
  ASSERT_FALSE(raw.RecvPdu().empty());  // the command
  uint8_t hdr[tcp::kMaxHeaderBytes];
  uint32_t n = tcp::BuildR2T(hdr, 7, 0, 0, kLen, Tx());
  std::vector<uint8_t> both(hdr, hdr + n);
  spec::Cqe cqe{};
  cqe.cid = 7;
  spec::SetStatus(cqe, spec::MakeStatus(spec::kSctGeneric, spec::kScInternalError));
  n = tcp::BuildCapsuleResp(hdr, cqe, Tx());
  both.insert(both.end(), hdr, hdr + n);
  ASSERT_TRUE(raw.Send(both));
  ASSERT_TRUE(loop.RunUntil([&] { return !host.received.empty(); }, kWait));
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.status.code(), Status::Code::kAborted);
  // Whatever still arrives must be the data as it was before the buffer was given back.
  size_t seen = 0;
  for (std::vector<uint8_t> pdu; !(pdu = raw.RecvPdu(std::chrono::milliseconds(200))).empty();) {
    ASSERT_EQ(pdu[0], wire::kH2CData);
    for (size_t i = sizeof(wire::H2CData); i < pdu.size(); i++) ASSERT_EQ(pdu[i], 0x11) << i;
    seen += pdu.size();
  }
  EXPECT_FALSE(host.failed);
  FreeCapsule(c);
}

TEST_F(HostSide, ResponseForNoCommandIsReported) {
  Open();
  SendResp(77);
  std::vector<uint8_t> pdu = raw.RecvPdu();
  ASSERT_GE(pdu.size(), sizeof(wire::TermReq));
  EXPECT_EQ(pdu[0], wire::kH2CTermReq);
  EXPECT_EQ(Fes(pdu), wire::kFesInvalidHeaderField);
  EXPECT_EQ(Fei(pdu), 20u);
  ASSERT_TRUE(loop.RunUntil([&] { return host.failed; }, kWait));
  EXPECT_EQ(host.error.code(), Status::Code::kProtocolError);
}

TEST_F(HostSide, R2TForAReadIsReported) {
  Open();
  std::vector<uint8_t> out(4096);
  DataResult r;
  Capsule* c = Read(3, out, &r);
  uint8_t hdr[tcp::kMaxHeaderBytes];
  uint32_t n = tcp::BuildR2T(hdr, 3, 0, 0, 4096, Tx());
  ASSERT_TRUE(raw.Send(hdr, n));
  std::vector<uint8_t> pdu = raw.RecvPdu();
  ASSERT_GE(pdu.size(), sizeof(wire::TermReq));
  EXPECT_EQ(Fei(pdu), offsetof(wire::R2T, cccid));
  ASSERT_TRUE(loop.RunUntil([&] { return host.failed && r.done; }, kWait));
  EXPECT_FALSE(r.status.ok());
  FreeCapsule(c);
}

TEST_F(HostSide, TermReqFromTheControllerEndsTheQueuePair) {
  Open();
  uint8_t pdu[tcp::kMaxHeaderBytes];
  uint32_t n = tcp::BuildTermReq(pdu, false, wire::kFesInvalidHeaderField, 3, nullptr, 0);
  ASSERT_TRUE(raw.Send(pdu, n));
  ASSERT_TRUE(loop.RunUntil([&] { return host.failed; }, kWait));
  EXPECT_EQ(host.error.code(), Status::Code::kPeerTerminated);
  EXPECT_NE(host.error.message().find("FEI 3"), std::string::npos) << host.error.message();
}

TEST_F(HostSide, AbortedReadNoLongerTouchesTheBuffer) {
  Open();
  std::vector<uint8_t> out(4096, 0), data(4096, 0xee);
  DataResult r;
  Capsule* c = Read(4, out, &r);
  AbortCapsuleData(c);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.status.code(), Status::Code::kAborted);
  SendC2H(4, 0, data, true);
  SendResp(4);
  ASSERT_TRUE(loop.RunUntil([&] { return !host.received.empty(); }, kWait));
  EXPECT_EQ(out, std::vector<uint8_t>(4096, 0));
  EXPECT_FALSE(host.failed);
  FreeCapsule(c);
}

TEST_F(HostSide, BadIcRespFailsTheConnect) {
  answer = false;
  Open();  // the raw controller only accepts
  std::vector<uint8_t> req = raw.RecvPdu();
  ASSERT_EQ(req.size(), 128u);
  uint8_t resp[128];
  tcp::BuildIcResp(resp, 0, false, false, 100);  // MAXH2CDATA below 4096
  ASSERT_TRUE(raw.Send(resp, sizeof(resp)));
  ASSERT_TRUE(loop.RunUntil([&] { return connected; }, kWait));
  EXPECT_EQ(connect_status.code(), Status::Code::kProtocolError);
  std::vector<uint8_t> term = raw.RecvPdu();
  ASSERT_GE(term.size(), sizeof(wire::TermReq));
  EXPECT_EQ(term[0], wire::kH2CTermReq);
  EXPECT_EQ(Fei(term), offsetof(wire::IcResp, maxh2cdata));
}

}  // namespace
}  // namespace nvmf::test
