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
#include "target/context.h"
#include "target/request.h"

namespace nvmf::target {

class QueueHandler : public std::enable_shared_from_this<QueueHandler> {
 public:
  // release: called on the loop when the handler may be destroyed.
  QueueHandler(TargetContext* tc, EventLoop* loop, std::function<void(QueueHandler*)> release)
      : tc_(tc), loop_(loop), release_(std::move(release)) {}
  ~QueueHandler();

  Status Attach(const TcpQpairParams& params);
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
  void HandlePropertySet(Request* r);
  void HandleAdmin(Request* r);  // admin.cc
  void HandleIo(Request* r);     // io.cc
  // admin.cc
  void Identify(Request* r);
  void GetLogPage(Request* r);
  void SetFeatures(Request* r);
  void GetFeatures(Request* r);
  void AsyncEventRequest(Request* r);
  // io.cc
  void ReadCommand(Request* r);
  void WriteCommand(Request* r);
  void FlushCommand(Request* r);
  void WriteZeroesCommand(Request* r);
  void DatasetManagement(Request* r);
  bool CheckRange(Request* r);
  bool CheckTransfer(Request* r);

 public:
  // Completions, used by the command handlers.
  void Complete(Request* r, uint16_t status);
  void CompleteSuccess(Request* r) { Complete(r, spec::kStatusSuccess); }
  void Release(Request* r);  // drops one hold; the request returns to the pool at zero
  // Sends the first CapsuleDataLength bytes of r->buffer (zero-extended) as the
  // command's data, then completes the command.
  void SendAndComplete(Request* r);
  std::shared_ptr<Controller> controller() const { return ctrl_; }
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
  std::function<void(QueueHandler*)> release_;
  Qpair* qp_ = nullptr;
  bool closed_ = false;
  bool released_ = false;
  bool connected_ = false;
  uint16_t qid_ = 0;
  uint16_t sqsize_ = 0;  // entries
  uint16_t sqhd_ = 0;
  std::shared_ptr<Controller> ctrl_;
  std::vector<std::unique_ptr<Request>> requests_;
  Request* free_ = nullptr;
  size_t inflight_ = 0;
  std::string peer_;

  // Admin queue only.
  EventLoop::TimerId kato_timer_;
  EventLoop::Clock::time_point last_keep_alive_;
  std::vector<Request*> aers_;
};

}  // namespace nvmf::target
