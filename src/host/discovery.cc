// The discovery log page: decoding, and fetching it whole while its generation counter
// holds still.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "host/util_internal.h"
#include "nvmf/host.h"

namespace nvmf::host {

Status DecodeDiscoveryLog(const void* buf, size_t len, DiscoveryLog* out) {
  constexpr size_t kHdr = sizeof(spec::DiscoveryLogHeader);
  constexpr size_t kEnt = sizeof(spec::DiscoveryLogEntry);
  if (len < kHdr) {
    return Status::InvalidArgument("discovery log of " + std::to_string(len) +
                                   " bytes is shorter than its 1024-byte header");
  }
  spec::DiscoveryLogHeader h;
  std::memcpy(&h, buf, kHdr);
  const uint64_t have = (len - kHdr) / kEnt;
  if (h.numrec > have) {
    return Status::InvalidArgument("discovery log announces " + std::to_string(h.numrec) +
                                   " records but holds " + std::to_string(have));
  }
  out->genctr = h.genctr;
  out->numrec = h.numrec;
  out->recfmt = h.recfmt;
  out->entries.resize(h.numrec);
  if (h.numrec > 0) {
    std::memcpy(out->entries.data(), static_cast<const uint8_t*>(buf) + kHdr, h.numrec * kEnt);
  }
  return Status::OK();
}

namespace {

constexpr int kMaxAttempts = 10;
constexpr uint64_t kMaxRecords = 65536;  // 64 MiB of log: anything more is not plausible

// One fetch in progress; deletes itself after calling back.
struct DiscoveryFetch {
  Controller* c;
  DiscoveryCallback cb;
  spec::DiscoveryLogHeader header{};
  std::vector<uint8_t> buf;
  size_t offset = 0;
  int attempts = 0;

  void Finish(const Status& s) {
    DiscoveryLog log;
    Status st = s;
    if (st.ok()) st = DecodeDiscoveryLog(buf.data(), buf.size(), &log);
    DiscoveryCallback done = std::move(cb);
    delete this;
    done(st, log);
  }

  void Check(const Status& s) {
    if (!s.ok()) Finish(internal::WithContext(s, "discovery log"));
  }

  void ReadHeader(bool after_body) {
    DiscoveryFetch* f = this;
    Status s = c->GetLogPage(spec::kLogDiscovery, 0, 0, &header, sizeof(header),
                             [f, after_body](const Status& st, const spec::Cqe&) {
                               if (!st.ok()) return f->Finish(internal::WithContext(st, "discovery log"));
                               f->OnHeader(after_body);
                             });
    Check(s);
  }

  void OnHeader(bool after_body) {
    if (header.numrec > kMaxRecords) {
      return Finish(Status::ProtocolError("discovery log announces " +
                                          std::to_string(header.numrec) + " records"));
    }
    if (after_body) {
      spec::DiscoveryLogHeader body;
      std::memcpy(&body, buf.data(), sizeof(body));
      const uint64_t sized_for = (buf.size() - sizeof(spec::DiscoveryLogHeader)) /
                                 sizeof(spec::DiscoveryLogEntry);
      if (body.genctr == header.genctr && body.numrec == header.numrec &&
          body.numrec == sized_for) {
        return Finish(Status::OK());
      }
      if (++attempts >= kMaxAttempts) {
        return Finish(Status::Aborted("the discovery log kept changing while it was read"));
      }
    }
    buf.assign(sizeof(spec::DiscoveryLogHeader) + header.numrec * sizeof(spec::DiscoveryLogEntry), 0);
    offset = 0;
    ReadBody();
  }

  void ReadBody() {
    uint64_t chunk = c->max_transfer_size();
    if (chunk == 0 || chunk > (256u << 10)) chunk = 256u << 10;
    chunk -= chunk % 1024;
    if (chunk == 0) chunk = 1024;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, buf.size() - offset));
    DiscoveryFetch* f = this;
    Status s = c->GetLogPage(spec::kLogDiscovery, 0, offset, buf.data() + offset, n,
                             [f, n](const Status& st, const spec::Cqe&) {
                               if (!st.ok()) return f->Finish(internal::WithContext(st, "discovery log"));
                               f->offset += n;
                               if (f->offset < f->buf.size()) return f->ReadBody();
                               f->ReadHeader(true);
                             });
    Check(s);
  }
};

}  // namespace

void Controller::GetDiscoveryLog(DiscoveryCallback cb) {
  if (!connected()) {
    Status s = failed_ ? internal::WithContext(failure_, "discovery log")
                       : Status::InvalidArgument("discovery log: not connected");
    loop_->Post([cb, s] { cb(s, DiscoveryLog{}); });
    return;
  }
  auto* f = new DiscoveryFetch{this, std::move(cb)};
  f->ReadHeader(false);
}

}  // namespace nvmf::host
