// The NVMe/RDMA transport's entry in the transport registry.
#include "rdma/rdma_internal.h"
#include "rdma/rdma_qpair.h"

namespace nvmf {
namespace rdma {
namespace {

class RdmaTransport : public Transport {
 public:
  Status AllocateQpair(EventLoop* loop, Role role, const QpairParams& params,
                       ErrorCallback on_error, ReceiveCallback on_receive, Qpair** out) override {
    return RdmaQpair::Create(loop, role, params, on_error, on_receive, out);
  }
  void Connect(EventLoop* loop, const TransportAddress& addr, const HostConnectParams& params,
               ConnectCallback cb) override {
    if (params.tls.enabled) {
      loop->Post([cb] { cb(Status::NotSupported("NVMe/RDMA has no secure channel (TLS is NVMe/TCP's)"), nullptr); });
      return;
    }
    rdma::Connect(loop, addr, params, std::move(cb));
  }
  Status Listen(EventLoop* loop, const TransportAddress& addr, const ListenParams& params,
                TransportListener::AcceptCallback cb,
                std::unique_ptr<TransportListener>* out) override {
    if (params.tls.channel != SecureChannel::kNone) {
      return Status::NotSupported("NVMe/RDMA ports cannot offer TLS");
    }
    return rdma::Listen(loop, addr, params, std::move(cb), out);
  }
};

}  // namespace
}  // namespace rdma

Transport* BuiltinRdmaTransport() {
  static Transport* t = new rdma::RdmaTransport;  // never destroyed: used until exit
  return t;
}

}  // namespace nvmf
