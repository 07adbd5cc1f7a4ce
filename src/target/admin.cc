// Admin commands: Identify, Get Log Page, Set/Get Features, Keep Alive, Asynchronous
// Event Request.
#include <algorithm>
#include <cstring>
#include <map>

#include "nvmf/spec/admin.h"
#include "nvmf/spec/reservation.h"
#include "target/discovery.h"
#include "target/queue.h"

namespace nvmf::target {
namespace {

constexpr uint16_t Generic(uint8_t sc) { return spec::MakeStatus(spec::kSctGeneric, sc, true); }
constexpr uint16_t Specific(uint8_t sc) {
  return spec::MakeStatus(spec::kSctCommandSpecific, sc, true);
}
constexpr uint8_t kScFeatureNotSaveable = 0x0D;
constexpr uint8_t kScAerLimitExceeded = 0x05;
constexpr uint8_t kScInvalidLogPage = 0x09;
constexpr uint32_t kMaxAers = 4;

void CopyPadded(char* dst, size_t n, const std::string& s) {
  std::memset(dst, ' ', n);
  std::memcpy(dst, s.data(), std::min(n, s.size()));
}

// Zeroed request buffer of n bytes: what the command returns, never what the host's SGL
// asks for (the rest of a longer transfer is zero padding from ZeroRegion).
uint8_t* ZeroBuffer(Request* r, size_t n) {
  uint8_t* p = r->Buffer(n);
  std::memset(p, 0, n);
  return p;
}

void Put128(uint8_t* field, uint64_t v) {
  std::memset(field, 0, 16);
  std::memcpy(field, &v, 8);
}

// MDTS: the largest transfer as a power of two of 4 KiB pages (0: no limit).
uint8_t Mdts(uint64_t max_transfer) {
  uint8_t m = 0;
  while (m < 31 && (4096ull << (m + 1)) <= max_transfer) m++;
  return max_transfer < 8192 ? (max_transfer == 0 ? 0 : 1) : m;
}

}  // namespace

void QueueHandler::HandleAdmin(Request* r) {
  switch (r->sqe().opc) {
    case spec::kAdminIdentify: return Identify(r);
    case spec::kAdminGetLogPage: return GetLogPage(r);
    case spec::kAdminSetFeatures: return SetFeatures(r);
    case spec::kAdminGetFeatures: return GetFeatures(r);
    case spec::kAdminAsyncEventRequest: return AsyncEventRequest(r);
    case spec::kAdminKeepAlive:
      last_keep_alive_ = EventLoop::Clock::now();
      return CompleteSuccess(r);
    default:
      return Complete(r, Generic(spec::kScInvalidOpcode));
  }
}

void QueueHandler::Identify(Request* r) {
  const spec::Sqe& sqe = r->sqe();
  const Subsystem* sub = ctrl_->subsystem;
  const uint8_t cns = static_cast<uint8_t>(sqe.cdw10 & 0xff);
  if (CapsuleDataLength(r->capsule) < 4096) return Complete(r, Generic(spec::kScDataSglLengthInvalid));
  uint8_t* buf = ZeroBuffer(r, 4096);
  switch (cns) {
    case spec::kCnsController: {
      auto* id = reinterpret_cast<spec::IdentifyController*>(buf);
      CopyPadded(id->sn, sizeof(id->sn), sub->serial);
      CopyPadded(id->mn, sizeof(id->mn), sub->model);
      CopyPadded(id->fr, sizeof(id->fr), "0.1");
      id->rab = 6;
      // More than one port and controller may reach the subsystem; ANA reporting.
      id->cmic = sub->discovery ? 1 << 1 : (1 << 0 | 1 << 1 | 1 << 3);
      const ControllerTransportValues tv = QpairControllerValues(qp_);
      id->mdts = sub->discovery ? 0 : Mdts(tv.max_transfer);
      id->cntlid = ctrl_->cntlid;
      id->ver = 0x00010400;
      // Discovery log change; or namespace attribute and ANA change notices.
      id->oaes = sub->discovery ? 1u << 31 : (1u << 8 | 1u << 11);
      if (!sub->discovery) {
        id->anatt = kAnaTransitionTimeS;
        // Optimized, non-optimized, inaccessible, persistent loss and change states are
        // reported; a namespace's group does not change while it is attached.
        id->anacap = 1 << 0 | 1 << 1 | 1 << 2 | 1 << 3 | 1 << 4 | 1 << 6;
        id->anagrpmax = kMaxAnaGroups;
        id->nanagrpid = kMaxAnaGroups;
      }
      id->cntrltype = sub->discovery ? 2 : 1;
      id->acl = 3;
      id->aerl = kMaxAers - 1;
      id->frmw = 1 << 1 | 1;  // one slot, slot 1 read-only
      id->lpa = 1 << 1 | 1 << 2;  // commands supported and effects; extended data
      id->elpe = Controller::kErrorLogEntries - 1;
      id->kas = 1;  // keep-alive granularity: 100 ms
      id->sqes = 0x66;
      id->cqes = 0x44;
      id->maxcmd = tc_->config.max_queue_size;
      id->nn = sub->discovery ? 0 : kMaxNsid;
      id->mnan = sub->discovery ? 0 : kMaxNsid;  // Linux's multipath needs it (1..NN) for ANA
      id->oncs = 1 << 2 | 1 << 3 | spec::kOncsReservations;  // DSM, Write Zeroes, reservations
      id->vwc = 1;
      id->sgls = tv.sgls;
      std::snprintf(id->subnqn, sizeof(id->subnqn), "%s", sub->nqn.c_str());
      id->ioccsz = tv.ioccsz;
      id->iorcsz = tv.iorcsz;
      id->icdoff = tv.icdoff;
      id->msdbd = tv.msdbd;
      break;
    }
    case spec::kCnsNamespace: {
      if (sqe.nsid == 0 || (sqe.nsid > kMaxNsid && sqe.nsid != 0xFFFFFFFFu)) {
        return Complete(r, Generic(spec::kScInvalidNamespace));
      }
      const NamespaceMap& all = Namespaces();  // once: a second call may take a newer map
      const auto it = all.find(sqe.nsid);
      if (it == all.end()) break;  // an inactive namespace: all zeroes
      const Namespace* ns = it->second.get();
      auto* id = reinterpret_cast<spec::IdentifyNamespace*>(buf);
      id->nsze = id->ncap = id->nuse = ns->blocks;
      id->nlbaf = 0;
      id->flbas = 0;
      id->dlfeat = 1;   // deallocated blocks read as zeroes
      id->nmic = 1;     // may be shared
      // Every reservation type, IEKEY as from revision 1.3; PTPL where state can persist.
      id->rescap = spec::kRescapAllTypes | spec::kRescapIekey13 |
                   (ns->reservation->ptpl_capable() ? spec::kRescapPtpl : 0);
      id->anagrpid = ns->config.ana_group;
      id->lbaf[0].lbads = static_cast<uint8_t>(ns->lba_shift);
      std::memcpy(id->nguid, ns->nguid, 16);
      break;
    }
    case spec::kCnsActiveNamespaces: {
      if (sqe.nsid >= 0xFFFFFFFEu) return Complete(r, Generic(spec::kScInvalidNamespace));
      auto* list = reinterpret_cast<uint32_t*>(buf);
      size_t n = 0;
      for (const auto& [nsid, ns] : Namespaces()) {
        if (nsid > sqe.nsid && n < 1024) list[n++] = nsid;
      }
      break;
    }
    case spec::kCnsNamespaceDescriptors: {
      const NamespaceMap& all = Namespaces();
      const auto it = all.find(sqe.nsid);
      if (it == all.end()) return Complete(r, Generic(spec::kScInvalidNamespace));
      const Namespace* ns = it->second.get();
      uint8_t* p = buf;
      auto add = [&p](uint8_t type, const void* v, uint8_t len) {
        spec::NidHeader h{type, len, {0, 0}};
        std::memcpy(p, &h, sizeof(h));
        std::memcpy(p + sizeof(h), v, len);
        p += sizeof(h) + len;
      };
      add(spec::kNidNguid, ns->nguid, 16);
      add(spec::kNidUuid, ns->uuid, 16);
      uint8_t csi = 0;  // NVM command set
      add(spec::kNidCsi, &csi, 1);
      break;
    }
    default:
      return Complete(r, Generic(spec::kScInvalidField));
  }
  SendAndComplete(r, 4096);
}

void QueueHandler::GetLogPage(Request* r) {
  const spec::Sqe& sqe = r->sqe();
  const uint8_t lid = spec::GetLogPageLid(sqe);
  const uint64_t len = spec::GetLogPageBytes(sqe);
  const uint64_t offset = spec::GetLogPageOffset(sqe);
  if (len != CapsuleDataLength(r->capsule)) return Complete(r, Generic(spec::kScDataSglLengthInvalid));
  if (offset % 4 != 0) return Complete(r, Generic(spec::kScInvalidField));
  const bool discovery = ctrl_->subsystem->discovery;
  const bool rae = (sqe.cdw10 >> 15 & 1) != 0;  // Retain Asynchronous Event
  std::vector<uint8_t> page;  // admin path: the log is built whole, then the window sent
  switch (lid) {
    case spec::kLogError: {
      auto entries = ctrl_->ErrorLog();
      page.resize(Controller::kErrorLogEntries * sizeof(spec::ErrorLogEntry));
      if (!entries.empty()) {  // memcpy from an empty vector's null data() is undefined
        std::memcpy(page.data(), entries.data(), entries.size() * sizeof(spec::ErrorLogEntry));
      }
      break;
    }
    case spec::kLogSmart: {
      if (discovery) return Complete(r, Specific(kScInvalidLogPage));
      spec::SmartLog log{};
      log.temperature = 298;  // kelvin
      log.avail_spare = 100;
      log.spare_thresh = 10;
      // Data units are thousands of 512-byte units, rounded up.
      Put128(log.data_units_read, (ctrl_->blocks_read.load() + 999) / 1000);
      Put128(log.data_units_written, (ctrl_->blocks_written.load() + 999) / 1000);
      Put128(log.host_reads, ctrl_->reads.load());
      Put128(log.host_writes, ctrl_->writes.load());
      Put128(log.power_cycles, 1);
      Put128(log.num_err_log_entries, ctrl_->ErrorLog().size());
      page.resize(sizeof(log));
      std::memcpy(page.data(), &log, sizeof(log));
      break;
    }
    case spec::kLogFirmwareSlot: {
      spec::FirmwareSlotLog log{};
      log.afi = 1;
      CopyPadded(log.frs[0], 8, "0.1");
      page.resize(sizeof(log));
      std::memcpy(page.data(), &log, sizeof(log));
      break;
    }
    case spec::kLogChangedNamespaces: {
      if (discovery) return Complete(r, Specific(kScInvalidLogPage));
      page.resize(sizeof(spec::ChangedNamespaceList));
      auto* ids = reinterpret_cast<uint32_t*>(page.data());
      if (ctrl_->changed_namespaces_overflow) {
        ids[0] = 0xFFFFFFFFu;
      } else {
        std::copy(ctrl_->changed_namespaces.begin(), ctrl_->changed_namespaces.end(), ids);
      }
      if (!rae) {  // read: the list starts over and the event may be reported again
        ctrl_->changed_namespaces.clear();
        ctrl_->changed_namespaces_overflow = false;
        ctrl_->events_masked &= ~kEventNamespaceChanged;
      }
      break;
    }
    case spec::kLogCommandEffects: {
      spec::CommandEffectsLog log{};
      for (uint8_t opc : {spec::kAdminGetLogPage, spec::kAdminIdentify, spec::kAdminSetFeatures,
                          spec::kAdminGetFeatures, spec::kAdminAsyncEventRequest,
                          spec::kAdminKeepAlive}) {
        log.acs[opc] = spec::kCseSupported;
      }
      if (!discovery) {
        log.iocs[spec::kNvmRead] = spec::kCseSupported;
        for (uint8_t opc : {spec::kNvmFlush, spec::kNvmWrite, spec::kNvmWriteZeroes,
                            spec::kNvmDatasetManagement}) {
          log.iocs[opc] = spec::kCseSupported | spec::kCseLbcc;
        }
        for (uint8_t opc : {spec::kNvmReservationRegister, spec::kNvmReservationReport,
                            spec::kNvmReservationAcquire, spec::kNvmReservationRelease}) {
          log.iocs[opc] = spec::kCseSupported;
        }
      }
      page.resize(sizeof(log));
      std::memcpy(page.data(), &log, sizeof(log));
      break;
    }
    case spec::kLogAna:
      if (discovery) return Complete(r, Specific(kScInvalidLogPage));
      page = AnaLog((spec::GetLogPageLsp(sqe) & 1) != 0);
      if (!rae) ctrl_->events_masked &= ~kEventAnaChanged;
      break;
    case spec::kLogReservationNotification:
      if (discovery) return Complete(r, Specific(kScInvalidLogPage));
      // Each read takes one entry (a read of a later part of the page takes none).
      page = ReservationLog(offset == 0);
      if (!rae) ctrl_->events_masked &= ~kEventReservation;
      if (!ctrl_->reservation_log.empty()) ctrl_->events_pending |= kEventReservation;
      break;
    case spec::kLogDiscovery:
      if (!discovery) return Complete(r, Specific(kScInvalidLogPage));
      page = BuildDiscoveryLog(*tc_, ctrl_->hostnqn);
      if (!rae) ctrl_->events_masked &= ~kEventDiscoveryChanged;
      break;
    default:
      return Complete(r, Specific(kScInvalidLogPage));
  }
  DeliverEvents();  // a read may have unmasked an event that is pending again
  if (offset > page.size()) return Complete(r, Generic(spec::kScInvalidField));
  const size_t window = static_cast<size_t>(std::min<uint64_t>(len, page.size() - offset));
  uint8_t* buf = ZeroBuffer(r, window);
  std::memcpy(buf, page.data() + offset, window);
  SendAndComplete(r, window);
}

void QueueHandler::SetFeatures(Request* r) {
  const spec::Sqe& sqe = r->sqe();
  const uint8_t fid = static_cast<uint8_t>(sqe.cdw10 & 0xff);
  if (sqe.cdw10 >> 31) return Complete(r, Specific(kScFeatureNotSaveable));
  switch (fid) {
    case spec::kFeatNumberOfQueues: {
      if (ctrl_->subsystem->discovery) return Complete(r, Generic(spec::kScInvalidField));
      if (ctrl_->io_queue_count() > 0) return Complete(r, Generic(spec::kScCommandSequenceError));
      uint32_t nsqr = sqe.cdw11 & 0xffff, ncqr = sqe.cdw11 >> 16;
      if (nsqr == 0xffff || ncqr == 0xffff) return Complete(r, Generic(spec::kScInvalidField));
      uint32_t max = tc_->config.max_io_queues - 1u;  // 0's based
      uint32_t n = std::min({nsqr, ncqr, max});
      ctrl_->io_queues = static_cast<uint16_t>(n + 1);
      r->cqe.cdw0 = n | n << 16;
      break;
    }
    case spec::kFeatKeepAliveTimer:
      ctrl_->kato_ms = sqe.cdw11;
      ArmKeepAlive();
      break;
    case spec::kFeatAsyncEventConfig: ctrl_->async_event_config = sqe.cdw11; break;
    case spec::kFeatVolatileWriteCache: {
      // Turning the cache off: what it holds is flushed before the change completes, and
      // from then on every write is durable when acknowledged.
      const uint32_t on = sqe.cdw11 & 1;
      ctrl_->volatile_write_cache = on;
      if (on == 0) return FlushNamespaces(r);
      break;
    }
    case spec::kFeatArbitration: ctrl_->arbitration = sqe.cdw11; break;
    case spec::kFeatPowerManagement:
      if ((sqe.cdw11 & 0x1f) != 0) return Complete(r, Generic(spec::kScInvalidField));  // PS0 only
      ctrl_->power_management = sqe.cdw11;
      break;
    case spec::kFeatTemperatureThreshold: ctrl_->temperature_threshold = sqe.cdw11 & 0xffff; break;
    case spec::kFeatReservationNotificationMask:
    case spec::kFeatReservationPersistence:
      if (const uint16_t st = SetReservationFeature(fid, sqe.nsid, sqe.cdw11); st != 0) return Complete(r, st);
      break;
    default:
      return Complete(r, Generic(spec::kScInvalidField));
  }
  CompleteSuccess(r);
}

void QueueHandler::GetFeatures(Request* r) {
  const spec::Sqe& sqe = r->sqe();
  const uint8_t fid = static_cast<uint8_t>(sqe.cdw10 & 0xff);
  const uint8_t sel = static_cast<uint8_t>(sqe.cdw10 >> 8 & 7);
  if (sel == 3) {  // supported capabilities: changeable, not saveable
    r->cqe.cdw0 = 1u << 1;
    return CompleteSuccess(r);
  }
  switch (fid) {
    case spec::kFeatNumberOfQueues: {
      const uint16_t granted = ctrl_->io_queues.load();
      uint32_t n = granted != 0 ? granted - 1u : tc_->config.max_io_queues - 1u;
      r->cqe.cdw0 = n | n << 16;
      break;
    }
    case spec::kFeatKeepAliveTimer: r->cqe.cdw0 = ctrl_->kato_ms; break;
    case spec::kFeatAsyncEventConfig: r->cqe.cdw0 = ctrl_->async_event_config; break;
    case spec::kFeatVolatileWriteCache: r->cqe.cdw0 = ctrl_->volatile_write_cache; break;
    case spec::kFeatArbitration: r->cqe.cdw0 = ctrl_->arbitration; break;
    case spec::kFeatPowerManagement: r->cqe.cdw0 = ctrl_->power_management; break;
    case spec::kFeatTemperatureThreshold: r->cqe.cdw0 = ctrl_->temperature_threshold; break;
    case spec::kFeatReservationNotificationMask:
    case spec::kFeatReservationPersistence:
      if (const uint16_t st = GetReservationFeature(fid, sqe.nsid, &r->cqe.cdw0); st != 0) return Complete(r, st);
      break;
    default:
      return Complete(r, Generic(spec::kScInvalidField));
  }
  CompleteSuccess(r);
}

void QueueHandler::AsyncEventRequest(Request* r) {
  if (aers_.size() >= kMaxAers) return Complete(r, Specific(kScAerLimitExceeded));
  // Held until an event happens (DeliverEvents) or the association ends.
  aers_.push_back(r);
  DeliverEvents();
}

namespace {
// What the completion of an Asynchronous Event Request says (CDW0: type, information,
// the log page to read), and which Asynchronous Event Configuration bit enables it.
struct EventKind {
  uint32_t kind;
  uint32_t cdw0;
  uint32_t aec_bit;
};
constexpr EventKind kEventKinds[] = {
    {kEventNamespaceChanged, 0x2u | 0x00u << 8 | uint32_t{spec::kLogChangedNamespaces} << 16, 1u << 8},
    {kEventDiscoveryChanged, 0x2u | 0xF0u << 8 | uint32_t{spec::kLogDiscovery} << 16, 1u << 31},
    {kEventAnaChanged, 0x2u | 0x03u << 8 | uint32_t{spec::kLogAna} << 16, 1u << 11},
    // Reservation Log Page Available: no configuration bit; the notification mask
    // (Set Features 82h) decides what is logged, and a logged entry is always told.
    {kEventReservation,
     spec::AsyncEventCdw0(spec::kAeTypeIoCommandSpecific, 0, spec::kLogReservationNotification), 0},
};
}  // namespace

void QueueHandler::NamespaceChanged(uint32_t nsid) {
  if (closed_ || ctrl_ == nullptr || qid_ != 0) return;
  auto& list = ctrl_->changed_namespaces;
  if (std::find(list.begin(), list.end(), nsid) == list.end()) {
    if (list.size() < 1024) {
      list.push_back(nsid);
    } else {
      ctrl_->changed_namespaces_overflow = true;
    }
  }
  RaiseEvent(kEventNamespaceChanged);
}

void QueueHandler::AnaChanged() {
  if (closed_ || ctrl_ == nullptr || qid_ != 0) return;
  RaiseEvent(kEventAnaChanged);
}

// The ANA log page as this controller sees it through its port: one descriptor per group
// that holds a namespace (group 1 always), with its NSIDs unless groups_only.
std::vector<uint8_t> QueueHandler::AnaLog(bool groups_only) {
  std::map<uint32_t, std::vector<uint32_t>> groups{{1, {}}};
  for (const auto& [nsid, ns] : Namespaces()) groups[ns->config.ana_group].push_back(nsid);
  spec::AnaLogHeader h{};
  h.chgcnt = tc_->ana_change_count.load();
  h.ngrps = static_cast<uint16_t>(groups.size());
  std::vector<uint8_t> page(sizeof(h));
  std::memcpy(page.data(), &h, sizeof(h));
  for (const auto& [grp, nsids] : groups) {
    spec::AnaGroupDescriptor d{};
    d.grpid = grp;
    d.nnsids = groups_only ? 0 : static_cast<uint32_t>(nsids.size());
    d.chgcnt = h.chgcnt;
    d.state = port_->ana[grp].load();
    const size_t at = page.size();
    page.resize(at + sizeof(d) + d.nnsids * 4);
    std::memcpy(page.data() + at, &d, sizeof(d));
    if (d.nnsids > 0) std::memcpy(page.data() + at + sizeof(d), nsids.data(), d.nnsids * 4);
  }
  return page;
}

void QueueHandler::DiscoveryChanged() {
  if (closed_ || ctrl_ == nullptr || qid_ != 0) return;
  RaiseEvent(kEventDiscoveryChanged);
}

void QueueHandler::RaiseEvent(uint32_t kind) {
  for (const EventKind& k : kEventKinds) {
    if (k.kind == kind && (k.aec_bit == 0 || (ctrl_->async_event_config & k.aec_bit) != 0)) {
      ctrl_->events_pending |= kind;
    }
  }
  DeliverEvents();
}

void QueueHandler::DeliverEvents() {
  for (const EventKind& k : kEventKinds) {
    if (aers_.empty()) return;
    const uint32_t ready = ctrl_->events_pending & ~ctrl_->events_masked;
    if ((ready & k.kind) == 0) continue;
    ctrl_->events_pending &= ~k.kind;
    ctrl_->events_masked |= k.kind;
    Request* r = aers_.front();
    aers_.erase(aers_.begin());
    r->cqe.cdw0 = k.cdw0;
    CompleteSuccess(r);
  }
}

}  // namespace nvmf::target
