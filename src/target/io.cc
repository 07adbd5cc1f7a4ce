// NVM commands: Read, Write, Flush, Write Zeroes, Dataset Management (and the reservation
// commands, io_reservation.cc, which also holds the conflict check made here).
//
// What may touch the medium and when (docs/reliability.md):
//  - Write data is received into an I/O buffer of the request's and reaches the backend
//    only once all of it has arrived and verified: a digest error, a reset or a host that
//    stops sending leaves the namespace as it was. This costs one copy for memory
//    namespaces, which the guarantee needs.
//  - A read from a memory namespace is sent straight from the namespace's memory when the
//    queue pair sends no data digest; with one, it is first copied into an I/O buffer,
//    so that the digest covers exactly the bytes sent even while another queue writes.
//  - FUA, and every write while the host has turned the volatile write cache off, go to
//    the backend as durable writes (RWF_DSYNC for files).
#include <cstring>

#include "nvmf/spec/admin.h"
#include "target/queue.h"

namespace nvmf::target {
namespace {

constexpr uint16_t Generic(uint8_t sc, bool dnr = true) {
  return spec::MakeStatus(spec::kSctGeneric, sc, dnr);
}
// A failed data transfer from the host: the transport's fault, worth a retry.
uint16_t FromStatus(const Status& s) {
  return s.ok() ? spec::kStatusSuccess : Generic(spec::kScTransientTransportError, false);
}
// A failed backend operation.
uint16_t MediaError(const Status& s) {
  return s.ok() ? spec::kStatusSuccess : Generic(spec::kScInternalError, false);
}

}  // namespace

void QueueHandler::HandleIo(Request* r) {
  const spec::Sqe& sqe = r->sqe();
  if (sqe.opc == spec::kNvmFlush) return FlushCommand(r);
  r->ns = EnterNamespace(sqe.nsid);
  if (r->ns == nullptr) return Complete(r, Generic(spec::kScInvalidNamespace));
  if (const uint16_t ana = AnaStatus(r->ns); ana != 0) return Complete(r, ana);
  if (const uint16_t resv = ReservationStatus(r->ns, sqe.opc); resv != 0) return Complete(r, resv);
  switch (sqe.opc) {
    case spec::kNvmRead: return ReadCommand(r);
    case spec::kNvmWrite: return WriteCommand(r);
    case spec::kNvmWriteZeroes: return WriteZeroesCommand(r);
    case spec::kNvmDatasetManagement: return DatasetManagement(r);
    case spec::kNvmReservationRegister:
    case spec::kNvmReservationReport:
    case spec::kNvmReservationAcquire:
    case spec::kNvmReservationRelease:
      return ReservationCommand(r);
    default: return Complete(r, Generic(spec::kScInvalidOpcode));
  }
}

// The path-related status for a command on ns through this queue's port, when that port
// gives the namespace's ANA group a state in which it cannot be accessed; 0 otherwise.
uint16_t QueueHandler::AnaStatus(const Namespace* ns) const {
  switch (port_->ana[ns->config.ana_group].load(std::memory_order_relaxed)) {
    case spec::kAnaOptimized:
    case spec::kAnaNonOptimized:
      return 0;
    case spec::kAnaPersistentLoss:
      return spec::MakeStatus(spec::kSctPathRelated, spec::kScAnaPersistentLoss, false);
    case spec::kAnaChange:
      return spec::MakeStatus(spec::kSctPathRelated, spec::kScAnaTransition, false);
    default:
      return spec::MakeStatus(spec::kSctPathRelated, spec::kScAnaInaccessible, false);
  }
}

// Checks the command's LBA range (SLBA in CDW10-11, 0's based NLB in CDW12) against the
// namespace and sets the request's offset and length; completes the command on failure.
bool QueueHandler::CheckRange(Request* r) {
  const spec::Sqe& sqe = r->sqe();
  const uint64_t slba = static_cast<uint64_t>(sqe.cdw11) << 32 | sqe.cdw10;
  const uint64_t nlb = (sqe.cdw12 & 0xffff) + 1ull;
  r->slba = slba;
  if (slba >= r->ns->blocks || nlb > r->ns->blocks - slba) {
    Complete(r, Generic(spec::kScLbaOutOfRange));
    return false;
  }
  r->offset = slba << r->ns->lba_shift;
  r->length = nlb << r->ns->lba_shift;
  return true;
}

// CheckRange, and the data the command carries must match it and fit MDTS.
bool QueueHandler::CheckTransfer(Request* r) {
  if (!CheckRange(r)) return false;
  if (CapsuleDataLength(r->capsule) != r->length) {
    Complete(r, Generic(spec::kScDataSglLengthInvalid));
    return false;
  }
  if (r->length > (4096ull << tc_->config.mdts)) {
    Complete(r, Generic(spec::kScInvalidField));
    return false;
  }
  return true;
}

void QueueHandler::ReadCommand(Request* r) {
  if (!CheckTransfer(r)) return;
  ctrl_->reads++;
  ctrl_->blocks_read += r->length >> 9;
  uint8_t* direct = r->ns->backend->Direct(r->offset, r->length);
  if (direct != nullptr && !QpairDigestsSentData(qp_)) {
    // Zero copy: the memory outlives the queue pair, so nothing waits for on_sent.
    uint16_t st = SendControllerData(r->capsule, 0, MemDesc::Buffer(direct, r->length), r->length,
                                     nullptr);
    if (st == kSendSuccessSent) return Release(r);
    return Complete(r, st);
  }
  WithIoBuffer(r, &QueueHandler::ReadFromBackend);
}

void QueueHandler::ReadFromBackend(Request* r) {
  Request* req = r;
  r->ns->backend->Read(loop_, r->offset, MemDesc::Buffer(r->io, r->length), r->length,
                       [req](const Status& s) {
                         QueueHandler* q = req->queue;
                         if (!s.ok()) return q->Complete(req, MediaError(s));
                         q->SendBytesAndComplete(req, req->io, req->length);
                       });
}

void QueueHandler::WriteCommand(Request* r) {
  if (!CheckTransfer(r)) return;
  ctrl_->writes++;
  ctrl_->blocks_written += r->length >> 9;
  WithIoBuffer(r, &QueueHandler::ReceiveWriteData);
}

void QueueHandler::ReceiveWriteData(Request* r) {
  Request* req = r;
  ReceiveControllerData(r->capsule, 0, MemDesc::Buffer(r->io, r->length), r->length,
                        [req](size_t, const Status& s) {
                          // Not OK: some of the data is missing or damaged. None of it
                          // was applied, and the host may retry.
                          if (!s.ok()) return req->queue->Complete(req, FromStatus(s));
                          req->queue->WriteToBackend(req);
                        });
}

void QueueHandler::WriteToBackend(Request* r) {
  Request* req = r;
  auto done = [req](const Status& ws) { req->queue->Complete(req, MediaError(ws)); };
  const bool fua = (r->sqe().cdw12 >> 30 & 1) != 0;
  const MemDesc src = MemDesc::Buffer(r->io, r->length);
  if (fua || ctrl_->volatile_write_cache.load(std::memory_order_relaxed) == 0) {
    r->ns->backend->WriteDurable(loop_, r->offset, src, r->length, done);
  } else {
    r->ns->backend->Write(loop_, r->offset, src, r->length, done);
  }
}

void QueueHandler::FlushCommand(Request* r) {
  const uint32_t nsid = r->sqe().nsid;
  Request* req = r;
  auto done = [req](const Status& s) {
    if (!s.ok() && req->part_status == 0) req->part_status = MediaError(s);
    if (--req->parts_left == 0) req->queue->Complete(req, req->part_status);
  };
  if (nsid == 0xFFFFFFFFu) {  // every namespace
    const NamespaceMap& all = Namespaces();
    if (all.empty()) return CompleteSuccess(r);
    r->parts_left = static_cast<uint32_t>(all.size()) + 1;  // +1 until all are issued
    for (const auto& [id, ns] : all) {
      Namespace* n = ns.get();
      if (!n->Enter()) {  // being removed: nothing of it to flush for this host any more
        done(Status::OK());
        continue;
      }
      n->backend->Flush(loop_, [n, done](const Status& s) {
        n->Exit();
        done(s);
      });
    }
    done(Status::OK());
    return;
  }
  r->ns = EnterNamespace(nsid);
  if (r->ns == nullptr) return Complete(r, Generic(spec::kScInvalidNamespace));
  if (const uint16_t resv = ReservationStatus(r->ns, spec::kNvmFlush); resv != 0) return Complete(r, resv);
  r->parts_left = 1;
  r->ns->backend->Flush(loop_, done);
}

void QueueHandler::FlushAll(std::function<void(uint16_t status)> done) {
  struct State {
    size_t left;
    uint16_t status = spec::kStatusSuccess;
    std::function<void(uint16_t)> done;
  };
  const NamespaceMap& all = Namespaces();
  auto* st = new State{all.size() + 1, spec::kStatusSuccess, std::move(done)};
  auto part = [st](const Status& s) {
    if (!s.ok() && st->status == spec::kStatusSuccess) st->status = MediaError(s);
    if (--st->left == 0) {
      st->done(st->status);
      delete st;
    }
  };
  for (const auto& [id, ns] : all) {
    Namespace* n = ns.get();
    if (!n->Enter()) {
      part(Status::OK());
      continue;
    }
    n->backend->Flush(loop_, [n, part](const Status& s) {
      n->Exit();
      part(s);
    });
  }
  part(Status::OK());  // the +1: all are issued
}

void QueueHandler::FlushNamespaces(Request* r) {
  Request* req = r;
  FlushAll([req](uint16_t status) { req->queue->Complete(req, status); });
}

void QueueHandler::WriteZeroesCommand(Request* r) {
  if (!CheckRange(r)) return;
  ctrl_->writes++;
  Request* req = r;
  r->ns->backend->WriteZeroes(loop_, r->offset, r->length, [req](const Status& s) {
    req->queue->Complete(req, MediaError(s));
  });
}

void QueueHandler::DatasetManagement(Request* r) {
  const spec::Sqe& sqe = r->sqe();
  const uint32_t nr = (sqe.cdw10 & 0xff) + 1;
  const bool deallocate = (sqe.cdw11 >> 2 & 1) != 0;
  const size_t bytes = nr * sizeof(spec::DsmRange);
  if (CapsuleDataLength(r->capsule) < bytes) return Complete(r, Generic(spec::kScDataSglLengthInvalid));
  Request* req = r;
  ReceiveControllerData(r->capsule, 0, MemDesc::Buffer(r->Buffer(bytes), bytes), bytes,
                        [req, nr, deallocate](size_t, const Status& s) {
    QueueHandler* q = req->queue;
    if (!s.ok()) return q->Complete(req, FromStatus(s));
    const auto* ranges = reinterpret_cast<const spec::DsmRange*>(req->buffer.data());
    const Namespace* ns = req->ns;
    for (uint32_t i = 0; i < nr; i++) {  // all ranges are checked before any is touched
      if (ranges[i].slba >= ns->blocks || ranges[i].nlb > ns->blocks - ranges[i].slba) {
        req->slba = ranges[i].slba;
        return q->Complete(req, Generic(spec::kScLbaOutOfRange));
      }
    }
    if (!deallocate) return q->CompleteSuccess(req);  // only attributes: advisory
    req->parts_left = nr + 1;
    auto done = [req](const Status& ds) {
      if (!ds.ok() && req->part_status == 0) req->part_status = MediaError(ds);
      if (--req->parts_left == 0) req->queue->Complete(req, req->part_status);
    };
    for (uint32_t i = 0; i < nr; i++) {
      if (ranges[i].nlb == 0) {
        req->parts_left--;
        continue;
      }
      ns->backend->Deallocate(q->loop_, ranges[i].slba << ns->lba_shift,
                              static_cast<uint64_t>(ranges[i].nlb) << ns->lba_shift, done);
    }
    done(Status::OK());
  });
}

}  // namespace nvmf::target
