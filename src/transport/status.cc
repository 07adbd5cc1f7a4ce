#include "nvmf/status.h"

namespace nvmf {

const char* CodeName(Status::Code c) {
  switch (c) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kIoError: return "I/O error";
    case Status::Code::kProtocolError: return "protocol error";
    case Status::Code::kPeerTerminated: return "terminated by peer";
    case Status::Code::kTimedOut: return "timed out";
    case Status::Code::kAborted: return "aborted";
    case Status::Code::kInvalidArgument: return "invalid argument";
    case Status::Code::kResourceExhausted: return "resource exhausted";
    case Status::Code::kNotSupported: return "not supported";
    case Status::Code::kDataDigestError: return "data digest error";
    case Status::Code::kNvmeError: return "NVMe error";
    case Status::Code::kNotFound: return "not found";
    case Status::Code::kAlreadyExists: return "already exists";
    case Status::Code::kAuthFailed: return "authentication failed";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = CodeName(code_);
  if (!message_.empty()) s += ": " + message_;
  return s;
}

}  // namespace nvmf
