// The NVMe over Fabrics host: an association with one remote controller, made of an admin
// queue and zero or more I/O queues, each its own transport queue pair.
//
// Threads. A Controller lives on one EventLoop, and so do all of its queues: every method
// must be called on that loop's thread, and every callback (command completions, Connect's
// and the failure callback) runs there. To use several cores, make one association per
// loop (one association per thread); an association never spans loops.
//
// Life cycle. Connect runs the whole set-up asynchronously: the transport connection and
// Fabrics Connect of the admin queue, Property Get CAP, Property Set CC.EN, polling
// CSTS.RDY (bounded by CAP.TO), Identify Controller, Set Features Number of Queues, and
// the connection of each I/O queue. A discovery controller (the well-known discovery NQN)
// gets no I/O queues and KATO 0 unless asked otherwise.
//   Once connected, a Keep Alive goes out every KATO/2 (while the loop runs) and a
// periodic scan fails the association when a command outlives its timeout, or when a
// Keep Alive has had no completion for KATO (the controller is then taken as lost even
// while other commands still complete).
//   The association fails as a whole: a command timeout, a transport error on any queue,
// or a failed Keep Alive closes every queue pair, completes every pending command with the
// failure's Status (Status::TimedOut for a timeout), and calls the failure callback.
//   Disconnect() is the clean close: new submissions are refused, commands in flight are
// let finish, each I/O queue sends a Fabrics Disconnect, the controller is shut down
// (CC.SHN normal, until CSTS.SHST says complete), and only then are the connections
// closed, so that neither side closes with a response still on the wire (a TCP reset,
// a queue the controller sees fail). Every step is bounded by shutdown_timeout as a whole;
// a controller that refuses Disconnect (Linux's nvmet does) or stops answering is closed
// anyway. Its callback runs once, when the association is closed.
//   Close() closes the queue pairs at once (no Disconnect, no shutdown: the controller
// sees the connections end) and completes pending commands with Status::Aborted. The
// destructor calls Close(). Do not destroy a Controller from inside one of its own
// callbacks; Close() and Disconnect() there are fine.
//
// Commands. Each queue tracks its commands by CID from a free list bounded by the queue's
// depth (entries - 1, entries = min(queue size, CAP.MQES + 1)). A submission that finds
// the queue full waits in the queue's FIFO and is sent when a command completes; it is
// not an error. Submit either returns an error (the association is not usable, the qid
// does not exist, the data is longer than the transport carries) and never calls the
// callback, or returns OK and the callback runs exactly once, later, on the loop thread.
// The data buffer must stay valid until then.
//   A completion with a non-zero NVMe status reaches the callback as Status::kNvmeError
// whose message names the status ("LBA Out of Range (SCT 0h, SC 80h)"); the CQE is passed
// too (spec::StatusOf(cqe) gives the raw status).
//
// Data path. No heap allocation per command in steady state: requests come from per-queue
// pools, CIDs from a per-queue free list, capsules from the transport's pools, and
// callbacks are Callback<> (inline captures).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nvmf/callback.h"
#include "nvmf/event_loop.h"
#include "nvmf/memdesc.h"
#include "nvmf/spec/admin.h"
#include "nvmf/spec/fabrics.h"
#include "nvmf/spec/nvme.h"
#include "nvmf/status.h"
#include "nvmf/transport.h"

namespace nvmf::auth {
struct HostAuthConfig;
}

