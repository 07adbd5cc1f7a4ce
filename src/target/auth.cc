// In-band authentication on the target: the hosts' credentials, and each queue's
// DH-HMAC-CHAP transaction carried by Authentication Send and Receive.
//
// A queue whose host has credentials is told so in the Connect response (AUTHREQ.ATR)
// and then serves nothing but Authentication Send/Receive (and Disconnect) until the
// transaction succeeds: every other command gets Authentication Required. A failed
// transaction closes that queue (for an admin queue, its controller) once the host has
// been told, and is counted and logged per host; the rest of the target serves on. A
// queue that has authenticated once keeps serving while the host authenticates again;
// a failed re-authentication closes it too. The connect timeout covers authentication:
// a queue not authenticated within it of its connection is closed.
#include <algorithm>
#include <cstring>

#include "auth/dhchap.h"
#include "nvmf/spec/auth.h"
#include "nvmf/spec/fabrics.h"
#include "target/context.h"
#include "target/queue.h"

namespace nvmf::target {

namespace {

constexpr uint16_t Generic(uint8_t sc) { return spec::MakeStatus(spec::kSctGeneric, sc, true); }

Status ParseCredentials(const std::string& nqn, const HostCredentials& c, auth::ControllerAuthConfig* out) {
  const std::string where = "host " + nqn + ": ";
  Status s = auth::LoadSecret(c.dhchap_key, &out->host_secret);
  if (!s.ok()) return s.Annotate(where + "dhchap_key");
  if (!c.dhchap_ctrl_key.empty()) {
    s = auth::LoadSecret(c.dhchap_ctrl_key, &out->ctrl_secret);
    if (!s.ok()) return s.Annotate(where + "dhchap_ctrl_key");
  }
  if (!auth::ParseHash(c.dhchap_hash, &out->hash)) {
    return Status::InvalidArgument(where + "dhchap_hash '" + c.dhchap_hash +
                                   "' is not hmac(sha256), hmac(sha384) or hmac(sha512)");
  }
  if (!auth::ParseDhGroup(c.dhchap_dhgroup, &out->dhgroup)) {
    return Status::InvalidArgument(where + "dhchap_dhgroup '" + c.dhchap_dhgroup +
                                   "' is not null or ffdhe2048, 3072, 4096, 6144, 8192");
  }
  return Status::OK();
}

}  // namespace

Status BuildHostAuth(const TargetConfig& config,
                     std::map<std::string, std::shared_ptr<const auth::ControllerAuthConfig>>* out) {
  std::map<std::string, std::shared_ptr<const auth::ControllerAuthConfig>> built;
  for (const auto& [nqn, creds] : config.hosts) {
    if (creds.dhchap_key.empty()) {
      if (!creds.dhchap_ctrl_key.empty()) {
        return Status::InvalidArgument("host " + nqn + ": a controller key needs a host key (dhchap_key)");
      }
      continue;
    }
    auto a = std::make_shared<auth::ControllerAuthConfig>();
    Status s = ParseCredentials(nqn, creds, a.get());
    if (!s.ok()) return s;
    built[nqn] = std::move(a);
  }
  *out = std::move(built);
  return Status::OK();
}

void TargetContext::AuthFailed(const std::string& hostnqn, const std::string& who, const std::string& why) {
  uint64_t n;
  {
    std::lock_guard<std::mutex> lock(auth_mu);
    n = ++auth_failures[hostnqn];
  }
  Log(who + ": host '" + hostnqn + "' failed DH-HMAC-CHAP authentication (" + std::to_string(n) +
      (n == 1 ? " failure" : " failures") + " for this host): " + why);
}

bool QueueHandler::AuthPending() const { return auth_ != nullptr && !auth_ok_; }

uint32_t QueueHandler::StartAuthentication(const std::string& hostnqn, const std::string& subnqn) {
  auth_config_ = tc_->AuthFor(hostnqn);
  if (auth_config_ == nullptr) return 0;
  uint32_t seq = 0;
  auth::RandomBytes(reinterpret_cast<uint8_t*>(&seq), sizeof(seq));
  auth_ = std::make_unique<auth::ControllerTransaction>(*auth_config_, hostnqn, subnqn, seq);
  auth_ok_ = false;
  return static_cast<uint32_t>(spec::kAuthreqAtr) << 16;
}

namespace {

// The fields both commands share; 0 when they are right.
uint16_t CheckAuthSqe(const spec::AuthSqe& a) {
  if (a.secp != spec::kAuthSecp || a.spsp0 != spec::kAuthSpsp || a.spsp1 != spec::kAuthSpsp) {
    return Generic(spec::kScInvalidField);
  }
  return 0;
}

}  // namespace

void QueueHandler::HandleAuthSend(Request* r) {
  const auto& a = reinterpret_cast<const spec::AuthSqe&>(r->sqe());
  if (auth_ == nullptr) return Complete(r, Generic(spec::kScInvalidField));  // nothing to prove
  if (uint16_t st = CheckAuthSqe(a); st != 0) return Complete(r, st);
  // Bounded before anything is allocated: no message is longer than a Reply with the
  // largest DH value.
  if (a.length == 0 || a.length > auth::ControllerTransaction::kMaxSend ||
      CapsuleDataLength(r->capsule) < a.length) {
    return Complete(r, Generic(spec::kScInvalidField));
  }
  Request* req = r;
  const uint32_t len = a.length;
  ReceiveControllerData(r->capsule, 0, MemDesc::Buffer(r->Buffer(len), len), len,
                        [req, len](size_t, const Status& s) {
                          QueueHandler* q = req->queue;
                          if (!s.ok()) return q->Complete(req, spec::MakeStatus(spec::kSctGeneric, spec::kScTransientTransportError));
                          const uint16_t st = q->auth_->Send(req->buffer.data(), len);
                          q->Complete(req, st);
                          q->AfterAuthStep();
                        });
}

void QueueHandler::HandleAuthReceive(Request* r) {
  const auto& a = reinterpret_cast<const spec::AuthSqe&>(r->sqe());
  if (auth_ == nullptr) return Complete(r, Generic(spec::kScInvalidField));
  if (uint16_t st = CheckAuthSqe(a); st != 0) return Complete(r, st);
  const size_t al = std::min<size_t>(a.length, CapsuleDataLength(r->capsule));
  std::vector<uint8_t> msg;
  const uint16_t st = auth_->Receive(al, &msg);
  if (st != spec::kStatusSuccess) {
    Complete(r, st);
  } else {
    uint8_t* buf = r->Buffer(msg.size());
    std::memcpy(buf, msg.data(), msg.size());
    SendBytesAndComplete(r, buf, msg.size());
  }
  AfterAuthStep();
}

void QueueHandler::AfterAuthStep() {
  if (closed_ || auth_ == nullptr) return;
  const std::string who = "controller " + std::to_string(ctrl_->cntlid) + " qid " + std::to_string(qid_);
  if (auth_->authenticated()) {
    if (!auth_ok_) {
      tc_->Log(who + ": host '" + ctrl_->hostnqn + "' authenticated (DH-HMAC-CHAP, " +
               auth::HashName(auth_->hash()) + ", " + auth::DhGroupName(auth_->dhgroup()) +
               (auth_->bidirectional() ? ", bidirectional)" : ")"));
    }
    auth_ok_ = true;
    return;
  }
  if (auth_->state() != auth::ControllerTransaction::State::kFailed) return;
  // The host has been told (Failure1 is on its way, or it sent Failure2): the queue goes
  // once the response has been flushed.
  tc_->AuthFailed(ctrl_->hostnqn, who + " from " + peer_, auth_->failure());
  auth_ok_ = false;
  std::weak_ptr<QueueHandler> w = weak_from_this();
  loop_->Post([w] {
    if (auto q = w.lock()) q->Close("authentication failed");
  });
}

}  // namespace nvmf::target
