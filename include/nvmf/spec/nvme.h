// NVMe base wire formats: the 64-byte submission queue entry, the 16-byte completion
// queue entry, SGL descriptors and status codes. Plain little-endian structs, no logic
// beyond field packing helpers. Every size and offset is checked at compile time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nvmf::spec {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "wire structs are read in place; a big-endian port needs byte swapping");

// SGL descriptor (NVMe base spec, "SGL Descriptor"), 16 bytes.
struct SglDescriptor {
  uint64_t address;
  uint32_t length;
  uint8_t reserved[3];
  uint8_t type;  // descriptor type in bits 7:4, subtype in bits 3:0
};
static_assert(sizeof(SglDescriptor) == 16);
static_assert(offsetof(SglDescriptor, length) == 8);
static_assert(offsetof(SglDescriptor, type) == 15);

enum SglType : uint8_t {
  kSglTypeDataBlock = 0x0,
  kSglTypeTransportDataBlock = 0x5,
};
enum SglSubtype : uint8_t {
  kSglSubtypeAddress = 0x0,
  kSglSubtypeOffset = 0x1,
  kSglSubtypeTransport = 0xA,
};
constexpr uint8_t SglTypeByte(uint8_t type, uint8_t subtype) {
  return static_cast<uint8_t>(type << 4 | subtype);
}
// In-capsule data: a data block addressed by an offset into the capsule.
inline constexpr uint8_t kSglInCapsule = SglTypeByte(kSglTypeDataBlock, kSglSubtypeOffset);
// Data moved by the transport (NVMe/TCP R2T/H2CData or C2HData).
inline constexpr uint8_t kSglTransport =
    SglTypeByte(kSglTypeTransportDataBlock, kSglSubtypeTransport);

// Submission queue entry, 64 bytes.
struct Sqe {
  uint8_t opc;
  uint8_t fuse_psdt;  // FUSE bits 1:0, PSDT bits 7:6
  uint16_t cid;
  uint32_t nsid;
  uint32_t cdw2;
  uint32_t cdw3;
  uint64_t mptr;
  SglDescriptor sgl1;  // DPTR; fabrics always use an SGL
  uint32_t cdw10;
  uint32_t cdw11;
  uint32_t cdw12;
  uint32_t cdw13;
  uint32_t cdw14;
  uint32_t cdw15;
};
static_assert(sizeof(Sqe) == 64);
static_assert(offsetof(Sqe, cid) == 2);
static_assert(offsetof(Sqe, nsid) == 4);
static_assert(offsetof(Sqe, mptr) == 16);
static_assert(offsetof(Sqe, sgl1) == 24);
static_assert(offsetof(Sqe, cdw10) == 40);
static_assert(offsetof(Sqe, cdw15) == 60);

// PSDT value 01b: SGL, with the metadata pointer a contiguous buffer. Fabrics use only SGLs.
inline constexpr uint8_t kPsdtSglMptrContig = 0x1;
constexpr uint8_t Psdt(const Sqe& s) { return static_cast<uint8_t>(s.fuse_psdt >> 6); }

// Completion queue entry, 16 bytes.
struct Cqe {
  uint32_t cdw0;
  uint32_t cdw1;
  uint16_t sqhd;
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // phase tag bit 0, status field bits 15:1
};
static_assert(sizeof(Cqe) == 16);
static_assert(offsetof(Cqe, sqhd) == 8);
static_assert(offsetof(Cqe, cid) == 12);
static_assert(offsetof(Cqe, status) == 14);

// Status codes: a status is SCT (3 bits) and SC (8 bits), plus DNR/More flags.
enum StatusCodeType : uint8_t {
  kSctGeneric = 0x0,
  kSctCommandSpecific = 0x1,
  kSctMediaError = 0x2,
  kSctPathRelated = 0x3,
  kSctVendor = 0x7,
};

