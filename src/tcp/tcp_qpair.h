// TcpQpair: the NVMe/TCP queue pair state machine, both roles.
//
// Files: tcp_qpair.cc holds the life cycle, pools and the transport operations;
// tcp_rx.cc the receive path (PDU parsing into the caller's memory); tcp_tx.cc the send
// path (PDU queue, one gathered writev per loop turn); tcp_tls_io.cc the same two paths
// through a TLS session, for a connection that runs TLS (only the entry points branch).
//
// Ownership: the queue pair is reference counted: one reference for its owner (dropped
// by Free), one for every capsule handed out, and one while a handler of its own is on
// the stack, so that a callback may free the queue pair or its capsules at any time.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "nvmf/tcp.h"
#include "transport/cid_table.h"
#include "tcp/pdu_codec.h"
#include "transport/transport_internal.h"

namespace nvmf::tcp {

class TcpQpair;
class TlsSession;

// Plaintext per TLS record (RFC 8446's largest): small PDUs are gathered up to this.
inline constexpr uint32_t kTlsRecord = 16384;

// A controller's R2T exchange: one ReceiveControllerData call that needs data from the
// host. Its index in the pool is the R2T's TTAG.
struct Transfer {
  Transfer* next = nullptr;  // free list, or the command's queue of R2Ts not yet sent
  class TcpCapsule* capsule = nullptr;
  MemDesc mem;
  uint32_t offset = 0;    // command data offset of mem's first byte
  uint32_t length = 0;
  uint32_t received = 0;
  DataCallback on_done;
  bool active = false;
  bool digest_error = false;
  uint16_t ttag = 0;
};

class TcpCapsule final : public Capsule {
 public:
  TcpCapsule* next_free = nullptr;
  int refs = 0;           // the owner's plus the transport's while it needs the capsule
  bool in_table = false;  // listed in the queue pair's CID table

  // Host command: progress of the attached data.
  bool data_pending = false;   // on_done has not run yet
  bool aborted = false;
  bool icd = false;            // the data went in the capsule
  uint32_t requested = 0;      // bytes asked for by R2Ts
  uint32_t r2t_outstanding = 0;
  uint32_t sent = 0;           // bytes written to the socket
  uint32_t received = 0;       // C2HData bytes received
  bool digest_error = false;

  // Controller command.
  std::unique_ptr<uint8_t[]> icd_buf;  // this slot's in-capsule data buffer, made on first use
  uint32_t icd_len = 0;
  bool icd_digest_error = false;
  bool cid_conflict = false;
  uint32_t transfers = 0;      // active Transfers: R2Ts sent or waiting
  uint32_t r2ts_active = 0;    // R2Ts sent and not yet answered in full
  Transfer* r2t_wait_head = nullptr;  // receive requests waiting for an R2T slot
  Transfer* r2t_wait_tail = nullptr;
  uint32_t c2h_queued = 0;     // bytes handed to SendControllerData

  void Reset(TcpQpair* qp, bool command);
  MemDesc& data() { return data_; }
  size_t data_len() const { return data_len_; }
  bool data_send() const { return data_send_; }
  DataCallback& data_done() { return data_done_; }
  spec::Sqe& mutable_sqe() { return sqe_; }
  spec::Cqe& mutable_cqe() { return cqe_; }
  void set_sqhd_valid(bool v) { sqhd_valid_ = v; }
};

// A PDU waiting to be written.
struct TxPdu {
  TxPdu* next = nullptr;
  uint8_t hdr[kMaxHeaderBytes];
  uint32_t hdr_len = 0;
  MemDesc data;              // payload source: data[data_off, data_off + data_len)
  uint32_t data_off = 0;
  uint32_t data_len = 0;
  uint8_t ddgst[4];
  bool has_ddgst = false;
  uint32_t written = 0;      // bytes of this PDU already written
  TcpCapsule* capsule = nullptr;  // holds a reference while queued
  enum class Done : uint8_t { kNone, kHostData, kControllerData, kClose } done = Done::kNone;
  DataCallback on_sent;      // kControllerData: SendControllerData's callback
  std::unique_ptr<uint8_t[]> rescued;  // payload copied out when its buffer was withdrawn

  uint32_t total() const { return hdr_len + data_len + (has_ddgst ? 4u : 0u); }
};

class TcpQpair final : public Qpair, public EventLoop::Flushable {
 public:
  static Status Create(EventLoop* loop, Role role, const QpairParams& params,
                       ErrorCallback on_error, ReceiveCallback on_receive, Qpair** out);

  // Qpair
  void Free() override;
  Capsule* AllocateCapsule(bool command) override;
  void FreeCapsule(Capsule* c) override;
  Status Transmit(Capsule* c) override;
  void AbortData(Capsule* c) override;
  uint64_t MaxTransferSize() const override;
  std::string PeerName() const override;
  bool SecureChannelNqns(std::string* hostnqn, std::string* subnqn) const override;
  ControllerTransportValues ControllerValues() const override;
  bool DigestsSentData() const override { return tcp_.data_digest; }
  bool HeaderDigests() const override { return tcp_.header_digest; }
  uint8_t ValidateCommand(const Capsule* c) const override;
  size_t DataLength(const Capsule* c) const override;
  void ReceiveData(Capsule* c, uint32_t offset, const MemDesc& mem, size_t len,
                   DataCallback on_done) override;
  uint16_t SendData(Capsule* c, uint32_t offset, const MemDesc& mem, size_t len,
                    DataCallback on_sent) override;

  // EventLoop::Flushable
  void Flush() override;

 private:
  TcpQpair(EventLoop* loop, Role role, const QpairParams& params, const TcpQpairParams& tp,
           ErrorCallback on_error, ReceiveCallback on_receive);
  ~TcpQpair() override;

