// The NVMe/RDMA queue pair (both roles) and the connection its set-up hands over.
//
// One reliable-connected QP per NVMe queue, with its own completion queue and
// notification channel and its own RDMA CM event channel, all watched by the queue pair's
// EventLoop.
//
// How data moves (docs/transport.md, "NVMe/RDMA"):
//  - Command capsules travel by SEND into receive buffers the controller posted (SQE plus
//    up to max_icd bytes of in-capsule data); responses by SEND into the host's receive
//    buffers (16 bytes each).
//  - Host memory is described by a keyed SGL over a per-command staging buffer that was
//    registered once and is reused: the host copies write data into it before the SEND and
//    read data out of it when the response arrives. The staging buffers are registered in
//    the queue's own protection domain, so their rkeys work on that queue's QP only; the
//    target of a command may still write its buffer after the response, but the read data
//    was copied out at the response, so a late write never reaches the caller's memory.
//    The controller moves data with RDMA
//    READ (writes) and RDMA WRITE (reads) through a registered buffer it takes from the
//    device's StagingPool for the transfer and gives back when the transfer ends, then
//    sends the response; the send queue's order puts the data before the response.
//    Small writes on I/O queues go in the capsule (offset SGL).
//  - Work requests are queued during a loop turn and posted in one ibv_post_send and one
//    ibv_post_recv at its end (EventLoop::Flushable). In wait mode the completion channel's
//    descriptor wakes the loop; in poll mode the CQ is polled every turn (EventLoop::Poller).
//
// Guarantees (nvmf/transport.h): a DataCallback runs with OK only after the RDMA READ that
// filled the caller's memory completed successfully; data handed to SendControllerData or
// AppendData is copied when the call is made, so the caller's memory may change at once
// (QpairDigestsSentData is false). Nothing is allocated per I/O: capsules, work requests,
// the host's staging and the controller's in-capsule buffers are pooled, made on first use
// and kept; the controller's transfer buffers come from the device's StagingPool and go
// back to it, so what a queue holds follows its transfers in flight.
#pragma once

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include <memory>
#include <string>
#include <vector>

#include "rdma/rdma_device.h"
#include "rdma/rdma_wire.h"
#include "transport/cid_table.h"
#include "transport/transport_internal.h"

namespace nvmf::rdma {

// Receive work requests carry their slot index with this bit; every other work request
// carries a pointer to its Op.
inline constexpr uint64_t kRecvTag = 1ull << 63;

// The verbs and CM objects of one queue, made by the set-up (host connect or listener
// accept) with every receive already posted, and owned by the queue pair afterwards.
// A protection domain of one queue's own. The host registers its staging buffers with
// remote access in it, so that their rkeys are valid on that queue's QP only: no other
// peer of this process, on another queue of the same device, can name them.
class OwnedPd {
 public:
  explicit OwnedPd(ibv_pd* pd) : pd_(pd) {}
  OwnedPd(const OwnedPd&) = delete;
  OwnedPd& operator=(const OwnedPd&) = delete;
  ~OwnedPd() {
    if (pd_ != nullptr) ibv_dealloc_pd(pd_);
  }
  ibv_pd* get() const { return pd_; }

 private:
  ibv_pd* pd_;
};

struct QueueResources {
  rdma_event_channel* channel = nullptr;  // this identifier's CM events only
  rdma_cm_id* id = nullptr;
  ibv_comp_channel* comp = nullptr;
  ibv_cq* cq = nullptr;
  Device* dev = nullptr;
  ibv_pd* pd = nullptr;                // the QP's: dev->pd, or own_pd's
  std::shared_ptr<OwnedPd> own_pd;     // host: the queue's own (outlives every registration)
  uint32_t recv_count = 0;   // receive buffers, all posted
  uint32_t recv_size = 0;    // bytes each
  uint32_t send_depth = 0;   // send queue work requests
  uint32_t max_inline = 0;   // bytes a SEND may carry inline, as the QP was made
  static constexpr uint32_t kInlineWanted = 64;
  RegisteredBuffer recv_buf;

