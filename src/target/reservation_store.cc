// Reservation state that persists through power loss (PTPL): a JSON file beside the
// namespace's backing file, "<path>.nvmf-resv", mode 0600 (it holds the hosts' keys).
// Written whole to "<path>.nvmf-resv.tmp", fsync'd, renamed over the old one and the
// directory fsync'd, so that a crash leaves either the old state or the new, never half.
// The write happens under the reservation's lock on the thread of the command that
// changed it: reservation commands are rare, and a command must not complete before
// its state is durable.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "target/reservation.h"

namespace nvmf::target {
namespace {

using Json = nlohmann::json;

std::string HexId(const HostId& h) {
  std::string s;
  char b[3];
  for (uint8_t c : h) {
    std::snprintf(b, sizeof(b), "%02x", c);
    s += b;
  }
  return s;
}

bool ParseHexId(const std::string& s, HostId* out) {
  if (s.size() != 32) return false;
  for (size_t i = 0; i < 16; i++) {
    unsigned v;
    if (std::sscanf(s.c_str() + 2 * i, "%2x", &v) != 1) return false;
    (*out)[i] = static_cast<uint8_t>(v);
  }
  return true;
}

Status Errno(const std::string& what) { return Status::IoError(what + ": " + std::strerror(errno)); }

Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write " + path);
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

void SyncDirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

Status Reservation::Save(const State& s) const {
  Json regs = Json::array();
  for (const auto& [host, key] : s.registrants) regs.push_back({{"hostid", HexId(host)}, {"key", key}});
  Json j = {{"version", 1}, {"generation", s.generation}, {"type", s.type}, {"registrants", regs}};
  if (s.type != spec::kResvNone) j["holder"] = HexId(s.holder);
  const std::string tmp = store_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("create " + tmp);
  Status st = WriteAll(fd, j.dump(2) + "\n", tmp);
  if (st.ok() && ::fsync(fd) != 0) st = Errno("fsync " + tmp);
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), store_.c_str()) != 0) st = Errno("rename " + tmp);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  SyncDirectoryOf(store_);
  return Status::OK();
}

Status Reservation::Remove() const {
  if (::unlink(store_.c_str()) != 0 && errno != ENOENT) return Errno("remove " + store_);
  SyncDirectoryOf(store_);
  return Status::OK();
}

Status Reservation::Load() {
  if (store_.empty()) return Status::OK();
  std::ifstream in(store_);
  if (!in) return Status::OK();  // PTPL was never set (or was cleared): nothing persists
  std::stringstream text;
  text << in.rdbuf();
  const Status bad = Status::InvalidArgument("reservation state " + store_ + " is damaged");
  Json j = Json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("version", 0) != 1) return bad;
  State s;
  s.ptpl = true;
  try {
    s.generation = j.at("generation").get<uint32_t>();
    s.type = j.at("type").get<uint8_t>();
    for (const Json& r : j.at("registrants")) {
      HostId h;
      if (!ParseHexId(r.at("hostid").get<std::string>(), &h)) return bad;
      s.registrants[h] = r.at("key").get<uint64_t>();
    }
    if (s.type != spec::kResvNone) {
      if (s.type > spec::kResvExclusiveAccessAllRegistrants) return bad;
      if (!ParseHexId(j.at("holder").get<std::string>(), &s.holder)) return bad;
      if (s.registrants.count(s.holder) == 0) return bad;  // a holder is always a registrant
    }
  } catch (const Json::exception&) {
    return bad;
  }
  std::lock_guard<std::mutex> lock(mu_);
  s_ = std::move(s);
  held_.store(s_.type != spec::kResvNone, std::memory_order_release);
  return Status::OK();
}

}  // namespace nvmf::target