namespace nvmf::host {

inline constexpr uint16_t kAdminQueueSize = 32;
inline constexpr uint32_t kDefaultKatoMs = 5000;
// In-capsule data the admin queue may carry (NVMe/TCP: 8 KiB, for Connect's data).
inline constexpr uint32_t kAdminInCapsuleData = 8192;

struct ConnectOptions {
  TransportType trtype = TransportType::kTcp;
  std::string traddr = "127.0.0.1";
  uint16_t trsvcid = 4420;
  std::string subnqn;
  std::string hostnqn;
  std::array<uint8_t, 16> hostid{};
  bool header_digest = false;
  bool data_digest = false;
  uint32_t nr_io_queues = 1;   // asked for; the controller may grant fewer. Not for discovery.
  uint16_t queue_size = 128;   // I/O queue entries (2..65536 minus one); capped by CAP.MQES + 1
  int64_t kato_ms = -1;        // -1: kDefaultKatoMs, or 0 for a discovery controller
  std::chrono::milliseconds connect_timeout{10000};  // each queue's transport set-up
  std::chrono::milliseconds admin_timeout{30000};    // per admin command
  std::chrono::milliseconds io_timeout{30000};       // per I/O command
  std::chrono::milliseconds shutdown_timeout{5000};  // Disconnect(), all steps together
  // Asynchronous events: once connected, enable the notices the controller offers
  // (namespace attribute, ANA change, discovery log change), keep an Asynchronous Event
  // Request posted, read the log page each event names, and report it (SetEventCallback).
  bool async_events = true;
  // DH-HMAC-CHAP (docs/security.md), as nvme-cli's --dhchap-secret and
  // --dhchap-ctrl-secret: DHHC-1 secrets, or "@PATH" of a file only its owner may read.
  // With a host secret, the host authenticates every queue whose Connect response asks
  // for it; without one, such a controller is refused with a clear error. With a
  // controller secret as well, the controller must prove itself on every queue, and a
  // controller that does not authenticate is refused.
  std::string dhchap_secret;
  std::string dhchap_ctrl_secret;
  // A secure channel on every queue (NVMe/TCP: TLS 1.3 with the PSK tls.key; the PSK
  // identity names hostnqn and subnqn). A transport without secure channels refuses it.
  HostTlsConfig tls;
};

// An asynchronous event, with the log page it named (read, which re-arms the event).
struct AsyncEvent {
  uint8_t type = 0;  // 2: notice; 6: I/O command set specific (info 0: reservation log, lid 80h)
  uint8_t info = 0;  // notice: 0 namespace attribute changed, 3 ANA change, F0h discovery log change
  uint8_t lid = 0;
  std::vector<uint8_t> log;
  // The Changed Namespace List (lid 04h): the NSIDs, or {FFFFFFFFh} when too many changed.
  std::vector<uint32_t> ChangedNamespaces() const;
  // The ANA log page (lid 0Ch): each group's state and its NSIDs.
  struct AnaGroup {
    uint32_t grpid;
    uint8_t state;
    std::vector<uint32_t> nsids;
  };
  std::vector<AnaGroup> AnaGroups() const;
};

// A command's completion: the status (OK, kNvmeError, or why it never completed) and the
// CQE (zero when no completion arrived).
using CommandCallback = Callback<void(const Status&, const spec::Cqe&)>;
using DoneCallback = std::function<void(const Status&)>;

struct DiscoveryLog {
  uint64_t genctr = 0;
  uint64_t numrec = 0;
  uint16_t recfmt = 0;
  std::vector<spec::DiscoveryLogEntry> entries;
};
using DiscoveryCallback = std::function<void(const Status&, const DiscoveryLog&)>;

namespace internal {
class HostQueue;
}

class Controller {
 public:
  explicit Controller(EventLoop* loop);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Sets the association up; cb runs once with the outcome. On failure everything is
  // closed again (the Controller may be connected anew).
  void Connect(const ConnectOptions& opts, DoneCallback cb);
  void Close();
  // The clean close (see above); cb runs once, with OK, when every queue pair is closed.
  void Disconnect(DoneCallback cb);
  bool disconnecting() const { return disconnect_cb_ != nullptr; }
  // Called for each asynchronous event (ConnectOptions::async_events), on the loop.
  void SetEventCallback(std::function<void(const AsyncEvent&)> cb) { on_event_ = std::move(cb); }
  // Called once when a connected association fails (not for Close() or Disconnect()).
  void SetFailureCallback(std::function<void(const Status&)> cb) { on_failure_ = std::move(cb); }