  QueueResources() = default;
  QueueResources(const QueueResources&) = delete;
  QueueResources& operator=(const QueueResources&) = delete;
  ~QueueResources();
  // Makes the CQ, its channel and the QP on id (set, its device known), registers the
  // receive buffers and posts them all. Fails when the device cannot take the sizes.
  // own_pd: the QP and its buffers get a protection domain of their own (the host's).
  Status Create(uint32_t recvs, uint32_t recv_bytes, uint32_t sends, bool own_pd = false);
};

class RdmaConnection : public TransportConnection {
 public:
  RdmaConnection() : TransportConnection(TransportType::kRdma) {}
  std::unique_ptr<QueueResources> res;  // taken by the queue pair
  uint16_t entries = 0;     // queue size (commands in flight at most)
  uint32_t max_icd = 0;     // controller: in-capsule data its receives hold
  uint64_t max_transfer = 0;
  std::string peer;
};

class RdmaQpair;

struct Op {
  enum Kind : uint8_t { kSend, kRead, kWrite };
  Kind kind = kSend;
  uint8_t index = 0;  // data op slot
  class RdmaCapsule* cap = nullptr;
};

// A data transfer of a controller command: one RDMA READ or WRITE through the capsule's
// staging buffer.
struct DataOp {
  Op op;
  ibv_send_wr wr{};
  ibv_sge sge{};
  bool active = false;
  MemDesc mem;        // READ: where the data goes once it arrived
  uint32_t offset = 0;
  uint32_t len = 0;
  DataCallback cb;
};

class RdmaCapsule : public Capsule {
 public:
  static constexpr int kDataOps = 4;

  void Reset(RdmaQpair* qp, bool command);
  spec::Sqe& mutable_sqe() { return sqe_; }
  spec::Cqe& mutable_cqe() { return cqe_; }
  const MemDesc& data() const { return data_; }
  size_t data_len() const { return data_len_; }
  bool data_send() const { return data_send_; }
  const DataCallback& data_done() const { return data_done_; }

  RdmaCapsule* next_free = nullptr;
  bool in_use = false;       // taken from its pool
  int refs = 0;              // the owner's, the CID table's, and one per work request
  bool in_table = false;     // host: waiting for its response
  bool data_pending = false; // host: AppendData's callback has not run
  bool aborted = false;
  bool pool_command = false; // which pool it returns to
  // SEND: a slice of the queue pair's registered send region.
  uint8_t* send_buf = nullptr;
  Op send_op;
  ibv_send_wr send_wr{};
  ibv_sge send_sge{};
  // Host: the keyed SGL's memory, registered once and kept with the capsule.
  RegisteredBuffer staging;
  // Controller: RDMA READ/WRITE's local side, from the device's StagingPool while a
  // transfer runs.
  RegisteredBuffer* xfer = nullptr;
  DataOp ops[kDataOps];
  int ops_active = 0;
  // Controller: in-capsule data, copied out of the receive buffer.
  std::unique_ptr<uint8_t[]> icd_buf;
  uint32_t icd_len = 0;
};

class RdmaQpair : public Qpair, private EventLoop::Flushable, private EventLoop::Poller {
 public:
  static Status Create(EventLoop* loop, Role role, const QpairParams& params,
                       ErrorCallback on_error, ReceiveCallback on_receive, Qpair** out);

  void Free() override;
  Capsule* AllocateCapsule(bool command) override;
  void FreeCapsule(Capsule* c) override;
  Status Transmit(Capsule* c) override;
  void AbortData(Capsule* c) override;
  uint64_t MaxTransferSize() const override { return max_transfer_; }
  std::string PeerName() const override { return peer_; }
  ControllerTransportValues ControllerValues() const override;
  bool DigestsSentData() const override { return false; }
  bool HeaderDigests() const override { return false; }
  uint8_t ValidateCommand(const Capsule* c) const override;
  size_t DataLength(const Capsule* c) const override;
  void ReceiveData(Capsule* c, uint32_t offset, const MemDesc& mem, size_t len,
                   DataCallback on_done) override;
  uint16_t SendData(Capsule* c, uint32_t offset, const MemDesc& mem, size_t len,
                    DataCallback on_sent) override;

 private:
  RdmaQpair(EventLoop* loop, Role role, const QpairParams& params, RdmaConnection* conn,
            ErrorCallback on_error, ReceiveCallback on_receive);
  ~RdmaQpair() override;
  Status Start();

