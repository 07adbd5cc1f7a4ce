// Fuzzes the NVMe/TCP queue pair's whole receive state machine (src/tcp/tcp_rx.cc, with
// tcp_qpair.cc and tcp_tx.cc behind it): a TcpQpair, controller or host role, on one end
// of a socket pair; the fuzzer's bytes are the peer's PDU stream, written in chunks whose
// sizes the input chooses, with header and data digests negotiated on or off.
//
// The controller role answers every command the way the target does: data to the
// controller through ReceiveControllerData (in pieces, so that R2Ts and H2CData are
// exercised), data to the host through SendControllerData, then a response. The host
// role sends a few commands first (reads, writes in the capsule and by R2T, no data) so
// that responses, C2HData and R2Ts from the stream have something to match.
//
// Input: [flags u8][params u8][split seed u16][extra u8][host commands: n u8, then n x
// (opc u8, len u16)] [the peer's byte stream...]. With flags bit 5 the harness recomputes
// the stream's digests (see FixDigests) so that the fuzzer gets past them. extra: bit 0
// the controller aborts the data of odd CIDs (AbortCapsuleData) after asking for it;
// bit 1 the host aborts its commands' data halfway through the stream; bit 2 the
// controller frees a command capsule while its data is still coming.
//
// A crash means memory misuse, a callback that ran twice or never (the transport's
// contract: exactly once), a callback after FreeQpair, a PDU sent that the peer must
// refuse, a descriptor left open, or a harness wait that outlived its deadline (a hang).
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <vector>

#include "nvmf/spec/nvme.h"
#include "nvmf/tcp.h"
#include "nvmf/transport.h"
#include "support.h"

namespace {

using namespace nvmf;
using fuzz::Reader;

struct Harness;

// One command the controller role is serving, or one the host role sent.
struct Cmd {
  Harness* h = nullptr;
  Capsule* capsule = nullptr;
  uint16_t cid = 0;
  std::vector<uint8_t> buf;
  int pending = 0;       // data callbacks still to run
  int started = 0;       // data operations started
  bool failed = false;
  bool responded = false;
};

struct Harness {
  EventLoop* loop = nullptr;
  Qpair* qp = nullptr;
  bool controller = false;
  bool freed = false;
  int errors = 0;
  int pieces = 1;        // ReceiveControllerData/SendControllerData calls per command
  uint8_t extra = 0;
  std::list<Cmd> cmds;
  std::vector<Capsule*> responses;  // host: received responses, freed at the end

  void Respond(Cmd* c, uint16_t status) {
    if (c->responded) return;
    c->responded = true;
    spec::Cqe cqe{};
    cqe.cid = c->cid;
    spec::SetStatus(cqe, status);
    if (Capsule* r = AllocateResponse(qp, cqe)) {
      (void)Transmit(r);
      FreeCapsule(r);
    }
  }

  DataCallback OnData(Cmd* c, bool respond_when_done) {
    c->pending++;
    c->started++;
    return [c, respond_when_done](size_t, const Status& s) {
      FUZZ_CHECK(c->pending > 0);  // exactly once
      c->pending--;
      if (!s.ok()) c->failed = true;
      Harness* h = c->h;
      if (c->pending == 0 && respond_when_done && !h->freed) {
        h->Respond(c, c->failed ? spec::MakeStatus(spec::kSctGeneric,
                                                   spec::kScTransientTransportError)
                                : spec::kStatusSuccess);
      }
    };
  }

