// A small synchronous wrapper of host::Controller for tools and tests: every call runs
// the event loop on the calling thread until its commands are done, then returns.
//
// Threads: use a SyncController from one thread (the one that created it, or the loop's).
// Keep-alive commands only go out while a call is running the loop; between calls the
// association is idle, so keep pauses shorter than the keep-alive timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "nvmf/event_loop.h"
#include "nvmf/host.h"

namespace nvmf::host {

class SyncController {
 public:
  SyncController();                           // owns an EventLoop (wait mode)
  explicit SyncController(EventLoop* loop);   // runs a loop it does not own
  ~SyncController();
  SyncController(const SyncController&) = delete;
  SyncController& operator=(const SyncController&) = delete;

  Status Connect(const ConnectOptions& opts);
  void Close();

  Controller& async() { return *ctrl_; }
  EventLoop& loop() { return *loop_; }
  const spec::IdentifyController& identify() const { return ctrl_->identify(); }
  // The CQE of the last command a call completed (zero when none arrived).
  const spec::Cqe& last_cqe() const { return last_cqe_; }

  Status IdentifyController(spec::IdentifyController* out);
  Status IdentifyNamespace(uint32_t nsid, spec::IdentifyNamespace* out);
  // Identify with any CNS into a 4096-byte buffer.
  Status Identify(uint8_t cns, uint32_t nsid, void* buf4096);
  // Every active namespace ID, in order (Identify CNS 02h, page after page).
  Status ActiveNamespaces(std::vector<uint32_t>* out);
  Status PropertyGet(uint32_t offset, bool eight_bytes, uint64_t* value);
  Status GetLogPage(uint8_t lid, uint32_t nsid, void* buf, size_t len, uint64_t offset = 0);
  Status GetFeatures(uint8_t fid, uint32_t cdw11, uint32_t* cdw0);
  Status Discovery(DiscoveryLog* out);

  // Block I/O into or from the caller's buffer (nlb * block_size bytes), split into
  // commands no larger than the controller takes, spread over the I/O queues.
  Status Read(uint32_t nsid, uint64_t slba, uint64_t nlb, uint32_t block_size, void* buf);
  Status Write(uint32_t nsid, uint64_t slba, uint64_t nlb, uint32_t block_size, const void* buf);
  Status Flush(uint32_t nsid);
  // Any command, with len bytes of data to (to_controller) or from buf (none when len is
  // 0); last_cqe() holds its completion afterwards.
  Status Command(uint16_t qid, const spec::Sqe& sqe, void* buf, size_t len, bool to_controller);

 private:
  // Runs the loop until *done; a backstop beyond the controller's own command timeouts.
  Status Wait(const bool* done, std::chrono::milliseconds limit);
  Status RunOne(const std::function<Status(CommandCallback)>& submit);
  Status BlockIo(bool write, uint32_t nsid, uint64_t slba, uint64_t nlb, uint32_t block_size,
                 uint8_t* buf);
  std::chrono::milliseconds Backstop() const;

  std::unique_ptr<EventLoop> own_loop_;
  EventLoop* loop_;
  std::unique_ptr<Controller> ctrl_;
  spec::Cqe last_cqe_{};
};

}  // namespace nvmf::host
