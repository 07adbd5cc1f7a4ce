// The controller's side of one DH-HMAC-CHAP transaction on one queue: the messages the
// host sends with Authentication Send are handed to Send, the ones it asks for with
// Authentication Receive come from Receive. One enum of states, one function per step.
//
//   kNegotiate --Send(AUTH_Negotiate)--> kChallenge --Receive--> kReply
//   kReply --Send(Reply), response right--> kSuccess1 --Receive--> kDone
//                                                         (or kSuccess2 when the host
//                                                          asked the controller to prove
//                                                          itself)
//   kSuccess2 --Send(Success2)--> kDone;  --Send(Failure2)--> kFailed
//   any protocol error or a wrong response --> kFailure1 --Receive(Failure1)--> kFailed
//   kDone --Send(AUTH_Negotiate)--> a new transaction (re-authentication)
//
// The queue serves nothing but Authentication Send/Receive until authenticated() (the
// caller enforces it). Nothing the host sends makes it allocate more than the largest
// message the negotiated parameters allow. failure() says why, without key material.
// Not thread-safe: one queue's loop drives it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "auth/dhchap.h"

namespace nvmf::auth {

// What a host NQN must prove, as the target was configured.
struct ControllerAuthConfig {
  Secret host_secret;  // the host proves it knows this
  Secret ctrl_secret;  // optional: the controller proves it when the host asks
  Hash hash = Hash::kSha256;        // preferred; the first the host offers otherwise
  DhGroup dhgroup = DhGroup::kNull;  // required of the host
};

class ControllerTransaction {
 public:
  enum class State { kNegotiate, kChallenge, kReply, kSuccess1, kSuccess2, kFailure1, kDone, kFailed };

  ControllerTransaction(const ControllerAuthConfig& config, std::string hostnqn, std::string subnqn,
                        uint32_t seqnum);

  // Authentication Send's data. Returns the command's NVMe status (0: success); a
  // message that fails authentication still succeeds as a command, and the failure is
  // what the next Receive returns.
  uint16_t Send(const uint8_t* p, size_t n);
  // Authentication Receive: the message to return (at most al bytes) in *out.
  uint16_t Receive(size_t al, std::vector<uint8_t>* out);

  State state() const { return state_; }
  bool authenticated() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kFailed || state_ == State::kFailure1; }
  // Why it failed, for the log (no key material).
  const std::string& failure() const { return failure_; }
  // After kDone: whether the controller proved itself too.
  bool bidirectional() const { return bidirectional_; }
  Hash hash() const { return hash_; }
  DhGroup dhgroup() const { return group_; }
  // Largest Authentication Send a host may make: the Reply with the biggest DH value.
  static constexpr size_t kMaxSend = 16 + 2 * 64 + 1024;

 private:
  uint16_t OnNegotiate(const uint8_t* p, size_t n);
  uint16_t OnReply(const uint8_t* p, size_t n);
  uint16_t OnSuccess2(const uint8_t* p, size_t n);
  uint16_t Challenge(size_t al, std::vector<uint8_t>* out);
  uint16_t Success1(size_t al, std::vector<uint8_t>* out);
  uint16_t Failure1(size_t al, std::vector<uint8_t>* out);
  // Fails the transaction: the next Receive returns AUTH_Failure1 with this explanation.
  uint16_t Fail(uint8_t explanation, const std::string& why);
  uint16_t SequenceError(const std::string& why);

  const ControllerAuthConfig& config_;
  const std::string hostnqn_;
  const std::string subnqn_;
  State state_ = State::kNegotiate;
  uint16_t t_id_ = 0;
  uint32_t seqnum_;
  Hash hash_ = Hash::kNone;
  DhGroup group_ = DhGroup::kNull;
  std::vector<uint8_t> challenge_;   // C1
  DhKey dh_;
  SecretBytes shared_;                // g^xy, when DH is used
  std::vector<uint8_t> ctrl_response_;  // R2 for the host's challenge, when it asked
  bool bidirectional_ = false;
  uint8_t explanation_ = 0;
  std::string failure_;
};

}  // namespace nvmf::auth
