// Asynchronous events on the host: enable the notices the controller offers, keep one
// Asynchronous Event Request posted, read the log page each event names (which lets the
// controller report the event again), and hand it to the user.
#include <cstring>

#include "host/queue.h"
#include "host/util_internal.h"
#include "nvmf/host.h"

namespace nvmf::host {

namespace {
// Notices the host enables when the controller offers them (OAES and AEC bits).
constexpr uint32_t kNoticeBits = 1u << 8 | 1u << 11 | 1u << 31;
// Room for the ANA log of 32 groups and 1024 namespaces.
constexpr size_t kEventLogBytes = 8192;
}  // namespace

std::vector<uint32_t> AsyncEvent::ChangedNamespaces() const {
  std::vector<uint32_t> out;
  for (size_t i = 0; i + 4 <= log.size(); i += 4) {
    uint32_t v;
    std::memcpy(&v, log.data() + i, 4);
    if (v == 0) break;
    out.push_back(v);
  }
  return out;
}

std::vector<AsyncEvent::AnaGroup> AsyncEvent::AnaGroups() const {
  std::vector<AnaGroup> out;
  spec::AnaLogHeader h;
  if (log.size() < sizeof(h)) return out;
  std::memcpy(&h, log.data(), sizeof(h));
  size_t at = sizeof(h);
  for (uint16_t g = 0; g < h.ngrps && at + sizeof(spec::AnaGroupDescriptor) <= log.size(); g++) {
    spec::AnaGroupDescriptor d;
    std::memcpy(&d, log.data() + at, sizeof(d));
    at += sizeof(d);
    AnaGroup ag{d.grpid, d.state, {}};
    for (uint32_t k = 0; k < d.nnsids && at + 4 <= log.size(); k++, at += 4) {
      uint32_t v;
      std::memcpy(&v, log.data() + at, 4);
      ag.nsids.push_back(v);
    }
    out.push_back(std::move(ag));
  }
  return out;
}

void Controller::EnableEvents() {
  const uint32_t aec = id_->oaes & kNoticeBits;
  if (aec == 0) return;
  Controller* self = this;
  const uint64_t gen = generation_;
  Status st = SetFeatures(spec::kFeatAsyncEventConfig, aec, [self, gen](const Status& s, const spec::Cqe&) {
    if (self->Alive(gen) && s.ok()) self->PostEventRequest();
  });
  (void)st;  // a controller that refuses gets no events; nothing else changes
}

void Controller::PostEventRequest() {
  Controller* self = this;
  const uint64_t gen = generation_;
  spec::Sqe aer{};
  aer.opc = spec::kAdminAsyncEventRequest;
  Status st = queues_[0]->Submit(aer, MemDesc(), 0, false, [self, gen](const Status& s, const spec::Cqe& cqe) {
    // An error (the association closing, the controller's limit) ends the events.
    if (self->Alive(gen) && s.ok()) self->OnEvent(cqe);
  });
  (void)st;
}

void Controller::OnEvent(const spec::Cqe& cqe) {
  // One request is posted at a time, so one event is read at a time: into event_.
  if (event_ == nullptr) event_ = std::make_unique<AsyncEvent>();
  AsyncEvent& ev = *event_;
  ev.type = static_cast<uint8_t>(cqe.cdw0 & 7);
  ev.info = static_cast<uint8_t>(cqe.cdw0 >> 8);
  ev.lid = static_cast<uint8_t>(cqe.cdw0 >> 16);
  ev.log.assign(ev.lid == spec::kLogChangedNamespaces ? 4096 : kEventLogBytes, 0);
  spec::Sqe sqe{};
  sqe.opc = spec::kAdminGetLogPage;
  sqe.nsid = 0xFFFFFFFFu;
  const uint32_t numd = static_cast<uint32_t>(ev.log.size() / 4 - 1);
  sqe.cdw10 = ev.lid | (numd & 0xffff) << 16;  // RAE clear: the event may be reported again
  sqe.cdw11 = numd >> 16;
  Controller* self = this;
  const uint64_t gen = generation_;
  Status st = queues_[0]->Submit(sqe, MemDesc::Buffer(ev.log.data(), ev.log.size()), ev.log.size(), false,
                                 [self, gen](const Status& s, const spec::Cqe&) {
                                   if (self->Alive(gen)) self->DeliverEvent(s);
                                 });
  if (!st.ok()) DeliverEvent(st);
}

void Controller::DeliverEvent(const Status& read) {
  if (!read.ok()) event_->log.clear();
  if (on_event_) on_event_(*event_);
  PostEventRequest();
}

}  // namespace nvmf::host
