// The host's side of one DH-HMAC-CHAP transaction on one queue, as pure message logic
// (the host's controller code carries the messages in Authentication Send/Receive):
//
//   Negotiate() -> send;  receive -> OnChallenge() -> send the Reply
//   receive -> OnSuccess1() -> send Success2 (when the controller was asked to prove
//   itself and did) or Failure2 (when its proof is wrong; the transaction fails)
//
// A Failure1 from the controller, or a message that makes no sense, fails the
// transaction with Status::AuthFailed or ProtocolError. Errors carry no key material.
// Not thread-safe: one queue's loop drives it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "auth/dhchap.h"

namespace nvmf::auth {

struct HostAuthConfig {
  Secret host_secret;  // proves the host
  Secret ctrl_secret;  // optional: asks the controller to prove itself with this
  bool enabled() const { return !host_secret.empty(); }
};

class HostTransaction {
 public:
  HostTransaction(const HostAuthConfig& config, std::string hostnqn, std::string subnqn, uint16_t t_id);

  // AUTH_Negotiate: DH-HMAC-CHAP with every hash and DH group we have.
  std::vector<uint8_t> Negotiate() const;
  // The controller's answer to Negotiate (a challenge or a Failure1): the Reply to send.
  Status OnChallenge(const uint8_t* p, size_t n, std::vector<uint8_t>* reply);
  // The controller's answer to the Reply (Success1 or Failure1). *send: what to send
  // next (Success2 or Failure2), empty when nothing; a Failure2 comes with an error.
  Status OnSuccess1(const uint8_t* p, size_t n, std::vector<uint8_t>* send);
  // Failure2 for a challenge we refused (sent before giving up).
  std::vector<uint8_t> Failure2(uint8_t explanation) const;

  Hash hash() const { return hash_; }
  DhGroup dhgroup() const { return group_; }
  bool bidirectional() const { return !config_.ctrl_secret.empty(); }
  // The explanation a failed OnChallenge should send in Failure2 (0: none is due).
  uint8_t refusal() const { return refusal_; }
  // Largest message the controller may send us: a challenge with the biggest DH value.
  static constexpr size_t kMaxReceive = 16 + 64 + 1024;

 private:
  Status CheckFailure1(const uint8_t* p, size_t n) const;

  const HostAuthConfig& config_;
  const std::string hostnqn_;
  const std::string subnqn_;
  const uint16_t t_id_;
  Hash hash_ = Hash::kNone;
  DhGroup group_ = DhGroup::kNull;
  SecretBytes shared_;
  std::vector<uint8_t> my_challenge_;  // C2, when the controller must prove itself
  uint32_t my_seqnum_ = 0;
  uint8_t refusal_ = 0;
};

}  // namespace nvmf::auth
