// Host and controller queue pairs over a real loopback TCP socket: every transport
// operation, with digests on and off.
#include <gtest/gtest.h>

#include <cstring>
#include <tuple>
#include <vector>

#include "nvmf/spec/fabrics.h"
#include "support/loopback.h"

namespace nvmf::test {
namespace {

struct DataResult {
  bool done = false;
  size_t bytes = 0;
  Status status;
  int calls = 0;
};

DataCallback Record(DataResult* r) {
  return [r](size_t bytes, const Status& s) {
    r->done = true;
    r->bytes = bytes;
    r->status = s;
    r->calls++;
  };
}

spec::Cqe ResponseFor(Capsule* cmd, uint16_t status = 0) {
  spec::Cqe cqe{};
  cqe.cid = CapsuleSqe(cmd).cid;
  spec::SetStatus(cqe, status);
  return cqe;
}

void Respond(Capsule* cmd, uint16_t status = 0) {
  Capsule* r = AllocateResponse(CapsuleQpair(cmd), ResponseFor(cmd, status));
  ASSERT_NE(r, nullptr);
  ASSERT_TRUE(Transmit(r).ok());
  FreeCapsule(r);
}

// (header digest, data digest)
class TcpLoopback : public ::testing::TestWithParam<std::tuple<bool, bool>> {
 protected:
  void SetUp() override {
    opts.host.header_digest = std::get<0>(GetParam());
    opts.host.data_digest = std::get<1>(GetParam());
  }
  void Open() {
    ASSERT_TRUE(pair.Open(opts).ok());
    EXPECT_EQ(pair.host_params.header_digest, std::get<0>(GetParam()));
    EXPECT_EQ(pair.host_params.data_digest, std::get<1>(GetParam()));
    EXPECT_EQ(pair.ctrl_params.header_digest, std::get<0>(GetParam()));
    EXPECT_EQ(pair.ctrl_params.data_digest, std::get<1>(GetParam()));
  }
  Capsule* WaitCommand() {
    EXPECT_TRUE(pair.Run([&] { return !pair.ctrl.received.empty() || pair.ctrl.failed; }));
    return pair.ctrl.Pop();
  }
  Capsule* WaitResponse() {
    EXPECT_TRUE(pair.Run([&] { return !pair.host.received.empty() || pair.host.failed; }));
    return pair.host.Pop();
  }

