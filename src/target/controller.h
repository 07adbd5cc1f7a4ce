// Controller: the state of one association (dynamic controller model): registers,
// features, keep-alive, error log, statistics, and the queues that belong to it.
//
// Threads: created by the admin queue's Connect on the admin queue's loop. I/O queues on
// other loops read it (CC, the subsystem) and register themselves under its mutex;
// everything else (features, AER, keep-alive) is touched only on the admin queue's loop.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nvmf/event_loop.h"
#include "nvmf/spec/admin.h"
#include "nvmf/spec/reservation.h"
#include "target/subsystem.h"

namespace nvmf::target {

class QueueHandler;

// Asynchronous event kinds this target raises (bits of Controller::events_*).
inline constexpr uint32_t kEventNamespaceChanged = 1u << 0;  // Notice, Namespace Attribute Changed
inline constexpr uint32_t kEventDiscoveryChanged = 1u << 1;  // Notice, Discovery Log Page Change
inline constexpr uint32_t kEventAnaChanged = 1u << 2;        // Notice, Asymmetric Namespace Access Change
inline constexpr uint32_t kEventReservation = 1u << 3;  // I/O command specific, Reservation Log Page Available
// ANATT: how long a group may stay in the change state.
inline constexpr uint8_t kAnaTransitionTimeS = 10;

struct QueueRef {
  std::weak_ptr<QueueHandler> handler;
  EventLoop* loop = nullptr;
};

class Controller {
 public:
  Controller(uint16_t id, const Subsystem* sub, std::string host)
      : cntlid(id), subsystem(sub), hostnqn(std::move(host)) {}

  const uint16_t cntlid;
  const Subsystem* const subsystem;
  const std::string hostnqn;
  std::array<uint8_t, 16> hostid{};  // from Connect; names the host in reservations

  std::atomic<uint32_t> cc{0};
  std::atomic<uint32_t> csts{0};
  std::atomic<bool> torn_down{false};

  // Admin loop only.
  uint32_t kato_ms = 0;
  uint32_t async_event_config = 0;
  // Asynchronous events (admin loop only). An event kind (kEvent*) is pending until an
  // Asynchronous Event Request takes it, then masked until the host reads its log page
  // without Retain Asynchronous Event, as the base specification asks.
  uint32_t events_pending = 0;
  uint32_t events_masked = 0;
  std::vector<uint32_t> changed_namespaces;  // the Changed Namespace List, at most 1024
  bool changed_namespaces_overflow = false;  // more changed: the log reports FFFFFFFFh
  // Reservation notifications (admin loop only): entries not yet read, oldest first (at
  // most kReservationLogEntries; the oldest go first, which the count's gap shows), the
  // count of the last entry made, and the notification mask by NSID (Set Features 82h;
  // FFFFFFFFh holds the one set for every namespace).
  static constexpr size_t kReservationLogEntries = 64;
  std::deque<spec::ResvNotificationLog> reservation_log;
  uint64_t reservation_log_count = 0;
  std::map<uint32_t, uint32_t> reservation_masks;
  // Any loop: I/O queues read it for every write (0: every write is made durable).
  std::atomic<uint32_t> volatile_write_cache{1};
  uint32_t arbitration = 0;
  uint32_t power_management = 0;
  uint32_t temperature_threshold = 0x0157;  // 343 K
  // I/O queues granted by Set Features Number of Queues (1-based; 0: not set, and a host
  // that never sets it may have as many as the controller reports, as Linux and SPDK
  // targets allow). Any loop.
  std::atomic<uint16_t> io_queues{0};

  // Counters for the SMART log (any loop).
  std::atomic<uint64_t> reads{0}, writes{0}, blocks_read{0}, blocks_written{0};

  // Error log: newest first, at most kErrorLogEntries (any loop, under mu).
  static constexpr size_t kErrorLogEntries = 64;
  void RecordError(uint16_t sqid, uint16_t cid, uint16_t status, uint32_t nsid, uint64_t lba);
  std::vector<spec::ErrorLogEntry> ErrorLog();

  // I/O queues, by QID (under mu). Register fails for a taken QID, one above limit, or
  // a controller being torn down (BeginTearDown), so that no queue attaches to it late.
  bool RegisterIoQueue(uint16_t qid, uint16_t limit, QueueRef ref);
  // Marks the controller torn down; false if it already was. Under mu, so that it orders
  // with RegisterIoQueue.
  bool BeginTearDown();
  void UnregisterIoQueue(uint16_t qid);
  std::vector<QueueRef> TakeIoQueues();  // for teardown and reset
  size_t io_queue_count();
  // The admin queue, for the control thread to post events to (under mu).
  void SetAdminQueue(QueueRef ref);
  QueueRef AdminQueue();

 private:
  std::mutex mu_;
  QueueRef admin_;
  std::map<uint16_t, QueueRef> io_;
  std::vector<spec::ErrorLogEntry> errors_;
  uint64_t error_count_ = 0;
};

// All live controllers, by CNTLID. Thread-safe.
class ControllerRegistry {
 public:
  std::shared_ptr<Controller> Create(const Subsystem* sub, const std::string& hostnqn);
  std::shared_ptr<Controller> Find(uint16_t cntlid);
  void Remove(uint16_t cntlid);
  size_t size();
  size_t CountHost(const std::string& hostnqn);
  // Every live controller (of sub, when given).
  std::vector<std::shared_ptr<Controller>> All(const Subsystem* sub = nullptr);

 private:
  std::mutex mu_;
  std::map<uint16_t, std::shared_ptr<Controller>> ctrls_;
  uint16_t next_ = 1;
};

}  // namespace nvmf::target
