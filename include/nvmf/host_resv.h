// Reservation commands from the host (NVMe Base Specification, "Reservations"), over a
// SyncController's first I/O queue: Register, Acquire, Release and Report, with the
// Report data decoded. Errors come back as the controller's status (Status::kNvmeError,
// e.g. "Reservation Conflict (SCT 0h, SC 83h)").
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "nvmf/host_sync.h"
#include "nvmf/spec/reservation.h"

namespace nvmf::host {

struct ResvRegisterArgs {
  uint8_t action = spec::kRregaRegister;  // RREGA
  uint64_t crkey = 0;
  uint64_t nrkey = 0;
  bool iekey = false;
  uint8_t cptpl = spec::kCptplNoChange;
};
struct ResvAcquireArgs {
  uint8_t action = spec::kRacqaAcquire;  // RACQA
  uint8_t rtype = spec::kResvWriteExclusive;
  uint64_t crkey = 0;
  uint64_t prkey = 0;
  bool iekey = false;
};
struct ResvReleaseArgs {
  uint8_t action = spec::kRrelaRelease;  // RRELA
  uint8_t rtype = spec::kResvWriteExclusive;
  uint64_t crkey = 0;
  bool iekey = false;
};

struct ResvRegistrant {
  uint16_t cntlid = 0;
  bool holder = false;
  uint64_t key = 0;
  std::array<uint8_t, 16> hostid{};
};
struct ResvReport {
  uint32_t generation = 0;
  uint8_t rtype = 0;  // 0: no reservation
  bool ptpl = false;
  std::vector<ResvRegistrant> registrants;
};

Status ResvRegister(SyncController& c, uint32_t nsid, const ResvRegisterArgs& a);
Status ResvAcquire(SyncController& c, uint32_t nsid, const ResvAcquireArgs& a);
Status ResvRelease(SyncController& c, uint32_t nsid, const ResvReleaseArgs& a);
// Report with the extended data structure (EDS set: 128-bit host identifiers), room for
// max_registrants; eds false asks for the 24-byte format (which fabrics controllers refuse).
Status ResvReportGet(SyncController& c, uint32_t nsid, ResvReport* out, bool eds = true,
                     uint32_t max_registrants = 64);
// Decodes extended Report data.
Status ParseResvReport(const uint8_t* data, size_t len, ResvReport* out);
// "Write Exclusive", "Exclusive Access - Registrants Only", ...; "none" for 0.
const char* ResvTypeName(uint8_t rtype);

}  // namespace nvmf::host
