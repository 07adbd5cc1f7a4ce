// nvmfctl verify: writes a pattern derived from each LBA and a seed over a range, reads it
// back, and compares. Runs on the asynchronous host API with --qd commands in flight,
// spread over the I/O queues.
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <vector>

#include "common.h"

namespace nvmfctl {
namespace host = nvmf::host;
namespace spec = nvmf::spec;

namespace {

using Clock = std::chrono::steady_clock;

struct VerifyFlags {
  ConnFlags conn;
  uint32_t nsid = 1;
  std::string start = "0";
  std::string size = "64M";
  std::string bs = "128k";
  uint32_t qd = 16;
  uint64_t seed = 0;
  bool seed_set = false;
};

struct Job;

struct Slot {
  Job* job;
  std::vector<uint8_t> buf;
  uint16_t qid = 1;
  uint64_t lba = 0;
  uint32_t blocks = 0;
};

struct Job {
  IoSession* ctrl;
  uint32_t nsid;
  uint32_t lba_size;
  uint32_t io_blocks;
  uint64_t end_lba;
  uint64_t seed;
  bool writing = true;
  uint64_t next_lba = 0;
  uint32_t outstanding = 0;
  uint64_t completed = 0;
  uint64_t bytes_written = 0;
  uint64_t bytes_verified = 0;
  uint64_t bad_blocks = 0;
  int64_t first_bad = -1;
  uint64_t first_bad_holds_lba = 0;
  uint64_t first_bad_holds_seed = 0;
  Status error;

  void Issue(Slot* s) {
    if (!error.ok() || next_lba >= end_lba) return;
    const uint64_t n = std::min<uint64_t>(io_blocks, end_lba - next_lba);
    s->lba = next_lba;
    s->blocks = static_cast<uint32_t>(n);
    const size_t len = n * lba_size;
    next_lba += n;
    Job* self = this;
    nvmf::host::CommandCallback cb = [self, s](const Status& st, const spec::Cqe&) { self->Done(s, st); };
    Status st;
    if (writing) {
      host::FillPattern(s->buf.data(), len, s->lba, lba_size, seed);
      st = ctrl->Write(s->qid, nsid, s->lba, s->blocks, nvmf::MemDesc::Buffer(s->buf.data(), len), len, cb);
    } else {
      st = ctrl->Read(s->qid, nsid, s->lba, s->blocks, nvmf::MemDesc::Buffer(s->buf.data(), len), len, cb);
    }
    if (!st.ok()) {
      error = st;
      return;
    }
    outstanding++;
  }

