// Reservation: the rules of the Reservation Register, Acquire, Release and Report
// commands and of access under a reservation (see reservation.h for the contract).
#include "target/reservation.h"

#include <cstring>

namespace nvmf::target {
namespace {

constexpr uint16_t Conflict() {
  return spec::MakeStatus(spec::kSctGeneric, spec::kScReservationConflict, true);
}
constexpr uint16_t InvalidField() { return spec::MakeStatus(spec::kSctGeneric, spec::kScInvalidField, true); }
constexpr uint16_t InternalError() { return spec::MakeStatus(spec::kSctGeneric, spec::kScInternalError, false); }

bool ValidType(uint8_t t) {
  return t >= spec::kResvWriteExclusive && t <= spec::kResvExclusiveAccessAllRegistrants;
}
// In the all-registrants types every registrant holds the reservation.
bool AllRegistrants(uint8_t t) {
  return t == spec::kResvWriteExclusiveAllRegistrants || t == spec::kResvExclusiveAccessAllRegistrants;
}
bool RegistrantsOnly(uint8_t t) {
  return t == spec::kResvWriteExclusiveRegistrantsOnly || t == spec::kResvExclusiveAccessRegistrantsOnly;
}
// Exclusive Access types refuse reads too.
bool ExclusiveAccess(uint8_t t) {
  return t == spec::kResvExclusiveAccess || t == spec::kResvExclusiveAccessRegistrantsOnly ||
         t == spec::kResvExclusiveAccessAllRegistrants;
}

}  // namespace

uint16_t Reservation::CheckHeld(const HostId& host, ResvAccess access) const {
  std::lock_guard<std::mutex> lock(mu_);
  const uint8_t t = s_.type;
  if (t == spec::kResvNone || IsHolder(host)) return 0;
  // Registrants may read and write in the registrants-only and all-registrants types
  // (the table "Command behavior in the presence of a reservation").
  if ((RegistrantsOnly(t) || AllRegistrants(t)) && s_.registrants.count(host) != 0) return 0;
  if (access == ResvAccess::kRead && !ExclusiveAccess(t)) return 0;
  return Conflict();
}

bool Reservation::IsHolder(const HostId& host) const {
  if (s_.type == spec::kResvNone) return false;
  if (AllRegistrants(s_.type)) return s_.registrants.count(host) != 0;
  return s_.holder == host;
}

size_t Reservation::PreemptKey(const HostId& keep, uint64_t key, std::vector<ResvNotice>* notices) {
  size_t n = 0;
  for (auto it = s_.registrants.begin(); it != s_.registrants.end();) {
    if (it->second == key && it->first != keep) {
      notices->push_back({it->first, spec::kResvNoticeRegistrationPreempted});
      it = s_.registrants.erase(it);
      n++;
    } else {
      ++it;
    }
  }
  return n;
}

void Reservation::NotifyOthers(const HostId& except, uint8_t type, std::vector<ResvNotice>* notices) const {
  for (const auto& [h, key] : s_.registrants) {
    if (h != except) notices->push_back({h, type});
  }
}

uint16_t Reservation::Commit(const State& before, std::vector<ResvNotice>* notices) {
  // An all-registrants reservation outlives the registrant that acquired it: name another
  // as its holder of record (what persists, and what a release checks), or end it with the
  // last registrant.
  if (AllRegistrants(s_.type) && s_.registrants.count(s_.holder) == 0) {
    if (s_.registrants.empty()) {
      s_.type = spec::kResvNone;
      s_.holder = {};
    } else {
      s_.holder = s_.registrants.begin()->first;
    }
  }
  if (s_.ptpl) {
    Status st = Save(s_);
    if (!st.ok()) {
      s_ = before;
      if (notices != nullptr) notices->clear();  // nothing happened: no one is told
      return InternalError();
    }
  }
  held_.store(s_.type != spec::kResvNone, std::memory_order_release);
  return 0;
}

uint16_t Reservation::Register(const HostId& host, uint32_t cdw10, uint64_t crkey, uint64_t nrkey,
                               std::vector<ResvNotice>* notices) {
  const uint8_t action = spec::ResvAction(cdw10);
  const uint8_t cptpl = spec::ResvCptplField(cdw10);
  const bool iekey = spec::ResvIekey(cdw10);
  if (action > spec::kRregaReplace || cptpl == 1) return InvalidField();
  if (cptpl == spec::kCptplPersist && !ptpl_capable()) return InvalidField();
  std::lock_guard<std::mutex> lock(mu_);
  const State before = s_;
  auto it = s_.registrants.find(host);
  const bool registered = it != s_.registrants.end();
  switch (action) {
    case spec::kRregaRegister:
      // Registering again with the same key changes nothing and succeeds.
      if (registered) {
        if (it->second != nrkey) return Conflict();
      } else {
        s_.registrants[host] = nrkey;
        s_.generation++;
      }
      break;
    case spec::kRregaUnregister: {
      if (!registered || (!iekey && it->second != crkey)) return Conflict();
      const bool holder = IsHolder(host);
      s_.registrants.erase(it);
      s_.generation++;
      if (holder && !AllRegistrants(s_.type)) {
        // The holder leaving releases the reservation; in the registrants-only types the
        // other registrants lose their access and are told. (An all-registrants one ends
        // with the last registrant: Commit.)
        if (RegistrantsOnly(s_.type)) NotifyOthers(host, spec::kResvNoticeReservationReleased, notices);
        s_.type = spec::kResvNone;
        s_.holder = {};
      }
      break;
    }
    case spec::kRregaReplace:
      if (!registered || (!iekey && it->second != crkey)) return Conflict();
      it->second = nrkey;
      s_.generation++;
      break;
  }
  const bool was_ptpl = s_.ptpl;
  if (cptpl == spec::kCptplPersist) s_.ptpl = true;
  if (cptpl == spec::kCptplClear) s_.ptpl = false;
  if (const uint16_t st = Commit(before, notices); st != 0) return st;
  if (was_ptpl && !s_.ptpl) (void)Remove();  // persists no longer; a stale file would come back
  return 0;
}

uint16_t Reservation::Acquire(const HostId& host, uint32_t cdw10, uint64_t crkey, uint64_t prkey,
                              std::vector<ResvNotice>* notices) {
  const uint8_t action = spec::ResvAction(cdw10);
  const uint8_t rtype = spec::ResvType(cdw10);
  if (action > spec::kRacqaPreemptAbort || !ValidType(rtype)) return InvalidField();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = s_.registrants.find(host);
  if (it == s_.registrants.end() || (!spec::ResvIekey(cdw10) && it->second != crkey)) return Conflict();
  const State before = s_;
  if (action == spec::kRacqaAcquire) {
    if (s_.type == spec::kResvNone) {
      s_.type = rtype;
      s_.holder = host;
    } else if (!IsHolder(host) || s_.type != rtype) {
      return Conflict();
    }
    return Commit(before, notices);
  }
  // Preempt (and Preempt and Abort, which lets commands in flight finish).
  if (s_.type == spec::kResvNone) {
    if (PreemptKey(host, prkey, notices) == 0) return Conflict();
  } else if (AllRegistrants(s_.type)) {
    if (prkey == 0) {
      // Every other registrant goes and the issuer holds a reservation of the new type.
      for (const auto& [h, key] : s_.registrants) {
        if (h != host) notices->push_back({h, spec::kResvNoticeRegistrationPreempted});
      }
      std::erase_if(s_.registrants, [&host](const auto& kv) { return kv.first != host; });
      s_.type = rtype;
      s_.holder = host;
    } else if (PreemptKey(host, prkey, notices) == 0) {
      return Conflict();
    }
  } else if (auto hk = s_.registrants.find(s_.holder); hk != s_.registrants.end() && prkey == hk->second) {
    // The holder's key: its reservation passes to the issuer (the issuer may be the
    // holder itself, changing the type).
    PreemptKey(host, prkey, notices);
    s_.type = rtype;
    s_.holder = host;
  } else if (prkey == 0) {
    return InvalidField();
  } else if (PreemptKey(host, prkey, notices) == 0) {
    return Conflict();
  }
  s_.generation++;
  return Commit(before, notices);
}

uint16_t Reservation::Release(const HostId& host, uint32_t cdw10, uint64_t crkey,
                              std::vector<ResvNotice>* notices) {
  const uint8_t action = spec::ResvAction(cdw10);
  if (action > spec::kRrelaClear) return InvalidField();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = s_.registrants.find(host);
  if (it == s_.registrants.end() || (!spec::ResvIekey(cdw10) && it->second != crkey)) return Conflict();
  const State before = s_;
  if (action == spec::kRrelaClear) {
    NotifyOthers(host, spec::kResvNoticeReservationPreempted, notices);
    s_.registrants.clear();
    s_.type = spec::kResvNone;
    s_.holder = {};
    s_.generation++;
  } else {
    // Releasing what one does not hold succeeds and changes nothing.
    if (!IsHolder(host)) return 0;
    if (spec::ResvType(cdw10) != s_.type) return InvalidField();
    // Write Exclusive and Exclusive Access gave registrants nothing: no one to tell.
    if (RegistrantsOnly(s_.type) || AllRegistrants(s_.type)) {
      NotifyOthers(host, spec::kResvNoticeReservationReleased, notices);
    }
    s_.type = spec::kResvNone;
    s_.holder = {};
  }
  return Commit(before, notices);
}

uint16_t Reservation::Report(bool eds, std::vector<uint8_t>* out) const {
  if (!eds) return spec::MakeStatus(spec::kSctGeneric, spec::kScHostIdInconsistentFormat, true);
  std::lock_guard<std::mutex> lock(mu_);
  spec::ResvStatusExtHeader h{};
  h.h.gen = s_.generation;
  h.h.rtype = s_.type;
  h.h.regctl = static_cast<uint16_t>(s_.registrants.size());
  h.h.ptpls = s_.ptpl ? 1 : 0;
  out->resize(sizeof(h) + s_.registrants.size() * sizeof(spec::ResvRegisteredControllerExt));
  std::memcpy(out->data(), &h, sizeof(h));
  size_t at = sizeof(h);
  for (const auto& [host, key] : s_.registrants) {
    spec::ResvRegisteredControllerExt e{};
    e.cntlid = 0xFFFF;  // dynamic controller model: registrants are hosts
    e.rcsts = IsHolder(host) ? 1 : 0;
    e.rkey = key;
    std::memcpy(e.hostid, host.data(), 16);
    std::memcpy(out->data() + at, &e, sizeof(e));
    at += sizeof(e);
  }
  return 0;
}

uint16_t Reservation::SetPtpl(bool on) {
  if (on && !ptpl_capable()) return InvalidField();
  std::lock_guard<std::mutex> lock(mu_);
  const State before = s_;
  const bool was = s_.ptpl;
  s_.ptpl = on;
  if (const uint16_t st = Commit(before, nullptr); st != 0) return st;
  if (was && !on) (void)Remove();
  return 0;
}

bool Reservation::ptpl() const {
  std::lock_guard<std::mutex> lock(mu_);
  return s_.ptpl;
}

Reservation::State Reservation::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return s_;
}

}  // namespace nvmf::target
