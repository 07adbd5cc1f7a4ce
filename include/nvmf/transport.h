// The transport-independent NVMe over Fabrics API: queue pairs and capsules.
//
// Modelled on FreeBSD's nvmf_transport(9). A queue pair (Qpair) is one admin or I/O
// submission/completion queue pair over one transport connection, owned by a host or by a
// controller. Capsules carry commands (host to controller, a 64-byte SQE) and responses
// (controller to host, a 16-byte CQE). Queue pairs are independent: this layer knows
// nothing of associations, Connect, namespaces or controllers; the host and controller
// layers above build those from it.
//
// Transports. NVMe/TCP and NVMe/RDMA sit behind this one API; the layers above name them
// only by TransportType. Connection set-up is neutral too: a host reaches a transport
// address with ConnectTransport, a controller accepts with ListenTransport, and either
// gets an opaque Connection that AllocateQpair turns into a queue pair. The transport
// supplies what the controller reports about it (ControllerTransportValues, the discovery
// entry's transport fields).
//
// Threads. A queue pair belongs to the EventLoop it was allocated on. Every function here
// that takes a Qpair or one of its Capsules must be called on that loop's thread, and
// every callback of the queue pair runs there.
//
// Ownership and lifetimes.
//  - AllocateQpair returns a queue pair owned by the caller; FreeQpair gives it back,
//    writing what is queued if the socket takes it at once, then closing the
//    connection. After FreeQpair no callback of that queue pair runs again. Capsules the caller
//    still holds stay valid until FreeCapsule, which is still allowed after FreeQpair.
//  - A capsule from AllocateCommand/AllocateResponse, or delivered by the receive
//    callback, is owned by the caller until FreeCapsule. Transmit does not take
//    ownership: the transport holds its own reference while it needs the capsule, so a
//    capsule may be freed right after Transmit.
//  - Memory described by a MemDesc must stay valid until the callback of the call that
//    was given it runs (AppendData's on_done, ReceiveControllerData's on_done,
//    SendControllerData's on_sent). A callback runs exactly once, also on failure.
//
// Callbacks.
//  - ErrorCallback(status): the connection ended. status.ok() means the peer closed it
//    cleanly between PDUs; otherwise it says why (a protocol error we reported with a
//    termination request, a termination request from the peer, a socket error). Data
//    callbacks of transfers still in flight have already run with an error. The callback
//    may call FreeQpair.
//  - ReceiveCallback(capsule): a command (controller role) or a response (host role)
//    arrived. The callback owns the capsule. It may transmit, allocate, free capsules,
//    call ReceiveControllerData/SendControllerData, and FreeQpair.
//  - DataCallback(bytes, status): a data transfer ended; bytes is how much moved. It may
//    run before the call that started it returns (ReceiveControllerData on in-capsule
//    data). It may free the capsule and transmit.
//
// Data integrity. These are the promises the layers above build their guarantees on
// (docs/reliability.md); tests/integrity_test.cc and tests/tcp_bad_input_test.cc try to
// break them.
//  - Received data is not verified until its DataCallback runs with OK. Until then the
//    memory given to ReceiveControllerData (or AppendData for a read) may hold any mix of
//    old bytes and unverified peer bytes, also after a failure. A caller that must not
//    expose unverified bytes (a namespace) receives into memory of its own and applies
//    it only after an OK callback.
//  - Memory handed to SendControllerData (or AppendData for a write) must not change
//    until its callback runs when QpairDigestsSentData is true: the digest is computed
//    when the data is queued, and the bytes are read again when the socket takes them.
//    Memory another thread may write (a shared namespace) must be copied first. Without
//    data digests, what is sent is what the memory holds when the socket takes it.
//    (NVMe/RDMA copies sent data into registered memory during the call itself, so there
//    the memory may change as soon as the call returns.)
//  - Status::DataDigestError on a DataCallback, and kScTransientTransportError from
//    ValidateCommandCapsule, mean the data was damaged on the way: the command is worth
//    retrying (the controller completes it without Do Not Retry).
//  - After FreeQpair or a failure, every DataCallback still pending runs exactly once,
//    with an error; no PDU half written keeps a capsule or its memory alive.
//
// Resources. A queue pair starts small and grows with use: capsules are fixed by the queue
// size, while in-capsule data buffers, PDU descriptors and the receive buffer are
// allocated as the peer first needs them and kept, so steady state allocates nothing and
// a connection that never does I/O costs little. Callbacks store their captures inline
// (nvmf/callback.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "nvmf/callback.h"
#include "nvmf/event_loop.h"
#include "nvmf/memdesc.h"
#include "nvmf/secure_channel.h"
#include "nvmf/spec/admin.h"
#include "nvmf/spec/nvme.h"
#include "nvmf/status.h"

