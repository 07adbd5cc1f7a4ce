#include "auth/dhchap_host.h"

#include <cstring>

#include "auth/messages.h"
#include "nvmf/spec/auth.h"

namespace nvmf::auth {

namespace {

const char* ExplanationText(uint8_t e) {
  switch (e) {
    case spec::kAuthFailed: return "authentication failed (wrong or unknown secret)";
    case spec::kAuthProtocolUnusable: return "no usable authentication protocol";
    case spec::kAuthConcatMismatch: return "secure channel concatenation mismatch";
    case spec::kAuthHashUnusable: return "no usable hash function";
    case spec::kAuthDhGroupUnusable: return "no usable Diffie-Hellman group";
    case spec::kAuthIncorrectPayload: return "incorrect payload";
    case spec::kAuthIncorrectMessage: return "incorrect protocol message";
    default: return "unknown reason";
  }
}

}  // namespace

HostTransaction::HostTransaction(const HostAuthConfig& config, std::string hostnqn,
                                 std::string subnqn, uint16_t t_id)
    : config_(config), hostnqn_(std::move(hostnqn)), subnqn_(std::move(subnqn)), t_id_(t_id) {}

std::vector<uint8_t> HostTransaction::Negotiate() const {
  spec::AuthNegotiate n{};
  n.auth_type = spec::kAuthTypeCommon;
  n.auth_id = spec::kAuthIdNegotiate;
  n.t_id = t_id_;
  n.sc_c = 0;
  n.napd = 1;
  spec::AuthProtocolDescriptor d{};
  d.authid = spec::kAuthProtocolDhchap;
  const Hash hashes[] = {Hash::kSha256, Hash::kSha384, Hash::kSha512};
  const DhGroup groups[] = {DhGroup::kNull,      DhGroup::kFfdhe2048, DhGroup::kFfdhe3072,
                            DhGroup::kFfdhe4096, DhGroup::kFfdhe6144, DhGroup::kFfdhe8192};
  for (Hash h : hashes) d.idlist[d.halen++] = static_cast<uint8_t>(h);
  for (DhGroup g : groups) d.idlist[30 + d.dhlen++] = static_cast<uint8_t>(g);
  std::vector<uint8_t> out;
  AppendHeader(&out, n);
  AppendHeader(&out, d);
  return out;
}

Status HostTransaction::CheckFailure1(const uint8_t* p, size_t n) const {
  if (n >= sizeof(spec::AuthFailureMsg) && p[0] == spec::kAuthTypeCommon &&
      p[1] == spec::kAuthIdFailure1) {
    const auto f = ReadHeader<spec::AuthFailureMsg>(p);
    return Status::AuthFailed(std::string("the controller refused DH-HMAC-CHAP: ") +
                              ExplanationText(f.rescode_exp));
  }
  return Status::OK();
}

Status HostTransaction::OnChallenge(const uint8_t* p, size_t n, std::vector<uint8_t>* reply) {
  refusal_ = 0;
  if (Status f = CheckFailure1(p, n); !f.ok()) return f;
  auto refuse = [this](uint8_t why, const std::string& text) {
    refusal_ = why;
    return Status::ProtocolError("DH-HMAC-CHAP challenge: " + text);
  };
  if (n < sizeof(spec::DhchapChallenge) || p[0] != spec::kAuthTypeDhchap || p[1] != spec::kAuthIdChallenge) {
    return refuse(spec::kAuthIncorrectMessage, "not a challenge");
  }
  const auto c = ReadHeader<spec::DhchapChallenge>(p);
  if (c.t_id != t_id_) return refuse(spec::kAuthIncorrectPayload, "for another transaction");
  hash_ = static_cast<Hash>(c.hashid);
  const size_t hl = HashLength(hash_);
  if (hl == 0 || c.hl != hl) return refuse(spec::kAuthHashUnusable, "a hash we did not offer");
  if (c.dhgid > static_cast<uint8_t>(DhGroup::kFfdhe8192)) {
    return refuse(spec::kAuthDhGroupUnusable, "a DH group we did not offer");
  }
  group_ = static_cast<DhGroup>(c.dhgid);
  if (c.dhvlen != DhValueLength(group_)) return refuse(spec::kAuthIncorrectPayload, "DH value of the wrong length");
  if (n < sizeof(c) + hl + c.dhvlen) return refuse(spec::kAuthIncorrectPayload, "too short");
  const uint8_t* cval = p + sizeof(c);
  const uint8_t* dhv = cval + hl;
  std::vector<uint8_t> my_public;
  if (group_ != DhGroup::kNull) {
    DhKey key;
    Status s = key.Generate(group_);
    if (!s.ok()) return s;
    s = key.Derive(dhv, c.dhvlen, &shared_);
    if (!s.ok()) return refuse(spec::kAuthIncorrectPayload, s.message());
    my_public = key.public_value();
  }
  const SecretBytes hkey = TransformedKey(config_.host_secret, hostnqn_);
  const std::vector<uint8_t> rval = ChallengeResponse(hash_, hkey, cval, hl, c.seqnum, t_id_,
                                                      "HostHost", hostnqn_, subnqn_, shared_);
  spec::DhchapReply r{};
  r.auth_type = spec::kAuthTypeDhchap;
  r.auth_id = spec::kAuthIdReply;
  r.t_id = t_id_;
  r.hl = static_cast<uint8_t>(hl);
  r.dhvlen = static_cast<uint16_t>(my_public.size());
  my_challenge_.assign(hl, 0);
  if (bidirectional()) {
    RandomBytes(my_challenge_.data(), hl);
    do {
      RandomBytes(reinterpret_cast<uint8_t*>(&my_seqnum_), sizeof(my_seqnum_));
    } while (my_seqnum_ == 0);
    r.cvalid = 1;
    r.seqnum = my_seqnum_;
  }
  reply->clear();
  AppendHeader(reply, r);
  reply->insert(reply->end(), rval.begin(), rval.end());
  reply->insert(reply->end(), my_challenge_.begin(), my_challenge_.end());
  reply->insert(reply->end(), my_public.begin(), my_public.end());
  return Status::OK();
}

Status HostTransaction::OnSuccess1(const uint8_t* p, size_t n, std::vector<uint8_t>* send) {
  send->clear();
  if (Status f = CheckFailure1(p, n); !f.ok()) return f;
  const size_t hl = HashLength(hash_);
  if (n < sizeof(spec::DhchapSuccess1) || p[0] != spec::kAuthTypeDhchap || p[1] != spec::kAuthIdSuccess1 ||
      ReadHeader<spec::DhchapSuccess1>(p).t_id != t_id_) {
    *send = Failure2(spec::kAuthIncorrectMessage);
    return Status::ProtocolError("DH-HMAC-CHAP: expected Success1");
  }
  if (!bidirectional()) return Status::OK();
  const auto s = ReadHeader<spec::DhchapSuccess1>(p);
  if (s.rvalid == 0 || s.hl != hl || n < sizeof(s) + hl) {
    *send = Failure2(spec::kAuthFailed);
    return Status::AuthFailed("the controller did not prove itself (no response to our challenge)");
  }
  const SecretBytes ckey = TransformedKey(config_.ctrl_secret, subnqn_);
  const std::vector<uint8_t> want = ChallengeResponse(hash_, ckey, my_challenge_.data(), hl, my_seqnum_,
                                                      t_id_, "Controller", subnqn_, hostnqn_, shared_);
  if (!SameBytes(want, p + sizeof(s), hl)) {
    *send = Failure2(spec::kAuthFailed);
    return Status::AuthFailed("the controller's response is wrong: it does not know the controller secret");
  }
  spec::DhchapSuccess2 ok{};
  ok.auth_type = spec::kAuthTypeDhchap;
  ok.auth_id = spec::kAuthIdSuccess2;
  ok.t_id = t_id_;
  AppendHeader(send, ok);
  return Status::OK();
}

std::vector<uint8_t> HostTransaction::Failure2(uint8_t explanation) const {
  std::vector<uint8_t> out;
  AppendHeader(&out, FailureMessage(spec::kAuthIdFailure2, t_id_, explanation));
  return out;
}

}  // namespace nvmf::auth