// Generic command status values (SCT 0).
enum GenericStatus : uint8_t {
  kScSuccess = 0x00,
  kScInvalidOpcode = 0x01,
  kScInvalidField = 0x02,
  kScCommandIdConflict = 0x03,
  kScDataTransferError = 0x04,
  kScInternalError = 0x06,
  kScAbortRequested = 0x07,
  kScInvalidNamespace = 0x0B,
  kScCommandSequenceError = 0x0C,
  kScInvalidSglSegmentDescriptor = 0x0D,
  kScInvalidNumberOfSglDescriptors = 0x0E,
  kScDataSglLengthInvalid = 0x0F,
  kScMetadataSglLengthInvalid = 0x10,
  kScSglDescriptorTypeInvalid = 0x11,
  kScSglOffsetInvalid = 0x16,
  kScTransientTransportError = 0x22,
  kScLbaOutOfRange = 0x80,
  kScCapacityExceeded = 0x81,
  kScNamespaceNotReady = 0x82,
  kScReservationConflict = 0x83,
};
// Generic status 18h: a command's host identifier format does not match the one in use
// (Reservation Report with EDS cleared while hosts have 128-bit identifiers).
inline constexpr uint8_t kScHostIdInconsistentFormat = 0x18;

// Fabrics command-specific status values (SCT 1).
enum FabricsStatus : uint8_t {
  kScConnectIncompatibleFormat = 0x80,
  kScConnectControllerBusy = 0x81,
  kScConnectInvalidParameters = 0x82,
  kScConnectRestartDiscovery = 0x83,
  kScConnectInvalidHost = 0x84,
};

// The 15-bit status field as it sits in Cqe::status bits 15:1.
constexpr uint16_t MakeStatus(uint8_t sct, uint8_t sc, bool dnr = false) {
  return static_cast<uint16_t>((dnr ? 1u << 14 : 0u) | (sct & 0x7u) << 8 | sc);
}
constexpr uint16_t StatusOf(const Cqe& c) { return static_cast<uint16_t>(c.status >> 1); }
constexpr uint8_t StatusSct(uint16_t status) { return static_cast<uint8_t>(status >> 8 & 0x7); }
constexpr uint8_t StatusSc(uint16_t status) { return static_cast<uint8_t>(status & 0xff); }
constexpr bool StatusDnr(uint16_t status) { return (status >> 14 & 1) != 0; }
inline constexpr uint16_t kStatusSuccess = 0;
inline void SetStatus(Cqe& c, uint16_t status) {
  c.status = static_cast<uint16_t>((c.status & 1) | status << 1);
}

// Admin and NVM opcodes the layers above use; the transport layer does not interpret them.
enum AdminOpcode : uint8_t {
  kAdminGetLogPage = 0x02,
  kAdminIdentify = 0x06,
  kAdminSetFeatures = 0x09,
  kAdminGetFeatures = 0x0A,
  kAdminAsyncEventRequest = 0x0C,
  kAdminKeepAlive = 0x18,
  kFabricsCommand = 0x7F,
};
enum NvmOpcode : uint8_t {
  kNvmFlush = 0x00,
  kNvmWrite = 0x01,
  kNvmRead = 0x02,
  kNvmWriteZeroes = 0x08,
  kNvmDatasetManagement = 0x09,
  kNvmReservationRegister = 0x0D,
  kNvmReservationReport = 0x0E,
  kNvmReservationAcquire = 0x11,
  kNvmReservationRelease = 0x15,
};

// Data transfer direction encoded in opcode bits 1:0.
enum DataDirection : uint8_t {
  kXferNone = 0,
  kXferHostToController = 1,
  kXferControllerToHost = 2,
  kXferBidirectional = 3,
};
constexpr DataDirection OpcodeDirection(uint8_t opc) {
  return static_cast<DataDirection>(opc & 0x3);
}

// An NVM command on an LBA range (Read, Write, Write Zeroes): SLBA in CDW10-11, the
// number of blocks (1-based here, 0's based on the wire) in CDW12.
constexpr Sqe LbaSqe(uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb) {
  Sqe s{};
  s.opc = opc;
  s.nsid = nsid;
  s.cdw10 = static_cast<uint32_t>(slba);
  s.cdw11 = static_cast<uint32_t>(slba >> 32);
  s.cdw12 = nlb - 1;
  return s;
}

}  // namespace nvmf::spec
