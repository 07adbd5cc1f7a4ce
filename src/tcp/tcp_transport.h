// The NVMe/TCP transport's entry in the transport registry, and the Connection its set-up
// hands to AllocateQpair.
#pragma once

#include <unistd.h>

#include "nvmf/tcp.h"
#include "transport/transport_internal.h"

namespace nvmf::tcp {

// Identify Controller's transport values for NVMe/TCP I/O queues.
ControllerTransportValues TcpControllerValues(uint32_t max_icd, uint64_t max_transfer);

// A socket after ICReq/ICResp. Owns params.fd until a queue pair takes it (fd = -1).
class TcpConnection : public TransportConnection {
 public:
  explicit TcpConnection(const TcpQpairParams& p)
      : TransportConnection(TransportType::kTcp), params(p) {}
  ~TcpConnection() override {
    if (params.fd >= 0) close(params.fd);
  }
  TcpQpairParams params;
  // Controller: what the listener reports in Identify (its in-capsule data for I/O queues,
  // which may be less than params.max_icd: every queue takes the admin queue's 8 KiB).
  bool has_values = false;
  ControllerTransportValues values;
};

Transport* NewTcpTransport();

// "TLS 1.3 <cipher>, identity <PSK identity>" or "no TLS", for logs.
std::string TlsDescription(const TcpQpairParams& p);

// The peer's address of a connected socket, "addr:port".
std::string SocketPeerName(int fd);

}  // namespace nvmf::tcp
