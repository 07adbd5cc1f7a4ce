// The NVMe/RDMA transport's set-up entry points, behind its registry entry
// (rdma_transport.cc).
#pragma once

#include <sys/socket.h>

#include "transport/transport_internal.h"

namespace nvmf::rdma {

// Host: resolves addr, connects with the binding's private data, and hands over an
// RdmaConnection (rdma_connect.cc).
void Connect(EventLoop* loop, const TransportAddress& addr, const HostConnectParams& params,
             ConnectCallback cb);

// Controller: listens on addr and accepts connection requests that fit (rdma_listen.cc).
Status Listen(EventLoop* loop, const TransportAddress& addr, const ListenParams& params,
              TransportListener::AcceptCallback cb, std::unique_ptr<TransportListener>* out);

// Resolves a numeric or named address and a port for rdma_cm.
Status ResolveSockaddr(const TransportAddress& addr, bool passive, sockaddr_storage* out);

}  // namespace nvmf::rdma