  EventLoop* loop() const { return loop_; }
  bool connected() const { return connected_ && !failed_; }
  bool failed() const { return failed_; }
  const Status& failure() const { return failure_; }
  const ConnectOptions& options() const { return opts_; }
  bool is_discovery() const { return discovery_; }
  uint16_t cntlid() const { return cntlid_; }
  uint64_t cap() const { return cap_; }
  uint32_t kato_ms() const { return kato_ms_; }
  const spec::IdentifyController& identify() const { return *id_; }
  // I/O queues are qid 1..io_queue_count().
  uint32_t io_queue_count() const;
  // The most commands in flight on a queue (further submissions wait), 0 for no queue.
  uint32_t queue_depth(uint16_t qid) const;
  // Commands of a queue now in flight / waiting for a free CID.
  uint32_t queue_in_flight(uint16_t qid) const;
  uint32_t queue_waiting(uint16_t qid) const;
  // What the connections negotiated (ICReq/ICResp): header and data digests.
  bool header_digest() const;
  bool data_digest() const;
  // The largest data transfer of one command: MDTS and the transport's limit.
  uint64_t max_transfer_size() const { return max_xfer_; }

  // Any command. The CID is assigned here; the SGL is filled by the transport.
  Status Submit(uint16_t qid, const spec::Sqe& sqe, CommandCallback cb);
  // A command with data: to_controller says which way it goes.
  Status Submit(uint16_t qid, const spec::Sqe& sqe, const MemDesc& mem, size_t len,
                bool to_controller, CommandCallback cb);

  // NVM commands (nlb is a count, not 0's based; len is nlb times the LBA data size).
  Status Read(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const MemDesc& mem,
              size_t len, CommandCallback cb);
  Status Write(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const MemDesc& mem,
               size_t len, CommandCallback cb);
  Status Flush(uint16_t qid, uint32_t nsid, CommandCallback cb);

  // Admin and Fabrics commands. Property Get returns the value in the CQE: PropertyValue.
  Status PropertyGet(uint32_t offset, bool eight_bytes, CommandCallback cb);
  Status PropertySet(uint32_t offset, bool eight_bytes, uint64_t value, CommandCallback cb);
  // buf: 4096 bytes.
  Status Identify(uint8_t cns, uint32_t nsid, void* buf, CommandCallback cb);
  Status GetLogPage(uint8_t lid, uint32_t nsid, uint64_t offset, void* buf, size_t len,
                    CommandCallback cb, uint8_t lsp = 0, bool rae = false);
  Status SetFeatures(uint8_t fid, uint32_t cdw11, CommandCallback cb);
  Status GetFeatures(uint8_t fid, uint32_t cdw11, CommandCallback cb);
  Status KeepAlive(CommandCallback cb);
  // The discovery log page: the header, then every entry, again while GENCTR changes.
  void GetDiscoveryLog(DiscoveryCallback cb);
  // Runs DH-HMAC-CHAP again on every queue (connected, with a host secret); cb gets the
  // first failure, which also fails the association.
  void Reauthenticate(DoneCallback cb);

 private:
  friend class internal::HostQueue;

  using Clock = EventLoop::Clock;

  void Fail(const Status& s);
  void Shutdown(const Status& s);
  void FinishConnect(const Status& s);
  bool Alive(uint64_t generation) const { return generation == generation_ && !failed_; }

  // The connection sequence, step by step.
  void OpenQueue(uint16_t qid);
  void OnQueueTransport(uint16_t qid, const Status& s, Connection conn);
  void OnQueueConnected(uint16_t qid, const Status& s, const spec::Cqe& cqe);
  void ReadCap();
  void EnableController();
  void PollReady();
  void IdentifyController();
  void SetQueueCount();
  void ConnectDone();

  // The clean close, step by step (disconnect.cc).
  void DisconnectDrain();
  void DisconnectQueues();
  void ShutdownController();
  void PollShutdown();
  void FinishDisconnect();

  // Asynchronous events (events.cc).
  void EnableEvents();
  void PostEventRequest();
  void OnEvent(const spec::Cqe& cqe);
  void DeliverEvent(const Status& read);

  // DH-HMAC-CHAP on one queue (auth.cc).
  void Authenticate(uint16_t qid, DoneCallback done);
  void AfterQueueConnected(uint16_t qid);

  void StartScan();
  void StartKeepAlive();
  void ScanTimeouts();
  void SendKeepAlive();

