// QueueHandler: serves one queue pair of the target. The first command must be a Fabrics
// Connect, which ties the queue to a controller (a new one for an admin queue, an
// existing one for an I/O queue); then Fabrics, admin or NVM commands are dispatched.
//
// Threads: everything runs on the handler's loop. Life cycle: owned by the target's
// per-loop set; Close() frees the queue pair, and the handler leaves the set once no
// request is in flight (backend callbacks may still arrive until then).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <memory>
#include <vector>

#include "nvmf/event_loop.h"
#include "nvmf/transport.h"
#include "target/buffer_pool.h"
#include "target/context.h"
#include "target/request.h"

namespace nvmf::target {

class QueueHandler : public std::enable_shared_from_this<QueueHandler>,
                     private BufferPool::Waiter {
 public:
  // release: called on the loop when the handler may be destroyed. pool: the loop's I/O
  // buffers (outlives the handler). port: the state of the port the connection came in
  // through.
  QueueHandler(TargetContext* tc, EventLoop* loop, BufferPool* pool, std::shared_ptr<PortState> port,
               std::function<void(QueueHandler*)> release)
      : tc_(tc), loop_(loop), pool_(pool), port_(std::move(port)), release_(std::move(release)) {}
  virtual ~QueueHandler();

  Status Attach(Connection conn);
  // Ends the queue (and, for an admin queue, its controller). Idempotent.
  void Close(const std::string& why);

  EventLoop* loop() const { return loop_; }
  bool closed() const { return closed_; }

 private:
  void OnReceive(Capsule* c);
  void OnError(const Status& s);
  void Dispatch(Request* r);
  void HandleFabrics(Request* r);
  void HandleConnect(Request* r);
  void FinishConnect(Request* r);
  void HandlePropertyGet(Request* r);
  // auth.cc: DH-HMAC-CHAP. StartAuthentication returns the Connect response's AUTHREQ
  // bits (in dword 0's upper half), 0 when the host need not authenticate.
  uint32_t StartAuthentication(const std::string& hostnqn, const std::string& subnqn);
  bool AuthPending() const;  // connected, and not authenticated yet
  void HandleAuthSend(Request* r);
  void HandleAuthReceive(Request* r);
  void AfterAuthStep();
  void HandlePropertySet(Request* r);
  void HandleAdmin(Request* r);  // admin.cc
  void HandleIo(Request* r);     // io.cc
  // admin.cc
  void Identify(Request* r);
  void GetLogPage(Request* r);
  void SetFeatures(Request* r);
  void GetFeatures(Request* r);
  void AsyncEventRequest(Request* r);
  void RaiseEvent(uint32_t kind);
  std::vector<uint8_t> AnaLog(bool groups_only);
  void DeliverEvents();  // completes Asynchronous Event Requests with pending events
  // io_reservation.cc
  uint16_t ReservationStatus(const Namespace* ns, uint8_t opc) const;
  void ReservationCommand(Request* r);
  void ReservationReport(Request* r);
  void ApplyReservationCommand(Request* r);
  void NotifyReservation(uint32_t nsid, const std::vector<ResvNotice>& notices);
  std::vector<uint8_t> ReservationLog(bool consume);
  uint16_t SetReservationFeature(uint8_t fid, uint32_t nsid, uint32_t cdw11);
  uint16_t GetReservationFeature(uint8_t fid, uint32_t nsid, uint32_t* cdw0);
  // io.cc
  void ReadCommand(Request* r);
  void WriteCommand(Request* r);
  void FlushCommand(Request* r);
  void WriteZeroesCommand(Request* r);
  void DatasetManagement(Request* r);
  bool CheckRange(Request* r);
  uint16_t AnaStatus(const Namespace* ns) const;
  bool CheckTransfer(Request* r);
  void ReadFromBackend(Request* r);
  // Flushes every namespace of the subsystem; done runs once with the first error.
  void FlushAll(std::function<void(uint16_t status)> done);
  void FlushNamespaces(Request* r);  // then completes r
  void ReceiveWriteData(Request* r);
  void WriteToBackend(Request* r);
  // I/O buffers: runs step(r) once r->io holds r->length bytes; while the queue's share
  // (max_queue_buffer) or the loop's budget has no room, r waits, in order.
  void WithIoBuffer(Request* r, void (QueueHandler::*step)(Request*));
  bool TryIoBuffer(Request* r);
  void OnBufferRoom() override;
  void RunBufferWaiters();
  void ReleaseIoBuffer(Request* r);

 public:
  // Completions, used by the command handlers.
  void Complete(Request* r, uint16_t status);
  void CompleteSuccess(Request* r) { Complete(r, spec::kStatusSuccess); }
  void Release(Request* r);  // drops one hold; the request returns to the pool at zero
  // Sends the first `have` bytes of r->buffer as the command's data, zero-extended to
  // its data length (the zeroes come from a shared read-only region, not from memory of
  // the request's), then completes the command.
  void SendAndComplete(Request* r, size_t have);
  void SendBytesAndComplete(Request* r, const uint8_t* p, size_t have);
  std::shared_ptr<Controller> controller() const { return ctrl_; }
  uint16_t portid() const { return port_->portid; }
  // Admin queue, on its loop: an ANA state of this queue's port changed.
  void AnaChanged();
  // The subsystem's namespaces as this queue sees them: its own snapshot, taken anew when
  // the subsystem has changed since (connected queues only).
  const NamespaceMap& Namespaces();
  // The namespace, entered (Namespace::Enter; the caller must Exit), or nullptr when it
  // does not exist or is being removed.
  Namespace* EnterNamespace(uint32_t nsid);
  // Admin queue, on its loop: a namespace was added, removed or resized (it joins the
  // Changed Namespace List), or the discovery log changed; raises the event when the
  // host enabled it (Set Features Asynchronous Event Configuration).
  void NamespaceChanged(uint32_t nsid);
  void DiscoveryChanged();
  // Admin queue, on its loop: a reservation notification for this controller's host
  // (queued in the Reservation Notification log unless masked, then the event raised).
  void ReservationNotice(uint32_t nsid, uint8_t type);
  TargetContext* context() const { return tc_; }
  uint16_t qid() const { return qid_; }

 private:
  Request* TakeRequest();
  void ArmKeepAlive();
  void OnKeepAliveTimer();
  void TearDownController(const std::string& why);
  void MaybeRelease();

  TargetContext* tc_;
  EventLoop* loop_;
  BufferPool* pool_;
  std::shared_ptr<PortState> port_;
  std::function<void(QueueHandler*)> release_;
  Qpair* qp_ = nullptr;
  bool closed_ = false;
  bool released_ = false;
  bool connected_ = false;
  uint16_t qid_ = 0;
  uint16_t sqsize_ = 0;  // entries
  uint16_t sqhd_ = 0;
  std::shared_ptr<Controller> ctrl_;
  std::vector<std::unique_ptr<Request>> requests_;  // grows with use to the queue size
  Request* free_ = nullptr;
  size_t inflight_ = 0;
  size_t io_bytes_ = 0;  // I/O buffer bytes this queue holds
  Request* wait_head_ = nullptr;  // requests waiting for an I/O buffer
  Request* wait_tail_ = nullptr;
  bool room_posted_ = false;
  // DH-HMAC-CHAP (auth.cc): the host's credentials (kept alive for the transaction),
  // the transaction, and whether the queue has authenticated.
  std::shared_ptr<const auth::ControllerAuthConfig> auth_config_;
  std::unique_ptr<auth::ControllerTransaction> auth_;
  bool auth_ok_ = false;
  EventLoop::TimerId connect_timer_;
  std::string peer_;

  std::shared_ptr<const NamespaceMap> ns_;
  uint64_t ns_epoch_ = 0;

  // Admin queue only.
  EventLoop::TimerId kato_timer_;
  EventLoop::Clock::time_point last_keep_alive_;
  std::vector<Request*> aers_;
};

}  // namespace nvmf::target
