// NVMe/RDMA controller connection set-up: listens with rdma_cm, checks each connection
// request's private data against our limits, gives the accepted identifier its own event
// channel, QP and posted receives, and accepts with CRQSIZE.
#include <algorithm>
#include <cstring>

#include "rdma/rdma_internal.h"
#include "rdma/rdma_qpair.h"

namespace nvmf::rdma {
namespace {

class RdmaListener : public TransportListener {
 public:
  RdmaListener(EventLoop* loop, const TransportAddress& addr, const ListenParams& params,
               AcceptCallback cb)
      : loop_(loop), addr_(addr), params_(params), cb_(std::move(cb)) {}

  ~RdmaListener() override {
    if (watching_) loop_->Remove(ch_->fd);
    if (id_ != nullptr) rdma_destroy_id(id_);
    if (ch_ != nullptr) rdma_destroy_event_channel(ch_);
  }

  Status Start() {
    Status s = MakeCmChannel(&ch_);
    if (!s.ok()) return s;
    if (rdma_create_id(ch_, &id_, nullptr, RDMA_PS_TCP) != 0) {
      return Status::IoError(ErrnoText("rdma_create_id", errno));
    }
    sockaddr_storage sa;
    s = ResolveSockaddr(addr_, true, &sa);
    if (!s.ok()) return s;
    if (rdma_bind_addr(id_, reinterpret_cast<sockaddr*>(&sa)) != 0) {
      const int err = errno;
      if (err == EADDRINUSE) {
        return Status::IoError("RDMA address " + Where() + " is already in use");
      }
      if (err == EADDRNOTAVAIL || err == ENODEV) {
        return Status::NotSupported("no RDMA device has address " + addr_.traddr +
                                    " (rdma link show lists the RDMA links)");
      }
      return Status::IoError(ErrnoText(("rdma_bind_addr " + Where()).c_str(), err));
    }
    if (rdma_listen(id_, 128) != 0) {
      return Status::IoError(ErrnoText(("rdma_listen " + Where()).c_str(), errno));
    }
    port_ = ntohs(rdma_get_src_port(id_));
    RdmaListener* self = this;
    s = loop_->Add(ch_->fd, EPOLLIN, [self](uint32_t) { self->OnEvents(); });
    if (!s.ok()) return s;
    watching_ = true;
    return Status::OK();
  }

  TransportType trtype() const override { return TransportType::kRdma; }
  uint16_t port() const override { return port_; }
  ControllerTransportValues ControllerValues() const override {
    return RdmaControllerValues(params_.max_icd, params_.max_transfer);
  }
  void FillDiscoveryEntry(spec::DiscoveryLogEntry* e) const override {
    FillRdmaDiscoveryEntry(addr_.traddr, e);
  }

 private:
  std::string Where() const { return addr_.traddr + ":" + addr_.trsvcid; }
  void Log(const std::string& line) const {
    if (params_.log) params_.log(line);
  }

  void OnEvents() {
    rdma_cm_event* ev = nullptr;
    while (rdma_get_cm_event(ch_, &ev) == 0) {
      const rdma_cm_event_type type = ev->event;
      rdma_cm_id* child = ev->id;
      uint8_t pdata[64] = {};
      const size_t plen = std::min<size_t>(ev->param.conn.private_data_len, sizeof(pdata));
      if (ev->param.conn.private_data != nullptr && plen > 0) {
        std::memcpy(pdata, ev->param.conn.private_data, plen);
      }
      // On the passive side these are the peer's offer as seen from here: how many RDMA
      // READs we may have outstanding towards the host.
      const uint8_t initiator_depth = ev->param.conn.initiator_depth;
      // Acknowledged first: migrating the identifier waits for its events to be acked.
      rdma_ack_cm_event(ev);
      if (type == RDMA_CM_EVENT_CONNECT_REQUEST) {
        OnRequest(child, pdata, plen, initiator_depth);
      } else if (type == RDMA_CM_EVENT_DEVICE_REMOVAL) {
        Log("RDMA device of listener " + Where() + " was removed");
      }
    }
  }

