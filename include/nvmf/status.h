// Status: the result of an operation, LevelDB style. OK carries no message and costs no
// allocation; errors carry a code and a human-readable message. Errors never cross the
// API as exceptions.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace nvmf {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kIoError,          // the socket failed, or the peer closed it in the middle of a PDU
    kProtocolError,    // the peer sent a bad PDU; we sent a termination request
    kPeerTerminated,   // the peer sent a termination request
    kTimedOut,
    kAborted,          // cancelled locally (abort, or the queue pair was freed)
    kInvalidArgument,
    kResourceExhausted,
    kNotSupported,
    kDataDigestError,  // a PDU's data digest did not match; the connection lives on
    kNvmeError,        // the controller completed the command with an NVMe error status
    kNotFound,         // what a request names does not exist (a namespace, a subsystem)
    kAlreadyExists,    // what a request would create exists already
    kAuthFailed,       // in-band authentication failed (a wrong or missing secret)
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status IoError(std::string_view m) { return Status(Code::kIoError, m); }
  static Status ProtocolError(std::string_view m) { return Status(Code::kProtocolError, m); }
  static Status PeerTerminated(std::string_view m) { return Status(Code::kPeerTerminated, m); }
  static Status TimedOut(std::string_view m) { return Status(Code::kTimedOut, m); }
  static Status Aborted(std::string_view m) { return Status(Code::kAborted, m); }
  static Status InvalidArgument(std::string_view m) { return Status(Code::kInvalidArgument, m); }
  static Status ResourceExhausted(std::string_view m) {
    return Status(Code::kResourceExhausted, m);
  }
  static Status NotSupported(std::string_view m) { return Status(Code::kNotSupported, m); }
  static Status DataDigestError(std::string_view m) { return Status(Code::kDataDigestError, m); }
  static Status NvmeError(std::string_view m) { return Status(Code::kNvmeError, m); }
  static Status NotFound(std::string_view m) { return Status(Code::kNotFound, m); }
  static Status AlreadyExists(std::string_view m) { return Status(Code::kAlreadyExists, m); }
  static Status AuthFailed(std::string_view m) { return Status(Code::kAuthFailed, m); }
  // The same code, with "prefix: " put before the message.
  Status Annotate(std::string_view prefix) const {
    return ok() ? *this : Status(code_, std::string(prefix) + ": " + message_);
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(Code c, std::string_view m) : code_(c), message_(m) {}
  Code code_ = Code::kOk;
  std::string message_;
};

const char* CodeName(Status::Code c);

}  // namespace nvmf
