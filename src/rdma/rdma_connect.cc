// NVMe/RDMA host connection set-up: address and route resolution, then an RDMA CM connect
// whose private data carries QID, HRQSIZE and HSQSIZE, all on the caller's EventLoop.
#include <netdb.h>

#include <algorithm>
#include <cstring>

#include "rdma/rdma_internal.h"
#include "rdma/rdma_qpair.h"

namespace nvmf::rdma {

Status ResolveSockaddr(const TransportAddress& addr, bool passive, sockaddr_storage* out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE | AI_NUMERICHOST : 0);
  addrinfo* res = nullptr;
  const char* node = addr.traddr.empty() ? nullptr : addr.traddr.c_str();
  int rc = getaddrinfo(node, addr.trsvcid.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return Status::InvalidArgument("cannot resolve '" + addr.traddr + "' port '" + addr.trsvcid +
                                   "': " + gai_strerror(rc));
  }
  std::memset(out, 0, sizeof(*out));
  std::memcpy(out, res->ai_addr, std::min<size_t>(res->ai_addrlen, sizeof(*out)));
  freeaddrinfo(res);
  return Status::OK();
}

namespace {

// IB CM reject reasons (InfiniBand Architecture, REJ message) that rdma_cm reports as
// the event's status.
constexpr int kCmRejectInvalidServiceId = 8;
constexpr int kCmRejectConsumer = 28;

class Connector {
 public:
  Connector(EventLoop* loop, const TransportAddress& addr, const HostConnectParams& params,
            ConnectCallback cb)
      : loop_(loop), addr_(addr), params_(params), cb_(std::move(cb)) {}

  void Start() {
    res_ = std::make_unique<QueueResources>();
    Status s = MakeCmChannel(&res_->channel);
    if (!s.ok()) return Finish(s);
    if (rdma_create_id(res_->channel, &res_->id, nullptr, RDMA_PS_TCP) != 0) {
      return Finish(Status::IoError(ErrnoText("rdma_create_id", errno)));
    }
    sockaddr_storage dst;
    s = ResolveSockaddr(addr_, false, &dst);
    if (!s.ok()) return Finish(s);
    Connector* self = this;
    s = loop_->Add(res_->channel->fd, EPOLLIN, [self](uint32_t) {
      self->OnEvents();
      self->DeleteIfDone();
    });
    if (!s.ok()) return Finish(s);
    watching_ = true;
    timer_ = loop_->AddTimer(params_.timeout, [self] {
      self->timer_ = {};
      self->Finish(Status::TimedOut("NVMe/RDMA connection to " + self->Where() + " timed out"));
      self->DeleteIfDone();
    });
    if (rdma_resolve_addr(res_->id, nullptr, reinterpret_cast<sockaddr*>(&dst), TimeoutMs()) != 0) {
      return Finish(Status::IoError(ErrnoText(("rdma_resolve_addr " + Where()).c_str(), errno)));
    }
  }

  // Every entry point (Start, events, the timer) ends with this: the Connector goes once
  // its callback ran.
  void DeleteIfDone() {
    if (done_) delete this;
  }

 private:
  std::string Where() const { return addr_.traddr + ":" + addr_.trsvcid; }
  int TimeoutMs() const {
    return static_cast<int>(std::clamp<int64_t>(params_.timeout.count(), 100, 60000));
  }

  void OnEvents() {
    rdma_cm_event* ev = nullptr;
    while (!done_ && rdma_get_cm_event(res_->channel, &ev) == 0) {
      const rdma_cm_event_type type = ev->event;
      const int status = ev->status;
      uint8_t pdata[32] = {};
      const size_t plen = std::min<size_t>(ev->param.conn.private_data_len, sizeof(pdata));
      if (ev->param.conn.private_data != nullptr && plen > 0) {
        std::memcpy(pdata, ev->param.conn.private_data, plen);
      }
      rdma_ack_cm_event(ev);
      OnEvent(type, status, pdata, plen);
    }
  }