  void Reject(rdma_cm_id* child, uint16_t sts, const std::string& why) {
    CmReject rej{0, sts};
    rdma_reject(child, &rej, sizeof(rej));
    rdma_destroy_id(child);
    Log("RDMA connection request refused: " + why);
  }

  void OnRequest(rdma_cm_id* child, const uint8_t* pdata, size_t plen, uint8_t initiator_depth) {
    const std::string peer = CmPeerName(child);
    if (params_.admit && !params_.admit()) {
      return Reject(child, kRejNoResources, "from " + peer + ": connection limit");
    }
    CmRequest req;
    uint16_t entries = 0;
    const uint16_t sts = CheckRequest(pdata, plen, params_.max_queue_size, params_.max_queue_size,
                                      &req, &entries);
    if (sts != 0) {
      return Reject(child, sts, "from " + peer + ": " + RejectStatusName(sts) + " (queue " +
                                    std::to_string(req.qid) + ", HSQSIZE " +
                                    std::to_string(req.hsqsize) + ", HRQSIZE " +
                                    std::to_string(req.hrqsize) + ")");
    }
    if (initiator_depth == 0) {
      // The host takes no RDMA READ: we could never fetch its write data.
      return Reject(child, kRejInvalidIrd, "from " + peer + ": the host offers no RDMA READ");
    }
    auto res = std::make_unique<QueueResources>();
    Status s = MakeCmChannel(&res->channel);
    if (s.ok() && rdma_migrate_id(child, res->channel) != 0) {
      s = Status::IoError(ErrnoText("rdma_migrate_id", errno));
    }
    if (!s.ok()) return Reject(child, kRejNoResources, "from " + peer + ": " + s.ToString());
    res->id = child;
    s = res->Create(entries, static_cast<uint32_t>(sizeof(spec::Sqe)) + params_.max_icd,
                    ControllerSends(entries));
    if (!s.ok()) {
      // Reject destroys the identifier, not a QP made on it: that goes first, or it would
      // keep the CQ (and so the completion channel) from being destroyed with res.
      if (child->qp != nullptr) rdma_destroy_qp(child);
      res->id = nullptr;
      return Reject(child, kRejNoResources, "from " + peer + ": " + s.ToString());
    }
    CmAccept acc{};
    acc.recfmt = 0;
    acc.crqsize = entries;
    rdma_conn_param p{};
    p.private_data = &acc;
    p.private_data_len = sizeof(acc);
    p.responder_resources = 0;  // the host never reads our memory
    p.initiator_depth = static_cast<uint8_t>(
        std::min<int>(initiator_depth, std::max(res->dev->attr.max_qp_init_rd_atom, 1)));
    p.retry_count = 7;
    p.rnr_retry_count = 7;
    if (rdma_accept(child, &p) != 0) {
      Log("RDMA accept from " + peer + " failed: " + ErrnoText("rdma_accept", errno));
      return;  // res destroys the identifier
    }
    auto conn = std::make_shared<RdmaConnection>();
    conn->res = std::move(res);
    conn->entries = entries;
    conn->max_icd = params_.max_icd;
    conn->max_transfer = params_.max_transfer;
    conn->peer = peer;
    cb_(conn);
  }

  EventLoop* loop_;
  TransportAddress addr_;
  ListenParams params_;
  AcceptCallback cb_;
  rdma_event_channel* ch_ = nullptr;
  rdma_cm_id* id_ = nullptr;
  uint16_t port_ = 0;
  bool watching_ = false;
};

}  // namespace

Status Listen(EventLoop* loop, const TransportAddress& addr, const ListenParams& params,
              TransportListener::AcceptCallback cb, std::unique_ptr<TransportListener>* out) {
  auto l = std::make_unique<RdmaListener>(loop, addr, params, std::move(cb));
  Status s = l->Start();
  if (!s.ok()) return s;
  *out = std::move(l);
  return Status::OK();
}

}  // namespace nvmf::rdma
