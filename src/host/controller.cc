// Controller: the association's life cycle (connection sequence, keep-alive, timeouts,
// failure) and command building.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "auth/dhchap_host.h"
#include "host/queue.h"
#include "host/util_internal.h"
#include "nvmf/host.h"
#include "nvmf/spec/auth.h"

namespace nvmf::host {

using internal::HostQueue;
using internal::Request;
using internal::RequestList;
using internal::WithContext;

namespace internal {

spec::Sqe PropertyGetCommand(uint32_t offset, bool eight_bytes) {
  spec::PropertyGetSqe p{};
  p.opc = spec::kFabricsCommand;
  p.fctype = spec::kFctypePropertyGet;
  p.attrib = eight_bytes ? spec::kProperty8Bytes : spec::kProperty4Bytes;
  p.ofst = offset;
  spec::Sqe sqe;
  std::memcpy(&sqe, &p, sizeof(sqe));
  return sqe;
}

spec::Sqe PropertySetCommand(uint32_t offset, bool eight_bytes, uint64_t value) {
  spec::PropertySetSqe p{};
  p.opc = spec::kFabricsCommand;
  p.fctype = spec::kFctypePropertySet;
  p.attrib = eight_bytes ? spec::kProperty8Bytes : spec::kProperty4Bytes;
  p.ofst = offset;
  p.value = eight_bytes ? value : (value & 0xffffffffu);
  spec::Sqe sqe;
  std::memcpy(&sqe, &p, sizeof(sqe));
  return sqe;
}

}  // namespace internal

namespace {

std::string Ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

uint8_t CcCss(uint64_t cap) {
  const uint32_t css = static_cast<uint32_t>(cap >> 37 & 0xff);
  // Only the admin command set (a discovery controller in NVMe 2.0 terms): CC.CSS 111b.
  if ((css & 0x80) != 0 && (css & 0x01) == 0 && (css & 0x40) == 0) return 7;
  return 0;  // the NVM command set
}

}  // namespace

void BuildConnectData(spec::ConnectData* d, const std::array<uint8_t, 16>& hostid,
                      uint16_t cntlid, const std::string& subnqn, const std::string& hostnqn) {
  std::memset(d, 0, sizeof(*d));
  std::memcpy(d->hostid, hostid.data(), 16);
  d->cntlid = cntlid;
  std::memcpy(d->subnqn, subnqn.data(), std::min(subnqn.size(), spec::kNqnSize - 1));
  std::memcpy(d->hostnqn, hostnqn.data(), std::min(hostnqn.size(), spec::kNqnSize - 1));
}

Controller::Controller(EventLoop* loop)
    : loop_(loop), id_(std::make_unique<spec::IdentifyController>()) {
  std::memset(id_.get(), 0, sizeof(*id_));
}

Controller::~Controller() {
  *alive_ = false;
  Close();
}

uint32_t Controller::io_queue_count() const {
  return queues_.empty() ? 0 : static_cast<uint32_t>(queues_.size() - 1);
}

bool Controller::header_digest() const {
  return !queues_.empty() && queues_[0]->qpair() != nullptr &&
         QpairHeaderDigests(queues_[0]->qpair());
}
bool Controller::data_digest() const {
  return !queues_.empty() && queues_[0]->qpair() != nullptr &&
         QpairDigestsSentData(queues_[0]->qpair());
}

uint32_t Controller::queue_depth(uint16_t qid) const {
  return qid < queues_.size() ? queues_[qid]->depth() : 0;
}
uint32_t Controller::queue_in_flight(uint16_t qid) const {
  return qid < queues_.size() ? queues_[qid]->in_flight() : 0;
}
uint32_t Controller::queue_waiting(uint16_t qid) const {
  return qid < queues_.size() ? queues_[qid]->waiting() : 0;
}

// ---------------------------------------------------------------- connection sequence

void Controller::Connect(const ConnectOptions& opts, DoneCallback cb) {
  Status bad;
  if (connecting_ || connected()) {
    bad = Status::InvalidArgument("the association is already connected");
  } else if (opts.subnqn.empty() || opts.subnqn.size() >= spec::kNqnSize) {
    bad = Status::InvalidArgument("the subsystem NQN must be 1 to 255 bytes");
  } else if (opts.hostnqn.empty() || opts.hostnqn.size() >= spec::kNqnSize) {
    bad = Status::InvalidArgument("the host NQN must be 1 to 255 bytes");
  } else if (opts.queue_size < 2) {
    bad = Status::InvalidArgument("the I/O queue size must be at least 2");
  } else if (opts.kato_ms > 0xFFFFFFFFll) {
    bad = Status::InvalidArgument("keep-alive timeout too large");
  }
  std::unique_ptr<auth::HostAuthConfig> creds;
  if (bad.ok() && (!opts.dhchap_secret.empty() || !opts.dhchap_ctrl_secret.empty())) {
    creds = std::make_unique<auth::HostAuthConfig>();
    if (opts.dhchap_secret.empty()) {
      bad = Status::InvalidArgument("a controller secret (--dhchap-ctrl-secret) needs a host secret (--dhchap-secret)");
    } else if (Status s = auth::LoadSecret(opts.dhchap_secret, &creds->host_secret); !s.ok()) {
      bad = s.Annotate("the DH-HMAC-CHAP host secret");
    } else if (!opts.dhchap_ctrl_secret.empty()) {
      if (Status cs = auth::LoadSecret(opts.dhchap_ctrl_secret, &creds->ctrl_secret); !cs.ok()) {
        bad = cs.Annotate("the DH-HMAC-CHAP controller secret");
      }
    }
  }
  if (!bad.ok()) {
    // Reported from the loop, like every other outcome.
    loop_->Post([cb, bad] { cb(bad); });
    return;
  }
  // Queues of an earlier association may still be on the stack (a reconnect from a
  // callback): keep them until the next Connect.
  retired_.clear();
  for (auto& q : queues_) retired_.push_back(std::move(q));
  queues_.clear();
  opts_ = opts;
  auth_ = std::move(creds);
  generation_++;
  connecting_ = true;
  connected_ = false;
  failed_ = false;
  failure_ = Status();
  discovery_ = opts.subnqn == spec::kDiscoveryNqn;
  kato_ms_ = opts.kato_ms < 0 ? (discovery_ ? 0 : kDefaultKatoMs)
                              : static_cast<uint32_t>(opts.kato_ms);
  io_queues_wanted_ = discovery_ ? 0 : opts.nr_io_queues;
  io_entries_ = 0;
  cntlid_ = 0;
  cap_ = 0;
  max_xfer_ = 0;
  keepalive_in_flight_ = false;
  std::memset(id_.get(), 0, sizeof(*id_));
  connect_cb_ = std::move(cb);
  queues_.push_back(std::make_unique<HostQueue>(this, 0));
  // Start from the loop, so that the callback never runs inside Connect.
  Controller* self = this;
  uint64_t gen = generation_;
  ready_timer_ = loop_->AddTimer(std::chrono::nanoseconds(0), [self, gen] {
    self->ready_timer_ = {};
    if (self->Alive(gen)) self->OpenQueue(0);
  });
}

void Controller::OpenQueue(uint16_t qid) {
  HostConnectParams hp;
  hp.qid = qid;
  hp.qsize = qid == 0 ? kAdminQueueSize : io_entries_;
  hp.header_digest = opts_.header_digest;
  hp.data_digest = opts_.data_digest;
  hp.timeout = opts_.connect_timeout;
  hp.tls = opts_.tls;
  hp.hostnqn = opts_.hostnqn;
  hp.subnqn = opts_.subnqn;
  TransportAddress addr{opts_.trtype, opts_.traddr, std::to_string(opts_.trsvcid)};
  uint64_t gen = generation_;
  std::shared_ptr<bool> alive = alive_;
  ConnectTransport(loop_, addr, hp, [this, alive, gen, qid](const Status& s, Connection c) {
    if (!*alive || !Alive(gen)) return;  // dropping c closes it
    OnQueueTransport(qid, s, std::move(c));
  });
}

void Controller::OnQueueTransport(uint16_t qid, const Status& s, Connection conn) {
  const std::string where = "queue " + std::to_string(qid) + " (" +
                            TransportTypeName(opts_.trtype) + " " + opts_.traddr + ":" +
                            std::to_string(opts_.trsvcid) + ")";
  if (!s.ok()) return FinishConnect(WithContext(s, where));
  HostQueue* q = queues_[qid].get();
  uint32_t max_icd = kAdminInCapsuleData;
  uint16_t entries = kAdminQueueSize;
  std::chrono::milliseconds timeout = opts_.admin_timeout;
  if (qid > 0) {
    // The controller's I/O command capsule size, less the 64-byte SQE.
    uint64_t icd = id_->ioccsz >= 4 ? static_cast<uint64_t>(id_->ioccsz) * 16 - 64 : 0;
    max_icd = static_cast<uint32_t>(std::min<uint64_t>(icd, 1u << 30));
    entries = io_entries_;
    timeout = opts_.io_timeout;
  }
  Status st = q->Open(loop_, std::move(conn), opts_.trtype, max_icd, entries, timeout);
  if (!st.ok()) return FinishConnect(WithContext(st, where));
  if (qid == 0) StartScan();
  spec::ConnectSqe cs{};
  cs.opc = spec::kFabricsCommand;
  cs.fctype = spec::kFctypeConnect;
  cs.recfmt = 0;
  cs.qid = qid;
  cs.sqsize = static_cast<uint16_t>(entries - 1);
  cs.cattr = 0;
  cs.kato = qid == 0 ? kato_ms_ : 0;
  spec::Sqe sqe;
  std::memcpy(&sqe, &cs, sizeof(sqe));
  BuildConnectData(&q->connect_data(), opts_.hostid,
                   qid == 0 ? spec::kDynamicControllerId : cntlid_, opts_.subnqn, opts_.hostnqn);
  Controller* self = this;
  st = Submit(qid, sqe, MemDesc::Buffer(&q->connect_data(), sizeof(spec::ConnectData)),
              sizeof(spec::ConnectData), true,
              [self, qid](const Status& r, const spec::Cqe& cqe) {
                self->OnQueueConnected(qid, r, cqe);
              });
  if (!st.ok()) FinishConnect(WithContext(st, where));
}

void Controller::OnQueueConnected(uint16_t qid, const Status& s, const spec::Cqe& cqe) {
  if (!s.ok()) {
    return FinishConnect(s.code() == Status::Code::kNvmeError
                             ? WithContext(s, "queue " + std::to_string(qid))
                             : WithContext(s, "Fabrics Connect of queue " + std::to_string(qid)));
  }
  const auto& cc = reinterpret_cast<const spec::ConnectCqe&>(cqe);
  if (qid == 0) cntlid_ = cc.success.cntlid;
  const std::string where = "queue " + std::to_string(qid);
  if ((cc.success.authreq & spec::kAuthreqAscr) != 0) {
    return FinishConnect(Status::NotSupported(
        where + ": the controller requires a secure channel concatenated to authentication, "
                "which this host does not do"));
  }
  if ((cc.success.authreq & spec::kAuthreqAtr) != 0) {
    if (auth_ == nullptr) {
      return FinishConnect(Status::AuthFailed(
          where + ": the controller requires DH-HMAC-CHAP authentication: give the host's "
                  "secret (--dhchap-secret)"));
    }
    Controller* self = this;
    const uint64_t gen = generation_;
    return Authenticate(qid, [self, gen, qid, where](const Status& as) {
      if (!self->Alive(gen)) return;
      if (!as.ok()) return self->FinishConnect(as.Annotate(where));
      self->AfterQueueConnected(qid);
    });
  }
  if (auth_ != nullptr && !auth_->ctrl_secret.empty()) {
    // We were asked to make sure of the controller, and it proves nothing.
    return FinishConnect(Status::AuthFailed(
        where + ": the controller does not authenticate, and a controller secret was given "
                "(--dhchap-ctrl-secret): refusing it"));
  }
  AfterQueueConnected(qid);
}

void Controller::AfterQueueConnected(uint16_t qid) {
  if (qid == 0) {
    StartKeepAlive();
    ReadCap();
    return;
  }
  if (qid < io_queues_wanted_) {
    queues_.push_back(std::make_unique<HostQueue>(this, static_cast<uint16_t>(qid + 1)));
    OpenQueue(static_cast<uint16_t>(qid + 1));
    return;
  }
  ConnectDone();
}

void Controller::ReadCap() {
  Controller* self = this;
  Status st = PropertyGet(spec::kPropCap, true, [self](const Status& s, const spec::Cqe& cqe) {
    if (!s.ok()) return self->FinishConnect(WithContext(s, "reading CAP"));
    self->cap_ = PropertyValue(cqe);
    self->EnableController();
  });
  if (!st.ok()) FinishConnect(st);
}

void Controller::EnableController() {
  Controller* self = this;
  const uint32_t cc = MakeCc(true, 6, 4) | static_cast<uint32_t>(CcCss(cap_)) << 4;
  cc_ = cc;
  Status st = PropertySet(spec::kPropCc, false, cc, [self](const Status& s, const spec::Cqe&) {
    if (!s.ok()) return self->FinishConnect(WithContext(s, "setting CC.EN"));
    auto to = std::chrono::milliseconds(std::max<uint32_t>(CapTimeoutMs(self->cap_), 500));
    self->ready_deadline_ = Clock::now() + to;
    self->ready_poll_ = std::chrono::milliseconds(1);
    self->PollReady();
  });
  if (!st.ok()) FinishConnect(st);
}

void Controller::PollReady() {
  Controller* self = this;
  Status st = PropertyGet(spec::kPropCsts, false, [self](const Status& s, const spec::Cqe& cqe) {
    if (!s.ok()) return self->FinishConnect(WithContext(s, "reading CSTS"));
    const uint32_t csts = static_cast<uint32_t>(PropertyValue(cqe));
    if ((csts & spec::kCstsCfs) != 0) {
      return self->FinishConnect(Status::IoError("the controller reports a fatal status (CSTS.CFS)"));
    }
    if ((csts & spec::kCstsRdy) != 0) return self->IdentifyController();
    if (Clock::now() >= self->ready_deadline_) {
      return self->FinishConnect(Status::TimedOut(
          "the controller did not become ready (CSTS.RDY) within CAP.TO (" +
          std::to_string(std::max<uint32_t>(CapTimeoutMs(self->cap_), 500)) + " ms)"));
    }
    uint64_t gen = self->generation_;
    self->ready_timer_ = self->loop_->AddTimer(self->ready_poll_, [self, gen] {
      self->ready_timer_ = {};
      if (self->Alive(gen)) self->PollReady();
    });
    self->ready_poll_ = std::min(self->ready_poll_ * 2, std::chrono::milliseconds(100));
  });
  if (!st.ok()) FinishConnect(st);
}

void Controller::IdentifyController() {
  Controller* self = this;
  Status st = Identify(spec::kCnsController, 0, id_.get(), [self](const Status& s, const spec::Cqe&) {
    if (!s.ok()) return self->FinishConnect(WithContext(s, "Identify Controller"));
    const spec::IdentifyController& id = *self->id_;
    if (id.cntrltype == 2) {
      self->discovery_ = true;
      self->io_queues_wanted_ = 0;
    }
    uint64_t mx = MaxTransferSize(self->queues_[0]->qpair());
    if (id.mdts != 0) {
      const unsigned shift = std::min<unsigned>(id.mdts + 12u + CapMpsMin(self->cap_), 40u);
      mx = std::min<uint64_t>(mx, 1ull << shift);
    }
    self->max_xfer_ = mx;
    if (self->io_queues_wanted_ == 0) return self->ConnectDone();
    self->SetQueueCount();
  });
  if (!st.ok()) FinishConnect(st);
}

void Controller::SetQueueCount() {
  Controller* self = this;
  const uint32_t n = std::min<uint32_t>(io_queues_wanted_, 65535) - 1;
  Status st = SetFeatures(spec::kFeatNumberOfQueues, n | n << 16,
                          [self](const Status& s, const spec::Cqe& cqe) {
    if (!s.ok()) return self->FinishConnect(WithContext(s, "Set Features (Number of Queues)"));
    const uint32_t nsqa = (cqe.cdw0 & 0xffff) + 1;
    const uint32_t ncqa = (cqe.cdw0 >> 16) + 1;
    self->io_queues_wanted_ = std::min({self->io_queues_wanted_, nsqa, ncqa, 65535u});
    const uint32_t entries = std::min<uint32_t>(self->opts_.queue_size, CapMqes(self->cap_) + 1u);
    if (entries < 2) {
      return self->FinishConnect(Status::NotSupported("the controller's queues are too small (CAP.MQES)"));
    }
    self->io_entries_ = static_cast<uint16_t>(std::min<uint32_t>(entries, 65535));
    self->queues_.push_back(std::make_unique<HostQueue>(self, 1));
    self->OpenQueue(1);
  });
  if (!st.ok()) FinishConnect(st);
}

void Controller::ConnectDone() {
  for (size_t i = 1; i < queues_.size(); i++) {
    max_xfer_ = std::min<uint64_t>(max_xfer_, MaxTransferSize(queues_[i]->qpair()));
  }
  connecting_ = false;
  connected_ = true;
  if (opts_.async_events) EnableEvents();
  FinishConnect(Status::OK());
}

void Controller::FinishConnect(const Status& s) {
  if (!connect_cb_) return;
  DoneCallback cb = std::move(connect_cb_);
  connect_cb_ = nullptr;
  connecting_ = false;
  if (!s.ok()) Shutdown(s);
  cb(s);
}

// ---------------------------------------------------------------- timers

void Controller::StartScan() {
  Controller* self = this;
  uint64_t gen = generation_;
  auto tick = std::min(opts_.admin_timeout, opts_.io_timeout) / 8;
  if (kato_ms_ > 0) tick = std::min(tick, std::chrono::milliseconds(kato_ms_ / 8));
  scan_period_ = std::clamp(tick, std::chrono::milliseconds(5), std::chrono::milliseconds(1000));
  scan_timer_ = loop_->AddTimer(scan_period_, [self, gen] {
    self->scan_timer_ = {};
    if (self->Alive(gen)) self->ScanTimeouts();
  });
}

void Controller::StartKeepAlive() {
  Controller* self = this;
  uint64_t gen = generation_;
  if (kato_ms_ > 0) {
    kato_timer_ = loop_->AddTimer(std::chrono::milliseconds(std::max<uint32_t>(kato_ms_ / 2, 1)),
                                  [self, gen] {
                                    self->kato_timer_ = {};
                                    if (self->Alive(gen)) self->SendKeepAlive();
                                  });
  }
}

void Controller::ScanTimeouts() {
  const Clock::time_point now = Clock::now();
  // A controller that stops answering Keep Alive is lost, whatever else still completes
  // (its keep-alive timer has most likely ended the association on its side).
  if (keepalive_in_flight_ && now - keepalive_sent_ > std::chrono::milliseconds(kato_ms_)) {
    Fail(Status::TimedOut("Keep Alive got no completion within KATO (" +
                          Ms(std::chrono::milliseconds(kato_ms_)) + "): the controller is lost"));
    return;
  }
  for (auto& q : queues_) {
    if (const Request* r = q->Expired(now)) {
      Fail(Status::TimedOut(std::string(CommandName(r->sqe, q->qid() == 0)) + " (queue " +
                            std::to_string(q->qid()) + ", CID " + std::to_string(r->sqe.cid) +
                            ") got no completion within " + Ms(q->timeout())));
      return;
    }
  }
  Controller* self = this;
  uint64_t gen = generation_;
  scan_timer_ = loop_->AddTimer(scan_period_, [self, gen] {
    self->scan_timer_ = {};
    if (self->Alive(gen)) self->ScanTimeouts();
  });
}

void Controller::SendKeepAlive() {
  Controller* self = this;
  uint64_t gen = generation_;
  if (!keepalive_in_flight_) {
    keepalive_in_flight_ = true;
    keepalive_sent_ = Clock::now();
    Status st = KeepAlive([self, gen](const Status& s, const spec::Cqe&) {
      if (!self->Alive(gen)) return;
      self->keepalive_in_flight_ = false;
      if (!s.ok()) self->Fail(WithContext(s, "Keep Alive"));
    });
    if (!st.ok()) {
      keepalive_in_flight_ = false;
      return;  // the association is going down anyway
    }
  }
  kato_timer_ = loop_->AddTimer(std::chrono::milliseconds(std::max<uint32_t>(kato_ms_ / 2, 1)),
                                [self, gen] {
                                  self->kato_timer_ = {};
                                  if (self->Alive(gen)) self->SendKeepAlive();
                                });
}

// ---------------------------------------------------------------- failure and close

void Controller::Fail(const Status& s) {
  if (failed_ || queues_.empty()) return;
  if (disconnecting()) {  // going away anyway: a failure only ends the clean close early
    Shutdown(s);
    FinishDisconnect();
    return;
  }
  const bool was_connected = connected_;
  Shutdown(s);
  FinishConnect(s);  // when the set-up was still running
  if (was_connected && on_failure_) {
    auto cb = on_failure_;  // a copy: the callback may replace it
    cb(s);
  }
}

void Controller::Close() {
  if (disconnecting()) {
    Shutdown(Status::Aborted("association closed"));
    FinishDisconnect();
    return;
  }
  if (queues_.empty() || failed_) {
    FinishConnect(Status::Aborted("association closed"));
    return;
  }
  Shutdown(Status::Aborted("association closed"));
  FinishConnect(Status::Aborted("association closed"));
}

void Controller::Shutdown(const Status& s) {
  if (failed_) return;
  failed_ = true;
  failure_ = s;
  connected_ = false;
  generation_++;
  loop_->CancelTimer(ready_timer_);
  loop_->CancelTimer(scan_timer_);
  loop_->CancelTimer(kato_timer_);
  loop_->CancelTimer(disconnect_timer_);
  loop_->CancelTimer(step_timer_);
  ready_timer_ = scan_timer_ = kato_timer_ = disconnect_timer_ = step_timer_ = {};
  keepalive_in_flight_ = false;
  // Close every queue pair first (their data transfers end now), then give every request
  // back before calling anyone, so that callbacks see a consistent, closed association.
  RequestList all;
  for (auto& q : queues_) q->Close(&all);
  std::vector<CommandCallback> cbs;
  cbs.reserve(all.size());
  while (Request* r = all.Pop()) {
    cbs.push_back(r->cb);
    r->queue->Release(r);
  }
  for (const CommandCallback& cb : cbs) {
    if (cb) cb(s, spec::Cqe{});
  }
}

// ---------------------------------------------------------------- commands

Status Controller::Submit(uint16_t qid, const spec::Sqe& sqe, CommandCallback cb) {
  return Submit(qid, sqe, MemDesc(), 0, false, cb);
}

Status Controller::Submit(uint16_t qid, const spec::Sqe& sqe, const MemDesc& mem, size_t len,
                          bool to_controller, CommandCallback cb) {
  if (disconnecting()) return Status::Aborted("association closing");
  if (failed_) {
    return failure_.code() == Status::Code::kAborted ? failure_
                                                     : WithContext(failure_, "association failed");
  }
  if (qid >= queues_.size() || !queues_[qid]->open()) {
    return Status::InvalidArgument("no queue " + std::to_string(qid) + " in this association");
  }
  return queues_[qid]->Submit(sqe, mem, len, to_controller, cb);
}

Status Controller::Read(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb,
                        const MemDesc& mem, size_t len, CommandCallback cb) {
  if (nlb == 0 || nlb > 65536) return Status::InvalidArgument("block count must be 1 to 65536");
  return Submit(qid, spec::LbaSqe(spec::kNvmRead, nsid, slba, nlb), mem, len, false, cb);
}

Status Controller::Write(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb,
                         const MemDesc& mem, size_t len, CommandCallback cb) {
  if (nlb == 0 || nlb > 65536) return Status::InvalidArgument("block count must be 1 to 65536");
  return Submit(qid, spec::LbaSqe(spec::kNvmWrite, nsid, slba, nlb), mem, len, true, cb);
}

Status Controller::Flush(uint16_t qid, uint32_t nsid, CommandCallback cb) {
  spec::Sqe sqe{};
  sqe.opc = spec::kNvmFlush;
  sqe.nsid = nsid;
  return Submit(qid, sqe, cb);
}

Status Controller::PropertyGet(uint32_t offset, bool eight_bytes, CommandCallback cb) {
  return Submit(0, internal::PropertyGetCommand(offset, eight_bytes), cb);
}

Status Controller::PropertySet(uint32_t offset, bool eight_bytes, uint64_t value,
                               CommandCallback cb) {
  return Submit(0, internal::PropertySetCommand(offset, eight_bytes, value), cb);
}

Status Controller::Identify(uint8_t cns, uint32_t nsid, void* buf, CommandCallback cb) {
  spec::Sqe sqe{};
  sqe.opc = spec::kAdminIdentify;
  sqe.nsid = nsid;
  sqe.cdw10 = cns;
  return Submit(0, sqe, MemDesc::Buffer(buf, 4096), 4096, false, cb);
}

Status Controller::GetLogPage(uint8_t lid, uint32_t nsid, uint64_t offset, void* buf, size_t len,
                              CommandCallback cb, uint8_t lsp, bool rae) {
  if (len == 0 || len % 4 != 0 || offset % 4 != 0 || len / 4 > (1ull << 32)) {
    return Status::InvalidArgument("log page length and offset must be non-zero multiples of 4");
  }
  const uint64_t numd = len / 4 - 1;
  spec::Sqe sqe{};
  sqe.opc = spec::kAdminGetLogPage;
  sqe.nsid = nsid;
  sqe.cdw10 = lid | static_cast<uint32_t>(lsp & 0x7f) << 8 | (rae ? 1u << 15 : 0u) |
              static_cast<uint32_t>(numd & 0xffff) << 16;
  sqe.cdw11 = static_cast<uint32_t>(numd >> 16 & 0xffff);
  sqe.cdw12 = static_cast<uint32_t>(offset);
  sqe.cdw13 = static_cast<uint32_t>(offset >> 32);
  return Submit(0, sqe, MemDesc::Buffer(buf, len), len, false, cb);
}

Status Controller::SetFeatures(uint8_t fid, uint32_t cdw11, CommandCallback cb) {
  spec::Sqe sqe{};
  sqe.opc = spec::kAdminSetFeatures;
  sqe.cdw10 = fid;
  sqe.cdw11 = cdw11;
  return Submit(0, sqe, cb);
}

Status Controller::GetFeatures(uint8_t fid, uint32_t cdw11, CommandCallback cb) {
  spec::Sqe sqe{};
  sqe.opc = spec::kAdminGetFeatures;
  sqe.cdw10 = fid;
  sqe.cdw11 = cdw11;
  return Submit(0, sqe, cb);
}

Status Controller::KeepAlive(CommandCallback cb) {
  spec::Sqe sqe{};
  sqe.opc = spec::kAdminKeepAlive;
  return Submit(0, sqe, cb);
}

}  // namespace nvmf::host
