// Reservation commands from the host: building their commands and data, decoding Report.
#include <cstring>

#include "nvmf/host_resv.h"

namespace nvmf::host {
namespace {

spec::Sqe ResvSqe(uint8_t opc, uint32_t nsid, uint8_t action, bool iekey, uint8_t rtype) {
  spec::Sqe sqe{};
  sqe.opc = opc;
  sqe.nsid = nsid;
  sqe.cdw10 = (action & 7u) | (iekey ? 1u << 3 : 0u) | static_cast<uint32_t>(rtype) << 8;
  return sqe;
}

Status OnIoQueue(SyncController& c, const spec::Sqe& sqe, void* buf, size_t len, bool to_controller) {
  if (c.async().io_queue_count() == 0) return Status::InvalidArgument("the association has no I/O queue");
  return c.Command(1, sqe, buf, len, to_controller);
}

}  // namespace

Status ResvRegister(SyncController& c, uint32_t nsid, const ResvRegisterArgs& a) {
  spec::Sqe sqe = ResvSqe(spec::kNvmReservationRegister, nsid, a.action, a.iekey, 0);
  sqe.cdw10 |= static_cast<uint32_t>(a.cptpl & 3) << 30;
  spec::ResvKeys k{a.crkey, a.nrkey};
  return OnIoQueue(c, sqe, &k, sizeof(k), true);
}

Status ResvAcquire(SyncController& c, uint32_t nsid, const ResvAcquireArgs& a) {
  spec::ResvKeys k{a.crkey, a.prkey};
  return OnIoQueue(c, ResvSqe(spec::kNvmReservationAcquire, nsid, a.action, a.iekey, a.rtype), &k, sizeof(k), true);
}

Status ResvRelease(SyncController& c, uint32_t nsid, const ResvReleaseArgs& a) {
  uint64_t crkey = a.crkey;
  return OnIoQueue(c, ResvSqe(spec::kNvmReservationRelease, nsid, a.action, a.iekey, a.rtype), &crkey,
                   sizeof(crkey), true);
}

Status ResvReportGet(SyncController& c, uint32_t nsid, ResvReport* out, bool eds, uint32_t max_registrants) {
  const size_t len = sizeof(spec::ResvStatusExtHeader) + max_registrants * sizeof(spec::ResvRegisteredControllerExt);
  std::vector<uint8_t> buf(len);
  spec::Sqe sqe = ResvSqe(spec::kNvmReservationReport, nsid, 0, false, 0);
  sqe.cdw10 = static_cast<uint32_t>(len / 4 - 1);  // NUMD, 0's based
  sqe.cdw11 = eds ? 1 : 0;
  Status s = OnIoQueue(c, sqe, buf.data(), buf.size(), false);
  if (!s.ok()) return s;
  return ParseResvReport(buf.data(), buf.size(), out);
}

Status ParseResvReport(const uint8_t* data, size_t len, ResvReport* out) {
  spec::ResvStatusExtHeader h;
  if (len < sizeof(h)) return Status::ProtocolError("reservation report shorter than its header");
  std::memcpy(&h, data, sizeof(h));
  *out = ResvReport{};
  out->generation = h.h.gen;
  out->rtype = h.h.rtype;
  out->ptpl = (h.h.ptpls & 1) != 0;
  size_t at = sizeof(h);
  // Only as many as arrived: REGCTL counts them all, the buffer may hold fewer.
  for (uint16_t i = 0; i < h.h.regctl && at + sizeof(spec::ResvRegisteredControllerExt) <= len; i++) {
    spec::ResvRegisteredControllerExt e;
    std::memcpy(&e, data + at, sizeof(e));
    at += sizeof(e);
    ResvRegistrant r;
    r.cntlid = e.cntlid;
    r.holder = (e.rcsts & 1) != 0;
    r.key = e.rkey;
    std::memcpy(r.hostid.data(), e.hostid, 16);
    out->registrants.push_back(r);
  }
  return Status::OK();
}

const char* ResvTypeName(uint8_t rtype) {
  switch (rtype) {
    case spec::kResvNone: return "none";
    case spec::kResvWriteExclusive: return "Write Exclusive";
    case spec::kResvExclusiveAccess: return "Exclusive Access";
    case spec::kResvWriteExclusiveRegistrantsOnly: return "Write Exclusive - Registrants Only";
    case spec::kResvExclusiveAccessRegistrantsOnly: return "Exclusive Access - Registrants Only";
    case spec::kResvWriteExclusiveAllRegistrants: return "Write Exclusive - All Registrants";
    case spec::kResvExclusiveAccessAllRegistrants: return "Exclusive Access - All Registrants";
    default: return "reserved";
  }
}

}  // namespace nvmf::host
