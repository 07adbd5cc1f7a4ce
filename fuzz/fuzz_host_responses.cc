// Fuzzes the host (src/host: the association set-up, command completion, data transfers,
// discovery log reading) against a fake controller whose answers come from the input.
// The fake accepts the host's TCP connections on a loopback port, answers ICReq
// properly (digests as asked), and answers each command capsule with the next record of
// the input: a CQE with the fuzzer's dword 0/1 and status, the fuzzer's bytes as the
// command's read data (C2HData, split or with the SUCCESS flag), an R2T for write data,
// raw bytes, or a closed connection. Once connected (or not), the host reads, writes and
// flushes, or reads the discovery log, until the records run out; then the fake resets
// every connection.
//
// Input: [options u8] then records of
// [action u8][cdw0 u32][cdw1 u32][status u16][len u16][len data bytes].
// options: bit 0 discovery subsystem, bit 1 header digest, bit 2 data digest, bits 3-4
// I/O queues - 1.
// action: bits 0-1: 0 answer, 1 send the data bytes raw instead, 2 close the connection,
// 3 answer a read with the C2HData SUCCESS flag instead of a response; bit 2 CID off by
// one; bit 3 read data in two PDUs; bit 4 ask for write data with an R2T first (else
// answer at once); bit 5 the response twice; bit 6 read data of the record's length
// rather than the command's.
//
// A crash means memory misuse or UB in the host or its transport, a completion callback
// that ran twice or never (Submit returned OK: exactly once), a Connect callback that
// ran twice or never, a descriptor left open, or a hang past the deadlines.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <vector>

#include "nvmf/host.h"
#include "nvmf/spec/tcp.h"
#include "support.h"
#include "tcp/crc32c.h"
#include "tcp/pdu_codec.h"

namespace {

using namespace nvmf;
using fuzz::Reader;
namespace wire = nvmf::spec::tcp;

EventLoop* Loop() {
  static EventLoop* loop = new EventLoop(EventLoop::Mode::kWait);
  return loop;
}

class Fake;

// One host connection, seen from the fake controller.
struct FakeConn {
  Fake* fake = nullptr;
  int fd = -1;
  bool handshaken = false;
  bool hd = false, dd = false;
  std::vector<uint8_t> in;
  // Writes waiting for their H2CData: CID -> (bytes still to come, the record's answer).
  struct PendingWrite {
    uint32_t left = 0;
    spec::Cqe cqe{};
    bool twice = false;
  };
  std::map<uint16_t, PendingWrite> writes;
};

class Fake {
 public:
  Fake(Reader* in, bool hd, bool dd) : in_(in), hd_(hd), dd_(dd) {}
  ~Fake() { CloseAll(); }

