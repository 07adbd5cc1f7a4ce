#include "tcp/tcp_transport.h"

#include "tcp/tcp_qpair.h"

namespace nvmf::tcp {
namespace {

class TcpTransport final : public Transport {
 public:
  Status AllocateQpair(EventLoop* loop, Role role, const QpairParams& params,
                       ErrorCallback on_error, ReceiveCallback on_receive, Qpair** out) override {
    return TcpQpair::Create(loop, role, params, on_error, on_receive, out);
  }
};

}  // namespace

Transport* BuiltinTransport() {
  static TcpTransport* t = new TcpTransport;  // never destroyed: used until exit
  return t;
}

}  // namespace nvmf::tcp