  // Controller role: serve one command.
  void Serve(Capsule* cap) {
    FUZZ_CHECK(!freed);
    cmds.emplace_back();
    Cmd* c = &cmds.back();
    c->h = this;
    c->capsule = cap;
    c->cid = CapsuleSqe(cap).cid;
    const uint8_t v = ValidateCommandCapsule(cap);
    if (v != spec::kScSuccess) return Respond(c, spec::MakeStatus(spec::kSctGeneric, v, true));
    const size_t len = CapsuleDataLength(cap);
    if (len == 0) return Respond(c, spec::kStatusSuccess);
    if (len > (1u << 20)) {
      return Respond(c, spec::MakeStatus(spec::kSctGeneric, spec::kScDataSglLengthInvalid, true));
    }
    c->buf.assign(len, 0x5a);
    const auto dir = spec::OpcodeDirection(CapsuleSqe(cap).opc);
    const size_t piece = (len + pieces - 1) / pieces;
    if (dir == spec::kXferControllerToHost) {
      for (size_t off = 0; off < len; off += piece) {
        const size_t n = std::min(piece, len - off);
        DataCallback cb = OnData(c, false);
        uint16_t r = SendControllerData(cap, static_cast<uint32_t>(off),
                                        MemDesc::Buffer(c->buf.data() + off, n), n, cb);
        if (r == kSendMore) continue;
        if (r == kSendSuccessSent) {
          c->responded = true;
          return;
        }
        if (r != spec::kStatusSuccess) {
          c->pending--;  // not queued: its callback does not run
          c->started--;
          return Respond(c, r);
        }
        return Respond(c, spec::kStatusSuccess);
      }
      return;
    }
    // Host to controller (or a direction the transport must refuse).
    for (size_t off = 0; off < len && !freed; off += piece) {
      const size_t n = std::min(piece, len - off);
      ReceiveControllerData(cap, static_cast<uint32_t>(off),
                            MemDesc::Buffer(c->buf.data() + off, n), n, OnData(c, true));
    }
    if ((extra & 1) && (c->cid & 1) && !freed) AbortCapsuleData(cap);
    if ((extra & 4) && (c->cid & 2) && !freed) {
      FreeCapsule(cap);  // its transfers end with an error; the response still goes out
      c->capsule = nullptr;
    }
  }

  void OnReceive(Capsule* cap) {
    FUZZ_CHECK(!freed);
    if (controller) return Serve(cap);
    responses.push_back(cap);
  }
};

constexpr uint32_t kPdas[4] = {4, 8, 16, 128};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static EventLoop* loop = new EventLoop(EventLoop::Mode::kWait);
  const int fds_before = fuzz::FdCount();
  Reader in(data, size);
  const uint8_t flags = in.U8();
  const uint8_t params = in.U8();
  uint32_t split = in.U16() | 1u;
  const uint8_t extra = in.U8();

  Harness h;
  h.loop = loop;
  h.controller = (flags & 1) == 0;
  h.pieces = 1 + (params >> 6);  // 1..4
  h.extra = extra;

  int fds[2];
  FUZZ_CHECK(fuzz::SocketPair(fds));
  const int peer = fds[1];
  QpairParams qp;
  qp.admin = (flags & 0x40) != 0;
  qp.qsize = static_cast<uint16_t>(2 + (params & 0x0f));
  TcpQpairParams tp;
  tp.fd = fds[0];
  tp.header_digest = (flags & 2) != 0;
  tp.data_digest = (flags & 4) != 0;
  tp.rx_pda = kPdas[(flags >> 3) & 3];
  tp.tx_pda = kPdas[(params >> 4) & 3];
  tp.maxr2t = 1 + ((params >> 4) & 3);
  tp.maxh2cdata = 4096u << ((params >> 2) & 3);
  tp.max_icd = (flags & 0x80) ? 8192 : 4096 * ((params >> 1) & 1);
  tp.c2h_success = (params & 1) != 0;
  qp.max_icd = tp.max_icd;
  qp.connection = tcp::WrapConnection(tp);
  const bool fix = (flags & 0x20) != 0;

  Status s = AllocateQpair(
      loop, TransportType::kTcp, h.controller ? Role::kController : Role::kHost, qp,
      [&h](const Status&) {
        FUZZ_CHECK(!h.freed);
        h.errors++;
        FUZZ_CHECK(h.errors == 1);
      },
      [&h](Capsule* c) { h.OnReceive(c); }, &h.qp);
  FUZZ_CHECK(s.ok());

