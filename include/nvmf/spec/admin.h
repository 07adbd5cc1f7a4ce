// NVMe admin command data structures: Identify (controller, namespace, active namespace
// list, namespace identification descriptors), log pages, features, and the Fabrics
// discovery log page. Plain little-endian structs with checked sizes and offsets.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nvmf/spec/nvme.h"

namespace nvmf::spec {

// Identify CNS values (cdw10 bits 7:0).
enum IdentifyCns : uint8_t {
  kCnsNamespace = 0x00,
  kCnsController = 0x01,
  kCnsActiveNamespaces = 0x02,
  kCnsNamespaceDescriptors = 0x03,
};

struct LbaFormat {
  uint16_t ms;   // metadata size
  uint8_t lbads; // LBA data size, a power of two
  uint8_t rp;    // relative performance
};
static_assert(sizeof(LbaFormat) == 4);

struct PowerState {
  uint8_t bytes[32];
};

struct IdentifyController {
  uint16_t vid;
  uint16_t ssvid;
  char sn[20];
  char mn[40];
  char fr[8];
  uint8_t rab;
  uint8_t ieee[3];
  uint8_t cmic;
  uint8_t mdts;     // max data transfer, a power of two in units of CAP.MPSMIN (4 KiB)
  uint16_t cntlid;
  uint32_t ver;
  uint32_t rtd3r;
  uint32_t rtd3e;
  uint32_t oaes;    // optional async events supported (bit 8: namespace attribute notices)
  uint32_t ctratt;
  uint8_t reserved100[11];
  uint8_t cntrltype;  // 1 I/O, 2 discovery, 3 admin
  uint8_t fguid[16];
  uint8_t reserved128[128];
  uint16_t oacs;
  uint8_t acl;
  uint8_t aerl;
  uint8_t frmw;
  uint8_t lpa;      // log page attributes (bit 1: commands supported and effects)
  uint8_t elpe;     // error log page entries, 0's based
  uint8_t npss;
  uint8_t avscc;
  uint8_t apsta;
  uint16_t wctemp;
  uint16_t cctemp;
  uint8_t reserved270[50];
  uint32_t kas;     // keep alive support, units of 100 ms
  uint8_t reserved324[18];
  uint8_t anatt;      // ANA transition time, seconds
  uint8_t anacap;     // ANA capabilities (states reported; bit 6: ANAGRPID fixed while attached)
  uint32_t anagrpmax;
  uint32_t nanagrpid;
  uint8_t reserved352[160];
  uint8_t sqes;
  uint8_t cqes;
  uint16_t maxcmd;
  uint32_t nn;      // number of namespaces
  uint16_t oncs;    // optional NVM commands (bit 2 DSM, bit 3 Write Zeroes)
  uint16_t fuses;
  uint8_t fna;
  uint8_t vwc;      // volatile write cache present
  uint16_t awun;
  uint16_t awupf;
  uint8_t icsvscc;
  uint8_t nwpc;
  uint16_t acwu;
  uint16_t reserved534;
  uint32_t sgls;
  uint32_t mnan;
  uint8_t reserved544[224];
  char subnqn[256];
  uint8_t reserved1024[768];
  uint32_t ioccsz;  // I/O command capsule size, 16-byte units
  uint32_t iorcsz;  // I/O response capsule size, 16-byte units
  uint16_t icdoff;
  uint8_t fcatt;
  uint8_t msdbd;
  uint16_t ofcs;
  uint8_t reserved1806[242];
  PowerState psd[32];
  uint8_t vs[1024];
};
static_assert(sizeof(IdentifyController) == 4096);
static_assert(offsetof(IdentifyController, sn) == 4);
static_assert(offsetof(IdentifyController, mn) == 24);
static_assert(offsetof(IdentifyController, fr) == 64);
static_assert(offsetof(IdentifyController, mdts) == 77);
static_assert(offsetof(IdentifyController, cntlid) == 78);
static_assert(offsetof(IdentifyController, ver) == 80);
static_assert(offsetof(IdentifyController, oaes) == 92);
static_assert(offsetof(IdentifyController, anatt) == 342);
static_assert(offsetof(IdentifyController, anagrpmax) == 344);
static_assert(offsetof(IdentifyController, nanagrpid) == 348);
static_assert(offsetof(IdentifyController, cntrltype) == 111);
static_assert(offsetof(IdentifyController, oacs) == 256);
static_assert(offsetof(IdentifyController, lpa) == 261);
static_assert(offsetof(IdentifyController, elpe) == 262);
static_assert(offsetof(IdentifyController, kas) == 320);
static_assert(offsetof(IdentifyController, sqes) == 512);
static_assert(offsetof(IdentifyController, maxcmd) == 514);
static_assert(offsetof(IdentifyController, nn) == 516);
static_assert(offsetof(IdentifyController, oncs) == 520);
static_assert(offsetof(IdentifyController, vwc) == 525);
static_assert(offsetof(IdentifyController, sgls) == 536);
static_assert(offsetof(IdentifyController, subnqn) == 768);
static_assert(offsetof(IdentifyController, ioccsz) == 1792);
static_assert(offsetof(IdentifyController, iorcsz) == 1796);
static_assert(offsetof(IdentifyController, icdoff) == 1800);
static_assert(offsetof(IdentifyController, msdbd) == 1803);
static_assert(offsetof(IdentifyController, psd) == 2048);
static_assert(offsetof(IdentifyController, vs) == 3072);

struct IdentifyNamespace {
  uint64_t nsze;
  uint64_t ncap;
  uint64_t nuse;
  uint8_t nsfeat;  // bit 2: deallocated blocks read as zeroes... (see DLFEAT)
  uint8_t nlbaf;   // 0's based
  uint8_t flbas;
  uint8_t mc;
  uint8_t dpc;
  uint8_t dps;
  uint8_t nmic;
  uint8_t rescap;
  uint8_t fpi;
  uint8_t dlfeat;  // bits 2:0 = 1: deallocated blocks read as zeroes
  uint16_t nawun;
  uint16_t nawupf;
  uint16_t nacwu;
  uint16_t nabsn;
  uint16_t nabo;
  uint16_t nabspf;
  uint16_t noiob;
  uint8_t nvmcap[16];
  uint8_t reserved64[28];
  uint32_t anagrpid;
  uint8_t reserved96[8];
  uint8_t nguid[16];
  uint8_t eui64[8];
  LbaFormat lbaf[64];
  uint8_t reserved384[3712];
};
static_assert(sizeof(IdentifyNamespace) == 4096);
static_assert(offsetof(IdentifyNamespace, anagrpid) == 92);
static_assert(offsetof(IdentifyNamespace, nlbaf) == 25);
static_assert(offsetof(IdentifyNamespace, flbas) == 26);
static_assert(offsetof(IdentifyNamespace, dlfeat) == 33);
static_assert(offsetof(IdentifyNamespace, nguid) == 104);
static_assert(offsetof(IdentifyNamespace, eui64) == 120);
static_assert(offsetof(IdentifyNamespace, lbaf) == 128);

// Namespace identification descriptor types (CNS 03h).
enum NidType : uint8_t { kNidEui64 = 1, kNidNguid = 2, kNidUuid = 3, kNidCsi = 4 };
struct NidHeader {
  uint8_t nidt;
  uint8_t nidl;
  uint8_t reserved[2];
};
static_assert(sizeof(NidHeader) == 4);

// Log page identifiers and Get Log Page dword fields.
enum LogPageId : uint8_t {
  kLogError = 0x01,
  kLogSmart = 0x02,
  kLogFirmwareSlot = 0x03,
  kLogChangedNamespaces = 0x04,
  kLogCommandEffects = 0x05,
  kLogAna = 0x0C,
  kLogDiscovery = 0x70,
};
constexpr uint8_t GetLogPageLid(const Sqe& s) { return static_cast<uint8_t>(s.cdw10 & 0xff); }
constexpr bool GetLogPageRae(const Sqe& s) { return (s.cdw10 >> 15 & 1) != 0; }
// Bytes asked for: NUMD (0's based dwords) from cdw10 bits 31:16 and cdw11 bits 15:0.
constexpr uint64_t GetLogPageBytes(const Sqe& s) {
  return ((static_cast<uint64_t>(s.cdw11 & 0xffff) << 16 | s.cdw10 >> 16) + 1) * 4;
}
constexpr uint64_t GetLogPageOffset(const Sqe& s) {
  return static_cast<uint64_t>(s.cdw13) << 32 | s.cdw12;
}

struct ErrorLogEntry {
  uint64_t error_count;
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // status field, phase bit 0
  uint16_t param_location;
  uint64_t lba;
  uint32_t nsid;
  uint8_t vs;
  uint8_t trtype;
  uint8_t reserved30[2];
  uint64_t cs;
  uint16_t trtype_specific;
  uint8_t reserved42[22];
};
static_assert(sizeof(ErrorLogEntry) == 64);
static_assert(offsetof(ErrorLogEntry, status) == 12);
static_assert(offsetof(ErrorLogEntry, lba) == 16);
static_assert(offsetof(ErrorLogEntry, nsid) == 24);

struct SmartLog {
  uint8_t critical_warning;
  uint16_t temperature;  // kelvin, unaligned at offset 1
  uint8_t avail_spare;
  uint8_t spare_thresh;
  uint8_t percent_used;
  uint8_t endurance_group_summary;
  uint8_t reserved7[25];
  uint8_t data_units_read[16];
  uint8_t data_units_written[16];
  uint8_t host_reads[16];
  uint8_t host_writes[16];
  uint8_t ctrl_busy_time[16];
  uint8_t power_cycles[16];
  uint8_t power_on_hours[16];
  uint8_t unsafe_shutdowns[16];
  uint8_t media_errors[16];
  uint8_t num_err_log_entries[16];
  uint8_t reserved192[320];
} __attribute__((packed));
static_assert(sizeof(SmartLog) == 512);
static_assert(offsetof(SmartLog, temperature) == 1);
static_assert(offsetof(SmartLog, avail_spare) == 3);
static_assert(offsetof(SmartLog, data_units_read) == 32);
static_assert(offsetof(SmartLog, host_reads) == 64);
static_assert(offsetof(SmartLog, power_on_hours) == 128);
static_assert(offsetof(SmartLog, num_err_log_entries) == 176);

struct FirmwareSlotLog {
  uint8_t afi;
  uint8_t reserved1[7];
  char frs[7][8];
  uint8_t reserved64[448];
};
static_assert(sizeof(FirmwareSlotLog) == 512);
static_assert(offsetof(FirmwareSlotLog, frs) == 8);

struct ChangedNamespaceList {
  uint32_t nsid[1024];
};
static_assert(sizeof(ChangedNamespaceList) == 4096);

// Asymmetric Namespace Access log page (0Ch): the header, then per ANA group a descriptor
// followed by its NSIDs (none when the host asked for groups only, LSP bit 0).
struct AnaLogHeader {
  uint64_t chgcnt;
  uint16_t ngrps;
  uint8_t reserved[6];
};
static_assert(sizeof(AnaLogHeader) == 16);
struct AnaGroupDescriptor {
  uint32_t grpid;
  uint32_t nnsids;
  uint64_t chgcnt;
  uint8_t state;  // AnaState
  uint8_t reserved[15];
};
static_assert(sizeof(AnaGroupDescriptor) == 32);
enum AnaState : uint8_t {
  kAnaOptimized = 0x01,
  kAnaNonOptimized = 0x02,
  kAnaInaccessible = 0x03,
  kAnaPersistentLoss = 0x04,
  kAnaChange = 0x0F,
};
// Path-related status codes (SCT 3h) for a command on a path in those states.
inline constexpr uint8_t kScAnaPersistentLoss = 0x01;
inline constexpr uint8_t kScAnaInaccessible = 0x02;
inline constexpr uint8_t kScAnaTransition = 0x03;
constexpr uint8_t GetLogPageLsp(const Sqe& s) { return static_cast<uint8_t>(s.cdw10 >> 8 & 0x7f); }

struct CommandEffectsLog {
  uint32_t acs[256];  // admin command supported, by opcode
  uint32_t iocs[256]; // I/O command supported, by opcode
  uint8_t reserved[2048];
};
static_assert(sizeof(CommandEffectsLog) == 4096);
inline constexpr uint32_t kCseSupported = 1u << 0;
inline constexpr uint32_t kCseLbcc = 1u << 1;  // logical block content change

// Feature identifiers (Set/Get Features cdw10 bits 7:0).
enum FeatureId : uint8_t {
  kFeatArbitration = 0x01,
  kFeatPowerManagement = 0x02,
  kFeatTemperatureThreshold = 0x04,
  kFeatVolatileWriteCache = 0x06,
  kFeatNumberOfQueues = 0x07,
  kFeatAsyncEventConfig = 0x0B,
  kFeatKeepAliveTimer = 0x0F,
};

// Asynchronous event completion dword 0: type (bits 2:0), info (15:8), log page (23:16).
enum AsyncEventType : uint8_t { kAeTypeError = 0, kAeTypeSmart = 1, kAeTypeNotice = 2 };
enum AsyncEventNotice : uint8_t { kAeNoticeNamespaceChanged = 0, kAeNoticeDiscoveryChanged = 0xF0 };
constexpr uint32_t AsyncEventCdw0(uint8_t type, uint8_t info, uint8_t log) {
  return static_cast<uint32_t>(type) | static_cast<uint32_t>(info) << 8 |
         static_cast<uint32_t>(log) << 16;
}

// Dataset Management range (Deallocate), 16 bytes.
struct DsmRange {
  uint32_t attributes;
  uint32_t nlb;
  uint64_t slba;
};
static_assert(sizeof(DsmRange) == 16);

// Fabrics discovery log page (log 70h): a 1024-byte header, then 1024-byte entries.
struct DiscoveryLogHeader {
  uint64_t genctr;
  uint64_t numrec;
  uint16_t recfmt;
  uint8_t reserved[1006];
};
static_assert(sizeof(DiscoveryLogHeader) == 1024);

enum DiscoverySubtype : uint8_t { kSubtypeReferral = 1, kSubtypeNvme = 2, kSubtypeCurrentDiscovery = 3 };
enum AddressFamily : uint8_t { kAdrfamIpv4 = 1, kAdrfamIpv6 = 2 };

struct DiscoveryLogEntry {
  uint8_t trtype;   // 3: TCP
  uint8_t adrfam;
  uint8_t subtype;
  uint8_t treq;     // bits 1:0 secure channel (2: not required)
  uint16_t portid;
  uint16_t cntlid;  // 0xFFFF: dynamic
  uint16_t asqsz;   // admin max SQ size
  uint16_t eflags;
  uint8_t reserved12[20];
  char trsvcid[32];
  uint8_t reserved64[192];
  char subnqn[256];
  char traddr[256];
  uint8_t tsas[256];  // TCP: byte 0 SECTYPE (0 none)
};
static_assert(sizeof(DiscoveryLogEntry) == 1024);
static_assert(offsetof(DiscoveryLogEntry, trsvcid) == 32);
static_assert(offsetof(DiscoveryLogEntry, subnqn) == 256);
static_assert(offsetof(DiscoveryLogEntry, traddr) == 512);
static_assert(offsetof(DiscoveryLogEntry, tsas) == 768);

// Controller register fields.
constexpr uint32_t CcEn(uint32_t cc) { return cc & 1; }
constexpr uint32_t CcShn(uint32_t cc) { return cc >> 14 & 3; }
inline constexpr uint32_t kCstsRdy = 1u << 0;
inline constexpr uint32_t kCstsCfs = 1u << 1;
inline constexpr uint32_t kCstsShstComplete = 2u << 2;

}  // namespace nvmf::spec
