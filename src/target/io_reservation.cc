// Reservations on the queues: the conflict check of the I/O path, the four reservation
// commands (the state machine is Reservation's), the notifications they send to other
// hosts' controllers, and the admin side of those notifications (log page 80h, the
// Reservation Notification Mask and Reservation Persistence features).
//
// Threads: the commands run on the I/O queue's loop against the namespace's shared
// Reservation; a notification for another controller is posted to that controller's admin
// loop, where its log and events live (controller.h).
#include <algorithm>
#include <cstring>

#include "target/queue.h"

namespace nvmf::target {
namespace {

constexpr uint16_t Generic(uint8_t sc) { return spec::MakeStatus(spec::kSctGeneric, sc, true); }
constexpr uint32_t kAllNamespaces = 0xFFFFFFFFu;

}  // namespace

// What a reservation forbids this controller's host (0: allowed). Reads are Read; the
// commands that change the medium are writes. The reservation commands themselves, and
// any other opcode, are not subject to it.
uint16_t QueueHandler::ReservationStatus(const Namespace* ns, uint8_t opc) const {
  switch (opc) {
    case spec::kNvmRead:
      return ns->reservation->Check(ctrl_->hostid, ResvAccess::kRead);
    case spec::kNvmWrite:
    case spec::kNvmWriteZeroes:
    case spec::kNvmDatasetManagement:
    case spec::kNvmFlush:
      return ns->reservation->Check(ctrl_->hostid, ResvAccess::kWrite);
    default:
      return 0;
  }
}

void QueueHandler::ReservationCommand(Request* r) {
  const spec::Sqe& sqe = r->sqe();
  if (CapsuleDataLength(r->capsule) > tc_->MaxDataBytes()) return Complete(r, Generic(spec::kScDataSglLengthInvalid));
  if (sqe.opc == spec::kNvmReservationReport) return ReservationReport(r);
  // Register and Acquire carry two keys, Release one.
  const size_t need = sqe.opc == spec::kNvmReservationRelease ? 8 : sizeof(spec::ResvKeys);
  if (CapsuleDataLength(r->capsule) < need) return Complete(r, Generic(spec::kScDataSglLengthInvalid));
  uint8_t* keys = r->Buffer(sizeof(spec::ResvKeys));
  std::memset(keys, 0, sizeof(spec::ResvKeys));
  Request* req = r;
  ReceiveControllerData(r->capsule, 0, MemDesc::Buffer(keys, need), need, [req](size_t, const Status& s) {
    if (!s.ok()) {
      return req->queue->Complete(req, spec::MakeStatus(spec::kSctGeneric, spec::kScTransientTransportError));
    }
    req->queue->ApplyReservationCommand(req);
  });
}

void QueueHandler::ApplyReservationCommand(Request* r) {
  const spec::Sqe& sqe = r->sqe();
  spec::ResvKeys k;
  std::memcpy(&k, r->buffer.data(), sizeof(k));
  Reservation& resv = *r->ns->reservation;
  std::vector<ResvNotice> notices;
  uint16_t st;
  switch (sqe.opc) {
    case spec::kNvmReservationRegister: st = resv.Register(ctrl_->hostid, sqe.cdw10, k.crkey, k.other, &notices); break;
    case spec::kNvmReservationAcquire: st = resv.Acquire(ctrl_->hostid, sqe.cdw10, k.crkey, k.other, &notices); break;
    default: st = resv.Release(ctrl_->hostid, sqe.cdw10, k.crkey, &notices); break;
  }
  if (!notices.empty()) NotifyReservation(r->ns->nsid, notices);
  Complete(r, st);
}

void QueueHandler::ReservationReport(Request* r) {
  const spec::Sqe& sqe = r->sqe();
  const uint64_t want = (static_cast<uint64_t>(sqe.cdw10) + 1) * 4;  // NUMD, 0's based dwords
  const uint16_t st = r->ns->reservation->Report((sqe.cdw11 & 1) != 0, &r->buffer);
  if (st != 0) return Complete(r, st);
  SendAndComplete(r, static_cast<size_t>(std::min<uint64_t>(want, r->buffer.size())));
}

void QueueHandler::NotifyReservation(uint32_t nsid, const std::vector<ResvNotice>& notices) {
  for (const auto& c : tc_->controllers.All(ctrl_->subsystem)) {
    QueueRef a = c->AdminQueue();
    if (a.loop == nullptr) continue;
    for (const ResvNotice& n : notices) {
      if (n.host != c->hostid) continue;
      a.loop->Post([w = a.handler, nsid, type = n.type] {
        if (auto q = w.lock()) q->ReservationNotice(nsid, type);
      });
    }
  }
}

// ---------------------------------------------------------------- admin side

namespace {
uint32_t MaskFor(const std::map<uint32_t, uint32_t>& masks, uint32_t nsid) {
  auto it = masks.find(nsid);
  if (it == masks.end()) it = masks.find(kAllNamespaces);
  return it == masks.end() ? 0 : it->second;
}
}  // namespace

void QueueHandler::ReservationNotice(uint32_t nsid, uint8_t type) {
  if (closed_ || ctrl_ == nullptr || qid_ != 0) return;
  if ((MaskFor(ctrl_->reservation_masks, nsid) & 1u << type) != 0) return;
  auto& log = ctrl_->reservation_log;
  if (log.size() >= Controller::kReservationLogEntries) log.pop_front();  // lost: the count skips it
  spec::ResvNotificationLog e{};
  if (++ctrl_->reservation_log_count == 0) ctrl_->reservation_log_count = 1;  // 0 means empty
  e.count = ctrl_->reservation_log_count;
  e.type = type;
  e.nsid = nsid;
  log.push_back(e);
  RaiseEvent(kEventReservation);
}

// The log page: the oldest entry (taken from the log when consume), or an empty one.
std::vector<uint8_t> QueueHandler::ReservationLog(bool consume) {
  auto& log = ctrl_->reservation_log;
  spec::ResvNotificationLog e{};
  if (!log.empty()) {
    e = log.front();
    if (consume) log.pop_front();
    const size_t after = consume ? log.size() : log.size() - 1;
    e.available = static_cast<uint8_t>(std::min<size_t>(after, 0xFF));
  }
  std::vector<uint8_t> page(sizeof(e));
  std::memcpy(page.data(), &e, sizeof(e));
  return page;
}

uint16_t QueueHandler::SetReservationFeature(uint8_t fid, uint32_t nsid, uint32_t cdw11) {
  if (ctrl_->subsystem->discovery) return Generic(spec::kScInvalidField);
  if (fid == spec::kFeatReservationNotificationMask && nsid == kAllNamespaces) {
    ctrl_->reservation_masks.clear();
    ctrl_->reservation_masks[kAllNamespaces] = cdw11 & spec::kResvMaskBits;
    return 0;
  }
  const auto it = Namespaces().find(nsid);
  if (it == Namespaces().end()) return Generic(spec::kScInvalidNamespace);
  if (fid == spec::kFeatReservationNotificationMask) {
    ctrl_->reservation_masks[nsid] = cdw11 & spec::kResvMaskBits;
    return 0;
  }
  return it->second->reservation->SetPtpl((cdw11 & 1) != 0);
}

uint16_t QueueHandler::GetReservationFeature(uint8_t fid, uint32_t nsid, uint32_t* cdw0) {
  if (ctrl_->subsystem->discovery) return Generic(spec::kScInvalidField);
  if (fid == spec::kFeatReservationNotificationMask && nsid == kAllNamespaces) {
    *cdw0 = MaskFor(ctrl_->reservation_masks, nsid);
    return 0;
  }
  const auto it = Namespaces().find(nsid);
  if (it == Namespaces().end()) return Generic(spec::kScInvalidNamespace);
  *cdw0 = fid == spec::kFeatReservationNotificationMask ? MaskFor(ctrl_->reservation_masks, nsid)
                                                         : (it->second->reservation->ptpl() ? 1u : 0u);
  return 0;
}

}  // namespace nvmf::target
