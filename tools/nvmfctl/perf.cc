// nvmfctl perf: keeps --qd commands in flight on each of --queues I/O queues for --time
// seconds, then reports IOPS, MiB/s and latency percentiles. Latencies go into fixed-size
// histograms; nothing is allocated per I/O.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "common.h"

namespace nvmfctl {
namespace host = nvmf::host;
namespace spec = nvmf::spec;

namespace {

using Clock = std::chrono::steady_clock;

struct PerfFlags {
  ConnFlags conn;
  std::string rw = "randread";
  uint32_t rwmixread = 50;
  std::string bs = "4k";
  uint32_t qd = 32;
  double time = 10;
  double warmup = 0;    // seconds run before measuring, not counted
  uint32_t queues = 0;  // 0: -i
  uint32_t associations = 1;  // controllers, each with the queues, on the one event loop
  uint32_t nsid = 1;
  std::string size;     // default: the whole namespace
};

struct Job;

struct Slot {
  Job* job;
  IoSession* ctrl;
  uint8_t* buf;
  uint16_t qid;
  bool read;
  Clock::time_point t0;
};

struct Side {
  uint64_t ios = 0;
  uint64_t bytes = 0;
  host::LatencyHistogram lat;
};

struct Job {
  IoSession* ctrl;
  nvmf::EventLoop* loop;
  uint32_t nsid;
  uint32_t lba_size;
  uint32_t io_blocks;
  uint64_t units;       // bs-sized units in the range
  bool random;
  int read_pct;         // 100: reads only, 0: writes only
  Clock::time_point deadline;
  Clock::time_point started;
  bool stopping = false;
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  uint64_t cursor = 0;
  uint32_t outstanding = 0;
  uint64_t completed = 0;
  uint64_t errors = 0;
  Status first_error;
  Side reads, writes;
  // Progress reporting.
  uint64_t last_ios = 0, last_bytes = 0;
  int seconds = 0;
  nvmf::EventLoop::TimerId progress;

  uint64_t Next() {  // xorshift64*
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
  }

  void Issue(Slot* s) {
    const uint64_t unit = random ? Next() % units : cursor++ % units;
    const bool read = read_pct >= 100 ? true : read_pct <= 0 ? false : static_cast<int>(Next() % 100) < read_pct;
    s->read = read;
    const uint64_t lba = unit * io_blocks;
    const size_t len = static_cast<size_t>(io_blocks) * lba_size;
    Job* self = this;
    host::CommandCallback cb = [self, s](const Status& st, const spec::Cqe&) { self->Done(s, st); };
    s->t0 = Clock::now();
    nvmf::MemDesc mem = nvmf::MemDesc::Buffer(s->buf, len);
    Status st = read ? s->ctrl->Read(s->qid, nsid, lba, io_blocks, mem, len, cb)
                     : s->ctrl->Write(s->qid, nsid, lba, io_blocks, mem, len, cb);
    if (!st.ok()) {
      Error(st);
      return;
    }
    outstanding++;
  }

  void Error(const Status& st) {
    errors++;
    if (first_error.ok()) first_error = st;
    stopping = true;
  }

  void Done(Slot* s, const Status& st) {
    const Clock::time_point now = Clock::now();
    outstanding--;
    completed++;
    if (!st.ok()) {
      Error(st);
      return;
    }
    Side& side = s->read ? reads : writes;
    side.ios++;
    side.bytes += static_cast<uint64_t>(io_blocks) * lba_size;
    side.lat.Record(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - s->t0).count()));
    if (!stopping && now < deadline) Issue(s);
  }

  // The end of the warm-up: what came before is not counted.
  void StartMeasuring() {
    reads = Side{};
    writes = Side{};
    last_ios = last_bytes = 0;
    started = Clock::now();
  }

