// Reservation: the persistent reservation state of one namespace (NVMe Base Specification,
// "Reservations"): its registrants and their keys, the reservation and its type, the
// generation, and Persist Through Power Loss. A state machine only: it knows no queue,
// controller or transport.
//
// The contract:
//  - Ownership. The Namespace owns one Reservation for its whole life, and every
//    controller of the subsystem, on every loop, works on that one object: registrants are
//    hosts, named by the 128-bit Host Identifier of their Fabrics Connect, not
//    controllers, so two controllers of one host share a registration.
//  - Threads. Any method may be called on any thread. The state sits under mu_; each
//    command (Register, Acquire, Release, SetPtpl) runs whole under it, so commands from
//    different loops are applied one after another and Report and Check never see half a
//    command.
//  - The I/O path calls only Check(). While no reservation is held it reads one atomic
//    (held_) and returns: no lock, no allocation, no shared write. held_ changes only under
//    mu_, together with the state it summarises. A command that passed Check just before
//    a reservation was acquired may still complete: the reservation applies to commands
//    that arrive after the Acquire completes.
//  - Notifications. A command that must tell other hosts something (a registration
//    preempted, the reservation released or preempted) returns them as Notices; the caller
//    delivers each to the controllers of that host (their admin loops), so this class never
//    calls out while holding mu_.
//  - Persistence. When a store path is given (file namespaces: the backing file's path plus
//    ".nvmf-resv") PTPL may be set; while it is, every change is written there (JSON,
//    written to a temporary file, fsync'd, renamed over; mode 0600) before the command
//    completes. If the write fails the command fails with Internal Error and the state in
//    memory is what it was before. Clearing PTPL removes the file. At namespace open
//    (Load) a file present means PTPL was set: the state comes back from it.
//  - Preempt and Abort preempts exactly as Preempt does; commands of the preempted hosts
//    already in flight are let finish (as Linux's nvmet does), later ones meet the
//    reservation.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "nvmf/spec/reservation.h"
#include "nvmf/status.h"

namespace nvmf::target {

using HostId = std::array<uint8_t, 16>;

// Appended to a file namespace's path to name where its PTPL state lives.
inline constexpr const char* kReservationStateSuffix = ".nvmf-resv";

// What a command on the namespace does to its data, for Check.
enum class ResvAccess { kRead, kWrite };

// Something a host must be told: the Reservation Notification log page type.
struct ResvNotice {
  HostId host;
  uint8_t type;  // spec::ResvNotificationType
};

class Reservation {
 public:
  // store: where PTPL state lives ("" for a namespace that cannot persist it).
  explicit Reservation(std::string store = "") : store_(std::move(store)) {}

  // Reads the persisted state, if any (at namespace open, before any command).
  Status Load();
  bool ptpl_capable() const { return !store_.empty(); }
  const std::string& store_path() const { return store_; }

  // 0, or Reservation Conflict for a command of host that the reservation forbids.
  uint16_t Check(const HostId& host, ResvAccess access) const {
    if (!held_.load(std::memory_order_acquire)) return 0;
    return CheckHeld(host, access);
  }

  // The commands: cdw10 as the host sent it, keys from the command's data. Each returns
  // the completion status and appends the notices it causes.
  uint16_t Register(const HostId& host, uint32_t cdw10, uint64_t crkey, uint64_t nrkey,
                    std::vector<ResvNotice>* notices);
  uint16_t Acquire(const HostId& host, uint32_t cdw10, uint64_t crkey, uint64_t prkey,
                   std::vector<ResvNotice>* notices);
  uint16_t Release(const HostId& host, uint32_t cdw10, uint64_t crkey, std::vector<ResvNotice>* notices);
  // The Reservation Status data structure (extended: EDS set). Fabrics hosts have 128-bit
  // identifiers, so the 24-byte format (EDS clear) is answered with Host Identifier
  // Inconsistent Format, as the specification asks.
  uint16_t Report(bool eds, std::vector<uint8_t>* out) const;
  // Set Features Reservation Persistence.
  uint16_t SetPtpl(bool on);
  bool ptpl() const;

  // A snapshot, for tests and persistence.
  struct State {
    uint32_t generation = 0;
    uint8_t type = 0;  // spec::ReservationType; 0: no reservation
    HostId holder{};   // meaningful when type is set
    std::map<HostId, uint64_t> registrants;
    bool ptpl = false;
  };
  State Snapshot() const;

 private:
  uint16_t CheckHeld(const HostId& host, ResvAccess access) const;
  bool IsHolder(const HostId& host) const;  // under mu_
  // Unregisters every registrant but `keep` whose key is key; each is told.
  size_t PreemptKey(const HostId& keep, uint64_t key, std::vector<ResvNotice>* notices);
  // Tells every registrant but `except`.
  void NotifyOthers(const HostId& except, uint8_t type, std::vector<ResvNotice>* notices) const;
  // After a change: settles an all-registrants reservation's holder, updates held_,
  // persists when PTPL is set; on a failed write restores `before`, drops the notices and
  // returns Internal Error.
  uint16_t Commit(const State& before, std::vector<ResvNotice>* notices);
  Status Save(const State& s) const;  // reservation_store.cc
  Status Remove() const;

  const std::string store_;
  mutable std::mutex mu_;
  State s_;
  std::atomic<bool> held_{false};
};

}  // namespace nvmf::target
