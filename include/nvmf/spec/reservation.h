// Reservations (NVMe Base Specification, "Reservations"): command fields, the
// Reservation Report data, the Reservation Notification log page and the features.
// Plain little-endian structs; no logic beyond field extraction.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nvmf/spec/nvme.h"

namespace nvmf::spec {

// Reservation types (Acquire and Release CDW10 bits 15:8, Report RTYPE).
enum ReservationType : uint8_t {
  kResvNone = 0,
  kResvWriteExclusive = 1,
  kResvExclusiveAccess = 2,
  kResvWriteExclusiveRegistrantsOnly = 3,
  kResvExclusiveAccessRegistrantsOnly = 4,
  kResvWriteExclusiveAllRegistrants = 5,
  kResvExclusiveAccessAllRegistrants = 6,
};

// Reservation Register CDW10: RREGA (2:0), IEKEY (3), CPTPL (31:30).
enum ResvRegisterAction : uint8_t { kRregaRegister = 0, kRregaUnregister = 1, kRregaReplace = 2 };
enum ResvCptpl : uint8_t { kCptplNoChange = 0, kCptplClear = 2, kCptplPersist = 3 };
// Reservation Acquire CDW10: RACQA (2:0), IEKEY (3), RTYPE (15:8).
enum ResvAcquireAction : uint8_t { kRacqaAcquire = 0, kRacqaPreempt = 1, kRacqaPreemptAbort = 2 };
// Reservation Release CDW10: RRELA (2:0), IEKEY (3), RTYPE (15:8).
enum ResvReleaseAction : uint8_t { kRrelaRelease = 0, kRrelaClear = 1 };

constexpr uint8_t ResvAction(uint32_t cdw10) { return static_cast<uint8_t>(cdw10 & 7); }
constexpr bool ResvIekey(uint32_t cdw10) { return (cdw10 >> 3 & 1) != 0; }
constexpr uint8_t ResvType(uint32_t cdw10) { return static_cast<uint8_t>(cdw10 >> 8 & 0xff); }
constexpr uint8_t ResvCptplField(uint32_t cdw10) { return static_cast<uint8_t>(cdw10 >> 30 & 3); }

// Register: CRKEY then NRKEY. Acquire: CRKEY then PRKEY. Release: CRKEY alone (8 bytes).
struct ResvKeys {
  uint64_t crkey;
  uint64_t other;  // NRKEY (Register) or PRKEY (Acquire)
};
static_assert(sizeof(ResvKeys) == 16);

// Reservation Report (CDW10 NUMD 0's based dwords, CDW11 bit 0 EDS). With EDS set (the
// only format for 128-bit host identifiers, which every fabrics host has) the header is
// 64 bytes and each registrant is 64 bytes.
struct ResvStatusHeader {
  uint32_t gen;
  uint8_t rtype;
  uint16_t regctl;  // registrants that follow (unaligned at offset 5)
  uint8_t reserved7[2];
  uint8_t ptpls;
  uint8_t reserved10[14];
} __attribute__((packed));
static_assert(sizeof(ResvStatusHeader) == 24);
static_assert(offsetof(ResvStatusHeader, regctl) == 5);
static_assert(offsetof(ResvStatusHeader, ptpls) == 9);

struct ResvStatusExtHeader {
  ResvStatusHeader h;
  uint8_t reserved24[40];
};
static_assert(sizeof(ResvStatusExtHeader) == 64);

struct ResvRegisteredControllerExt {
  uint16_t cntlid;  // FFFFh: the dynamic controller model
  uint8_t rcsts;    // bit 0: holds the reservation
  uint8_t reserved3[5];
  uint64_t rkey;
  uint8_t hostid[16];
  uint8_t reserved32[32];
};
static_assert(sizeof(ResvRegisteredControllerExt) == 64);
static_assert(offsetof(ResvRegisteredControllerExt, rkey) == 8);
static_assert(offsetof(ResvRegisteredControllerExt, hostid) == 16);

// Reservation Notification log page (80h), one entry per read.
inline constexpr uint8_t kLogReservationNotification = 0x80;
enum ResvNotificationType : uint8_t {
  kResvNoticeEmpty = 0,
  kResvNoticeRegistrationPreempted = 1,
  kResvNoticeReservationReleased = 2,
  kResvNoticeReservationPreempted = 3,
};
struct ResvNotificationLog {
  uint64_t count;  // 0: empty; otherwise increments per entry, wrapping past 0
  uint8_t type;    // ResvNotificationType
  uint8_t available;  // entries still to read after this one (at most FFh)
  uint8_t reserved10[2];
  uint32_t nsid;
  uint8_t reserved16[48];
};
static_assert(sizeof(ResvNotificationLog) == 64);
static_assert(offsetof(ResvNotificationLog, nsid) == 12);

// Features (namespace-specific): Reservation Notification Mask (CDW11 bit n masks
// notification type n, n = 1..3) and Reservation Persistence (CDW11 bit 0 PTPL).
inline constexpr uint8_t kFeatReservationNotificationMask = 0x82;
inline constexpr uint8_t kFeatReservationPersistence = 0x83;
inline constexpr uint32_t kResvMaskBits = 1u << 1 | 1u << 2 | 1u << 3;

// Asynchronous event type 6h (I/O command specific status), information 00h:
// Reservation Log Page Available.
inline constexpr uint8_t kAeTypeIoCommandSpecific = 6;

// Identify Namespace RESCAP: PTPL (bit 0), the six types (bits 1..6), IEKEY as defined
// from revision 1.3 (bit 7).
inline constexpr uint8_t kRescapPtpl = 1u << 0;
inline constexpr uint8_t kRescapAllTypes = 0x7e;
inline constexpr uint8_t kRescapIekey13 = 1u << 7;
// Identify Controller ONCS bit 5: reservations.
inline constexpr uint16_t kOncsReservations = 1u << 5;

}  // namespace nvmf::spec