namespace nvmf {

class Qpair;
class Capsule;

enum class TransportType : uint8_t { kRdma = 1, kFc = 2, kTcp = 3 };
enum class Role : uint8_t { kHost, kController };

// A transport address, as the discovery log gives it: the transport type, the address
// (IPv4 or IPv6 literal, or a host name for the host role) and the service (port).
struct TransportAddress {
  TransportType trtype = TransportType::kTcp;
  std::string traddr;
  std::string trsvcid;
};
// "tcp", "rdma", "fc"; nullptr-free: unknown types read "unknown".
const char* TransportTypeName(TransportType t);
// Parses "tcp" or "rdma" (any case). False for anything else.
bool ParseTransportType(std::string_view name, TransportType* out);

// A connection a transport has set up and not yet made into a queue pair: an NVMe/TCP
// socket after ICReq/ICResp, an RDMA CM identifier with its QP. Its contents belong to
// the transport that made it (transport_internal.h); the layers above only pass it on.
// Dropping the last reference to one that never became a queue pair closes it.
class TransportConnection;
using Connection = std::shared_ptr<TransportConnection>;
TransportType ConnectionTransport(const Connection& c);

struct QpairParams {
  bool admin = false;
  uint16_t qsize = 32;  // queue entries: the most commands in flight; sizes the pools
  // Host: the controller's in-capsule data size for this queue (I/O queues: IOCCSZ * 16 -
  // 64; the admin queue: 8192). A transport without in-capsule data ignores it.
  uint32_t max_icd = 8192;
  Connection connection;  // from ConnectTransport or a TransportListener; required
};

using ErrorCallback = Callback<void(const Status&)>;
using ReceiveCallback = Callback<void(Capsule*)>;
using DataCallback = Callback<void(size_t bytes, const Status&)>;

// ---------------------------------------------------------------- connection set-up
//
// Host: ConnectTransport reaches addr and runs the transport's own set-up (TCP connect and
// ICReq/ICResp; RDMA CM address and route resolution and a connect carrying the binding's
// private data). Exactly one callback, on the loop: OK with a Connection for AllocateQpair,
// or why not. Every field is read by the transports it concerns and ignored by others.
struct HostConnectParams {
  uint16_t qid = 0;
  uint16_t qsize = 32;          // queue entries (SQSIZE + 1)
  bool header_digest = false;   // NVMe/TCP
  bool data_digest = false;     // NVMe/TCP
  std::chrono::milliseconds timeout{10000};
  // A secure channel (NVMe/TCP: TLS 1.3 before ICReq). The NQNs name the PSK identity.
  HostTlsConfig tls;
  std::string hostnqn;
  std::string subnqn;
};
using ConnectCallback = std::function<void(const Status&, Connection)>;
void ConnectTransport(EventLoop* loop, const TransportAddress& addr,
                      const HostConnectParams& params, ConnectCallback cb);

// Controller: what a transport reports about itself in Identify Controller (the values
// for its I/O queues) and in the discovery log entry of a port it listens on.
struct ControllerTransportValues {
  uint32_t ioccsz = 4;      // I/O command capsule size, 16-byte units
  uint32_t iorcsz = 1;      // I/O response capsule size, 16-byte units
  uint16_t icdoff = 0;      // in-capsule data offset, 16-byte units
  uint32_t sgls = 0;        // SGL support (Identify Controller SGLS)
  uint8_t msdbd = 1;        // most SGL data block descriptors per command
  uint64_t max_transfer = 0;  // largest transfer one command may carry (bytes)
};

struct ListenParams {
  uint32_t max_icd = 8192;          // in-capsule data the I/O queues accept
  uint64_t max_transfer = 1 << 20;  // largest transfer per command (MDTS)
  uint16_t max_queue_size = 128;    // most entries a host may ask for
  // NVMe/TCP.
  uint32_t maxh2cdata = 131072;
  bool c2h_success = false;
  bool allow_header_digest = true;
  bool allow_data_digest = true;
  uint32_t keepalive_s = 0;  // TCP keepalive idle seconds (0: off)
  // Secure channel: required, optional or not offered, and the hosts' keys. Handshake
  // failures close only that connection; they are counted per host and logged.
  PortTlsConfig tls;
  // Limits (docs/reliability.md). Connections still in their transport handshake: past
  // max_handshakes, new ones are refused at once. admit (optional) is asked before each
  // new connection; false refuses it. Every limit hit is reported through log.
  uint32_t max_handshakes = 1024;
  std::chrono::milliseconds handshake_timeout{10000};
  std::function<bool()> admit;
  std::function<void(const std::string&)> log;
};

// Accepts connections on one transport address, on the loop it was made on. Each
// connection arrives through the accept callback once the transport's set-up is done
// (ICReq answered; RDMA CM request accepted); one whose set-up fails never does.
// Destroying the listener stops accepting; connections already handed over live on.
class TransportListener {
 public:
  using AcceptCallback = std::function<void(Connection)>;
  virtual ~TransportListener() = default;
  virtual TransportType trtype() const = 0;
  virtual uint16_t port() const = 0;  // as bound (useful when asked for port 0)
  virtual ControllerTransportValues ControllerValues() const = 0;
  // Fills the discovery log entry's TRTYPE, ADRFAM, TREQ and TSAS for this port.
  virtual void FillDiscoveryEntry(spec::DiscoveryLogEntry* e) const = 0;
};
Status ListenTransport(EventLoop* loop, const TransportAddress& addr, const ListenParams& params,
                       TransportListener::AcceptCallback cb,
                       std::unique_ptr<TransportListener>* out);

// Queue pairs. type must be the connection's transport.
Status AllocateQpair(EventLoop* loop, TransportType type, Role role, const QpairParams& params,
                     ErrorCallback on_error, ReceiveCallback on_receive, Qpair** out);
void FreeQpair(Qpair* qp);
TransportType QpairTransport(const Qpair* qp);
Role QpairRole(const Qpair* qp);
bool QpairIsAdmin(const Qpair* qp);
// The peer's address ("10.0.0.1:4420"), for logs.
std::string QpairPeerName(const Qpair* qp);
// A queue pair on a secure channel (NVMe/TCP TLS): the host and subsystem NQNs its PSK
// identity named, which a controller holds the Connect command to. False without one.
bool QpairSecureChannelNqns(const Qpair* qp, std::string* hostnqn, std::string* subnqn);
// Controller: the values this queue pair's transport reports (see ListenParams).
ControllerTransportValues QpairControllerValues(const Qpair* qp);

// Capsules. Allocation returns nullptr when the queue pair's pool is empty (more than its
// queue size in flight) or the queue pair has failed.
Capsule* AllocateCommand(Qpair* qp, const spec::Sqe& sqe);
Capsule* AllocateResponse(Qpair* qp, const spec::Cqe& cqe);
void FreeCapsule(Capsule* c);
Qpair* CapsuleQpair(const Capsule* c);
const spec::Sqe& CapsuleSqe(const Capsule* c);  // command capsules
const spec::Cqe& CapsuleCqe(const Capsule* c);  // response capsules
// False for a response the transport made itself (the TCP SUCCESS flag): its SQHD is not
// the controller's.
bool CapsuleSqhdValid(const Capsule* c);

// Host. AppendData attaches len bytes of data to a command before Transmit: sent with it
// (send = true, a write) or received for it (send = false, a read). The transport fills
// in the SQE's SGL. on_done runs when the transfer ends: a send when the data has left
// (written to the socket), a receive when all of it arrived; always before the response
// capsule is delivered, except on failure.
void AppendData(Capsule* c, const MemDesc& mem, size_t len, bool send, DataCallback on_done);
Status Transmit(Capsule* c);
// Stops a command's data transfer: its on_done runs at once with Status::Aborted.
void AbortCapsuleData(Capsule* c);
// The largest data transfer one command may carry on this queue pair.
uint64_t MaxTransferSize(const Qpair* qp);
// True when data sent on this queue pair is covered by a digest computed when it is
// queued: memory passed to SendControllerData/AppendData must then stay unchanged until
// the transfer's callback runs.
bool QpairDigestsSentData(const Qpair* qp);
// True when PDU headers carry digests (NVMe/TCP's HDGST as negotiated).
bool QpairHeaderDigests(const Qpair* qp);

// Controller. ValidateCommandCapsule checks the transport's view of a received command
// (its SGL against the data that came with it) and returns a generic NVMe status code
// (spec::kScSuccess, or the code to complete the command with).
uint8_t ValidateCommandCapsule(const Capsule* c);
// The command's data length, from its SGL.
size_t CapsuleDataLength(const Capsule* c);
// Fetches len bytes of the command's data, starting at data offset `offset`, into mem.
// May be called several times to fetch the data in pieces. on_done may run before the
// call returns (in-capsule data).
void ReceiveControllerData(Capsule* c, uint32_t offset, const MemDesc& mem, size_t len,
                           DataCallback on_done);
// Sends len bytes of mem as the command's data at data offset `offset`. Returns at once:
// kSendMore (accepted; the command's data is not complete yet), spec::kStatusSuccess
// (accepted; the data is complete, a response capsule must follow), kSendSuccessSent
// (accepted; the transport also told the host the command succeeded, so no response
// follows), or an NVMe status to complete the command with (then nothing was queued and
// on_sent does not run). Otherwise mem must stay valid until on_sent runs (pass nullptr
// for memory that outlives the queue pair).
uint16_t SendControllerData(Capsule* c, uint32_t offset, const MemDesc& mem, size_t len,
                            DataCallback on_sent);
inline constexpr uint16_t kSendSuccessSent = 0x8000;  // outside the 15-bit status field
inline constexpr uint16_t kSendMore = 0x8001;

}  // namespace nvmf