  PairOptions opts;
  LoopbackPair pair;
};

TEST_P(TcpLoopback, CommandWithoutData) {
  Open();
  Capsule* cmd = AllocateCommand(pair.host.qp, MakeSqe(spec::kAdminKeepAlive, 7));
  ASSERT_NE(cmd, nullptr);
  ASSERT_TRUE(Transmit(cmd).ok());

  Capsule* got = WaitCommand();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(CapsuleSqe(got).opc, spec::kAdminKeepAlive);
  EXPECT_EQ(CapsuleSqe(got).cid, 7);
  EXPECT_EQ(ValidateCommandCapsule(got), spec::kScSuccess);
  EXPECT_EQ(CapsuleDataLength(got), 0u);
  spec::Cqe cqe = ResponseFor(got, spec::MakeStatus(spec::kSctGeneric, spec::kScInvalidField));
  cqe.sqhd = 5;
  cqe.cdw0 = 0xabcd;
  Capsule* rsp = AllocateResponse(pair.ctrl.qp, cqe);
  ASSERT_TRUE(Transmit(rsp).ok());
  FreeCapsule(rsp);
  FreeCapsule(got);

  Capsule* r = WaitResponse();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(CapsuleCqe(r).cid, 7);
  EXPECT_EQ(CapsuleCqe(r).cdw0, 0xabcdu);
  EXPECT_EQ(CapsuleCqe(r).sqhd, 5);
  EXPECT_TRUE(CapsuleSqhdValid(r));
  EXPECT_EQ(spec::StatusSc(spec::StatusOf(CapsuleCqe(r))), spec::kScInvalidField);
  FreeCapsule(r);
  FreeCapsule(cmd);
}

TEST_P(TcpLoopback, InCapsuleWriteFetchedInTwoPieces) {
  Open();
  std::vector<uint8_t> data(4096);
  Fill(data, 1);
  Capsule* cmd = AllocateCommand(pair.host.qp, MakeSqe(spec::kNvmWrite, 1));
  DataResult sent;
  AppendData(cmd, MemDesc::Buffer(data.data(), data.size()), data.size(), true, Record(&sent));
  ASSERT_TRUE(Transmit(cmd).ok());

  Capsule* got = WaitCommand();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(CapsuleSqe(got).sgl1.type, spec::kSglInCapsule);
  EXPECT_EQ(ValidateCommandCapsule(got), spec::kScSuccess);
  ASSERT_EQ(CapsuleDataLength(got), 4096u);
  std::vector<uint8_t> in(4096);
  DataResult a, b;
  ReceiveControllerData(got, 0, MemDesc::Buffer(in.data(), 1000), 1000, Record(&a));
  EXPECT_TRUE(a.done) << "in-capsule data completes before the call returns";
  ReceiveControllerData(got, 1000, MemDesc::Buffer(in.data() + 1000, 3096), 3096, Record(&b));
  EXPECT_TRUE(b.done);
  EXPECT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_EQ(a.bytes + b.bytes, 4096u);
  EXPECT_EQ(in, data);
  Respond(got);
  FreeCapsule(got);

  Capsule* r = WaitResponse();
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(sent.done);
  EXPECT_EQ(sent.bytes, 4096u);
  EXPECT_EQ(sent.calls, 1);
  FreeCapsule(r);
  FreeCapsule(cmd);
}

TEST_P(TcpLoopback, WriteFetchedByR2TInSeveralCallsSplitAtMaxH2CData) {
  opts.ctrl.maxh2cdata = 4096;  // each 16 KiB R2T is answered with four H2CData PDUs
  opts.host.maxr2t = 2;
  Open();
  EXPECT_EQ(pair.host_params.maxh2cdata, 4096u);
  EXPECT_EQ(pair.ctrl_params.maxr2t, 2u);
  std::vector<uint8_t> data(64 * 1024);
  Fill(data, 2);
  Capsule* cmd = AllocateCommand(pair.host.qp, MakeSqe(spec::kNvmWrite, 2));
  DataResult sent;
  AppendData(cmd, MemDesc::Buffer(data.data(), data.size()), data.size(), true, Record(&sent));
  ASSERT_TRUE(Transmit(cmd).ok());

  Capsule* got = WaitCommand();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(CapsuleSqe(got).sgl1.type, spec::kSglTransport);
  EXPECT_EQ(ValidateCommandCapsule(got), spec::kScSuccess);
  ASSERT_EQ(CapsuleDataLength(got), data.size());
  // Four pieces into a scatter-gather list of uneven segments, more than MAXR2T at once.
  std::vector<uint8_t> in(data.size());
  DataResult piece[4];
  iovec iov[4][2];
  for (int i = 0; i < 4; i++) {
    uint8_t* base = in.data() + i * 16384;
    iov[i][0] = {base, 5000};
    iov[i][1] = {base + 5000, 16384 - 5000};
    ReceiveControllerData(got, i * 16384, MemDesc::Vector(iov[i], 2), 16384, Record(&piece[i]));
  }
  ASSERT_TRUE(pair.Run([&] { return piece[3].done || pair.ctrl.failed; }));
  for (auto& p : piece) {
    EXPECT_TRUE(p.done);
    EXPECT_TRUE(p.status.ok()) << p.status.ToString();
    EXPECT_EQ(p.bytes, 16384u);
  }
  EXPECT_EQ(in, data);
  Respond(got);
  FreeCapsule(got);
  Capsule* r = WaitResponse();
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(sent.done);
  EXPECT_EQ(sent.bytes, data.size());
  FreeCapsule(r);
  FreeCapsule(cmd);
}

TEST_P(TcpLoopback, ReadSentInSeveralPiecesEndsWithMoreThenSuccess) {
  Open();
  std::vector<uint8_t> data(300 * 1024);  // the last piece is split into C2HData PDUs
  Fill(data, 3);
  std::vector<uint8_t> out(data.size());
  Capsule* cmd = AllocateCommand(pair.host.qp, MakeSqe(spec::kNvmRead, 3));
  DataResult recv;
  AppendData(cmd, MemDesc::Buffer(out.data(), out.size()), out.size(), false, Record(&recv));
  ASSERT_TRUE(Transmit(cmd).ok());

  Capsule* got = WaitCommand();
  ASSERT_NE(got, nullptr);
  ASSERT_EQ(CapsuleDataLength(got), data.size());
  const size_t cut[] = {0, 4096, 65536, 100000, data.size()};
  DataResult sent[4];
  for (int i = 0; i < 4; i++) {
    uint16_t st = SendControllerData(
        got, static_cast<uint32_t>(cut[i]), MemDesc::Buffer(data.data() + cut[i], cut[i + 1] - cut[i]),
        cut[i + 1] - cut[i], Record(&sent[i]));
    EXPECT_EQ(st, i < 3 ? kSendMore : spec::kStatusSuccess) << "piece " << i;
  }
  Respond(got);
  FreeCapsule(got);
  Capsule* r = WaitResponse();
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(recv.done) << "the read's data completes before its response";
  EXPECT_TRUE(recv.status.ok());
  EXPECT_EQ(recv.bytes, data.size());
  EXPECT_EQ(out, data);
  for (int i = 0; i < 4; i++) {
    EXPECT_TRUE(sent[i].done);
    EXPECT_EQ(sent[i].bytes, cut[i + 1] - cut[i]);
  }
  EXPECT_TRUE(CapsuleSqhdValid(r));
  FreeCapsule(r);
  FreeCapsule(cmd);
}

TEST_P(TcpLoopback, SuccessFlagStandsForTheResponse) {
  opts.ctrl.c2h_success = true;
  Open();
  std::vector<uint8_t> data(8192);
  Fill(data, 4);
  std::vector<uint8_t> out(data.size());
  Capsule* cmd = AllocateCommand(pair.host.qp, MakeSqe(spec::kNvmRead, 4));
  DataResult recv;
  AppendData(cmd, MemDesc::Buffer(out.data(), out.size()), out.size(), false, Record(&recv));
  ASSERT_TRUE(Transmit(cmd).ok());
  Capsule* got = WaitCommand();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(SendControllerData(got, 0, MemDesc::Buffer(data.data(), 4096), 4096, nullptr),
            kSendMore);
  EXPECT_EQ(SendControllerData(got, 4096, MemDesc::Buffer(data.data() + 4096, 4096), 4096, nullptr),
            kSendSuccessSent);
  FreeCapsule(got);  // no response capsule follows
  Capsule* r = WaitResponse();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(CapsuleCqe(r).cid, 4);
  EXPECT_EQ(spec::StatusOf(CapsuleCqe(r)), spec::kStatusSuccess);
  EXPECT_FALSE(CapsuleSqhdValid(r));
  EXPECT_TRUE(recv.done);
  EXPECT_EQ(out, data);
  FreeCapsule(r);
  FreeCapsule(cmd);
  // The CID is free again: the same CID goes round once more.
  Capsule* again = AllocateCommand(pair.host.qp, MakeSqe(spec::kAdminKeepAlive, 4));
  ASSERT_TRUE(Transmit(again).ok());
  Capsule* got2 = WaitCommand();
  ASSERT_NE(got2, nullptr);
  Respond(got2);
  FreeCapsule(got2);
  Capsule* r2 = WaitResponse();
  ASSERT_NE(r2, nullptr);
  EXPECT_TRUE(CapsuleSqhdValid(r2));
  FreeCapsule(r2);
  FreeCapsule(again);
}

TEST_P(TcpLoopback, ManyCommandsInFlightAnsweredOutOfOrder) {
  opts.qsize = 64;
  opts.ctrl.maxh2cdata = 8192;
  Open();
  constexpr int kN = 64;
  std::vector<std::vector<uint8_t>> bufs(kN);
  std::vector<std::vector<uint8_t>> store(kN);  // the "namespace" each command touches
  DataResult done[kN];
  Capsule* cmds[kN];
  for (int i = 0; i < kN; i++) {
    bool write = i % 2 == 0;
    size_t len = (i % 4 == 0) ? 2048 : 32768;  // in-capsule writes and R2T writes
    bufs[i].resize(len);
    store[i].resize(len);
    Fill(write ? bufs[i] : store[i], 100 + i);
    cmds[i] = AllocateCommand(pair.host.qp, MakeSqe(write ? spec::kNvmWrite : spec::kNvmRead,
                                                    static_cast<uint16_t>(1000 + i)));
    ASSERT_NE(cmds[i], nullptr);
    AppendData(cmds[i], MemDesc::Buffer(bufs[i].data(), len), len, write, Record(&done[i]));
    ASSERT_TRUE(Transmit(cmds[i]).ok());
  }
  ASSERT_TRUE(pair.Run([&] { return pair.ctrl.received.size() == kN || pair.ctrl.failed; }));
  std::vector<Capsule*> got = pair.ctrl.received;
  pair.ctrl.received.clear();
  DataResult fetched[kN];
  for (int k = kN - 1; k >= 0; k--) {  // serve in reverse order of arrival
    Capsule* c = got[k];
    int i = CapsuleSqe(c).cid - 1000;
    if (CapsuleSqe(c).opc == spec::kNvmWrite) {
      ReceiveControllerData(c, 0, MemDesc::Buffer(store[i].data(), store[i].size()),
                            store[i].size(), Record(&fetched[i]));
    } else {
      EXPECT_EQ(SendControllerData(c, 0, MemDesc::Buffer(store[i].data(), store[i].size()),
                                   store[i].size(), nullptr),
                spec::kStatusSuccess);
      fetched[i].done = true;
    }
  }
  ASSERT_TRUE(pair.Run([&] {
    for (auto& f : fetched) if (!f.done) return false;
    return true;
  }));
  for (Capsule* c : got) {
    Respond(c);
    FreeCapsule(c);
  }
  ASSERT_TRUE(pair.Run([&] { return pair.host.received.size() == kN || pair.host.failed; }));
  for (int i = 0; i < kN; i++) {
    EXPECT_TRUE(done[i].done && done[i].status.ok()) << i;
    EXPECT_EQ(bufs[i], store[i]) << "command " << i;
  }
  for (Capsule* r : pair.host.received) FreeCapsule(r);
  pair.host.received.clear();
  for (Capsule* c : cmds) FreeCapsule(c);
  EXPECT_FALSE(pair.host.failed);
  EXPECT_FALSE(pair.ctrl.failed);
}

TEST_P(TcpLoopback, CleanCloseReportsNoError) {
  Open();
  pair.host.Close();
  ASSERT_TRUE(pair.Run([&] { return pair.ctrl.failed; }));
  EXPECT_TRUE(pair.ctrl.error.ok()) << pair.ctrl.error.ToString();
}

INSTANTIATE_TEST_SUITE_P(Digests, TcpLoopback,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& p) {
                           return std::string(std::get<0>(p.param) ? "Hdgst" : "NoHdgst") +
                                  (std::get<1>(p.param) ? "Ddgst" : "NoDdgst");
                         });

}  // namespace
}  // namespace nvmf::test
