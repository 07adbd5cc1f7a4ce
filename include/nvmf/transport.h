// The transport-independent NVMe over Fabrics API: queue pairs and capsules.
//
// Modelled on FreeBSD's nvmf_transport(9). A queue pair (Qpair) is one admin or I/O
// submission/completion queue pair over one transport connection, owned by a host or by a
// controller. Capsules carry commands (host to controller, a 64-byte SQE) and responses
// (controller to host, a 16-byte CQE). Queue pairs are independent: this layer knows
// nothing of associations, Connect, namespaces or controllers; the host and controller
// layers above build those from it.
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

#include <cstddef>
#include <cstdint>

#include "nvmf/callback.h"
#include "nvmf/event_loop.h"
#include "nvmf/memdesc.h"
#include "nvmf/spec/nvme.h"
#include "nvmf/status.h"

namespace nvmf {

class Qpair;
class Capsule;

enum class TransportType : uint8_t { kRdma = 1, kFc = 2, kTcp = 3 };
enum class Role : uint8_t { kHost, kController };

// Parameters of an NVMe/TCP queue pair, as negotiated by ICReq/ICResp (see nvmf/tcp.h,
// whose Connect and Listener produce them).
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
};

struct QpairParams {
  bool admin = false;
  uint16_t qsize = 32;  // queue entries: the most commands in flight; sizes the pools
  TcpQpairParams tcp;
};

using ErrorCallback = Callback<void(const Status&)>;
using ReceiveCallback = Callback<void(Capsule*)>;
using DataCallback = Callback<void(size_t bytes, const Status&)>;

// Queue pairs.
Status AllocateQpair(EventLoop* loop, TransportType type, Role role, const QpairParams& params,
                     ErrorCallback on_error, ReceiveCallback on_receive, Qpair** out);
void FreeQpair(Qpair* qp);
TransportType QpairTransport(const Qpair* qp);
Role QpairRole(const Qpair* qp);
bool QpairIsAdmin(const Qpair* qp);

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