  void Progress() {
    seconds++;
    const uint64_t ios = reads.ios + writes.ios;
    const uint64_t bytes = reads.bytes + writes.bytes;
    std::fprintf(stderr, "[%3ds] %10.0f IOPS %10.2f MiB/s  (%llu I/Os, %u in flight)\n", seconds,
                 static_cast<double>(ios - last_ios), (bytes - last_bytes) / 1048576.0,
                 static_cast<unsigned long long>(ios), outstanding);
    last_ios = ios;
    last_bytes = bytes;
    if (stopping || Clock::now() >= deadline) {
      progress = {};
      return;
    }
    Job* self = this;
    progress = loop->AddTimer(std::chrono::seconds(1), [self] { self->Progress(); });
  }
};

Json SideJson(const Side& s, double secs) {
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  return {{"ios", s.ios},
          {"bytes", s.bytes},
          {"iops", secs > 0 ? s.ios / secs : 0},
          {"mib_s", secs > 0 ? s.bytes / 1048576.0 / secs : 0},
          {"lat_us",
           {{"mean", s.lat.mean() / 1000.0},
            {"min", us(s.lat.min())},
            {"p50", us(s.lat.Percentile(0.50))},
            {"p90", us(s.lat.Percentile(0.90))},
            {"p99", us(s.lat.Percentile(0.99))},
            {"p99.9", us(s.lat.Percentile(0.999))},
            {"max", us(s.lat.max())}}}};
}

void PrintSide(const char* name, const Side& s, double secs) {
  if (s.ios == 0) return;
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  fmt::print("{:<6} {:>10.0f} IOPS {:>9.2f} MiB/s  {} I/Os\n", name, s.ios / secs,
             s.bytes / 1048576.0 / secs, s.ios);
  fmt::print("       latency (us): mean {:.1f}  p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}\n",
             s.lat.mean() / 1000.0, us(s.lat.Percentile(0.50)), us(s.lat.Percentile(0.90)),
             us(s.lat.Percentile(0.99)), us(s.lat.Percentile(0.999)), us(s.lat.max()));
}