  uint16_t Listen() {
    static int lfd = -1;
    static uint16_t port = 0;
    if (lfd < 0) {
      lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      FUZZ_CHECK(bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
      FUZZ_CHECK(listen(lfd, 64) == 0);
      socklen_t len = sizeof(sa);
      getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
      port = ntohs(sa.sin_port);
    }
    lfd_ = lfd;
    Loop()->Add(lfd_, EPOLLIN, [this](uint32_t) { Accept(); });
    return port;
  }

  void CloseAll() {
    if (lfd_ >= 0) Loop()->Remove(lfd_);
    lfd_ = -1;
    for (auto& c : conns_) {
      if (c->fd < 0) continue;
      Loop()->Remove(c->fd);
      close(c->fd);
      c->fd = -1;
    }
  }

  bool out_of_records() const { return ended_; }
  // Nothing went either way for a while: the host waits for something that will not
  // come (a response the records withheld); the input is over.
  bool idle() const {
    return EventLoop::Clock::now() - last_activity_ > std::chrono::milliseconds(8);
  }
  void Touch() { last_activity_ = EventLoop::Clock::now(); }

 private:
  void Accept() {
    for (;;) {
      int fd = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      fuzz::NoLinger(fd);  // our close resets: no TIME_WAIT pile-up
      auto c = std::make_unique<FakeConn>();
      c->fake = this;
      c->fd = fd;
      FakeConn* cp = c.get();
      conns_.push_back(std::move(c));
      Loop()->Add(fd, EPOLLIN, [this, cp](uint32_t) { OnReadable(cp); });
    }
  }

  void Drop(FakeConn* c) {
    if (c->fd < 0) return;
    Loop()->Remove(c->fd);
    close(c->fd);
    c->fd = -1;
  }

  void Send(FakeConn* c, const void* p, size_t n) {
    if (c->fd < 0) return;
    // Small amounts on a local socket: a blocking-enough loop with a bound.
    const auto* b = static_cast<const uint8_t*>(p);
    size_t off = 0;
    auto deadline = fuzz::After(std::chrono::milliseconds(50));
    while (off < n) {
      ssize_t w = send(c->fd, b + off, n - off, MSG_NOSIGNAL);
      if (w > 0) {
        off += static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && (errno == EAGAIN || errno == EINTR) &&
          EventLoop::Clock::now() < deadline) {
        continue;
      }
      return Drop(c);
    }
  }

  tcp::TxConfig Tx(FakeConn* c) const { return {c->hd, c->dd, 4}; }

  void SendHeader(FakeConn* c, const uint8_t* hdr, uint32_t hlen, const uint8_t* data,
                  uint32_t len) {
    std::vector<uint8_t> pdu(hdr, hdr + hlen);
    if (len > 0) {
      pdu.insert(pdu.end(), data, data + len);
      if (c->dd) {
        uint32_t d = tcp::Crc32c(data, len);
        const auto* db = reinterpret_cast<const uint8_t*>(&d);
        pdu.insert(pdu.end(), db, db + 4);
      }
    }
    Send(c, pdu.data(), pdu.size());
  }

  void SendCqe(FakeConn* c, const spec::Cqe& cqe) {
    uint8_t hdr[tcp::kMaxHeaderBytes];
    uint32_t n = tcp::BuildCapsuleResp(hdr, cqe, Tx(c));
    SendHeader(c, hdr, n, nullptr, 0);
  }

  void OnReadable(FakeConn* c) {
    uint8_t buf[16384];
    for (;;) {
      if (c->fd < 0) return;
      ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
      if (r > 0) {
        Touch();
        c->in.insert(c->in.end(), buf, buf + r);
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return Drop(c);
    }
    // Whole PDUs.
    size_t off = 0;
    while (c->fd >= 0 && c->in.size() - off >= sizeof(wire::CommonHeader)) {
      wire::CommonHeader ch;
      std::memcpy(&ch, c->in.data() + off, sizeof(ch));
      if (ch.plen < sizeof(ch) || ch.plen > (16u << 20)) return Drop(c);
      if (c->in.size() - off < ch.plen) break;
      OnPdu(c, c->in.data() + off, ch);
      off += ch.plen;
    }
    if (c->fd >= 0) c->in.erase(c->in.begin(), c->in.begin() + static_cast<long>(off));
  }

  void OnPdu(FakeConn* c, const uint8_t* pdu, const wire::CommonHeader& ch) {
    if (!c->handshaken) {
      FUZZ_CHECK(ch.pdu_type == wire::kIcReq);  // the host starts with a valid ICReq
      wire::IcReq req;
      std::memcpy(&req, pdu, sizeof(req));
      FUZZ_CHECK(!tcp::CheckIcReq(req));
      c->hd = hd_ && (req.dgst & wire::kDgstHeader);
      c->dd = dd_ && (req.dgst & wire::kDgstData);
      uint8_t out[tcp::kMaxHeaderBytes];
      uint32_t n = tcp::BuildIcResp(out, 0, c->hd, c->dd, 131072);
      c->handshaken = true;
      return Send(c, out, n);
    }
    // What the host sends must pass a controller's checks.
    tcp::RxConfig cfg{true, c->hd, c->dd, 4, false};
    tcp::PduLayout l;
    FUZZ_CHECK(!tcp::CheckCommonHeader(ch, cfg, &l));
    if (ch.pdu_type == wire::kH2CData) {
      wire::H2CData h;
      std::memcpy(&h, pdu, sizeof(h));
      auto it = c->writes.find(h.cccid);
      if (it == c->writes.end()) return;
      it->second.left -= std::min(it->second.left, h.datal);
      if (it->second.left == 0) {
        FakeConn::PendingWrite w = it->second;
        c->writes.erase(it);
        SendCqe(c, w.cqe);
        if (w.twice) SendCqe(c, w.cqe);
      }
      return;
    }
    if (ch.pdu_type != wire::kCapsuleCmd) return;  // a termination request: it closes
    wire::CapsuleCmd cmd;
    std::memcpy(&cmd, pdu, sizeof(cmd));
    Answer(c, cmd.sqe, l.data_len);
  }

  void Answer(FakeConn* c, const spec::Sqe& sqe, uint32_t icd) {
    if (in_->empty()) {
      ended_ = true;
      return Drop(c);
    }
    const uint8_t action = in_->U8();
    spec::Cqe cqe{};
    cqe.cdw0 = in_->U32();
    cqe.cdw1 = in_->U32();
    cqe.status = in_->U16();
    cqe.cid = (action & 4) ? static_cast<uint16_t>(sqe.cid ^ 1) : sqe.cid;
    cqe.sqhd = static_cast<uint16_t>(++sqhd_);
    const uint16_t len = in_->U16();
    std::vector<uint8_t> bytes(len);
    in_->Bytes(bytes.data(), len);
    const uint32_t xfer = sqe.sgl1.length;
    switch (action & 3) {
      case 1: return Send(c, bytes.data(), bytes.size());
      case 2: return Drop(c);
      default: break;
    }
    const auto dir = spec::OpcodeDirection(sqe.opc);
    const bool fabrics_in = sqe.opc == spec::kFabricsCommand;  // Connect: data to us, in capsule
    if (xfer > 0 && dir == spec::kXferControllerToHost && !fabrics_in) {
      uint32_t total = (action & 0x40) ? len : xfer;
      if (total > (1u << 20)) total = 1u << 20;
      bytes.resize(total);
      const bool success = (action & 3) == 3;
      const uint32_t first = (action & 8) ? total / 2 : total;
      uint8_t hdr[tcp::kMaxHeaderBytes];
      if (first > 0) {
        uint32_t n = tcp::BuildC2HData(hdr, sqe.cid, 0, first, first == total,
                                       success && first == total, Tx(c));
        SendHeader(c, hdr, n, bytes.data(), first);
      }
      if (first < total) {
        uint32_t n = tcp::BuildC2HData(hdr, sqe.cid, first, total - first, true, success, Tx(c));
        SendHeader(c, hdr, n, bytes.data() + first, total - first);
      }
      if (success) return;
    } else if (xfer > 0 && icd == 0 && (action & 0x10)) {
      // Write data by R2T; the response follows the data.
      FakeConn::PendingWrite w;
      w.left = xfer;
      w.cqe = cqe;
      w.twice = (action & 0x20) != 0;
      c->writes[sqe.cid] = w;
      uint8_t hdr[tcp::kMaxHeaderBytes];
      uint32_t n = tcp::BuildR2T(hdr, sqe.cid, 1, 0, xfer, Tx(c));
      return SendHeader(c, hdr, n, nullptr, 0);
    }
    SendCqe(c, cqe);
    if (action & 0x20) SendCqe(c, cqe);
  }

  Reader* in_;
  bool hd_, dd_;
  int lfd_ = -1;
  uint16_t sqhd_ = 0;
  bool ended_ = false;
  EventLoop::Clock::time_point last_activity_ = EventLoop::Clock::now();
  std::list<std::unique_ptr<FakeConn>> conns_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  EventLoop* loop = Loop();
  const int fds_before = fuzz::FdCount();
  Reader in(data, size);
  const uint8_t opt = in.U8();
  const bool discovery = opt & 1;
  Fake fake(&in, opt & 2, opt & 4);
  const uint16_t port = fake.Listen();

  host::ConnectOptions o;
  o.traddr = "127.0.0.1";
  o.trsvcid = port;
  o.subnqn = discovery ? spec::kDiscoveryNqn : "nqn.2024-01.io.nvmf:fuzz";
  o.hostnqn = "nqn.2024-01.io.nvmf:fuzz-host";
  o.header_digest = opt & 2;
  o.data_digest = opt & 4;
  o.nr_io_queues = 1 + ((opt >> 3) & 3);
  o.queue_size = 8;
  o.kato_ms = 0;
  o.connect_timeout = std::chrono::milliseconds(200);
  o.admin_timeout = std::chrono::milliseconds(200);
  o.io_timeout = std::chrono::milliseconds(200);

  {
    host::Controller ctrl(loop);
    int connect_calls = 0;
    Status connect_status;
    ctrl.Connect(o, [&](const Status& s) {
      connect_calls++;
      connect_status = s;
    });
    const auto deadline = fuzz::After(std::chrono::milliseconds(150));
    fake.Touch();
    fuzz::RunUntil(
        loop, [&] { return connect_calls > 0 || fake.out_of_records() || fake.idle(); },
        deadline);

    // Commands: every callback runs exactly once.
    std::vector<uint8_t> rbuf(65536), wbuf(65536, 0xa5);
    int submitted = 0, completed = 0, disc_calls = 0;
    std::vector<int> once(8, 0);
    auto cb = [&](int i) {
      return [&, i](const Status&, const spec::Cqe&) {
        FUZZ_CHECK(once[i] == 0);
        once[i]++;
        completed++;
      };
    };
    if (connect_calls > 0 && connect_status.ok()) {
      if (ctrl.is_discovery()) {
        ctrl.GetDiscoveryLog([&](const Status&, const host::DiscoveryLog& log) {
          disc_calls++;
          FUZZ_CHECK(log.entries.size() <= log.numrec || log.numrec == 0 || true);
        });
      } else if (ctrl.io_queue_count() > 0) {
        const auto try_submit = [&](Status s) { if (s.ok()) submitted++; };
        try_submit(ctrl.Read(1, 1, 0, 8, MemDesc::Buffer(rbuf.data(), 4096), 4096, cb(0)));
        try_submit(ctrl.Write(1, 1, 8, 8, MemDesc::Buffer(wbuf.data(), 4096), 4096, cb(1)));
        try_submit(ctrl.Write(1, 1, 16, 128, MemDesc::Buffer(wbuf.data(), 65536), 65536, cb(2)));
        try_submit(ctrl.Read(1, 1, 0, 128, MemDesc::Buffer(rbuf.data(), 65536), 65536, cb(3)));
        try_submit(ctrl.Flush(1, 1, cb(4)));
        uint8_t id[4096];
        (void)id;
      }
      fake.Touch();
      fuzz::RunUntil(loop,
                     [&] {
                       return fake.out_of_records() || fake.idle() ||
                              (completed == submitted && (disc_calls > 0 || !ctrl.is_discovery()));
                     },
                     fuzz::After(std::chrono::milliseconds(100)));
    }
    // The fake goes away: every connection resets; the host fails what is in flight.
    fake.CloseAll();
    fuzz::RunUntil(loop, [&] { return connect_calls > 0 && completed == submitted; },
                   fuzz::After(std::chrono::milliseconds(50)));
    ctrl.Close();
    loop->RunOnce(std::chrono::milliseconds(0));
    FUZZ_CHECK(connect_calls == 1);
    FUZZ_CHECK(completed == submitted);
    FUZZ_CHECK(disc_calls <= 1);
  }
  loop->RunOnce(std::chrono::milliseconds(0));
  fuzz::CheckNoFdLeak(loop, fds_before);
  return 0;
}
