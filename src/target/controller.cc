#include "target/controller.h"

namespace nvmf::target {

void Controller::RecordError(uint16_t sqid, uint16_t cid, uint16_t status, uint32_t nsid,
                             uint64_t lba) {
  std::lock_guard<std::mutex> lock(mu_);
  spec::ErrorLogEntry e{};
  e.error_count = ++error_count_;
  e.sqid = sqid;
  e.cid = cid;
  e.status = static_cast<uint16_t>(status << 1);
  e.param_location = 0xffff;
  e.nsid = nsid;
  e.lba = lba;
  e.trtype = 3;
  errors_.insert(errors_.begin(), e);
  if (errors_.size() > kErrorLogEntries) errors_.pop_back();
}

std::vector<spec::ErrorLogEntry> Controller::ErrorLog() {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

bool Controller::RegisterIoQueue(uint16_t qid, uint16_t limit, QueueRef ref) {
  std::lock_guard<std::mutex> lock(mu_);
  if (torn_down.load() || qid == 0 || qid > limit || io_.count(qid) != 0) return false;
  io_[qid] = std::move(ref);
  return true;
}

bool Controller::BeginTearDown() {
  std::lock_guard<std::mutex> lock(mu_);
  return !torn_down.exchange(true);
}

void Controller::UnregisterIoQueue(uint16_t qid) {
  std::lock_guard<std::mutex> lock(mu_);
  io_.erase(qid);
}

std::vector<QueueRef> Controller::TakeIoQueues() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<QueueRef> v;
  for (auto& [qid, ref] : io_) v.push_back(ref);
  io_.clear();
  return v;
}

size_t Controller::io_queue_count() {
  std::lock_guard<std::mutex> lock(mu_);
  return io_.size();
}

std::shared_ptr<Controller> ControllerRegistry::Create(const Subsystem* sub,
                                                       const std::string& hostnqn) {
  std::lock_guard<std::mutex> lock(mu_);
  // CNTLIDs 1..0xFFEF; 0xFFF0 and above are reserved.
  for (int tries = 0; tries < 0xFFEF; tries++) {
    uint16_t id = next_;
    next_ = static_cast<uint16_t>(next_ >= 0xFFEF ? 1 : next_ + 1);
    if (ctrls_.count(id) == 0) {
      auto c = std::make_shared<Controller>(id, sub, hostnqn);
      ctrls_[id] = c;
      return c;
    }
  }
  return nullptr;
}

std::shared_ptr<Controller> ControllerRegistry::Find(uint16_t cntlid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ctrls_.find(cntlid);
  return it == ctrls_.end() ? nullptr : it->second;
}

void ControllerRegistry::Remove(uint16_t cntlid) {
  std::lock_guard<std::mutex> lock(mu_);
  ctrls_.erase(cntlid);
}

size_t ControllerRegistry::CountHost(const std::string& hostnqn) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [id, c] : ctrls_) n += c->hostnqn == hostnqn ? 1 : 0;
  return n;
}

std::vector<std::shared_ptr<Controller>> ControllerRegistry::All(const Subsystem* sub) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Controller>> out;
  for (const auto& [id, c] : ctrls_) {
    if (sub == nullptr || c->subsystem == sub) out.push_back(c);
  }
  return out;
}

void Controller::SetAdminQueue(QueueRef ref) {
  std::lock_guard<std::mutex> lock(mu_);
  admin_ = std::move(ref);
}

QueueRef Controller::AdminQueue() {
  std::lock_guard<std::mutex> lock(mu_);
  return admin_;
}

size_t ControllerRegistry::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return ctrls_.size();
}

}  // namespace nvmf::target
