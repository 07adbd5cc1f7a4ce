// MultipathController: one subsystem reached through several addresses (paths), with
// ANA-aware path choice and failover.
//
// Each path is a ResilientController (it reconnects on its own, with the reconnect
// options, and fails its waiting commands at once so that they can move). A command goes
// to the first live path whose ANA state for its namespace is optimized, else to one that
// is non-optimized. When a path answers with a path-related status (SCT 3h: ANA
// inaccessible, persistent loss, transition; the path's ANA state is then re-read) or
// loses its connection, the command moves to another path; when no path can take it, it
// waits (checked every 100 ms, and at once on a path's ANA change) until one can, or
// fails with Status::IoError once ctrl_loss_tmo has passed since it started waiting
// (never, with a negative ctrl_loss_tmo). ANA states come from each path's ANA log page:
// read at connect, on each ANA Change event, and after a path-related status.
//
// Threads, callbacks and the data path: as host::Controller. Commands are submitted again
// only after a path failure, never after another NVMe status.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nvmf/record_pool.h"
#include "nvmf/host_resilient.h"

namespace nvmf::host {

class MultipathController {
 public:
  // paths: one ConnectOptions per address (the same subsystem and host).
  MultipathController(EventLoop* loop, std::vector<ConnectOptions> paths, const ReconnectOptions& ropts);
  ~MultipathController();
  MultipathController(const MultipathController&) = delete;
  MultipathController& operator=(const MultipathController&) = delete;

  // Connects every path; OK when at least one did (the others keep trying).
  void Connect(DoneCallback cb);
  Status Read(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const MemDesc& mem, size_t len,
              CommandCallback cb);
  Status Write(uint16_t qid, uint32_t nsid, uint64_t slba, uint32_t nlb, const MemDesc& mem, size_t len,
               CommandCallback cb);
  // Closes every path cleanly; waiting commands fail with Status::Aborted.
  void Disconnect(DoneCallback cb);

  size_t path_count() const { return paths_.size(); }
  bool path_live(size_t i) const;
  // The ANA state (spec::AnaState) the path last reported for the namespace; 0 unknown.
  uint8_t path_ana(size_t i, uint32_t nsid) const;
  // Commands sent per path, and how many moved to another path.
  uint64_t path_commands(size_t i) const { return paths_[i]->commands; }
  uint64_t failovers() const { return failovers_; }
  uint32_t io_queue_count() const;
  ResilientController& path(size_t i) { return *paths_[i]->rc; }
  void SetEventCallback(std::function<void(const std::string&)> cb) { on_event_ = std::move(cb); }

 private:
  struct Path {
    std::unique_ptr<ResilientController> rc;
    std::map<uint32_t, uint8_t> ana;  // nsid -> state
    std::vector<uint8_t> ana_log;
    bool reading_ana = false;
    uint64_t commands = 0;
  };
  struct Cmd {
    MultipathController* owner = nullptr;
    Cmd* next = nullptr;
    uint16_t qid = 0;
    uint32_t nsid = 0;
    spec::Sqe sqe{};
    MemDesc mem;
    size_t len = 0;
    bool to_controller = false;
    CommandCallback cb;
    int path = -1;
    EventLoop::Clock::time_point waiting_since{};
  };
  Status Submit(uint32_t nsid, uint16_t qid, const spec::Sqe& sqe, const MemDesc& mem, size_t len,
                bool to_controller, CommandCallback cb);
  int Choose(uint32_t nsid, int avoid) const;
  void Route(Cmd* c, int avoid);
  void OnDone(Cmd* c, const Status& s, const spec::Cqe& cqe);
  void Finish(Cmd* c, const Status& s, const spec::Cqe& cqe);
  void Wait(Cmd* c);
  void RetryWaiting();
  void ReadAna(size_t i);
  void FailWaiting(const Status& s);
  void Event(const std::string& what);

  EventLoop* loop_;
  ReconnectOptions ropts_;
  std::vector<std::unique_ptr<Path>> paths_;
  internal::RecordPool<Cmd, MultipathController> pool_{this};
  Cmd* waiting_head_ = nullptr;
  Cmd* waiting_tail_ = nullptr;
  EventLoop::TimerId retry_timer_;
  uint64_t failovers_ = 0;
  bool closing_ = false;
  std::function<void(const std::string&)> on_event_;
};

}  // namespace nvmf::host
