#include "support/test_host.h"

#include <cstring>

#include "nvmf/tcp.h"

namespace nvmf::test {

Status TestQueue::Open(uint16_t port, bool hdgst, bool ddgst, uint32_t max_icd, uint16_t qsize) {
  tcp::HostOptions o;
  o.header_digest = hdgst;
  o.data_digest = ddgst;
  return Open(port, o, max_icd, qsize);
}

Status TestQueue::Open(uint16_t port, const tcp::HostOptions& o, uint32_t max_icd, uint16_t qsize) {
  bool done = false;
  Status st;
  TestQueue* self = this;
  tcp::Connect(loop_, "127.0.0.1", port, o, [&, self](const Status& s, const TcpQpairParams& p) {
    done = true;
    st = s;
    if (!s.ok()) return;
    QpairParams qp;
    qp.qsize = qsize;
    qp.connection = tcp::WrapConnection(p);
    qp.max_icd = max_icd;
    st = AllocateQpair(loop_, TransportType::kTcp, Role::kHost, qp, self->ep_.OnError(),
                       self->ep_.OnReceive(), &self->ep_.qp);
  });
  if (!loop_->RunUntil([&] { return done; }, kWait)) return Status::TimedOut("connect");
  return st;
}

uint16_t TestQueue::Submit(spec::Sqe sqe, void* data, size_t len, bool write) {
  sqe.cid = next_cid_++;
  if (next_cid_ == 0) next_cid_ = 1;
  Capsule* c = AllocateCommand(ep_.qp, sqe);
  if (c == nullptr) return 0;
  if (len > 0) AppendData(c, MemDesc::Buffer(data, len), len, write, nullptr);
  if (!Transmit(c).ok()) {
    FreeCapsule(c);
    return 0;
  }
  inflight_.push_back(c);
  return sqe.cid;
}

bool TestQueue::WaitResponses(size_t n, std::chrono::milliseconds timeout) {
  return loop_->RunUntil([&] { return ep_.received.size() >= n || ep_.failed; }, timeout) &&
         ep_.received.size() >= n;
}

std::vector<spec::Cqe> TestQueue::TakeResponses() {
  std::vector<spec::Cqe> out;
  for (Capsule* r : ep_.received) {
    out.push_back(CapsuleCqe(r));
    for (size_t i = 0; i < inflight_.size(); i++) {
      if (CapsuleSqe(inflight_[i]).cid == CapsuleCqe(r).cid) {
        FreeCapsule(inflight_[i]);
        inflight_.erase(inflight_.begin() + static_cast<long>(i));
        break;
      }
    }
    FreeCapsule(r);
  }
  ep_.received.clear();
  return out;
}

spec::Cqe TestQueue::Run(spec::Sqe sqe, void* data, size_t len, bool write,
                         std::chrono::milliseconds timeout) {
  spec::Cqe bad{};
  bad.status = 0xFFFF;
  if (ep_.qp == nullptr || ep_.failed) return bad;
  size_t before = ep_.received.size();
  if (Submit(sqe, data, len, write) == 0) return bad;
  if (!WaitResponses(before + 1, timeout)) return bad;
  std::vector<spec::Cqe> all = TakeResponses();
  return all.back();
}

spec::Cqe TestQueue::Connect(const std::string& subnqn, uint16_t qid, uint16_t cntlid,
                             uint16_t sqsize, uint32_t kato_ms, const std::string& hostnqn) {
  spec::ConnectSqe c{};
  c.opc = spec::kFabricsCommand;
  c.fctype = spec::kFctypeConnect;
  c.qid = qid;
  c.sqsize = sqsize;
  c.kato = kato_ms;
  spec::ConnectData d{};
  d.cntlid = cntlid;
  d.hostid[0] = 1;
  std::strncpy(d.subnqn, subnqn.c_str(), sizeof(d.subnqn) - 1);
  std::strncpy(d.hostnqn, hostnqn.c_str(), sizeof(d.hostnqn) - 1);
  spec::Sqe sqe;
  std::memcpy(&sqe, &c, sizeof(sqe));
  return Run(sqe, &d, sizeof(d), true);
}

spec::Cqe TestQueue::PropertyGet(uint32_t ofst, bool eight) {
  spec::PropertyGetSqe p{};
  p.opc = spec::kFabricsCommand;
  p.fctype = spec::kFctypePropertyGet;
  p.attrib = eight ? spec::kProperty8Bytes : spec::kProperty4Bytes;
  p.ofst = ofst;
  spec::Sqe sqe;
  std::memcpy(&sqe, &p, sizeof(sqe));
  return Run(sqe);
}

spec::Cqe TestQueue::PropertySet(uint32_t ofst, uint64_t value) {
  spec::PropertySetSqe p{};
  p.opc = spec::kFabricsCommand;
  p.fctype = spec::kFctypePropertySet;
  p.attrib = spec::kProperty4Bytes;
  p.ofst = ofst;
  p.value = value;
  spec::Sqe sqe;
  std::memcpy(&sqe, &p, sizeof(sqe));
  return Run(sqe);
}

uint16_t TestQueue::ConnectAdmin(const std::string& subnqn, uint32_t kato_ms,
                                 const std::string& hostnqn) {
  spec::Cqe c = Connect(subnqn, 0, 0xFFFF, 31, kato_ms, hostnqn);
  if (St(c) != 0) return 0;
  if (St(PropertySet(spec::kPropCc, 0x00460001)) != 0) return 0;
  return static_cast<uint16_t>(c.cdw0);
}

void TestQueue::Close() {
  for (Capsule* c : inflight_) FreeCapsule(c);
  inflight_.clear();
  ep_.Close();
}

bool TestQueue::WaitClosed(std::chrono::milliseconds timeout) {
  return loop_->RunUntil([&] { return ep_.failed; }, timeout);
}

}  // namespace nvmf::test