  void OnEvent(rdma_cm_event_type type, int status, const uint8_t* pdata, size_t plen) {
    switch (type) {
      case RDMA_CM_EVENT_ADDR_RESOLVED:
        if (rdma_resolve_route(res_->id, TimeoutMs()) != 0) {
          Finish(Status::IoError(ErrnoText("rdma_resolve_route", errno)));
        }
        return;
      case RDMA_CM_EVENT_ROUTE_RESOLVED:
        return SendRequest();
      case RDMA_CM_EVENT_ESTABLISHED: {
        auto conn = std::make_shared<RdmaConnection>();
        conn->entries = params_.qsize;
        conn->max_transfer = std::min<uint64_t>(4u << 20, res_->dev->attr.max_mr_size);
        conn->peer = CmPeerName(res_->id);
        (void)pdata;  // CRQSIZE is at least our queue size, or the controller would reject
        (void)plen;
        conn_ = conn;
        return Finish(Status::OK());
      }
      case RDMA_CM_EVENT_REJECTED: {
        // status is the CM's reject reason: 28 (consumer defined) carries the binding's
        // private data; 8 (invalid service ID) means nobody listens there.
        std::string why;
        CmReject rej{};
        if (plen >= sizeof(CmReject)) std::memcpy(&rej, pdata, sizeof(rej));
        if (status == kCmRejectConsumer && plen >= sizeof(CmReject) && rej.sts != 0) {
          why = "the controller rejected the connection: " + RejectStatusName(rej.sts);
        } else if (status == kCmRejectInvalidServiceId) {
          why = "nothing listens for NVMe/RDMA at " + Where();
        } else {
          why = "connection rejected (CM reason " + std::to_string(status) + ")";
        }
        return Finish(Status::IoError(why));
      }
      case RDMA_CM_EVENT_ADDR_ERROR:
        return Finish(Status::IoError("cannot resolve " + Where() + " to an RDMA device: " +
                                      std::strerror(status < 0 ? -status : status)));
      case RDMA_CM_EVENT_ROUTE_ERROR:
      case RDMA_CM_EVENT_UNREACHABLE:
      case RDMA_CM_EVENT_CONNECT_ERROR:
        return Finish(Status::IoError(std::string(rdma_event_str(type)) + " for " + Where() +
                                      " (status " + std::to_string(status) + ")"));
      case RDMA_CM_EVENT_DEVICE_REMOVAL:
        return Finish(Status::IoError("the RDMA device was removed"));
      default:
        return;
    }
  }

  void SendRequest() {
    const uint32_t entries = params_.qsize;
    Status s = res_->Create(entries, sizeof(spec::Cqe), HostSends(entries), /*own_pd=*/true);
    if (!s.ok()) return Finish(s);
    CmRequest req{};
    req.recfmt = 0;
    req.qid = params_.qid;
    req.hrqsize = static_cast<uint16_t>(entries);
    req.hsqsize = static_cast<uint16_t>(entries - 1);
    req.cntlid = 0xFFFF;
    rdma_conn_param p{};
    p.private_data = &req;
    p.private_data_len = sizeof(req);
    // The controller reads write data (and Connect's) from our memory with RDMA READ:
    // offer the most outstanding reads the device serves.
    const ibv_device_attr& a = res_->dev->attr;
    p.responder_resources = static_cast<uint8_t>(std::clamp(a.max_qp_rd_atom, 1, 255));
    p.initiator_depth = static_cast<uint8_t>(std::clamp(a.max_qp_init_rd_atom, 0, 255));
    p.retry_count = 7;
    p.rnr_retry_count = 7;
    if (rdma_connect(res_->id, &p) != 0) {
      Finish(Status::IoError(ErrnoText("rdma_connect", errno)));
    }
  }

  void Finish(const Status& s) {
    if (done_) return;
    done_ = true;
    if (timer_) loop_->CancelTimer(timer_);
    if (watching_) loop_->Remove(res_->channel->fd);
    Connection out;
    if (s.ok()) {
      conn_->res = std::move(res_);
      out = conn_;
    }
    res_.reset();  // on failure: destroys the QP, identifier and channel
    ConnectCallback cb = std::move(cb_);
    cb(s, out);
  }

  EventLoop* loop_;
  TransportAddress addr_;
  HostConnectParams params_;
  ConnectCallback cb_;
  std::unique_ptr<QueueResources> res_;
  std::shared_ptr<RdmaConnection> conn_;
  EventLoop::TimerId timer_;
  bool watching_ = false;
  bool done_ = false;
};

}  // namespace

void Connect(EventLoop* loop, const TransportAddress& addr, const HostConnectParams& params,
             ConnectCallback cb) {
  if (params.qsize < 2) {
    loop->Post([cb] { cb(Status::InvalidArgument("queue size must be at least 2"), nullptr); });
    return;
  }
  auto* c = new Connector(loop, addr, params, std::move(cb));
  // Started from the loop so that the callback never runs inside Connect.
  loop->Post([c] {
    c->Start();
    c->DeleteIfDone();
  });
}

}  // namespace nvmf::rdma