  // What our queue pair sends must be valid for its peer.
  fuzz::TxStreamChecker check(!h.controller, tp.header_digest, tp.data_digest,
                              tp.tx_pda);

  // Host role: commands in flight for the stream to answer.
  const int ncmds = in.U8() % 8;
  for (int i = 0; i < ncmds; i++) {
    const uint8_t opc = in.U8();
    const uint32_t len = in.U16();
    if (h.controller) continue;
    spec::Sqe sqe{};
    sqe.opc = opc;
    sqe.cid = static_cast<uint16_t>(i);
    Capsule* c = AllocateCommand(h.qp, sqe);
    if (c == nullptr) break;
    h.cmds.emplace_back();
    Cmd* cmd = &h.cmds.back();
    cmd->h = &h;
    cmd->capsule = c;
    cmd->cid = sqe.cid;
    if (len > 0) {
      cmd->buf.assign(len, static_cast<uint8_t>(i));
      const bool send = spec::OpcodeDirection(opc) == spec::kXferHostToController;
      AppendData(c, MemDesc::Buffer(cmd->buf.data(), len), len, send, h.OnData(cmd, false));
    }
    if (!Transmit(c).ok() && len > 0) {
      // Not sent: the data callback will not run, per the API (Transmit failed).
      cmd->pending--;
      cmd->started--;
    }
  }

  size_t n = 0;
  const uint8_t* rest = in.rest(&n);
  std::vector<uint8_t> stream(rest, rest + n);
  if (fix) fuzz::FixDigests(stream.data(), stream.size());

  const auto deadline = fuzz::After(std::chrono::milliseconds(100));
  auto turn = [&] {
    loop->RunOnce(std::chrono::milliseconds(0));
    fuzz::DrainInto(peer, &check);
  };
  size_t off = 0;
  bool write_ok = true;
  bool aborted = false;
  while (off < stream.size() && h.errors == 0 && write_ok) {
    if ((extra & 2) && !aborted && off >= stream.size() / 2 && !h.controller) {
      aborted = true;
      for (Cmd& c : h.cmds) AbortCapsuleData(c.capsule);
    }
    split = split * 1103515245u + 12345u;
    const size_t max = size_t{1} << ((split >> 16) % 12);  // 1 .. 2048 bytes
    const size_t chunk = std::min(stream.size() - off, 1 + (split >> 4) % max);
    write_ok = fuzz::WriteAll(loop, peer, stream.data() + off, chunk, deadline);
    off += chunk;
    turn();
  }
  // Let the queue pair take in what is left on its socket.
  for (int i = 0; i < 1000 && h.errors == 0; i++) {
    int unread = 0;
    if (ioctl(fds[0], FIONREAD, &unread) != 0 || unread == 0) break;
    turn();
  }
  turn();
  if ((flags & 0x10) != 0 && h.errors == 0) {
    // The peer goes away: a clean close or one mid-PDU.
    shutdown(peer, SHUT_WR);
    FUZZ_CHECK(fuzz::RunUntil(loop, [&] { fuzz::DrainInto(peer, &check); return h.errors > 0; },
                              fuzz::After(std::chrono::milliseconds(2000))));
  }
  turn();
  FreeQpair(h.qp);
  h.freed = true;
  for (Capsule* r : h.responses) FreeCapsule(r);
  for (Cmd& c : h.cmds) {
    if (c.capsule != nullptr) FreeCapsule(c.capsule);
  }
  loop->RunOnce(std::chrono::milliseconds(0));
  for (Cmd& c : h.cmds) FUZZ_CHECK(c.pending == 0);  // every data callback ran
  fuzz::NoLinger(peer);
  close(peer);
  fuzz::CheckNoFdLeak(loop, fds_before);
  return 0;
}
