// TcpQpair receive path: bytes from the socket become PDUs. Headers are parsed out of a
// receive buffer; payloads go to the caller's memory, read straight into it when a large
// part of a payload is still to come.
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "tcp/crc32c.h"
#include "tcp/tcp_qpair.h"
#include "tcp/tls.h"

namespace nvmf::tcp {

namespace {
constexpr uint32_t kDirectReadMin = 8192;     // payload left worth a readv into place
constexpr int kFillBudget = 64;               // reads per readiness event
constexpr uint64_t kFlushAfterRx = 64 * 1024;  // bytes read that make queued PDUs go now
}  // namespace

void TcpQpair::OnEvents(uint32_t events) {
  Hold hold(this);
  if ((events & EPOLLOUT) != 0 && alive()) WriteSome();
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && alive()) OnReadable();
}

void TcpQpair::OnReadable() {
  // Level-triggered: what is left after the budget is read on the next turn, so that one
  // busy connection does not starve the others on this loop.
  for (int fills = 0; fills < kFillBudget && alive(); fills++) {
    if (!FillRx()) return;
    if (!ConsumeRx()) return;
    // A large transfer is coming in (the data of several writes): what its first PDUs
    // completed (responses, R2Ts) leaves now rather than after all of it. Otherwise the
    // commands of a queue move in lockstep (all data in, all responses out, all new
    // commands in) and the link idles between the phases.
    if (rx_since_flush_ >= kFlushAfterRx && tx_head_ != nullptr) {
      rx_since_flush_ = 0;
      if (!WriteSome()) return;
    }
    // A short read drained the socket: asking again would only return EAGAIN. Data that
    // arrives meanwhile wakes the (level-triggered) loop again.
    if (rx_drained_) return;
  }
  // The budget ran out: the socket's readiness brings us back, but records the TLS
  // session already holds would wait for more bytes from the peer.
  if (tls_ != nullptr && alive() && tls_->HasBuffered()) ResumeTlsRead();
}

