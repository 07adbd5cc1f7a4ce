// Names of NVMe status codes and commands, for messages people read.
#include <cstdio>
#include <string>

#include "host/util_internal.h"
#include "nvmf/host.h"

namespace nvmf::host {
namespace {

const char* GenericName(uint8_t sc) {
  switch (sc) {
    case 0x00: return "Successful Completion";
    case 0x01: return "Invalid Command Opcode";
    case 0x02: return "Invalid Field in Command";
    case 0x03: return "Command ID Conflict";
    case 0x04: return "Data Transfer Error";
    case 0x05: return "Commands Aborted due to Power Loss Notification";
    case 0x06: return "Internal Error";
    case 0x07: return "Command Abort Requested";
    case 0x08: return "Command Aborted due to SQ Deletion";
    case 0x09: return "Command Aborted due to Failed Fused Command";
    case 0x0A: return "Command Aborted due to Missing Fused Command";
    case 0x0B: return "Invalid Namespace or Format";
    case 0x0C: return "Command Sequence Error";
    case 0x0D: return "Invalid SGL Segment Descriptor";
    case 0x0E: return "Invalid Number of SGL Descriptors";
    case 0x0F: return "Data SGL Length Invalid";
    case 0x10: return "Metadata SGL Length Invalid";
    case 0x11: return "SGL Descriptor Type Invalid";
    case 0x12: return "Invalid Use of Controller Memory Buffer";
    case 0x13: return "PRP Offset Invalid";
    case 0x14: return "Atomic Write Unit Exceeded";
    case 0x15: return "Operation Denied";
    case 0x16: return "SGL Offset Invalid";
    case 0x18: return "Host Identifier Inconsistent Format";
    case 0x19: return "Keep Alive Timer Expired";
    case 0x1A: return "Keep Alive Timeout Invalid";
    case 0x1B: return "Command Aborted due to Preempt and Abort";
    case 0x1C: return "Sanitize Failed";
    case 0x1D: return "Sanitize In Progress";
    case 0x1E: return "SGL Data Block Granularity Invalid";
    case 0x1F: return "Command Not Supported for Queue in CMB";
    case 0x20: return "Namespace is Write Protected";
    case 0x21: return "Command Interrupted";
    case 0x22: return "Transient Transport Error";
    case 0x23: return "Command Prohibited by Command and Feature Lockdown";
    case 0x24: return "Admin Command Media Not Ready";
    case 0x80: return "LBA Out of Range";
    case 0x81: return "Capacity Exceeded";
    case 0x82: return "Namespace Not Ready";
    case 0x83: return "Reservation Conflict";
    case 0x84: return "Format In Progress";
    default: return nullptr;
  }
}

const char* FabricsSpecificName(uint8_t fctype, uint8_t sc) {
  if (fctype == spec::kFctypeConnect) {
    switch (sc) {
      case 0x80: return "Connect Incompatible Format";
      case 0x81: return "Connect Controller Busy";
      case 0x82: return "Connect Invalid Parameters";
      case 0x83: return "Connect Restart Discovery";
      case 0x84: return "Connect Invalid Host";
      case 0x85: return "Invalid Queue Type";
      case 0x90: return "Discover Restart";
      case 0x91: return "Authentication Required";
      default: break;
    }
  }
  if (fctype == spec::kFctypeAuthSend || fctype == spec::kFctypeAuthReceive) {
    if (sc == 0x84) return "Connect Invalid Host";
  }
  if (sc == 0x82) return "Invalid Parameters";
  return nullptr;
}

const char* AdminSpecificName(uint8_t opc, uint8_t sc) {
  switch (sc) {
    case 0x00: return "Completion Queue Invalid";
    case 0x01: return "Invalid Queue Identifier";
    case 0x02: return "Invalid Queue Size";
    case 0x03: return "Abort Command Limit Exceeded";
    case 0x05: return "Asynchronous Event Request Limit Exceeded";
    case 0x06: return "Invalid Firmware Slot";
    case 0x07: return "Invalid Firmware Image";
    case 0x08: return "Invalid Interrupt Vector";
    case 0x09: return "Invalid Log Page";
    case 0x0A: return "Invalid Format";
    case 0x0B: return "Firmware Activation Requires Conventional Reset";
    case 0x0C: return "Invalid Queue Deletion";
    case 0x0D: return "Feature Identifier Not Saveable";
    case 0x0E: return "Feature Not Changeable";
    case 0x0F: return "Feature Not Namespace Specific";
    case 0x10: return "Firmware Activation Requires NVM Subsystem Reset";
    case 0x11: return "Firmware Activation Requires Controller Level Reset";
    case 0x12: return "Firmware Activation Requires Maximum Time Violation";
    case 0x13: return "Firmware Activation Prohibited";
    case 0x14: return "Overlapping Range";
    case 0x15: return "Namespace Insufficient Capacity";
    case 0x16: return "Namespace Identifier Unavailable";
    case 0x18: return "Namespace Already Attached";
    case 0x19: return "Namespace Is Private";
    case 0x1A: return "Namespace Not Attached";
    case 0x1B: return "Thin Provisioning Not Supported";
    case 0x1C: return "Controller List Invalid";
    case 0x1D: return "Device Self-test In Progress";
    case 0x1E: return "Boot Partition Write Prohibited";
    case 0x1F: return "Invalid Controller Identifier";
    case 0x20: return "Invalid Secondary Controller State";
    case 0x21: return "Invalid Number of Controller Resources";
    case 0x22: return "Invalid Resource Identifier";
    case 0x23: return "Sanitize Prohibited While Persistent Memory Region is Enabled";
    case 0x24: return "ANA Group Identifier Invalid";
    case 0x25: return "ANA Attach Failed";
    default: break;
  }
  (void)opc;
  return nullptr;
}

const char* NvmSpecificName(uint8_t sc) {
  switch (sc) {
    case 0x80: return "Conflicting Attributes";
    case 0x81: return "Invalid Protection Information";
    case 0x82: return "Attempted Write to Read Only Range";
    case 0x83: return "Command Size Limit Exceeded";
    default: return nullptr;
  }
}

const char* MediaName(uint8_t sc) {
  switch (sc) {
    case 0x80: return "Write Fault";
    case 0x81: return "Unrecovered Read Error";
    case 0x82: return "End-to-end Guard Check Error";
    case 0x83: return "End-to-end Application Tag Check Error";
    case 0x84: return "End-to-end Reference Tag Check Error";
    case 0x85: return "Compare Failure";
    case 0x86: return "Access Denied";
    case 0x87: return "Deallocated or Unwritten Logical Block";
    case 0x88: return "End-to-End Storage Tag Check Error";
    default: return nullptr;
  }
}

const char* PathName(uint8_t sc) {
  switch (sc) {
    case 0x00: return "Internal Path Error";
    case 0x01: return "Asymmetric Access Persistent Loss";
    case 0x02: return "Asymmetric Access Inaccessible";
    case 0x03: return "Asymmetric Access Transition";
    case 0x60: return "Controller Pathing Error";
    case 0x70: return "Host Pathing Error";
    case 0x71: return "Command Aborted By Host";
    default: return nullptr;
  }
}

std::string Hex(unsigned v) {
  char b[16];
  std::snprintf(b, sizeof(b), "%Xh", v);
  return b;
}

}  // namespace

std::string NvmeStatusName(uint16_t status, uint8_t opc, bool admin, uint8_t fctype) {
  const uint8_t sct = spec::StatusSct(status);
  const uint8_t sc = spec::StatusSc(status);
  const char* name = nullptr;
  switch (sct) {
    case spec::kSctGeneric: name = GenericName(sc); break;
    case spec::kSctCommandSpecific:
      if (opc == spec::kFabricsCommand) {
        name = FabricsSpecificName(fctype, sc);
      } else if (admin) {
        name = AdminSpecificName(opc, sc);
      } else {
        name = NvmSpecificName(sc);
      }
      break;
    case spec::kSctMediaError: name = MediaName(sc); break;
    case spec::kSctPathRelated: name = PathName(sc); break;
    case spec::kSctVendor: return "Vendor Specific Status " + Hex(sc);
    default: break;
  }
  if (name != nullptr) return name;
  return "Unknown Status (SCT " + Hex(sct) + ", SC " + Hex(sc) + ")";
}

std::string NvmeStatusString(uint16_t status, uint8_t opc, bool admin, uint8_t fctype) {
  std::string s = NvmeStatusName(status, opc, admin, fctype);
  s += " (SCT " + Hex(spec::StatusSct(status)) + ", SC " + Hex(spec::StatusSc(status));
  if (spec::StatusDnr(status)) s += ", DNR";
  s += ")";
  return s;
}

const char* CommandName(const spec::Sqe& sqe, bool admin) {
  if (sqe.opc == spec::kFabricsCommand) {
    switch (reinterpret_cast<const spec::FabricsSqe&>(sqe).fctype) {
      case spec::kFctypeConnect: return "Fabrics Connect";
      case spec::kFctypePropertyGet: return "Property Get";
      case spec::kFctypePropertySet: return "Property Set";
      case spec::kFctypeDisconnect: return "Fabrics Disconnect";
      case spec::kFctypeAuthSend: return "Authentication Send";
      case spec::kFctypeAuthReceive: return "Authentication Receive";
      default: return "Fabrics command";
    }
  }
  if (admin) {
    switch (sqe.opc) {
      case spec::kAdminGetLogPage: return "Get Log Page";
      case spec::kAdminIdentify: return "Identify";
      case spec::kAdminSetFeatures: return "Set Features";
      case spec::kAdminGetFeatures: return "Get Features";
      case spec::kAdminAsyncEventRequest: return "Asynchronous Event Request";
      case spec::kAdminKeepAlive: return "Keep Alive";
      default: return "Admin command";
    }
  }
  switch (sqe.opc) {
    case spec::kNvmFlush: return "Flush";
    case spec::kNvmWrite: return "Write";
    case spec::kNvmRead: return "Read";
    case spec::kNvmWriteZeroes: return "Write Zeroes";
    case spec::kNvmDatasetManagement: return "Dataset Management";
    default: return "I/O command";
  }
}

Status CompletionStatus(const spec::Sqe& sqe, const spec::Cqe& cqe, bool admin) {
  const uint16_t status = spec::StatusOf(cqe);
  if (status == spec::kStatusSuccess) return Status::OK();
  const uint8_t fctype = reinterpret_cast<const spec::FabricsSqe&>(sqe).fctype;
  std::string msg = std::string(CommandName(sqe, admin)) + ": " +
                    NvmeStatusString(status, sqe.opc, admin, fctype);
  if (sqe.opc == spec::kFabricsCommand && fctype == spec::kFctypeConnect &&
      spec::StatusSct(status) == spec::kSctCommandSpecific &&
      spec::StatusSc(status) == spec::kScConnectInvalidParameters) {
    const auto& c = reinterpret_cast<const spec::ConnectCqe&>(cqe);
    msg += ", invalid parameter at byte " + std::to_string(c.invalid.ipo) +
           ((c.invalid.iattr & 1) != 0 ? " of the Connect data" : " of the command");
  }
  return Status::NvmeError(msg);
}

namespace internal {

Status WithContext(const Status& s, const std::string& prefix) {
  if (s.ok()) return s;
  std::string m = s.message().empty() ? prefix : prefix + ": " + s.message();
  switch (s.code()) {
    case Status::Code::kOk: return s;
    case Status::Code::kIoError: return Status::IoError(m);
    case Status::Code::kProtocolError: return Status::ProtocolError(m);
    case Status::Code::kPeerTerminated: return Status::PeerTerminated(m);
    case Status::Code::kTimedOut: return Status::TimedOut(m);
    case Status::Code::kAborted: return Status::Aborted(m);
    case Status::Code::kInvalidArgument: return Status::InvalidArgument(m);
    case Status::Code::kResourceExhausted: return Status::ResourceExhausted(m);
    case Status::Code::kNotSupported: return Status::NotSupported(m);
    case Status::Code::kDataDigestError: return Status::DataDigestError(m);
    case Status::Code::kNvmeError: return Status::NvmeError(m);
    case Status::Code::kNotFound: return Status::NotFound(m);
    case Status::Code::kAlreadyExists: return Status::AlreadyExists(m);
    case Status::Code::kAuthFailed: return Status::AuthFailed(m);
  }
  return Status::IoError(m);
}

}  // namespace internal
}  // namespace nvmf::host