  void Done(Slot* s, const Status& st) {
    outstanding--;
    completed++;
    const size_t len = static_cast<size_t>(s->blocks) * lba_size;
    if (!st.ok()) {
      if (error.ok()) {
        error = Status::IoError(fmt::format("{} of LBA {}..{}: {}", writing ? "write" : "read", s->lba,
                                            s->lba + s->blocks - 1, st.ToString()));
      }
      return;
    }
    if (writing) {
      bytes_written += len;
    } else {
      int64_t bad = host::CheckPattern(s->buf.data(), len, s->lba, lba_size, seed);
      if (bad >= 0) {
        for (uint32_t b = static_cast<uint32_t>(bad); b < s->blocks; b++) {
          const uint8_t* blk = s->buf.data() + static_cast<size_t>(b) * lba_size;
          if (host::CheckPattern(blk, lba_size, s->lba + b, lba_size, seed) < 0) continue;
          bad_blocks++;
          const uint64_t lba = s->lba + b;
          if (first_bad < 0 || lba < static_cast<uint64_t>(first_bad)) {
            first_bad = static_cast<int64_t>(lba);
            host::PatternHeader(blk, &first_bad_holds_lba, &first_bad_holds_seed);
          }
        }
      }
      bytes_verified += len;
    }
    Issue(s);
  }
};

// Runs the loop until the phase's commands are all done. The controller times out every
// command itself; this only guards against no progress at all.
void Drain(nvmf::EventLoop& loop, Job& job, std::chrono::milliseconds stall) {
  while (job.outstanding > 0) {
    const uint64_t before = job.completed;
    Job* j = &job;
    if (!loop.RunUntil([j, before] { return j->outstanding == 0 || j->completed != before; }, stall)) {
      job.ctrl->Close();  // completes what is left with an error
      if (job.error.ok()) job.error = Status::TimedOut("no progress");
    }
  }
}

double MiBps(uint64_t bytes, double secs) { return secs > 0 ? bytes / 1048576.0 / secs : 0; }

int RunVerify(const VerifyFlags& f) {
  const uint64_t start = SizeFlag("--start", f.start, true);
  uint64_t size = SizeFlag("--size", f.size);
  const uint64_t bs = SizeFlag("--bs", f.bs);
  if (f.qd == 0) Usage("--qd must be at least 1");
  auto session = Connect(f.conn, false, 0, f.qd / f.conn.nr_io_queues + 2);
  NamespaceInfo ns = GetNamespace(*session->ctrl, f.nsid);
  const uint32_t granted = session->ctrl->async().io_queue_count();
  std::unique_ptr<IoSession> rc = ConnectIo(*session, f.conn, granted);
  host::Controller& ctrl = rc->first();
  const bool header_digest = ctrl.header_digest(), data_digest = ctrl.data_digest();
  const uint64_t ns_bytes = ns.blocks * ns.block_size;
  if (start % ns.block_size != 0 || bs % ns.block_size != 0) {
    Usage(fmt::format("--start and --bs must be multiples of the LBA size ({} bytes)", ns.block_size));
  }
  if (start >= ns_bytes) Usage(fmt::format("--start is beyond the namespace ({})", host::FormatSize(ns_bytes)));
  if (size > ns_bytes - start) {
    if (f.size != "64M") {
      Usage(fmt::format("--start + --size exceed the namespace ({})", host::FormatSize(ns_bytes)));
    }
    size = ns_bytes - start;  // the default range, cut to the namespace
  }
  size -= size % ns.block_size;
  if (size == 0) Usage("--size is smaller than one block");
  if (bs > ctrl.max_transfer_size()) {
    Usage(fmt::format("--bs {} exceeds the largest transfer ({})", host::FormatSize(bs),
                      host::FormatSize(ctrl.max_transfer_size())));
  }
  if (bs / ns.block_size > 65536) Usage("--bs exceeds 65536 blocks");
  uint64_t seed = f.seed;
  if (!f.seed_set) seed = (static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}();

  Job job{rc.get(), f.nsid, ns.block_size, static_cast<uint32_t>(bs / ns.block_size),
          (start + size) / ns.block_size, seed};
  const uint32_t queues = rc->io_queue_count();
  std::vector<Slot> slots(f.qd);
  for (uint32_t i = 0; i < f.qd; i++) {
    slots[i].job = &job;
    slots[i].buf.resize(bs);
    slots[i].qid = static_cast<uint16_t>(1 + i % queues);
  }
  const auto stall = StallLimit(*session, f.conn);
  double secs[2] = {0, 0};
  for (int phase = 0; phase < 2 && job.error.ok(); phase++) {
    job.writing = phase == 0;
    job.next_lba = start / ns.block_size;
    auto t0 = Clock::now();
    for (Slot& s : slots) job.Issue(&s);
    Drain(*session->loop, job, stall);
    secs[phase] = std::chrono::duration<double>(Clock::now() - t0).count();
  }

  const bool ok = job.error.ok() && job.bad_blocks == 0 && job.bytes_verified == size;
  CloseIo(*session, *rc);
  if (f.conn.json) {
    Json j = {{"nsid", f.nsid},
              {"start_bytes", start},
              {"size_bytes", size},
              {"bs", bs},
              {"qd", f.qd},
              {"queues", queues},
              {"seed", seed},
              {"header_digest", header_digest},
              {"data_digest", data_digest},
              {"bytes_written", job.bytes_written},
              {"bytes_verified", job.bytes_verified},
              {"mismatched_blocks", job.bad_blocks},
              {"first_mismatch_lba", job.first_bad >= 0 ? Json(job.first_bad) : Json(nullptr)},
              {"write_mib_s", MiBps(job.bytes_written, secs[0])},
              {"read_mib_s", MiBps(job.bytes_verified, secs[1])},
              {"reconnects", rc->reconnects()},
              {"resubmitted", rc->resubmitted()},
              {"failovers", rc->failovers()},
              {"error", job.error.ok() ? Json(nullptr) : Json(job.error.ToString())},
              {"ok", ok}};
    PrintJson(j);
  } else {
    fmt::print("verify: namespace {}, bytes {}..{} (LBA {}..{}, {}), bs {}, qd {} over {} queue{}, seed {:#x}\n",
               f.nsid, start, start + size - 1, start / ns.block_size,
               (start + size) / ns.block_size - 1, host::FormatSize(size), host::FormatSize(bs), f.qd,
               queues, queues == 1 ? "" : "s", seed);
    fmt::print("digests:  header {}, data {}\n", header_digest ? "on" : "off", data_digest ? "on" : "off");
    fmt::print("written:  {} bytes in {:.3f} s ({:.2f} MiB/s)\n", job.bytes_written, secs[0],
               MiBps(job.bytes_written, secs[0]));
    fmt::print("read:     {} bytes in {:.3f} s ({:.2f} MiB/s)\n", job.bytes_verified, secs[1],
               MiBps(job.bytes_verified, secs[1]));
    fmt::print("verified: {} bytes, {} mismatched block{}\n", job.bytes_verified, job.bad_blocks,
               job.bad_blocks == 1 ? "" : "s");
    if (const std::string sum = IoSummary(*rc); !sum.empty()) fmt::print("{}\n", sum);
    if (job.first_bad >= 0) {
      fmt::print("first mismatch at LBA {} (it holds data for LBA {} of seed {:#x})\n", job.first_bad,
                 job.first_bad_holds_lba, job.first_bad_holds_seed);
    }
  }
  if (!job.error.ok()) Fail("verify", job.error);
  if (!ok) {
    if (!f.conn.json) std::fprintf(stderr, "nvmfctl: verify FAILED\n");
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

void RegisterVerify(CLI::App& app, Runner* run) {
  static VerifyFlags f_storage;  // lives as long as the program
  auto* f = &f_storage;
  CLI::App* sub = app.add_subcommand("verify", "write a pattern over a range, read it back, compare");
  AddConnFlags(sub, &f->conn);
  sub->add_option("--ns,--namespace-id", f->nsid, "namespace ID")->capture_default_str();
  sub->add_option("--start", f->start, "first byte of the range (a multiple of the LBA size)")
      ->capture_default_str();
  sub->add_option("--size", f->size, "bytes to verify (default 64M, cut to the namespace)")
      ->capture_default_str();
  sub->add_option("--bs", f->bs, "bytes per command")->capture_default_str();
  sub->add_option("--qd", f->qd, "commands in flight (over all I/O queues)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  CLI::Option* seed = sub->add_option("--seed", f->seed, "pattern seed (default: random)");
  sub->callback([f, run, seed] {
    f->seed_set = seed->count() > 0;
    *run = [f] { return RunVerify(*f); };
  });
}

}  // namespace nvmfctl
