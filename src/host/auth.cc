// DH-HMAC-CHAP on the host: each queue whose Connect response asks for it runs one
// transaction (auth/dhchap_host.h) over Authentication Send and Receive before the
// queue is used; Reauthenticate runs a new one on every queue. A failure fails the
// connection (or the association) with Status::AuthFailed; a challenge we refuse is
// answered with AUTH_Failure2 first, so the controller knows why.
#include <cstring>
#include <memory>

#include "auth/dhchap_host.h"
#include "host/queue.h"
#include "nvmf/host.h"
#include "nvmf/spec/auth.h"
#include "nvmf/spec/fabrics.h"

namespace nvmf::host {

namespace {

spec::Sqe AuthCommand(uint8_t fctype, uint32_t length) {
  spec::AuthSqe a{};
  a.opc = spec::kFabricsCommand;
  a.fctype = fctype;
  a.spsp0 = spec::kAuthSpsp;
  a.spsp1 = spec::kAuthSpsp;
  a.secp = spec::kAuthSecp;
  a.length = length;
  spec::Sqe sqe;
  std::memcpy(&sqe, &a, sizeof(sqe));
  return sqe;
}

// One queue's transaction and the buffers its commands move. Command callbacks carry
// only its pointer; it deletes itself when it reports.
class AuthRun {
 public:
  AuthRun(Controller* c, const auth::HostAuthConfig& creds, const ConnectOptions& o, uint16_t qid,
          uint16_t tid, DoneCallback done)
      : c_(c), tx_(creds, o.hostnqn, o.subnqn, tid), in_(auth::HostTransaction::kMaxReceive),
        qid_(qid), done_(std::move(done)) {}

  void Start() {
    out_ = tx_.Negotiate();
    Exchange(&AuthRun::OnChallenge);
  }

 private:
  using Step = void (AuthRun::*)();

  // Sends out_; then, when next is set, receives into in_ and runs next.
  void Exchange(Step next) {
    next_ = next;
    const spec::Sqe sqe = AuthCommand(spec::kFctypeAuthSend, static_cast<uint32_t>(out_.size()));
    AuthRun* self = this;
    Status st = c_->Submit(qid_, sqe, MemDesc::Buffer(out_.data(), out_.size()), out_.size(), true,
                           [self](const Status& s, const spec::Cqe&) { self->OnSent(s); });
    if (!st.ok()) Finish(st);
  }

  void OnSent(const Status& s) {
    if (!s.ok()) return Finish(failing_.ok() ? s.Annotate("Authentication Send") : failing_);
    if (next_ == nullptr) return Finish(failing_);
    const spec::Sqe sqe = AuthCommand(spec::kFctypeAuthReceive, static_cast<uint32_t>(in_.size()));
    AuthRun* self = this;
    Status st = c_->Submit(qid_, sqe, MemDesc::Buffer(in_.data(), in_.size()), in_.size(), false,
                           [self](const Status& r, const spec::Cqe&) {
                             if (!r.ok()) return self->Finish(r.Annotate("Authentication Receive"));
                             (self->*(self->next_))();
                           });
    if (!st.ok()) Finish(st);
  }

  void OnChallenge() {
    Status c = tx_.OnChallenge(in_.data(), in_.size(), &out_);
    if (!c.ok()) {
      // A challenge we refuse is answered with Failure2 before we give up.
      if (tx_.refusal() == 0) return Finish(c);
      out_ = tx_.Failure2(tx_.refusal());
      failing_ = c;
      return Exchange(nullptr);
    }
    Exchange(&AuthRun::OnSuccess1);
  }

  void OnSuccess1() {
    Status r = tx_.OnSuccess1(in_.data(), in_.size(), &out_);
    if (out_.empty()) return Finish(r);
    failing_ = r;  // Success2 (r is OK) or Failure2 (r says why)
    Exchange(nullptr);
  }

  void Finish(Status s) {  // by value: s may be failing_, which goes with this
    DoneCallback done = std::move(done_);
    delete this;
    done(s);
  }

  Controller* c_;
  auth::HostTransaction tx_;
  std::vector<uint8_t> out_;  // the message being sent
  std::vector<uint8_t> in_;   // the message being received
  uint16_t qid_;
  DoneCallback done_;
  Step next_ = nullptr;
  Status failing_;  // what a Failure2 being sent reports
};

}  // namespace

void Controller::Authenticate(uint16_t qid, DoneCallback done) {
  (new AuthRun(this, *auth_, opts_, qid, ++auth_tid_, std::move(done)))->Start();
}

void Controller::Reauthenticate(DoneCallback cb) {
  if (!connected_ || auth_ == nullptr) {
    loop_->Post([cb] { cb(Status::InvalidArgument("not connected with a DH-HMAC-CHAP secret")); });
    return;
  }
  // One queue after another, admin queue first.
  struct Step {
    Controller* c;
    DoneCallback cb;
    uint64_t gen;
    void Run(uint16_t qid, std::shared_ptr<Step> self) {
      if (qid >= c->queues_.size()) return cb(Status::OK());
      c->Authenticate(qid, [self, qid](const Status& s) {
        if (!self->c->Alive(self->gen)) return self->cb(Status::Aborted("association closed"));
        if (!s.ok()) {
          const Status why = s.Annotate("re-authentication of queue " + std::to_string(qid));
          self->c->Fail(why);
          return self->cb(why);
        }
        self->Run(static_cast<uint16_t>(qid + 1), self);
      });
    }
  };
  auto step = std::make_shared<Step>(Step{this, std::move(cb), generation_});
  step->Run(0, step);
}

}  // namespace nvmf::host
