// Target: event loops on their threads, listeners, and the queue handlers of each loop.
#include "nvmf/target.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "target/context.h"
#include "target/queue.h"
#include "target/reconfigure.h"

namespace nvmf::target {

std::string Escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char ch : s) {
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
      out.push_back(static_cast<char>(ch));
    } else {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", ch);
      out += hex;
    }
  }
  return out;
}

void TargetContext::Log(const std::string& line) const {
  const std::string safe = Escape(line);
  if (config.log) return config.log(safe);
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "nvmf-target: %s\n", safe.c_str());
}

void TargetContext::LogLimit(const std::string& limit, const std::string& line) const {
  static std::mutex mu;
  static std::map<std::string, std::chrono::steady_clock::time_point> last;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = last.find(limit);
    if (it != last.end() && now - it->second < std::chrono::seconds(1)) return;
    last[limit] = now;
  }
  Log("limit " + limit + ": " + line);
}

const uint8_t* ZeroRegion(size_t n) {
  static const uint8_t* region = [] {
    void* p = mmap(nullptr, kMaxZeroRegion, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? nullptr : static_cast<const uint8_t*>(p);
  }();
  return n <= kMaxZeroRegion ? region : nullptr;
}

namespace {

// One event loop, its thread, and the queues it serves.
struct Worker {
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<BufferPool> buffers;  // loop thread only
  std::thread thread;
  std::map<QueueHandler*, std::shared_ptr<QueueHandler>> queues;  // loop thread only
};

class TargetImpl final : public Target {
 public:
  ~TargetImpl() override { Stop(); }

  Status Init(const TargetConfig& config) {
    tc_.config = config;
    if (config.threads < 1 || config.threads > 64) {
      return Status::InvalidArgument("threads must be between 1 and 64");
    }
    if (config.max_queue_size < 2 || config.max_io_queues < 1) {
      return Status::InvalidArgument("queue size must be at least 2 and I/O queues at least 1");
    }
    if (config.ports.empty()) return Status::InvalidArgument("no port to listen on");
    if (config.mdts < 1 || (4096ull << config.mdts) > kMaxZeroRegion) {
      return Status::InvalidArgument("mdts must be between 1 and 14 (8 KiB to 64 MiB per command)");
    }
    // Every loop must fit a few of the largest commands, or one could wait forever.
    const uint64_t per_loop = config.max_buffer_memory / static_cast<uint64_t>(config.threads);
    if (per_loop < 2 * tc_.MaxDataBytes() || config.max_queue_buffer < tc_.MaxDataBytes()) {
      return Status::InvalidArgument(
          "buffer memory too small: each thread needs room for two commands of MDTS (" +
          std::to_string(tc_.MaxDataBytes() >> 10) + " KiB) and a queue for one");
    }
    if (config.max_connections < 1) return Status::InvalidArgument("max connections must be at least 1");
    Status s = BuildSubsystems(config, &tc_.subsystems);
    if (!s.ok()) return s;
    s = BuildHostAuth(config, &tc_.host_auth);
    if (!s.ok()) return s;
    for (const PortConfig& p : config.ports) {
      for (const std::string& nqn : p.subsystems) {
        if (tc_.FindSubsystem(nqn) == nullptr) {
          return Status::InvalidArgument("port " + std::to_string(p.portid) + " names unknown subsystem " + nqn);
        }
      }
    }
    for (int i = 0; i < config.threads; i++) {
      auto w = std::make_unique<Worker>();
      w->loop = std::make_unique<EventLoop>(config.mode);
      w->buffers = std::make_unique<BufferPool>(per_loop);
      workers_.push_back(std::move(w));
    }
    // Listeners live on the first loop; they are made before its thread starts, so that
    // a port in use is reported by Start.
    ListenParams lp;
    lp.max_icd = config.in_capsule_data;
    lp.max_transfer = tc_.MaxDataBytes();
    lp.max_queue_size = config.max_queue_size;
    lp.maxh2cdata = config.maxh2cdata;
    lp.c2h_success = config.c2h_success;
    lp.keepalive_s = config.tcp_keepalive_s;
    lp.log = [this](const std::string& line) { tc_.Log(line); };
    lp.admit = [this] {
      if (connections_.load() < tc_.config.max_connections) return true;
      tc_.LogLimit("connections", std::to_string(tc_.config.max_connections) +
                                      " connections are open; a new one was refused");
      return false;
    };
    lp_ = lp;
    for (const PortConfig& p : config.ports) {
      s = Listen(p);
      if (!s.ok()) return s;
    }
    for (const auto& sub : tc_.subsystems) {
      if (sub->discovery) continue;
      if (!LooksLikeNqn(sub->nqn)) {
        tc_.Log("warning: subsystem name '" + sub->nqn +
                "' is not an NQN (nqn.yyyy-mm.reverse-domain:name); serving it anyway");
      }
      tc_.Log("subsystem " + DescribeSubsystem(*sub));
    }
    for (auto& w : workers_) {
      EventLoop* loop = w->loop.get();
      w->thread = std::thread([loop] { loop->Run(); });
    }
    return Status::OK();
  }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    // Each loop closes its queues and runs on until their requests in flight have finished
    // (for at most 5 s): backend I/O may only complete on the loop's own thread (a file's
    // io_uring belongs to it, and goes with it).
    const auto deadline = EventLoop::Clock::now() + std::chrono::seconds(5);
    for (auto& w : workers_) {
      Worker* wp = w.get();
      bool first = w == workers_.front();
      wp->loop->Post([this, wp, first, deadline] {
        if (first) listeners_.clear();
        auto queues = wp->queues;  // Close may release handlers
        for (auto& [ptr, q] : queues) q->Close("target stopping");
        StopWhenDrained(wp, deadline);
      });
    }
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
    // The loop threads are gone: finish the requests still in flight (backend I/O) here,
    // so that no handler is destroyed under a callback that still points at it.
    for (auto& w : workers_) {
      Worker* wp = w.get();
      wp->loop->RunUntil([wp] { return wp->queues.empty(); }, std::chrono::seconds(5));
      wp->queues.clear();
    }
  }

  // On wp's loop: stops it once its queues have been released, or at the deadline.
  static void StopWhenDrained(Worker* wp, EventLoop::Clock::time_point deadline) {
    if (wp->queues.empty() || EventLoop::Clock::now() >= deadline) {
      wp->loop->Stop();
      return;
    }
    auto queues = wp->queues;  // one handed over since (Close is idempotent)
    for (auto& [ptr, q] : queues) q->Close("target stopping");
    wp->loop->AddTimer(std::chrono::milliseconds(1), [wp, deadline] { StopWhenDrained(wp, deadline); });
  }

  std::vector<uint16_t> ports() const override {
    std::vector<uint16_t> v;
    for (const BoundPort& p : tc_.Ports()) v.push_back(p.port);
    return v;
  }
  size_t connections() const override { return connections_.load(); }
  size_t controllers() const override {
    return const_cast<ControllerRegistry&>(tc_.controllers).size();
  }

  Status AddSubsystem(const SubsystemConfig& subsystem) override {
    std::lock_guard<std::mutex> lock(change_mu_);
    return target::AddSubsystem(&tc_, subsystem);
  }
  Status RemoveSubsystem(const std::string& subnqn) override {
    std::lock_guard<std::mutex> lock(change_mu_);
    return target::RemoveSubsystem(&tc_, subnqn);
  }
  Status AddNamespace(const std::string& subnqn, const NamespaceConfig& ns, uint32_t* nsid) override {
    std::lock_guard<std::mutex> lock(change_mu_);
    return target::AddNamespace(&tc_, subnqn, ns, nsid);
  }
  Status RemoveNamespace(const std::string& subnqn, uint32_t nsid) override {
    std::lock_guard<std::mutex> lock(change_mu_);
    return target::RemoveNamespace(&tc_, subnqn, nsid);
  }
  Status ResizeNamespace(const std::string& subnqn, uint32_t nsid, uint64_t bytes) override {
    std::lock_guard<std::mutex> lock(change_mu_);
    return target::ResizeNamespace(&tc_, subnqn, nsid, bytes);
  }
  Status AddHost(const std::string& subnqn, const std::string& hostnqn) override {
    std::lock_guard<std::mutex> lock(change_mu_);
    return target::AddHost(&tc_, subnqn, hostnqn);
  }
  Status RemoveHost(const std::string& subnqn, const std::string& hostnqn) override {
    std::lock_guard<std::mutex> lock(change_mu_);
    return target::RemoveHost(&tc_, subnqn, hostnqn);
  }
  Status SetAllowAnyHost(const std::string& subnqn, bool allow) override {
    std::lock_guard<std::mutex> lock(change_mu_);
    return target::SetAllowAnyHost(&tc_, subnqn, allow);
  }
  Status AddListener(const PortConfig& port, uint16_t* bound) override {
    std::lock_guard<std::mutex> lock(change_mu_);
    for (const std::string& nqn : port.subsystems) {
      if (tc_.FindSubsystem(nqn) == nullptr) return Status::NotFound("no subsystem " + Escape(nqn));
    }
    Status s = OnLoop(workers_[0].get(), [this, &port] { return Listen(port); });
    if (!s.ok()) return s;
    for (const BoundPort& bp : tc_.Ports()) {
      if (bp.config.portid == port.portid) *bound = bp.port;
    }
    tc_.Log("listening on port " + std::to_string(port.portid) + ": " + TransportTypeName(port.trtype) + " " +
            port.addr + ":" + std::to_string(*bound));
    DiscoveryChanged(&tc_, "");
    return Status::OK();
  }

  Status RemoveListener(uint16_t portid) override {
    std::lock_guard<std::mutex> lock(change_mu_);
    {
      std::lock_guard<std::mutex> plock(tc_.ports_mu);
      auto it = std::find_if(tc_.ports.begin(), tc_.ports.end(),
                             [portid](const BoundPort& bp) { return bp.config.portid == portid; });
      if (it == tc_.ports.end()) return Status::NotFound("no port " + std::to_string(portid));
      if (tc_.ports.size() == 1) {
        return Status::InvalidArgument("port " + std::to_string(portid) + " is the last one");
      }
      tc_.ports.erase(it);
    }
    Status s = OnLoop(workers_[0].get(), [this, portid] {
      listeners_.erase(portid);
      return Status::OK();
    });
    if (!s.ok()) return s;
    size_t closed = 0;
    for (auto& w : workers_) {
      Worker* wp = w.get();
      OnLoop(wp, [wp, portid, &closed] {
        auto queues = wp->queues;  // Close may release handlers
        for (auto& [ptr, q] : queues) {
          if (q->portid() != portid) continue;
          q->Close("port " + std::to_string(portid) + " removed");
          closed++;
        }
        return Status::OK();
      });
    }
    tc_.Log("port " + std::to_string(portid) + " removed; " + std::to_string(closed) +
            " connections through it closed");
    DiscoveryChanged(&tc_, "");
    return Status::OK();
  }

  Status SetAnaState(uint16_t portid, uint32_t ana_group, uint8_t state) override {
    std::lock_guard<std::mutex> lock(change_mu_);
    if (ana_group < 1 || ana_group > kMaxAnaGroups) {
      return Status::InvalidArgument("ANA group " + std::to_string(ana_group) + " outside 1.." +
                                     std::to_string(kMaxAnaGroups));
    }
    if (!ValidAnaState(state)) return Status::InvalidArgument("bad ANA state " + std::to_string(state));
    std::shared_ptr<PortState> ps;
    for (const BoundPort& bp : tc_.Ports()) {
      if (bp.config.portid == portid) ps = bp.state;
    }
    if (ps == nullptr) return Status::NotFound("no port " + std::to_string(portid));
    ps->ana[ana_group].store(state);
    tc_.ana_change_count.fetch_add(1);
    tc_.Log("port " + std::to_string(portid) + ": ANA group " + std::to_string(ana_group) + " now " +
            AnaStateName(state));
    for (const auto& c : tc_.controllers.All()) {
      QueueRef a = c->AdminQueue();
      if (a.loop == nullptr) continue;
      a.loop->Post([w = a.handler, portid] {
        if (auto q = w.lock(); q != nullptr && q->portid() == portid) q->AnaChanged();
      });
    }
    return Status::OK();
  }

  TargetConfig RunningConfig() const override {
    std::lock_guard<std::mutex> lock(change_mu_);
    return target::RunningConfig(tc_);
  }

 private:
  // Runs fn on w's loop and waits for it. Not from a loop thread; not after Stop.
  Status OnLoop(Worker* w, std::function<Status()> fn) {
    if (stopped_) return Status::Aborted("the target is stopping");
    std::promise<Status> done;
    w->loop->Post([&done, &fn] { done.set_value(fn()); });
    return done.get_future().get();
  }

  // Binds a port and adds it to the context; on the first loop's thread, or before it runs.
  // A port's secure channel: its requirement and a copy of the keys (the listener's loop
  // reads them; a reconfiguration makes new listeners).
  Status PortTls(const PortConfig& p, PortTlsConfig* out) {
    out->channel = p.tls;
    if (p.tls == SecureChannel::kNone) return Status::OK();
    const std::string where = "port " + std::to_string(p.portid) + ": ";
    if (tc_.config.tls_keys.empty()) {
      return Status::InvalidArgument(where + "TLS " + SecureChannelName(p.tls) +
                                     " needs a PSK for at least one host (--psk)");
    }
    if (!ValidTlsDerivation(tc_.config.tls_derivation)) {
      return Status::InvalidArgument("TLS PSK derivation must be nvme-cli or spec");
    }
    for (const auto& [host, key] : tc_.config.tls_keys) {
      Status s = CheckTlsKey(key);
      if (!s.ok()) return Status::InvalidArgument(where + "host " + host + ": " + s.message());
    }
    auto keys = std::make_shared<const std::map<std::string, std::string>>(tc_.config.tls_keys);
    out->key_for_host = [keys](const std::string& host, std::string* key) {
      auto it = keys->find(host);
      if (it == keys->end()) return false;
      *key = it->second;
      return true;
    };
    out->derivation = tc_.config.tls_derivation;
    return Status::OK();
  }

  Status Listen(const PortConfig& p) {
    if (listeners_.count(p.portid) != 0) {
      return Status::AlreadyExists("port " + std::to_string(p.portid) + " exists already");
    }
    for (const auto& [grp, state] : p.ana_states) {
      if (grp < 1 || grp > kMaxAnaGroups) {
        return Status::InvalidArgument("port " + std::to_string(p.portid) + ": ANA group " +
                                       std::to_string(grp) + " outside 1.." + std::to_string(kMaxAnaGroups));
      }
      if (!ValidAnaState(state)) {
        return Status::InvalidArgument("port " + std::to_string(p.portid) + ": bad ANA state " +
                                       std::to_string(state));
      }
    }
    auto state = std::make_shared<PortState>(p.portid);
    for (const auto& [grp, st] : p.ana_states) state->ana[grp].store(st);
    ListenParams lp = lp_;
    Status s = PortTls(p, &lp.tls);
    if (!s.ok()) return s;
    std::unique_ptr<TransportListener> l;
    TransportAddress addr{p.trtype, p.addr, std::to_string(p.port)};
    s = ListenTransport(workers_[0]->loop.get(), addr, lp,
                               [this, state](Connection c) { Accept(std::move(c), state); }, &l);
    if (!s.ok()) return s;
    BoundPort bp{p, l->port(), l->ControllerValues(), {}, state};
    l->FillDiscoveryEntry(&bp.entry);
    {
      std::lock_guard<std::mutex> lock(tc_.ports_mu);
      tc_.ports.push_back(bp);
    }
    listeners_[p.portid] = std::move(l);
    return Status::OK();
  }

  // On the first loop: hand the connection to the next loop in turn.
  void Accept(Connection conn, std::shared_ptr<PortState> port) {
    Worker* w = workers_[next_++ % workers_.size()].get();
    connections_++;
    w->loop->Post([this, w, conn, port] {
      auto q = std::make_shared<QueueHandler>(&tc_, w->loop.get(), w->buffers.get(), port,
                                              [this, w](QueueHandler* h) {
                                                w->queues.erase(h);
                                                connections_--;
                                              });
      Status s = q->Attach(conn);
      if (!s.ok()) {
        connections_--;
        tc_.Log("cannot serve a connection: " + s.ToString());
        return;
      }
      w->queues[q.get()] = q;
    });
  }

  TargetContext tc_;
  mutable std::mutex change_mu_;  // one change at a time
  std::vector<std::unique_ptr<Worker>> workers_;
  ListenParams lp_;
  std::map<uint16_t, std::unique_ptr<TransportListener>> listeners_;  // by portid; first loop
  size_t next_ = 0;
  bool stopped_ = false;
  std::atomic<uint32_t> connections_{0};  // handed to a loop and not yet released
};

}  // namespace

Status Target::Start(const TargetConfig& config, std::unique_ptr<Target>* out) {
  auto t = std::make_unique<TargetImpl>();
  Status s = t->Init(config);
  if (!s.ok()) return s;
  *out = std::move(t);
  return Status::OK();
}

}  // namespace nvmf::target
