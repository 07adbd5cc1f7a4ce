// NVM commands: Read, Write, Flush, Write Zeroes, Dataset Management. With a memory
// backend the data moves straight between the socket and the namespace's memory; other
// backends go through the request's bounce buffer.
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
  r->ns = ctrl_->subsystem->Find(sqe.nsid);
  if (r->ns == nullptr) return Complete(r, Generic(spec::kScInvalidNamespace));
  switch (sqe.opc) {
    case spec::kNvmRead: return ReadCommand(r);
    case spec::kNvmWrite: return WriteCommand(r);
    case spec::kNvmWriteZeroes: return WriteZeroesCommand(r);
    case spec::kNvmDatasetManagement: return DatasetManagement(r);
    default: return Complete(r, Generic(spec::kScInvalidOpcode));
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
  if (uint8_t* direct = r->ns->backend->Direct(r->offset, r->length); direct != nullptr) {
    uint16_t st = SendControllerData(r->capsule, 0, MemDesc::Buffer(direct, r->length), r->length,
                                     nullptr);
    if (st == kSendSuccessSent) return Release(r);
    return Complete(r, st);
  }
  Request* req = r;
  r->ns->backend->Read(loop_, r->offset, MemDesc::Buffer(r->Buffer(r->length), r->length), r->length,
                       [req](const Status& s) {
                         QueueHandler* q = req->queue;
                         if (!s.ok()) return q->Complete(req, MediaError(s));
                         q->SendAndComplete(req);
                       });
}

void QueueHandler::WriteCommand(Request* r) {
  if (!CheckTransfer(r)) return;
  ctrl_->writes++;
  ctrl_->blocks_written += r->length >> 9;
  Request* req = r;
  if (uint8_t* direct = r->ns->backend->Direct(r->offset, r->length); direct != nullptr) {
    ReceiveControllerData(r->capsule, 0, MemDesc::Buffer(direct, r->length), r->length,
                          [req](size_t, const Status& s) { req->queue->Complete(req, FromStatus(s)); });
    return;
  }
  ReceiveControllerData(
      r->capsule, 0, MemDesc::Buffer(r->Buffer(r->length), r->length), r->length,
      [req](size_t, const Status& s) {
        QueueHandler* q = req->queue;
        if (!s.ok()) return q->Complete(req, FromStatus(s));
        req->ns->backend->Write(q->loop_, req->offset, MemDesc::Buffer(req->buffer.data(), req->length),
                                req->length, [req](const Status& ws) {
                                  req->queue->Complete(req, MediaError(ws));
                                });
      });
}

void QueueHandler::FlushCommand(Request* r) {
  const uint32_t nsid = r->sqe().nsid;
  Request* req = r;
  auto done = [req](const Status& s) {
    if (!s.ok() && req->part_status == 0) req->part_status = MediaError(s);
    if (--req->parts_left == 0) req->queue->Complete(req, req->part_status);
  };
  if (nsid == 0xFFFFFFFFu) {  // every namespace
    const auto& all = ctrl_->subsystem->namespaces;
    if (all.empty()) return CompleteSuccess(r);
    r->parts_left = static_cast<uint32_t>(all.size()) + 1;  // +1 until all are issued
    for (const auto& [id, ns] : all) ns.backend->Flush(loop_, done);
    done(Status::OK());
    return;
  }
  r->ns = ctrl_->subsystem->Find(nsid);
  if (r->ns == nullptr) return Complete(r, Generic(spec::kScInvalidNamespace));
  r->parts_left = 1;
  r->ns->backend->Flush(loop_, done);
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
