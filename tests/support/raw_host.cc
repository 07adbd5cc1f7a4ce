#include "support/raw_host.h"

#include <cstring>

#include "nvmf/spec/fabrics.h"

namespace nvmf::test {

namespace wire = spec::tcp;

RawHost::RawHost(EventLoop* loop, uint16_t port, bool ddgst) : peer_(loop) {
  ok_ = peer_.ConnectHost(port, false, ddgst);
  cfg_.data_digest = ddgst;
}

bool RawHost::Send(const spec::Sqe& sqe, const std::vector<uint8_t>& icd, bool corrupt) {
  uint8_t hdr[tcp::kMaxHeaderBytes];
  uint32_t n = tcp::BuildCapsuleCmd(hdr, sqe, static_cast<uint32_t>(icd.size()), cfg_);
  std::vector<uint8_t> pdu =
      WithPayload(hdr, n, icd.data(), static_cast<uint32_t>(icd.size()), cfg_.data_digest);
  if (corrupt) pdu.back() ^= 0xff;
  return peer_.Send(pdu);
}

bool RawHost::Connect(const std::string& subnqn, uint16_t qid, uint16_t cntlid,
                      const std::string& hostnqn) {
  return spec::StatusOf(ConnectCqe(subnqn, qid, cntlid, hostnqn)) == 0;
}

spec::Cqe RawHost::ConnectCqe(const std::string& subnqn, uint16_t qid, uint16_t cntlid,
                              const std::string& hostnqn) {
  spec::ConnectSqe c{};
  c.opc = spec::kFabricsCommand;
  c.fctype = spec::kFctypeConnect;
  c.cid = 1;
  c.qid = qid;
  c.sqsize = 31;
  c.sgl1.length = sizeof(spec::ConnectData);
  c.sgl1.type = spec::kSglInCapsule;
  spec::ConnectData d{};
  d.cntlid = cntlid;
  std::strncpy(d.subnqn, subnqn.c_str(), sizeof(d.subnqn) - 1);
  std::strncpy(d.hostnqn, hostnqn.c_str(), sizeof(d.hostnqn) - 1);
  spec::Sqe sqe;
  std::memcpy(&sqe, &c, sizeof(sqe));
  sqe.fuse_psdt = spec::kPsdtSglMptrContig << 6;
  std::vector<uint8_t> data(sizeof(d));
  std::memcpy(data.data(), &d, sizeof(d));
  if (!Send(sqe, data)) {
    spec::Cqe none{};
    none.status = 0xFFFF;
    return none;
  }
  return Response();
}

std::vector<uint8_t> RawHost::Expect(uint8_t type, std::chrono::milliseconds t) {
  std::vector<uint8_t> p = peer_.RecvPdu(t);
  if (p.empty() || p[0] != type) return {};
  return p;
}

spec::Cqe RawHost::Response() {
  spec::Cqe c{};
  c.status = 0xFFFF;
  for (int i = 0; i < 256; i++) {
    std::vector<uint8_t> p = peer_.RecvPdu();
    if (p.empty()) break;
    if (p[0] == wire::kCapsuleResp && p.size() >= 8 + sizeof(c)) {
      std::memcpy(&c, p.data() + 8, sizeof(c));
      break;
    }
  }
  return c;
}

bool RawHost::SendH2C(uint16_t cid, uint16_t ttag, uint32_t offset,
                      const std::vector<uint8_t>& data, bool corrupt, size_t cut, bool last) {
  uint8_t hdr[tcp::kMaxHeaderBytes];
  uint32_t n =
      tcp::BuildH2CData(hdr, cid, ttag, offset, static_cast<uint32_t>(data.size()), last, cfg_);
  std::vector<uint8_t> pdu =
      WithPayload(hdr, n, data.data(), static_cast<uint32_t>(data.size()), cfg_.data_digest);
  if (corrupt) pdu.back() ^= 0xff;
  if (cut < pdu.size()) pdu.resize(cut);
  return peer_.Send(pdu);
}

spec::Sqe RawHost::LbaCommand(uint8_t opc, uint16_t cid, uint64_t slba, uint32_t len, bool icd) {
  spec::Sqe s = spec::LbaSqe(opc, 1, slba, len / 512);
  s.cid = cid;
  s.fuse_psdt = spec::kPsdtSglMptrContig << 6;
  s.sgl1.length = len;
  s.sgl1.type = icd ? spec::kSglInCapsule : spec::kSglTransport;
  return s;
}

}  // namespace nvmf::test
