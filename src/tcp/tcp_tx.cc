// TcpQpair send path: PDUs queue during a loop turn and leave in one gathered sendmsg at
// its end (EventLoop::Flushable), payloads straight from the caller's memory.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "tcp/crc32c.h"
#include "tcp/tcp_qpair.h"

namespace nvmf::tcp {

void TcpQpair::GrowPduPool() {
  auto chunk = std::make_unique<TxPdu[]>(kPduChunk);
  for (size_t i = 0; i < kPduChunk; i++) ReleasePdu(&chunk[i], Status::OK());
  pdu_chunks_.push_back(std::move(chunk));
}

TxPdu* TcpQpair::TakePdu() {
  if (free_pdus_ == nullptr) GrowPduPool();
  TxPdu* p = free_pdus_;
  free_pdus_ = p->next;
  p->next = nullptr;
  return p;
}

// Returns a PDU to the pool; a PDU that never went out reports s to its callbacks.
void TcpQpair::ReleasePdu(TxPdu* p, const Status& s) {
  if (TcpCapsule* c = p->capsule; c != nullptr) {
    if (!s.ok()) {
      if (p->done == TxPdu::Done::kHostData) FinishHostData(c, s);
      if (p->done == TxPdu::Done::kControllerData && p->on_sent) p->on_sent(0, s);
    }
    p->capsule = nullptr;
    UnrefCapsule(c);
  }
  p->hdr_len = p->data_off = p->data_len = p->written = 0;
  p->data = MemDesc();
  p->has_ddgst = false;
  p->done = TxPdu::Done::kNone;
  p->on_sent = nullptr;
  p->rescued.reset();
  p->next = free_pdus_;
  free_pdus_ = p;
}

void TcpQpair::SetDataDigest(TxPdu* p) {
  if (!txcfg_.data_digest || p->data_len == 0) return;
  uint32_t crc = kCrc32cSeed;
  p->data.ForEach(p->data_off, p->data_len,
                  [&crc](const uint8_t* d, size_t n) { crc = Crc32cUpdate(crc, d, n); });
  crc = Crc32cFinish(crc);
  std::memcpy(p->ddgst, &crc, 4);
  p->has_ddgst = true;
}

void TcpQpair::Queue(TxPdu* p) {
  p->next = nullptr;
  if (tx_tail_ != nullptr) {
    tx_tail_->next = p;
  } else {
    tx_head_ = p;
  }
  tx_tail_ = p;
  loop_->RequestFlush(this);
}

void TcpQpair::QueueH2CData(TcpCapsule* c, uint16_t ttag, uint32_t offset, uint32_t length) {
  const uint32_t max = std::max<uint32_t>(tcp_.maxh2cdata, 4096);
  for (uint32_t done = 0; done < length;) {
    uint32_t n = std::min(length - done, max);
    bool last = done + n == length;
    TxPdu* p = TakePdu();
    p->hdr_len = BuildH2CData(p->hdr, c->sqe().cid, ttag, offset + done, n, last, txcfg_);
    p->data = c->data();
    p->data_off = offset + done;
    p->data_len = n;
    p->capsule = c;
    c->refs++;
    p->done = TxPdu::Done::kHostData;
    SetDataDigest(p);
    Queue(p);
    done += n;
  }
}

void TcpQpair::Flush() {
  Hold hold(this);
  rx_since_flush_ = 0;
  if (alive()) WriteSome();
}

void TcpQpair::WantWritable(bool on) {
  if (want_write_ == on || fd_ < 0) return;
  want_write_ = on;
  loop_->Modify(fd_, EPOLLIN | (on ? EPOLLOUT : 0u));
}

// Writes queued PDUs until the queue is empty or the socket is full. False when the
// connection failed.
bool TcpQpair::WriteSome() {
  if (tls_ != nullptr) return WriteSomeTls();
  while (tx_head_ != nullptr && fd_ >= 0) {
    int cnt = 0;
    const int max = static_cast<int>(iov_.size());
    auto add = [&](const uint8_t* base, size_t len, size_t& skip) {
      if (skip >= len) {
        skip -= len;
        return;
      }
      if (cnt < max) iov_[cnt++] = {const_cast<uint8_t*>(base) + skip, len - skip};
      skip = 0;
    };
    for (TxPdu* p = tx_head_; p != nullptr && cnt < max; p = p->next) {
      size_t skip = p->written;
      add(p->hdr, p->hdr_len, skip);
      if (p->data_len > 0) {
        if (skip >= p->data_len) {
          skip -= p->data_len;
        } else {
          p->data.ForEach(p->data_off + skip, p->data_len - skip,
                          [&](const uint8_t* d, size_t n) {
                            if (cnt < max) iov_[cnt++] = {const_cast<uint8_t*>(d), n};
                          });
          skip = 0;
        }
      }
      if (p->has_ddgst) add(p->ddgst, 4, skip);
    }
    msghdr msg{};
    msg.msg_iov = iov_.data();
    msg.msg_iovlen = static_cast<size_t>(cnt);
    ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        WantWritable(true);
        return true;
      }
      Fail(Status::IoError(std::string("send: ") + strerror(errno)));
      return false;
    }
    auto left = static_cast<size_t>(n);
    while (tx_head_ != nullptr) {
      TxPdu* p = tx_head_;
      size_t rest = p->total() - p->written;
      if (left < rest) {
        p->written += static_cast<uint32_t>(left);
        break;
      }
      left -= rest;
      if (!PopWritten()) return false;
    }
  }
  WantWritable(false);
  return true;
}

// Takes the head PDU, written in full, off the queue and runs what that completes. False
// when a callback failed or freed the queue pair.
bool TcpQpair::PopWritten() {
  TxPdu* p = tx_head_;
  tx_head_ = p->next;
  if (tx_head_ == nullptr) tx_tail_ = nullptr;
  OnPduWritten(p);
  return fd_ >= 0;
}

void TcpQpair::OnPduWritten(TxPdu* p) {
  TcpCapsule* c = p->capsule;
  switch (p->done) {
    case TxPdu::Done::kHostData: {
      c->sent += p->data_len;
      const auto& ch = *reinterpret_cast<const wire::CommonHeader*>(p->hdr);
      if (ch.pdu_type == wire::kH2CData && (ch.flags & wire::kFlagLastPdu) != 0 &&
          c->r2t_outstanding > 0) {
        c->r2t_outstanding--;
      }
      if (c->sent == c->data_len()) FinishHostData(c, Status::OK());
      break;
    }
    case TxPdu::Done::kControllerData:
      if (p->on_sent) p->on_sent(p->data_off + p->data_len, Status::OK());
      break;
    case TxPdu::Done::kNone:
    case TxPdu::Done::kClose:
      break;
  }
  ReleasePdu(p, Status::OK());
}

// Drops queued PDUs, reporting s to their callbacks. A PDU already partly written stays
// at the head while the socket is open, so that what follows it still parses.
void TcpQpair::DropUnsent(const Status& s) {
  TxPdu* keep = nullptr;
  if (tx_head_ != nullptr && tx_head_->written > 0 && fd_ >= 0) keep = tx_head_;
  TxPdu* p = keep != nullptr ? keep->next : tx_head_;
  if (keep != nullptr) {
    keep->next = nullptr;
    tx_head_ = tx_tail_ = keep;
  } else {
    tx_head_ = tx_tail_ = nullptr;
  }
  while (p != nullptr) {
    TxPdu* next = p->next;
    ReleasePdu(p, s);
    p = next;
  }
}

}  // namespace nvmf::tcp