  // A reference held while one of our handlers runs.
  class Hold {
   public:
    explicit Hold(TcpQpair* q) : q_(q) { q_->refs_++; }
    ~Hold() { q_->Unref(); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    TcpQpair* q_;
  };

  bool controller() const { return role() == Role::kController; }
  bool alive() const { return !dead_ && !freed_; }
  void Unref();
  TcpCapsule* Take(bool command);
  void RefCapsule(TcpCapsule* c) { c->refs++; }
  void UnrefCapsule(TcpCapsule* c);
  void DeliverCapsule(TcpCapsule* c);
  void FinishHostData(TcpCapsule* c, const Status& s);
  void WithdrawHostData(TcpCapsule* c);
  void CancelTransfers(TcpCapsule* c, const Status& s);
  void StartR2T(Transfer* t);
  Transfer* TakeTransfer();
  void ReleaseTransfer(Transfer* t);

  // Failure: reports the error once, after sending a termination request when fes != 0.
  void Fail(const Status& s, uint16_t fes = 0, uint32_t fei = 0);
  void FailAllTransfers(const Status& s);

  // Receive path (tcp_rx.cc).
  void OnEvents(uint32_t events);
  void OnReadable();
  bool FillRx();
  bool FillRxTls();
  bool ReadEnded(ssize_t n, const char* what);
  void ResumeTlsRead();  // the session holds records the socket will not announce
  bool GrowRxBuffer();  // false at the largest size
  bool ConsumeRx();
  bool OnCommonHeader();
  bool OnHeader();
  bool OnPduComplete();
  bool OnCapsuleCmd();
  bool OnCapsuleResp();
  bool OnH2CData();
  bool OnC2HData();
  bool OnR2T();
  bool OnTermReq();
  void RxDataLanded(const uint8_t* p, size_t n);  // digest over landed payload
  bool ProtocolError(const PduError& e, const char* what);

  // Send path (tcp_tx.cc).
  void GrowPduPool();
  TxPdu* TakePdu();
  void ReleasePdu(TxPdu* p, const Status& s);
  void Queue(TxPdu* p);
  void QueueFront(TxPdu* p);
  void SetDataDigest(TxPdu* p);
  void QueueH2CData(TcpCapsule* c, uint16_t ttag, uint32_t offset, uint32_t length);
  bool WriteSome();
  bool WriteSomeTls();
  void TlsEmit(const uint8_t* p, size_t n);
  void TlsEmitStaged();
  void CloseSocket();
  bool PopWritten();
  void OnPduWritten(TxPdu* p);
  void DropUnsent(const Status& s);
  void WantWritable(bool on);

  EventLoop* loop_;
  int fd_;
  TcpQpairParams tcp_;
  ControllerTransportValues values_;  // controller: what the listener reports
  uint16_t qsize_;
  TxConfig txcfg_;
  RxConfig rxcfg_;
  ErrorCallback on_error_;
  ReceiveCallback on_receive_;
  static constexpr size_t kPduChunk = 64;

  int refs_ = 1;
  bool freed_ = false;
  bool dead_ = false;
  bool want_write_ = false;

  // Pools: sized from the queue size at creation; the PDU and transfer pools grow in
  // chunks if a burst outruns them and never shrink, so steady state never allocates.
  std::vector<TcpCapsule> capsules_;
  TcpCapsule* free_capsules_ = nullptr;
  std::vector<std::unique_ptr<uint8_t[]>> icd_free_;  // in-capsule data buffers not in use
  std::vector<std::unique_ptr<TxPdu[]>> pdu_chunks_;
  TxPdu* free_pdus_ = nullptr;
  std::vector<std::unique_ptr<Transfer[]>> transfer_chunks_;
  std::vector<Transfer*> transfers_;  // by TTAG
  Transfer* free_transfers_ = nullptr;
  CidTable<TcpCapsule> cids_;

  // TLS (null without): the session, and plaintext gathered into whole records.
  std::shared_ptr<TlsSession> tls_;
  std::unique_ptr<uint8_t[]> tls_stage_;
  uint32_t tls_stage_len_ = 0;
  bool tls_write_failed_ = false;
  bool tls_resume_posted_ = false;

  // Send queue.
  TxPdu* tx_head_ = nullptr;
  TxPdu* tx_tail_ = nullptr;
  std::vector<struct iovec> iov_;

  // Receive state.
  enum class RxPhase : uint8_t { kHeader, kPad, kData, kDigest };
  std::unique_ptr<uint8_t[]> rx_buf_;
  uint32_t rx_cap_ = 0;
  uint32_t rx_begin_ = 0;
  uint32_t rx_end_ = 0;
  RxPhase rx_phase_ = RxPhase::kHeader;
  alignas(8) uint8_t rx_hdr_[kMaxHeaderBytes];
  uint32_t rx_hdr_have_ = 0;
  PduLayout rx_layout_;
  uint32_t rx_left_ = 0;         // bytes left in the current phase
  MemDesc rx_dst_;               // where the payload goes
  uint32_t rx_dst_off_ = 0;      // next offset in rx_dst_
  bool rx_discard_ = false;      // payload goes nowhere (an aborted read)
  bool rx_drained_ = false;      // the last read took less than it asked for
  bool rx_grow_ = false;         // the last read filled the buffer
  uint64_t rx_since_flush_ = 0;  // bytes read since the transmit queue was last written
  uint32_t rx_crc_ = 0;
  uint8_t rx_ddgst_[4];
  uint32_t rx_ddgst_have_ = 0;
  TcpCapsule* rx_capsule_ = nullptr;   // the command this PDU is about
  Transfer* rx_transfer_ = nullptr;    // controller: the R2T an H2CData answers
};

}  // namespace nvmf::tcp
