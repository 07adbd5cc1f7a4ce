// Subsystems and namespaces as the target serves them, changeable while it runs.
//
// Threads. The control thread (Target's reconfiguration methods) changes a subsystem;
// every event loop reads it. Namespaces are published as an immutable snapshot (a map of
// shared Namespace objects) that a change replaces whole, bumping epoch(): a queue keeps
// its own copy of the snapshot and takes a new one when the epoch moves, so the data path
// reads namespaces without a lock (one relaxed load per command). The allowed hosts are
// read at Connect only and sit under the subsystem's mutex.
//
// Removal. A namespace being removed is marked removed first; from then on Enter() fails
// (the command gets Invalid Namespace), and the subsystem keeps the Namespace, its backend
// open, until every command that entered before has left (Idle()). Only then does the
// control thread close the backend (ReapRemoved); the rest of the Namespace goes with the
// last snapshot that holds it. So a backend is never closed under a command, and a queue
// that is idle and never refreshes its snapshot cannot keep a removed backend open.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "nvmf/target.h"
#include "target/backend.h"
#include "target/reservation.h"

namespace nvmf::target {

// The largest namespace ID (Identify Controller NN and MNAN).
inline constexpr uint32_t kMaxNsid = 1024;

struct Namespace {
  uint32_t nsid = 0;
  std::unique_ptr<Backend> backend;
  uint32_t lba_shift = 9;
  std::atomic<uint64_t> blocks{0};  // changes with a resize
  uint8_t uuid[16] = {};
  uint8_t nguid[16] = {};
  NamespaceConfig config;  // as configured (what save writes back)
  // Persistent reservations: shared by every controller and loop (reservation.h). Set
  // before the namespace is published, never replaced.
  std::unique_ptr<Reservation> reservation;

  // A command on this namespace starts (false: the namespace is being removed, do not
  // touch it) and ends. Called on event loop threads; each thread counts in its own slot,
  // so commands on different loops share no cache line.
  bool Enter();
  void Exit();
  bool Idle() const;  // no command inside
  bool removed() const { return removed_.load(); }
  void MarkRemoved() { removed_.store(true); }

 private:
  static constexpr int kSlots = 64;  // at least the most loops a target runs
  struct alignas(64) Slot {
    std::atomic<int64_t> n{0};
  };
  Slot inside_[kSlots];
  std::atomic<bool> removed_{false};
};

using NamespaceMap = std::map<uint32_t, std::shared_ptr<Namespace>>;

class Subsystem;
Status BuildSubsystem(const SubsystemConfig& sc, std::unique_ptr<Subsystem>* out);

class Subsystem {
 public:
  std::string nqn;
  std::string serial;
  std::string model;
  bool discovery = false;

  // The current namespaces (any thread).
  std::shared_ptr<const NamespaceMap> Namespaces() const;
  // Moves on every change of the namespaces (any thread).
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }

  bool HostAllowed(const std::string& hostnqn) const;

  // Changes (the control thread, or before the target runs). Each either applies whole
  // or returns an error and changes nothing. *nsid in: wanted (0: the lowest free one),
  // out: given.
  Status AddNamespace(const NamespaceConfig& nc, uint32_t* nsid);
  Status RemoveNamespace(uint32_t nsid);
  Status ResizeNamespace(uint32_t nsid, uint64_t bytes);
  Status AddHost(const std::string& hostnqn);
  Status RemoveHost(const std::string& hostnqn);
  void SetAllowAnyHost(bool allow);
  // The subsystem as configuration (namespaces with the specs they were added with).
  SubsystemConfig Config() const;
  // Namespaces removed whose last commands have now left are closed; true when none is
  // left waiting.
  bool ReapRemoved();

 private:
  friend Status BuildSubsystem(const SubsystemConfig&, std::unique_ptr<Subsystem>*);

  mutable std::mutex mu_;
  std::shared_ptr<const NamespaceMap> ns_ = std::make_shared<const NamespaceMap>();
  std::vector<std::shared_ptr<Namespace>> removed_;  // until Idle()
  std::atomic<uint64_t> epoch_{1};
  bool allow_any_host_ = true;
  std::set<std::string> allowed_hosts_;
};

// Builds the subsystems from the configuration: opens backends, checks names and NSIDs.
// True for a name in the nqn.yyyy-mm.reverse-domain:name form.
bool LooksLikeNqn(const std::string& nqn);
Status BuildSubsystems(const TargetConfig& config,
                       std::vector<std::unique_ptr<Subsystem>>* out);
// One subsystem (not the discovery one).
Status BuildSubsystem(const SubsystemConfig& sc, std::unique_ptr<Subsystem>* out);

// Text for logs, e.g. "nqn...:  ns1 mem:64MiB".
std::string DescribeSubsystem(const Subsystem& s);

}  // namespace nvmf::target
