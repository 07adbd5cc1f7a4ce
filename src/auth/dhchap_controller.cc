#include "auth/dhchap_controller.h"

#include <cstring>

#include "auth/messages.h"
#include "nvmf/spec/auth.h"
#include "nvmf/spec/nvme.h"

namespace nvmf::auth {

namespace {

constexpr uint16_t kOk = spec::kStatusSuccess;

uint16_t InvalidField() { return spec::MakeStatus(spec::kSctGeneric, spec::kScInvalidField, true); }

}  // namespace

ControllerTransaction::ControllerTransaction(const ControllerAuthConfig& config, std::string hostnqn,
                                             std::string subnqn, uint32_t seqnum)
    : config_(config), hostnqn_(std::move(hostnqn)), subnqn_(std::move(subnqn)), seqnum_(seqnum) {}

uint16_t ControllerTransaction::Send(const uint8_t* p, size_t n) {
  if (n < 2) return Fail(spec::kAuthIncorrectPayload, "a message too short to name its type");
  const bool negotiate = p[0] == spec::kAuthTypeCommon && p[1] == spec::kAuthIdNegotiate;
  switch (state_) {
    case State::kNegotiate:
    case State::kDone:  // the host authenticates again
      if (!negotiate) return SequenceError("expected AUTH_Negotiate");
      return OnNegotiate(p, n);
    case State::kReply: return OnReply(p, n);
    case State::kSuccess2: return OnSuccess2(p, n);
    case State::kChallenge:
    case State::kSuccess1:
    case State::kFailure1:
      return SequenceError("an Authentication Send where a Receive was due");
    case State::kFailed: break;
  }
  return SequenceError("the transaction has failed");
}

uint16_t ControllerTransaction::Receive(size_t al, std::vector<uint8_t>* out) {
  out->clear();
  switch (state_) {
    case State::kChallenge: return Challenge(al, out);
    case State::kSuccess1: return Success1(al, out);
    case State::kFailure1: return Failure1(al, out);
    default: break;
  }
  return SequenceError("an Authentication Receive where a Send was due");
}

uint16_t ControllerTransaction::OnNegotiate(const uint8_t* p, size_t n) {
  // A new transaction: nothing of an earlier one carries over.
  state_ = State::kNegotiate;
  shared_ = SecretBytes();
  ctrl_response_.clear();
  bidirectional_ = false;
  if (n < sizeof(spec::AuthNegotiate)) return Fail(spec::kAuthIncorrectPayload, "AUTH_Negotiate too short");
  const auto neg = ReadHeader<spec::AuthNegotiate>(p);
  t_id_ = neg.t_id;
  if (neg.sc_c != 0) {
    return Fail(spec::kAuthConcatMismatch, "the host asked for secure channel concatenation");
  }
  const size_t want = sizeof(spec::AuthNegotiate) + neg.napd * sizeof(spec::AuthProtocolDescriptor);
  if (neg.napd == 0 || n < want) return Fail(spec::kAuthIncorrectPayload, "AUTH_Negotiate too short");
  for (uint8_t i = 0; i < neg.napd; i++) {
    const auto d = ReadHeader<spec::AuthProtocolDescriptor>(
        p + sizeof(spec::AuthNegotiate) + i * sizeof(spec::AuthProtocolDescriptor));
    if (d.authid != spec::kAuthProtocolDhchap) continue;
    if (d.halen > 30 || d.dhlen > 30) return Fail(spec::kAuthIncorrectPayload, "bad identifier list");
    // Our hash if the host offers it, else the first it offers that we know.
    hash_ = Hash::kNone;
    for (uint8_t k = 0; k < d.halen; k++) {
      const auto h = static_cast<Hash>(d.idlist[k]);
      if (h == config_.hash) hash_ = h;
      if (hash_ == Hash::kNone && HashLength(h) != 0) hash_ = h;
    }
    if (hash_ == Hash::kNone) return Fail(spec::kAuthHashUnusable, "the host offers no hash we have");
    bool group = false;
    for (uint8_t k = 0; k < d.dhlen; k++) group |= d.idlist[30 + k] == static_cast<uint8_t>(config_.dhgroup);
    if (!group) {
      return Fail(spec::kAuthDhGroupUnusable,
                  std::string("the host does not offer DH group ") + DhGroupName(config_.dhgroup));
    }
    group_ = config_.dhgroup;
    state_ = State::kChallenge;
    return kOk;
  }
  return Fail(spec::kAuthProtocolUnusable, "the host does not offer DH-HMAC-CHAP");
}

uint16_t ControllerTransaction::Challenge(size_t al, std::vector<uint8_t>* out) {
  const size_t hl = HashLength(hash_);
  challenge_.resize(hl);
  RandomBytes(challenge_.data(), hl);
  if (group_ != DhGroup::kNull) {
    Status s = dh_.Generate(group_);
    if (!s.ok()) return Fail(spec::kAuthFailed, s.ToString());
  }
  const std::vector<uint8_t>& dhv = group_ != DhGroup::kNull ? dh_.public_value() : std::vector<uint8_t>{};
  spec::DhchapChallenge c{};
  c.auth_type = spec::kAuthTypeDhchap;
  c.auth_id = spec::kAuthIdChallenge;
  c.t_id = t_id_;
  c.hl = static_cast<uint8_t>(hl);
  c.hashid = static_cast<uint8_t>(hash_);
  c.dhgid = static_cast<uint8_t>(group_);
  c.dhvlen = static_cast<uint16_t>(dhv.size());
  c.seqnum = seqnum_;
  if (al < sizeof(c) + hl + dhv.size()) {
    Fail(spec::kAuthIncorrectPayload, "Authentication Receive too short for the challenge");
    return InvalidField();
  }
  AppendHeader(out, c);
  out->insert(out->end(), challenge_.begin(), challenge_.end());
  out->insert(out->end(), dhv.begin(), dhv.end());
  state_ = State::kReply;
  return kOk;
}

uint16_t ControllerTransaction::OnReply(const uint8_t* p, size_t n) {
  if (n < sizeof(spec::DhchapReply)) return Fail(spec::kAuthIncorrectPayload, "Reply too short");
  const auto r = ReadHeader<spec::DhchapReply>(p);
  if (r.auth_type != spec::kAuthTypeDhchap || r.auth_id != spec::kAuthIdReply) {
    return Fail(spec::kAuthIncorrectMessage, "expected DH-HMAC-CHAP_Reply");
  }
  const size_t hl = HashLength(hash_);
  if (r.t_id != t_id_) return Fail(spec::kAuthIncorrectPayload, "Reply for another transaction");
  if (r.hl != hl) return Fail(spec::kAuthIncorrectPayload, "Reply with the wrong hash length");
  if (r.dhvlen != DhValueLength(group_)) {
    return Fail(spec::kAuthIncorrectPayload, "Reply with a DH value of the wrong length");
  }
  if (n < sizeof(r) + 2 * hl + r.dhvlen) return Fail(spec::kAuthIncorrectPayload, "Reply too short");
  const uint8_t* rval = p + sizeof(r);
  const uint8_t* cval = rval + hl;
  const uint8_t* dhv = cval + hl;
  if (group_ != DhGroup::kNull) {
    Status s = dh_.Derive(dhv, r.dhvlen, &shared_);
    if (!s.ok()) return Fail(spec::kAuthIncorrectPayload, s.message());
  }
  const SecretBytes key = TransformedKey(config_.host_secret, hostnqn_);
  const std::vector<uint8_t> want = ChallengeResponse(hash_, key, challenge_.data(), hl, seqnum_,
                                                      t_id_, "HostHost", hostnqn_, subnqn_, shared_);
  seqnum_++;  // each challenge its own sequence number
  if (!SameBytes(want, rval, hl)) return Fail(spec::kAuthFailed, "the host's response is wrong");
  bidirectional_ = r.cvalid != 0;
  if (bidirectional_) {
    if (config_.ctrl_secret.empty()) {
      return Fail(spec::kAuthFailed,
                  "the host asks the controller to authenticate, and it has no controller secret");
    }
    const SecretBytes ckey = TransformedKey(config_.ctrl_secret, subnqn_);
    ctrl_response_ = ChallengeResponse(hash_, ckey, cval, hl, r.seqnum, t_id_, "Controller",
                                       subnqn_, hostnqn_, shared_);
  }
  state_ = State::kSuccess1;
  return kOk;
}

uint16_t ControllerTransaction::Success1(size_t al, std::vector<uint8_t>* out) {
  spec::DhchapSuccess1 s{};
  s.auth_type = spec::kAuthTypeDhchap;
  s.auth_id = spec::kAuthIdSuccess1;
  s.t_id = t_id_;
  s.hl = static_cast<uint8_t>(HashLength(hash_));
  s.rvalid = bidirectional_ ? 1 : 0;
  if (al < sizeof(s) + ctrl_response_.size()) {
    Fail(spec::kAuthIncorrectPayload, "Authentication Receive too short for Success1");
    return InvalidField();
  }
  AppendHeader(out, s);
  out->insert(out->end(), ctrl_response_.begin(), ctrl_response_.end());
  state_ = bidirectional_ ? State::kSuccess2 : State::kDone;
  return kOk;
}

uint16_t ControllerTransaction::OnSuccess2(const uint8_t* p, size_t n) {
  if (n >= sizeof(spec::AuthFailureMsg) && p[0] == spec::kAuthTypeCommon && p[1] == spec::kAuthIdFailure2) {
    const auto f = ReadHeader<spec::AuthFailureMsg>(p);
    state_ = State::kFailed;
    failure_ = "the host refused the controller's response (explanation " +
               std::to_string(f.rescode_exp) + ")";
    return kOk;
  }
  if (n < sizeof(spec::DhchapSuccess2) || p[0] != spec::kAuthTypeDhchap ||
      p[1] != spec::kAuthIdSuccess2 || ReadHeader<spec::DhchapSuccess2>(p).t_id != t_id_) {
    return Fail(spec::kAuthIncorrectMessage, "expected DH-HMAC-CHAP_Success2");
  }
  state_ = State::kDone;
  return kOk;
}

uint16_t ControllerTransaction::Failure1(size_t al, std::vector<uint8_t>* out) {
  const spec::AuthFailureMsg f = FailureMessage(spec::kAuthIdFailure1, t_id_, explanation_);
  state_ = State::kFailed;
  if (al < sizeof(f)) return InvalidField();
  AppendHeader(out, f);
  return kOk;
}

uint16_t ControllerTransaction::Fail(uint8_t explanation, const std::string& why) {
  state_ = State::kFailure1;
  explanation_ = explanation;
  failure_ = why;
  return kOk;
}

uint16_t ControllerTransaction::SequenceError(const std::string& why) {
  if (state_ != State::kFailed) failure_ = why;
  state_ = State::kFailed;
  return spec::MakeStatus(spec::kSctGeneric, spec::kScCommandSequenceError, true);
}

}  // namespace nvmf::auth
