// The NVMe/TCP transport's own set-up API: the host's Connect and the controller's
// Listener. Both run the TCP connection and the ICReq/ICResp exchange asynchronously on an
// EventLoop and hand over a TcpQpairParams (the socket plus what was negotiated). The
// layers above use the transport-neutral ConnectTransport/ListenTransport
// (nvmf/transport.h), which come here for trtype tcp; tests and tools that exercise
// NVMe/TCP itself use this header directly.
//
// Threads: call on the loop's thread; callbacks run there.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "nvmf/event_loop.h"
#include "nvmf/status.h"
#include "nvmf/transport.h"

namespace nvmf {
namespace tcp {
class TlsSession;
}

// Parameters of an NVMe/TCP queue pair, as negotiated by ICReq/ICResp (Connect and
// Listener below produce them).
struct TcpQpairParams {
  int fd = -1;                  // connected socket, handshake done; the queue pair owns it
  bool header_digest = false;   // both directions
  bool data_digest = false;     // both directions
  uint32_t rx_pda = 4;          // data alignment (bytes) we asked the peer for
  uint32_t tx_pda = 4;          // data alignment (bytes) the peer asked us for
  uint32_t maxr2t = 1;          // outstanding R2Ts per command the host accepts (1-based)
  uint32_t maxh2cdata = 131072; // largest H2CData payload the controller accepts
  uint32_t max_icd = 8192;      // in-capsule data size: host, the peer's; controller, ours
  bool c2h_success = false;     // controller: end reads with the C2HData SUCCESS flag
  // Set when the connection runs TLS: every byte after the TLS handshake goes through it.
  std::shared_ptr<tcp::TlsSession> tls;
  std::string tls_identity;     // the PSK identity (names the host and subsystem NQNs)
};

}  // namespace nvmf

namespace nvmf::tcp {

// Wraps negotiated parameters as the opaque Connection that AllocateQpair takes; the
// Connection owns the socket from here on. For a host queue pair, QpairParams::max_icd
// replaces params.max_icd.
Connection WrapConnection(const TcpQpairParams& params);

struct HostOptions {
  bool header_digest = false;  // ask for header digests
  bool data_digest = false;    // ask for data digests
  uint8_t hpda = 0;            // our data alignment, 0's based dwords (0: 4 bytes)
  uint32_t maxr2t = 16;        // outstanding R2Ts per command we accept (1-based)
  std::chrono::milliseconds timeout{10000};  // TCP connect plus ICReq/ICResp
  // TLS 1.3 with a PSK before ICReq (tls.enabled); the NQNs make the PSK identity.
  HostTlsConfig tls;
  std::string hostnqn;
  std::string subnqn;
};

struct ControllerOptions {
  uint8_t cpda = 0;               // our data alignment, 0's based dwords
  uint32_t maxh2cdata = 131072;   // largest H2CData payload we accept
  uint32_t max_icd = 8192;        // in-capsule data we accept (I/O queues)
  bool allow_header_digest = true;
  bool allow_data_digest = true;
  bool c2h_success = false;       // end reads with the C2HData SUCCESS flag
  std::chrono::milliseconds icreq_timeout{10000};
  // Limits. Connections still in their ICReq exchange: past this many, new ones are
  // closed at once. admit (optional) is asked before each new connection; false closes it
  // (the owner's connection limit). When accept fails for want of descriptors or memory
  // (EMFILE, ENFILE, ENOBUFS, ENOMEM) the listener stops accepting for a while, doubling
  // from 50 ms to 2 s, instead of spinning. Every limit hit is reported through log.
  uint32_t max_handshakes = 1024;
  std::function<bool()> admit;
  std::function<void(const std::string&)> log;
  uint32_t keepalive_s = 0;  // TCP keepalive: idle seconds before probes start (0: off)
  // TLS: a port that requires it closes a connection whose first bytes are not a TLS
  // ClientHello; an optional one takes either. Failures are logged (never the keys) and
  // counted per host NQN (per peer address when the host is not known).
  PortTlsConfig tls;
  // Called for each TLS failure (and plain connection a required port refused), with the
  // host NQN of the identity offered ("" when none) and the peer's address.
  std::function<void(const std::string& hostnqn, const std::string& peer, const Status&)>
      on_tls_failure;
};

using ConnectCallback = std::function<void(const Status&, const TcpQpairParams&)>;

// Connects to host:port and runs the ICReq/ICResp exchange. Exactly one callback: on
// success the params own the socket (pass them to AllocateQpair). params.max_icd is the
// admin queue's 8 KiB; for an I/O queue the caller sets it from the controller's IOCCSZ.
void Connect(EventLoop* loop, const std::string& host, uint16_t port, const HostOptions& opts,
             ConnectCallback cb);

// Accepts connections and answers their ICReq. Each negotiated connection arrives through
// the accept callback; a connection whose ICReq is bad gets a C2HTermReq and is closed,
// and never reaches the callback.
class Listener {
 public:
  using AcceptCallback = std::function<void(const TcpQpairParams&)>;
  virtual ~Listener() = default;
  // Binds addr:port (port 0 picks a free one; see port()).
  static Status Listen(EventLoop* loop, const std::string& addr, uint16_t port,
                       const ControllerOptions& opts, AcceptCallback cb,
                       std::unique_ptr<Listener>* out);
  virtual uint16_t port() const = 0;
};

}  // namespace nvmf::tcp