// Reads what the socket has: into the payload's destination and then the buffer when a
// large payload is due, else into the buffer. False when nothing more can be read now
// (or the connection ended).
bool TcpQpair::FillRx() {
  rx_begin_ = rx_end_ = 0;  // ConsumeRx leaves the buffer empty
  if (rx_grow_) {  // the last read filled it: this peer sends enough to need more
    rx_grow_ = false;
    GrowRxBuffer();
  }
  if (tls_ != nullptr) return FillRxTls();
  for (;;) {
    ssize_t n;
    uint32_t direct = 0;
    if (rx_phase_ == RxPhase::kData && !rx_discard_ && rx_left_ >= kDirectReadMin) {
      struct iovec iov[17];
      int cnt = rx_dst_.Slice(rx_dst_off_, rx_left_, iov, 16);
      if (cnt < 0) {  // too fragmented for one call: fill the first 16 segments
        cnt = 0;
        rx_dst_.ForEach(rx_dst_off_, rx_left_, [&](uint8_t* p, size_t len) {
          if (cnt < 16) iov[cnt++] = {p, len};
        });
      }
      for (int i = 0; i < cnt; i++) direct += static_cast<uint32_t>(iov[i].iov_len);
      iov[cnt++] = {rx_buf_.get(), rx_cap_};
      n = readv(fd_, iov, cnt);
    } else {
      n = recv(fd_, rx_buf_.get(), rx_cap_, 0);
    }
    rx_drained_ = n >= 0 && static_cast<size_t>(n) < direct + rx_cap_;
    if (n > 0 && static_cast<size_t>(n) >= direct + rx_cap_) rx_grow_ = true;
    if (n > 0) {
      uint32_t landed = static_cast<uint32_t>(std::min<size_t>(static_cast<size_t>(n), direct));
      if (landed > 0) {
        rx_dst_.ForEach(rx_dst_off_, landed, [this](uint8_t* p, size_t len) {
          RxDataLanded(p, len);
        });
        rx_dst_off_ += landed;
        rx_left_ -= landed;
      }
      rx_end_ = static_cast<uint32_t>(n) - landed;
      rx_since_flush_ += static_cast<uint64_t>(n);
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    return ReadEnded(n, "recv: ");
  }
}

// Exit paths of a read that returned n <= 0 (errno set when n < 0), shared with
// FillRxTls. Always false: nothing more to read now.
bool TcpQpair::ReadEnded(ssize_t n, const char* what) {
  if (n == 0) {
    const bool between_pdus = rx_phase_ == RxPhase::kHeader && rx_hdr_have_ == 0;
    Fail(between_pdus ? Status::OK() : Status::IoError("peer closed the connection mid-PDU"));
    return false;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
  Fail(Status::IoError(std::string(what) + strerror(errno)));
  return false;
}

void TcpQpair::RxDataLanded(const uint8_t* p, size_t n) {
  if (rx_layout_.data_digest) rx_crc_ = Crc32cUpdate(rx_crc_, p, n);
}

bool TcpQpair::ConsumeRx() {
  for (;;) {
    if (!alive()) return false;
    uint32_t avail = rx_end_ - rx_begin_;
    const uint8_t* in = rx_buf_.get() + rx_begin_;
    switch (rx_phase_) {
      case RxPhase::kHeader: {
        uint32_t want = rx_hdr_have_ < sizeof(wire::CommonHeader)
                            ? static_cast<uint32_t>(sizeof(wire::CommonHeader))
                            : rx_layout_.header_len;
        if (avail == 0) return true;
        uint32_t take = std::min(avail, want - rx_hdr_have_);
        std::memcpy(rx_hdr_ + rx_hdr_have_, in, take);
        rx_hdr_have_ += take;
        rx_begin_ += take;
        if (rx_hdr_have_ < want) return true;
        if (want == sizeof(wire::CommonHeader)) {
          if (!OnCommonHeader()) return false;
        } else if (!OnHeader()) {
          return false;
        }
        break;
      }
      case RxPhase::kPad: {
        uint32_t take = std::min(avail, rx_left_);
        rx_begin_ += take;
        rx_left_ -= take;
        if (rx_left_ > 0) return true;
        rx_phase_ = RxPhase::kData;
        rx_left_ = rx_layout_.data_len;
        break;
      }
      case RxPhase::kData: {
        if (rx_left_ == 0) {
          if (rx_layout_.data_digest) {
            rx_phase_ = RxPhase::kDigest;
            rx_ddgst_have_ = 0;
          } else if (!OnPduComplete()) {
            return false;
          }
          break;
        }
        if (avail == 0) return true;
        uint32_t take = std::min(avail, rx_left_);
        if (rx_discard_) {
          RxDataLanded(in, take);
        } else {
          rx_dst_.CopyIn(rx_dst_off_, in, take);
          RxDataLanded(in, take);
        }
        rx_dst_off_ += take;
        rx_begin_ += take;
        rx_left_ -= take;
        break;
      }
      case RxPhase::kDigest: {
        if (avail == 0) return true;
        uint32_t take = std::min(avail, 4 - rx_ddgst_have_);
        std::memcpy(rx_ddgst_ + rx_ddgst_have_, in, take);
        rx_ddgst_have_ += take;
        rx_begin_ += take;
        if (rx_ddgst_have_ == 4 && !OnPduComplete()) return false;
        break;
      }
    }
  }
}

bool TcpQpair::ProtocolError(const PduError& e, const char* what) {
  std::string msg = std::string(what) + " (FES " + std::to_string(e.fes) + ", FEI " +
                    std::to_string(e.fei) + ")";
  if (e.drop) {
    Fail(Status::ProtocolError(what));
  } else {
    Fail(Status::ProtocolError(msg), e.fes, e.fei);
  }
  return false;
}

bool TcpQpair::OnCommonHeader() {
  const auto& ch = *reinterpret_cast<const wire::CommonHeader*>(rx_hdr_);
  rx_layout_ = PduLayout{};
  rx_layout_.header_len = sizeof(wire::CommonHeader);  // what the term request may quote
  PduLayout layout;
  if (PduError e = CheckCommonHeader(ch, rxcfg_, &layout)) {
    return ProtocolError(e, "invalid PDU common header");
  }
  rx_layout_ = layout;
  return true;
}

bool TcpQpair::OnHeader() {
  const auto& ch = *reinterpret_cast<const wire::CommonHeader*>(rx_hdr_);
  if ((ch.flags & wire::kFlagHdgst) != 0 && !HeaderDigestOk(rx_hdr_, ch.hlen)) {
    return ProtocolError(PduError::Of(wire::kFesHeaderDigestError), "header digest mismatch");
  }
  rx_capsule_ = nullptr;
  rx_transfer_ = nullptr;
  rx_discard_ = false;
  rx_crc_ = kCrc32cSeed;
  bool ok = true;
  switch (ch.pdu_type) {
    case wire::kCapsuleCmd: ok = OnCapsuleCmd(); break;
    case wire::kCapsuleResp: ok = OnCapsuleResp(); break;
    case wire::kH2CData: ok = OnH2CData(); break;
    case wire::kC2HData: ok = OnC2HData(); break;
    case wire::kR2T: ok = OnR2T(); break;
    case wire::kH2CTermReq:
    case wire::kC2HTermReq: ok = OnTermReq(); break;
    default: ok = ProtocolError(PduError::Field(0), "unexpected PDU type"); break;
  }
  if (!ok || !alive()) return false;
  if (rx_layout_.data_len == 0) return OnPduComplete();
  uint32_t pad = rx_layout_.data_offset - rx_layout_.header_len;
  rx_phase_ = pad > 0 ? RxPhase::kPad : RxPhase::kData;
  rx_left_ = pad > 0 ? pad : rx_layout_.data_len;
  return true;
}

bool TcpQpair::OnCapsuleCmd() {
  const auto& pdu = *reinterpret_cast<const wire::CapsuleCmd*>(rx_hdr_);
  if (rx_layout_.data_len > tcp_.max_icd) {
    return ProtocolError(PduError::Of(wire::kFesR2TLimitExceeded),
                         "in-capsule data larger than the queue pair accepts");
  }
  TcpCapsule* c = Take(true);
  if (c == nullptr) {
    return ProtocolError(PduError::Of(wire::kFesPduSequenceError),
                         "more commands in flight than the queue size");
  }
  if (rx_layout_.data_len > 0) {
    // In-capsule data buffers: as many as commands with data have been in flight at once,
    // reused last in first out.
    if (!icd_free_.empty()) {
      c->icd_buf = std::move(icd_free_.back());
      icd_free_.pop_back();
    } else {
      c->icd_buf.reset(new (std::nothrow) uint8_t[tcp_.max_icd]);
    }
    if (!c->icd_buf) {
      UnrefCapsule(c);
      Fail(Status::ResourceExhausted("out of memory for in-capsule data"));
      return false;
    }
  }
  c->mutable_sqe() = pdu.sqe;
  c->icd_len = rx_layout_.data_len;
  if (cids_.Insert(pdu.sqe.cid, c)) {
    c->in_table = true;
  } else {
    c->cid_conflict = true;
  }
  rx_capsule_ = c;
  rx_dst_ = MemDesc::Buffer(c->icd_buf.get(), c->icd_len);
  rx_dst_off_ = 0;
  return true;
}

bool TcpQpair::OnCapsuleResp() {
  const auto& pdu = *reinterpret_cast<const wire::CapsuleResp*>(rx_hdr_);
  TcpCapsule* c = cids_.Find(pdu.cqe.cid);
  if (c == nullptr) return ProtocolError(UnknownResponseCid(), "response for no command");
  rx_capsule_ = c;
  return true;
}

bool TcpQpair::OnH2CData() {
  const auto& pdu = *reinterpret_cast<const wire::H2CData*>(rx_hdr_);
  TcpCapsule* c = cids_.Find(pdu.cccid);
  Transfer* t = pdu.ttag < transfers_.size() ? transfers_[pdu.ttag] : nullptr;
  H2CExpect e;
  e.cccid_known = c != nullptr;
  e.ttag_known = t != nullptr && t->active && t->capsule == c;
  if (e.ttag_known) {
    e.r2t_offset = t->offset;
    e.r2t_length = t->length;
    e.received = t->received;
  }
  e.maxh2cdata = tcp_.maxh2cdata;
  if (PduError err = CheckH2CData(pdu, rx_layout_.data_len, e)) {
    return ProtocolError(err, "invalid H2CData");
  }
  rx_capsule_ = c;
  rx_transfer_ = t;
  rx_dst_ = t->mem;
  rx_dst_off_ = pdu.datao - t->offset;
  return true;
}

bool TcpQpair::OnC2HData() {
  const auto& pdu = *reinterpret_cast<const wire::C2HData*>(rx_hdr_);
  TcpCapsule* c = cids_.Find(pdu.cccid);
  C2HExpect e;
  e.cccid_known = c != nullptr && !c->data_send() && c->data_len() > 0;
  if (e.cccid_known) {
    e.xfer_length = static_cast<uint32_t>(c->data_len());
    e.received = c->received;
  }
  if (PduError err = CheckC2HData(pdu, rx_layout_.data_len, e)) {
    return ProtocolError(err, "invalid C2HData");
  }
  rx_capsule_ = c;
  rx_discard_ = !c->data_pending;  // aborted: the caller's buffer is no longer ours
  rx_dst_ = rx_discard_ ? MemDesc() : c->data();
  rx_dst_off_ = pdu.datao;
  return true;
}

bool TcpQpair::OnR2T() {
  const auto& pdu = *reinterpret_cast<const wire::R2T*>(rx_hdr_);
  TcpCapsule* c = cids_.Find(pdu.cccid);
  R2TExpect e;
  e.cccid_known = c != nullptr && c->data_send() && !c->icd && c->data_len() > 0;
  if (e.cccid_known) {
    e.xfer_length = static_cast<uint32_t>(c->data_len());
    e.requested = c->requested;
    e.outstanding = c->r2t_outstanding;
  }
  e.maxr2t = tcp_.maxr2t;
  if (PduError err = CheckR2T(pdu, e)) return ProtocolError(err, "invalid R2T");
  if (c->aborted) {
    // The data's buffer was withdrawn; sending anything else would write garbage.
    Fail(Status::Aborted("R2T for a command whose data transfer was aborted"));
    return false;
  }
  c->requested += pdu.r2tl;
  c->r2t_outstanding++;
  QueueH2CData(c, pdu.ttag, pdu.r2to, pdu.r2tl);
  return true;
}

bool TcpQpair::OnTermReq() {
  rx_dst_ = MemDesc::Buffer(rx_hdr_ + rx_layout_.header_len, rx_layout_.data_len);
  rx_dst_off_ = 0;
  return true;
}

bool TcpQpair::OnPduComplete() {
  const auto& ch = *reinterpret_cast<const wire::CommonHeader*>(rx_hdr_);
  bool digest_bad = false;
  if (rx_layout_.data_digest) {
    uint32_t got;
    std::memcpy(&got, rx_ddgst_, 4);
    digest_bad = got != Crc32cFinish(rx_crc_);
  }
  rx_phase_ = RxPhase::kHeader;
  rx_hdr_have_ = 0;
  TcpCapsule* c = rx_capsule_;
  rx_capsule_ = nullptr;
  const uint32_t datal = rx_layout_.data_len;

  switch (ch.pdu_type) {
    case wire::kCapsuleCmd:
      c->icd_digest_error = digest_bad;
      DeliverCapsule(c);
      break;

    case wire::kCapsuleResp: {
      const auto& pdu = *reinterpret_cast<const wire::CapsuleResp*>(rx_hdr_);
      cids_.Remove(pdu.cqe.cid);
      c->in_table = false;
      if (c->data_pending) {
        // The controller finished early (an error): no more of the data may go out.
        if (c->data_send()) WithdrawHostData(c);
        FinishHostData(c, Status::Aborted("command completed before its data transfer ended"));
      }
      TcpCapsule* r = Take(false);
      if (r == nullptr) {
        UnrefCapsule(c);
        Fail(Status::ResourceExhausted("response capsules are not being freed"));
        return false;
      }
      r->mutable_cqe() = pdu.cqe;
      UnrefCapsule(c);
      DeliverCapsule(r);
      break;
    }

    case wire::kH2CData: {
      Transfer* t = rx_transfer_;
      rx_transfer_ = nullptr;
      if (t == nullptr) break;  // cancelled while its data arrived
      t->received += datal;
      t->digest_error |= digest_bad;
      if (t->received < t->length) break;
      TcpCapsule* cmd = t->capsule;
      cmd->r2ts_active--;
      if (Transfer* next = cmd->r2t_wait_head; next != nullptr) {
        cmd->r2t_wait_head = next->next;
        if (cmd->r2t_wait_head == nullptr) cmd->r2t_wait_tail = nullptr;
        next->next = nullptr;
        StartR2T(next);
      }
      DataCallback cb = t->on_done;
      Status s = t->digest_error ? Status::DataDigestError("H2CData digest mismatch")
                                 : Status::OK();
      uint32_t len = t->length;
      ReleaseTransfer(t);
      cb(len, s);
      UnrefCapsule(cmd);
      break;
    }

    case wire::kC2HData: {
      const auto& pdu = *reinterpret_cast<const wire::C2HData*>(rx_hdr_);
      c->received += datal;
      c->digest_error |= digest_bad;
      if (c->received == c->data_len()) {
        FinishHostData(c, c->digest_error ? Status::DataDigestError("C2HData digest mismatch")
                                          : Status::OK());
      }
      if ((pdu.ch.flags & wire::kFlagSuccess) != 0) {
        // The controller's implicit completion: make the response it stands for.
        cids_.Remove(pdu.cccid);
        c->in_table = false;
        TcpCapsule* r = Take(false);
        if (r == nullptr) {
          UnrefCapsule(c);
          Fail(Status::ResourceExhausted("response capsules are not being freed"));
          return false;
        }
        r->mutable_cqe().cid = pdu.cccid;
        r->mutable_cqe().sqid = 0;
        r->set_sqhd_valid(false);
        UnrefCapsule(c);
        DeliverCapsule(r);
      }
      break;
    }

    case wire::kH2CTermReq:
    case wire::kC2HTermReq: {
      const auto& pdu = *reinterpret_cast<const wire::TermReq*>(rx_hdr_);
      uint32_t fei;
      std::memcpy(&fei, rx_hdr_ + offsetof(wire::TermReq, fei), 4);
      Fail(Status::PeerTerminated("termination request: FES " + std::to_string(pdu.fes) +
                                  ", FEI " + std::to_string(fei)));
      return false;
    }

    default:
      break;  // R2T: handled when its header arrived
  }
  return alive();
}

}  // namespace nvmf::tcp
