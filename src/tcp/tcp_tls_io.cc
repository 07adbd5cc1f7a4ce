// TcpQpair's receive and send paths through a TLS session (tcp_rx.cc and tcp_tx.cc call
// here only when the connection runs TLS, so plain TCP keeps its readv/sendmsg paths).
//
// Receive: SSL_read_ex returns at most one record (16 KiB) of plaintext per call, into the
// payload's destination when a large part of a payload is due, else into the receive
// buffer; the PDU parsing after it is the same as without TLS.
//
// Send: the queued PDUs are gathered into records: small pieces (headers, short payloads,
// digests) are copied into a record-sized staging buffer, and a payload that starts a
// record and fills whole ones is encrypted straight from the caller's memory. The session
// takes every byte it is given (tls.h), so a PDU counts as written once encrypted; the
// ciphertext the socket did not take is flushed before more is encrypted, which bounds it
// to one batch.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tcp/tcp_qpair.h"
#include "tcp/tls.h"

namespace nvmf::tcp {

namespace {
constexpr uint32_t kDirectReadMin = 8192;    // as in tcp_rx.cc
constexpr size_t kTlsBatch = 256 * 1024;     // plaintext encrypted per flush of the socket
}  // namespace

bool TcpQpair::FillRxTls() {
  uint8_t* dst = rx_buf_.get();
  size_t want = rx_cap_;
  bool direct = false;
  if (rx_phase_ == RxPhase::kData && !rx_discard_ && rx_left_ >= kDirectReadMin) {
    rx_dst_.ForEach(rx_dst_off_, rx_left_, [&](uint8_t* p, size_t len) {
      if (!direct) {
        dst = p;
        want = len;
        direct = true;
      }
    });
  }
  for (;;) {
    ssize_t n = tls_->Read(dst, want);
    if (n > 0) {
      // A short read is one record, not an empty socket: read again until EAGAIN.
      rx_drained_ = false;
      rx_since_flush_ += static_cast<uint64_t>(n);
      if (direct) {
        RxDataLanded(dst, static_cast<size_t>(n));
        rx_dst_off_ += static_cast<uint32_t>(n);
        rx_left_ -= static_cast<uint32_t>(n);
      } else {
        rx_end_ = static_cast<uint32_t>(n);
        if (static_cast<size_t>(n) == want) rx_grow_ = true;
      }
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EIO) {
      Fail(Status::IoError(tls_->error()));
      return false;
    }
    return ReadEnded(n, "TLS recv: ");
  }
}

void TcpQpair::ResumeTlsRead() {
  if (tls_resume_posted_) return;
  tls_resume_posted_ = true;
  refs_++;  // dropped when the task has run
  loop_->Post([this] {
    tls_resume_posted_ = false;
    if (alive()) OnReadable();
    Unref();
  });
}

void TcpQpair::TlsEmitStaged() {
  if (tls_stage_len_ == 0) return;
  if (!tls_->Write(tls_stage_.get(), tls_stage_len_)) tls_write_failed_ = true;
  tls_stage_len_ = 0;
}

void TcpQpair::TlsEmit(const uint8_t* p, size_t n) {
  while (n > 0) {
    if (tls_stage_len_ == 0 && n >= kTlsRecord) {
      const size_t whole = n / kTlsRecord * kTlsRecord;
      if (!tls_->Write(p, whole)) tls_write_failed_ = true;
      p += whole;
      n -= whole;
      continue;
    }
    const size_t take = std::min<size_t>(n, kTlsRecord - tls_stage_len_);
    std::memcpy(tls_stage_.get() + tls_stage_len_, p, take);
    tls_stage_len_ += static_cast<uint32_t>(take);
    p += take;
    n -= take;
    if (tls_stage_len_ == kTlsRecord) TlsEmitStaged();
  }
}

bool TcpQpair::WriteSomeTls() {
  for (;;) {
    if (fd_ < 0) return false;
    const int f = tls_->Flush();
    if (f < 0) {
      Fail(Status::IoError(tls_->error()));
      return false;
    }
    if (f == 0) {
      WantWritable(true);
      return true;
    }
    if (tx_head_ == nullptr) break;
    // Encrypt a batch. A PDU is marked written as a whole: callbacks below may withdraw
    // a PDU's data, and must then see that its bytes already left.
    size_t batch = 0;
    tls_->Cork(true);
    for (TxPdu* p = tx_head_; p != nullptr && batch < kTlsBatch; p = p->next) {
      if (p->written == p->total()) continue;
      TlsEmit(p->hdr, p->hdr_len);
      if (p->data_len > 0) {
        p->data.ForEach(p->data_off, p->data_len,
                        [this](const uint8_t* d, size_t len) { TlsEmit(d, len); });
      }
      if (p->has_ddgst) TlsEmit(p->ddgst, 4);
      p->written = p->total();
      batch += p->total();
    }
    TlsEmitStaged();
    tls_->Cork(false);  // the loop's Flush sends the batch
    if (tls_write_failed_) {
      Fail(Status::IoError("TLS: " + tls_->error()));
      return false;
    }
    while (tx_head_ != nullptr && tx_head_->written == tx_head_->total()) {
      if (!PopWritten()) return false;
    }
  }
  WantWritable(false);
  return true;
}

}  // namespace nvmf::tcp