int RunPerf(const PerfFlags& f) {
  bool random;
  int read_pct;
  if (f.rw == "read") {
    random = false, read_pct = 100;
  } else if (f.rw == "write") {
    random = false, read_pct = 0;
  } else if (f.rw == "randread") {
    random = true, read_pct = 100;
  } else if (f.rw == "randwrite") {
    random = true, read_pct = 0;
  } else if (f.rw == "randrw") {
    random = true, read_pct = static_cast<int>(f.rwmixread);
  } else if (f.rw == "rw" || f.rw == "readwrite") {
    random = false, read_pct = static_cast<int>(f.rwmixread);
  } else {
    Usage("--rw must be read, write, randread, randwrite, randrw or rw");
  }
  if (f.rwmixread > 100) Usage("--rwmixread is a percentage (0..100)");
  const uint64_t bs = SizeFlag("--bs", f.bs);
  if (f.time <= 0) Usage("--time must be positive");
  const uint32_t queues = f.queues != 0 ? f.queues : f.conn.nr_io_queues;
  auto session = Connect(f.conn, false, queues, f.qd + 1);
  NamespaceInfo ns = GetNamespace(*session->ctrl, f.nsid);
  if (!f.conn.paths.empty() && f.associations > 1) Usage("--path and --associations do not go together");
  std::unique_ptr<IoSession> rc = ConnectIo(*session, f.conn, session->ctrl->async().io_queue_count());
  host::Controller& ctrl = rc->first();
  const bool header_digest = ctrl.header_digest(), data_digest = ctrl.data_digest();
  const uint64_t ns_bytes = ns.blocks * ns.block_size;
  uint64_t range = f.size.empty() ? ns_bytes : SizeFlag("--size", f.size);
  if (range > ns_bytes) Usage(fmt::format("--size exceeds the namespace ({})", host::FormatSize(ns_bytes)));
  if (bs % ns.block_size != 0) Usage(fmt::format("--bs must be a multiple of the LBA size ({} bytes)", ns.block_size));
  if (bs > ctrl.max_transfer_size()) {
    Usage(fmt::format("--bs {} exceeds the largest transfer ({})", host::FormatSize(bs),
                      host::FormatSize(ctrl.max_transfer_size())));
  }
  if (bs / ns.block_size > 65536) Usage("--bs exceeds 65536 blocks");
  if (range < bs) Usage("--size is smaller than --bs");
  const uint32_t got_queues = rc->io_queue_count();
  if (got_queues < queues && !f.conn.json) {
    std::fprintf(stderr, "nvmfctl: the controller granted %u of %u I/O queues\n", got_queues, queues);
  }
  // More associations (controllers) of the same host on the same loop: the many-connection
  // shape of a gateway. Each gets as many I/O queues as the first.
  std::vector<std::unique_ptr<IoSession>> more;
  std::vector<IoSession*> ctrls{rc.get()};
  for (uint32_t a = 1; a < f.associations; a++) {
    more.push_back(ConnectIoAssociation(*session, f.conn, got_queues, fmt::format("association {}: ", a + 1)));
    ctrls.push_back(more.back().get());
  }

  // Buffers for every slot, filled once (writes send whatever is there).
  const size_t nslots = static_cast<size_t>(f.qd) * got_queues * ctrls.size();
  std::unique_ptr<uint8_t, decltype(&std::free)> mem(
      static_cast<uint8_t*>(std::aligned_alloc(4096, nslots * ((bs + 4095) / 4096 * 4096))), &std::free);
  if (!mem) Fail("cannot allocate the I/O buffers");
  const size_t stride = (bs + 4095) / 4096 * 4096;
  host::FillPattern(mem.get(), nslots * stride, 0, ns.block_size, 0x5eed);

  Job job{rc.get(), session->loop.get(), f.nsid, ns.block_size, static_cast<uint32_t>(bs / ns.block_size),
          range / bs, random, read_pct};
  job.rng ^= std::random_device{}();
  std::vector<Slot> slots(nslots);
  for (size_t i = 0; i < nslots; i++) {
    slots[i] = Slot{&job, ctrls[(i / got_queues) % ctrls.size()], mem.get() + i * stride,
                    static_cast<uint16_t>(1 + i % got_queues), true, {}};
  }
  if (!f.conn.json) {
    std::fprintf(stderr, "perf: %s, bs %s, qd %u x %u queue%s, %.1f s, namespace %u, range %s%s%s%s\n",
                 f.rw.c_str(), host::FormatSize(bs).c_str(), f.qd, got_queues, got_queues == 1 ? "" : "s",
                 f.time, f.nsid, host::FormatSize(range).c_str(),
                 read_pct > 0 && read_pct < 100 ? fmt::format(", {}% reads", read_pct).c_str() : "",
                 header_digest ? ", header digest" : "", data_digest ? ", data digest" : "");
  }
  auto secs_of = [](double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };
  job.started = Clock::now();
  job.deadline = job.started + secs_of(f.warmup + f.time);
  Job* jp = &job;
  nvmf::EventLoop::TimerId warmup_timer;
  if (f.warmup > 0) warmup_timer = job.loop->AddTimer(secs_of(f.warmup), [jp] { jp->StartMeasuring(); });
  if (!f.conn.json) job.progress = job.loop->AddTimer(std::chrono::seconds(1), [jp] { jp->Progress(); });
  for (Slot& s : slots) job.Issue(&s);
  // Run until the time is up and every command is back. The controller times commands out
  // itself; the backstop only catches a loop with no progress.
  const auto stall = StallLimit(*session, f.conn);
  while (job.outstanding > 0) {
    const uint64_t before = job.completed;
    if (!job.loop->RunUntil([jp, before] { return jp->outstanding == 0 || jp->completed != before; }, stall)) {
      for (IoSession* c : ctrls) c->Close();
      if (job.first_error.ok()) job.first_error = Status::TimedOut("no progress");
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - job.started).count();
  job.loop->CancelTimer(job.progress);
  job.loop->CancelTimer(warmup_timer);

  uint64_t reconnects = 0, resubmitted = 0, failovers = 0;
  std::string summary;
  for (IoSession* c : ctrls) {
    reconnects += c->reconnects();
    resubmitted += c->resubmitted();
    failovers += c->failovers();
    if (const std::string sum = IoSummary(*c); !sum.empty()) summary += (summary.empty() ? "" : "; ") + sum;
  }
  for (auto it = ctrls.rbegin(); it != ctrls.rend(); ++it) CloseIo(*session, **it);

  Side total;
  total.ios = job.reads.ios + job.writes.ios;
  total.bytes = job.reads.bytes + job.writes.bytes;
  total.lat.Merge(job.reads.lat);
  total.lat.Merge(job.writes.lat);
  if (f.conn.json) {
    Json j = {{"rw", f.rw},
              {"bs", bs},
              {"qd", f.qd},
              {"queues", got_queues},
              {"associations", ctrls.size()},
              {"nsid", f.nsid},
              {"range_bytes", range},
              {"header_digest", header_digest},
              {"data_digest", data_digest},
              {"time_s", secs},
              {"errors", job.errors},
              {"reconnects", reconnects},
              {"resubmitted", resubmitted},
              {"failovers", failovers},
              {"error", job.first_error.ok() ? Json(nullptr) : Json(job.first_error.ToString())}};
    if (job.reads.ios > 0) j["read"] = SideJson(job.reads, secs);
    if (job.writes.ios > 0) j["write"] = SideJson(job.writes, secs);
    j["total"] = SideJson(total, secs);
    PrintJson(j);
  } else {
    fmt::print("{} for {:.2f} s: bs {}, qd {} x {} queue{}\n", f.rw, secs, host::FormatSize(bs), f.qd,
               got_queues, got_queues == 1 ? "" : "s");
    if (job.reads.ios > 0 && job.writes.ios > 0) {
      PrintSide("read", job.reads, secs);
      PrintSide("write", job.writes, secs);
    }
    PrintSide("total", total, secs);
    if (!summary.empty()) fmt::print("{}\n", summary);
  }
  if (!job.first_error.ok()) Fail(fmt::format("perf stopped after {} errors", job.errors), job.first_error);
  return kExitOk;
}

}  // namespace