  bool controller() const { return role() == Role::kController; }
  bool alive() const { return !dead_ && !freed_; }
  void Unref();
  struct Hold {
    explicit Hold(RdmaQpair* q) : qp(q) { qp->refs_++; }
    ~Hold() { qp->Unref(); }
    RdmaQpair* qp;
  };

  RdmaCapsule* Take(bool command);
  void UnrefCapsule(RdmaCapsule* c);
  void Deliver(RdmaCapsule* c);

  // Completions and CM events.
  void OnCompChannel();
  bool Poll() override;
  int PollCq();
  void OnCompletion(const ibv_wc& wc);
  void OnRecv(uint32_t slot, uint32_t len);
  void OnCmEvents();
  void Repost(uint32_t slot);
  void QueueSend(ibv_send_wr* wr);
  void Flush() override;
  void PostQueued();
  void FinishDataOp(RdmaCapsule* c, DataOp* d, const Status& s);
  void FinishHostData(RdmaCapsule* c, const Status& s, size_t bytes);
  DataOp* FreeDataOp(RdmaCapsule* c);
  // Queues one RDMA READ or WRITE of len bytes between buf + offset and the host's keyed
  // memory at the same offset.
  void QueueDataOp(RdmaCapsule* c, DataOp* d, Op::Kind kind, RegisteredBuffer* buf,
                   const KeyedSgl& k, uint32_t offset, uint32_t len, DataCallback cb);
  // Controller: the capsule's transfer buffer, at least need bytes (nullptr: *s says why).
  RegisteredBuffer* TransferBuffer(RdmaCapsule* c, size_t need, Status* s);
  void ReleaseTransferBuffer(RdmaCapsule* c);
  bool Idle() const;

  void FinishDrain();
  void Fail(const Status& s);
  void FailTransfers(const Status& s);
  void Teardown();

  EventLoop* loop_;
  // Declared first so that it goes last: the capsules' registrations are made in it.
  std::shared_ptr<OwnedPd> own_pd_;
  ibv_pd* pd_;
  std::unique_ptr<QueueResources> res_;
  ibv_qp* qp_ = nullptr;
  StagingPool* staging_;  // the device's; outlives the queue pair
  uint16_t qsize_;
  uint32_t max_icd_;        // host: the peer's (0 on the admin queue); controller: ours
  uint64_t max_transfer_;
  std::string peer_;
  ErrorCallback on_error_;
  ReceiveCallback on_receive_;
  int refs_ = 1;
  bool dead_ = false;
  bool freed_ = false;
  bool polling_ = false;
  bool draining_ = false;
  EventLoop::TimerId drain_timer_;  // freed, waiting for the last sends before the QP goes
  static constexpr std::chrono::milliseconds kDrainTime{200};

  std::vector<RdmaCapsule> capsules_;
  RdmaCapsule* free_commands_ = nullptr;
  RdmaCapsule* free_responses_ = nullptr;
  RegisteredBuffer send_region_;  // one SEND slot per capsule of the sending pool
  uint32_t send_slot_ = 0;
  CidTable<RdmaCapsule> cids_;    // host: commands waiting for their response

  std::vector<ibv_recv_wr> recv_wrs_;
  std::vector<ibv_sge> recv_sges_;
  ibv_recv_wr* recv_head_ = nullptr;
  ibv_recv_wr* recv_tail_ = nullptr;
  ibv_send_wr* send_head_ = nullptr;
  ibv_send_wr* send_tail_ = nullptr;
  uint32_t sends_outstanding_ = 0;
  uint32_t cq_events_unacked_ = 0;
};

// A non-blocking RDMA CM event channel; a clear error when the machine has no RDMA.
Status MakeCmChannel(rdma_event_channel** out);
// "addr:port" of a CM identifier's peer.
std::string CmPeerName(rdma_cm_id* id);
ControllerTransportValues RdmaControllerValues(uint32_t max_icd, uint64_t max_transfer);
// Queue sizes: work requests a queue of `entries` needs on each side.
inline uint32_t ControllerSends(uint32_t entries) { return entries * 3 + 8; }
inline uint32_t HostSends(uint32_t entries) { return entries + 4; }

}  // namespace nvmf::rdma