  EventLoop* loop_;
  ConnectOptions opts_;
  DoneCallback connect_cb_;
  std::function<void(const Status&)> on_failure_;
  std::function<void(const AsyncEvent&)> on_event_;
  std::unique_ptr<AsyncEvent> event_;  // the one being read
  std::vector<std::unique_ptr<internal::HostQueue>> queues_;  // [0] admin
  std::vector<std::unique_ptr<internal::HostQueue>> retired_;  // of an earlier association
  std::unique_ptr<spec::IdentifyController> id_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  uint64_t generation_ = 0;  // bumped by each Connect and Close, to drop stale callbacks

  bool connecting_ = false;
  bool connected_ = false;
  bool failed_ = false;
  Status failure_;
  bool discovery_ = false;
  uint16_t cntlid_ = 0;
  uint64_t cap_ = 0;
  uint32_t kato_ms_ = 0;
  uint32_t io_queues_wanted_ = 0;
  uint16_t io_entries_ = 0;
  uint64_t max_xfer_ = 0;
  Clock::time_point ready_deadline_{};
  std::chrono::milliseconds ready_poll_{1};
  std::chrono::milliseconds scan_period_{1000};

  EventLoop::TimerId ready_timer_;
  EventLoop::TimerId scan_timer_;
  EventLoop::TimerId kato_timer_;
  bool keepalive_in_flight_ = false;
  Clock::time_point keepalive_sent_{};

  std::unique_ptr<auth::HostAuthConfig> auth_;  // parsed from opts_ by Connect; null: none
  uint16_t auth_tid_ = 0;

  DoneCallback disconnect_cb_;
  EventLoop::TimerId disconnect_timer_;  // the whole clean close's deadline
  EventLoop::TimerId step_timer_;        // its next poll
  uint32_t disconnects_pending_ = 0;
  uint32_t cc_ = 0;  // as written by EnableController
};

// The value of a Property Get completion.
inline uint64_t PropertyValue(const spec::Cqe& cqe) {
  return static_cast<uint64_t>(cqe.cdw1) << 32 | cqe.cdw0;
}

// CAP and CC fields the host uses.
inline uint32_t CapMqes(uint64_t cap) { return static_cast<uint32_t>(cap & 0xffff); }
inline uint32_t CapTimeoutMs(uint64_t cap) { return static_cast<uint32_t>(cap >> 24 & 0xff) * 500; }
inline uint32_t CapMpsMin(uint64_t cap) { return static_cast<uint32_t>(cap >> 48 & 0xf); }
inline constexpr uint32_t MakeCc(bool en, uint32_t iosqes = 6, uint32_t iocqes = 4, uint32_t shn = 0) {
  return (en ? 1u : 0u) | (shn & 3u) << 14 | (iosqes & 0xfu) << 16 | (iocqes & 0xfu) << 20;
}

// The name the NVMe specification gives a status (SCT and SC, 15-bit status field as in
// spec::StatusOf). opc tells the command, for command-specific codes; fabrics says the
// command was a Fabrics command (opcode 7Fh) and fctype which.
std::string NvmeStatusName(uint16_t status, uint8_t opc = 0, bool admin = true,
                           uint8_t fctype = 0xff);
// "LBA Out of Range (SCT 0h, SC 80h, DNR)".
std::string NvmeStatusString(uint16_t status, uint8_t opc = 0, bool admin = true,
                             uint8_t fctype = 0xff);
// The Status a completion maps to: OK, or kNvmeError naming the command and the status.
Status CompletionStatus(const spec::Sqe& sqe, const spec::Cqe& cqe, bool admin);
// A short name of a command ("Read", "Identify", "Fabrics Connect").
const char* CommandName(const spec::Sqe& sqe, bool admin);

// Decodes a discovery log page (header plus numrec entries) from a buffer. Fails when the
// buffer is shorter than the header or than the entries the header announces.
Status DecodeDiscoveryLog(const void* buf, size_t len, DiscoveryLog* out);

// Fills the 1024-byte Connect data.
void BuildConnectData(spec::ConnectData* d, const std::array<uint8_t, 16>& hostid,
                      uint16_t cntlid, const std::string& subnqn, const std::string& hostnqn);

}  // namespace nvmf::host
