// The ICReq/ICResp exchange on a fresh NVMe/TCP connection, run asynchronously on an
// EventLoop. The host sends ICReq and waits for ICResp; the controller waits for ICReq
// and answers. A bad PDU gets a termination request naming the field. The handshake
// owns the socket until it ends, then hands it over in the params (or closes it).
#pragma once

#include <functional>

#include "nvmf/event_loop.h"
#include "nvmf/tcp.h"
#include "nvmf/transport.h"

namespace nvmf::tcp {

using HandshakeCallback = std::function<void(const Status&, const TcpQpairParams&)>;
class Handshake;

// Each returns the handshake, valid until its callback has run.
Handshake* StartHostHandshake(EventLoop* loop, int fd, const HostOptions& opts,
                              HandshakeCallback cb);
Handshake* StartControllerHandshake(EventLoop* loop, int fd, const ControllerOptions& opts,
                                    HandshakeCallback cb);
// Ends a handshake that has not finished: closes its socket; its callback never runs.
void CancelHandshake(Handshake* h);

// Socket options every NVMe/TCP connection wants (no Nagle delay; non-blocking).
void TuneSocket(int fd);

}  // namespace nvmf::tcp