void RegisterPerf(CLI::App& app, Runner* run) {
  static PerfFlags f_storage;  // lives as long as the program
  auto* f = &f_storage;
  CLI::App* sub = app.add_subcommand("perf", "measure IOPS, throughput and latency");
  AddConnFlags(sub, &f->conn);
  sub->add_option("--rw", f->rw, "read, write, randread, randwrite, randrw or rw")->capture_default_str();
  sub->add_option("--rwmixread", f->rwmixread, "percentage of reads for randrw and rw")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  sub->add_option("--bs", f->bs, "bytes per command")->capture_default_str();
  sub->add_option("--qd", f->qd, "commands in flight per I/O queue")
      ->check(CLI::Range(1, 65534))
      ->capture_default_str();
  sub->add_option("--time", f->time, "seconds to run")->capture_default_str();
  sub->add_option("--warmup", f->warmup, "seconds to run first without counting (as spdk_nvme_perf -a)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  sub->add_option("--queues", f->queues, "I/O queues to use (default: -i)")->check(CLI::Range(1, 1024));
  sub->add_option("--associations", f->associations,
                  "controllers to open, each with the I/O queues, all on one event loop")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub->add_option("--ns,--namespace-id", f->nsid, "namespace ID")->capture_default_str();
  sub->add_option("--size", f->size, "byte range of the namespace to use (default: all of it)");
  sub->callback([f, run] { *run = [f] { return RunPerf(*f); }; });
}

}  // namespace nvmfctl
