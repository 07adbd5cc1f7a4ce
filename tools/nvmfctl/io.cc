// nvmfctl read / write: blocks between a namespace and a file (or stdin/stdout).
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "common.h"

namespace nvmfctl {
namespace host = nvmf::host;

namespace {

constexpr uint64_t kMaxBytes = 1ull << 30;  // one call's buffer

struct IoFlags {
  ConnFlags conn;
  uint32_t nsid = 1;
  uint64_t start = 0;
  uint64_t count = 0;  // blocks, not 0's based; 0: read 1, write: from the file's size
  std::string data = "-";
};

std::vector<uint8_t> ReadInput(const std::string& path) {
  FILE* in = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (in == nullptr) Fail(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  std::vector<uint8_t> data;
  uint8_t chunk[65536];
  for (;;) {
    size_t n = std::fread(chunk, 1, sizeof(chunk), in);
    data.insert(data.end(), chunk, chunk + n);
    if (data.size() > kMaxBytes) Fail(fmt::format("{} is larger than {}", path, host::FormatSize(kMaxBytes)));
    if (n < sizeof(chunk)) break;
  }
  bool err = std::ferror(in) != 0;
  if (in != stdin) std::fclose(in);
  if (err) Fail(fmt::format("cannot read {}", path));
  return data;
}

// The output file, opened before connecting so that a bad path fails early.
FILE* OpenOutput(const std::string& path) {
  FILE* out = path == "-" ? stdout : std::fopen(path.c_str(), "wb");
  if (out == nullptr) Fail(fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  return out;
}

void WriteOutput(FILE* out, const std::string& path, const std::vector<uint8_t>& data) {
  size_t n = std::fwrite(data.data(), 1, data.size(), out);
  bool err = n != data.size() || std::fflush(out) != 0;
  if (out != stdout) err |= std::fclose(out) != 0;
  if (err) Fail(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
}

void CheckRange(const NamespaceInfo& ns, uint64_t start, uint64_t count) {
  if (count == 0) Usage("--block-count must be at least 1");
  if (start >= ns.blocks || count > ns.blocks - start) {
    Usage(fmt::format("blocks {}..{} are outside namespace {} ({} blocks)", start, start + count - 1,
                      ns.nsid, ns.blocks));
  }
  if (count * ns.block_size > kMaxBytes) Usage(fmt::format("at most {} per call", host::FormatSize(kMaxBytes)));
}

int RunRead(const IoFlags& f) {
  if (f.conn.json && f.data == "-") Usage("--json needs --data FILE (the data would share stdout)");
  FILE* out = OpenOutput(f.data);
  auto session = Connect(f.conn, false);
  NamespaceInfo ns = GetNamespace(*session->ctrl, f.nsid);
  const uint64_t count = f.count == 0 ? 1 : f.count;
  CheckRange(ns, f.start, count);
  std::vector<uint8_t> buf(count * ns.block_size);
  Status st = session->ctrl->Read(f.nsid, f.start, count, ns.block_size, buf.data());
  if (!st.ok()) Fail("read", st);
  WriteOutput(out, f.data, buf);
  if (f.conn.json) {
    PrintJson({{"op", "read"}, {"nsid", f.nsid}, {"start_block", f.start}, {"blocks", count},
               {"bytes", buf.size()}, {"file", f.data}});
  } else {
    std::fprintf(stderr, "read %llu block%s (%zu bytes) from LBA %llu of namespace %u to %s\n",
                 static_cast<unsigned long long>(count), count == 1 ? "" : "s", buf.size(),
                 static_cast<unsigned long long>(f.start), f.nsid,
                 f.data == "-" ? "stdout" : f.data.c_str());
  }
  return kExitOk;
}

int RunWrite(const IoFlags& f) {
  std::vector<uint8_t> data = ReadInput(f.data);
  if (data.empty() && f.count == 0) Usage(fmt::format("{} is empty: nothing to write", f.data));
  auto session = Connect(f.conn, false);
  NamespaceInfo ns = GetNamespace(*session->ctrl, f.nsid);
  const uint64_t count = f.count != 0 ? f.count : (data.size() + ns.block_size - 1) / ns.block_size;
  CheckRange(ns, f.start, count);
  const size_t bytes = count * ns.block_size;
  if (data.size() > bytes) {
    Usage(fmt::format("{} holds {} bytes, more than {} blocks of {} bytes", f.data, data.size(), count,
                      ns.block_size));
  }
  const size_t given = data.size();
  data.resize(bytes, 0);  // the last block is padded with zeroes
  Status st = session->ctrl->Write(f.nsid, f.start, count, ns.block_size, data.data());
  if (!st.ok()) Fail("write", st);
  if (f.conn.json) {
    PrintJson({{"op", "write"}, {"nsid", f.nsid}, {"start_block", f.start}, {"blocks", count},
               {"bytes", bytes}, {"file_bytes", given}, {"file", f.data}});
  } else {
    fmt::print("wrote {} block{} ({} bytes{}) at LBA {} of namespace {}\n", count, count == 1 ? "" : "s", bytes,
               given < bytes ? fmt::format(", {} zero padding", bytes - given) : "", f.start, f.nsid);
  }
  return kExitOk;
}

void AddIoFlags(CLI::App* sub, IoFlags* f, bool write) {
  AddConnFlags(sub, &f->conn);
  sub->add_option("--ns,--namespace-id", f->nsid, "namespace ID")->capture_default_str();
  sub->add_option("-b,--start-block", f->start, "first LBA")->capture_default_str();
  sub->add_option("-c,--block-count", f->count,
                  write ? "number of blocks (a count, not 0's based; default: the file's size)"
                        : "number of blocks (a count, not 0's based; default 1)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  sub->add_option("-d,--data", f->data,
                  write ? "file to write from (- for stdin)" : "file to read into (- for stdout)")
      ->capture_default_str();
}

}  // namespace

void RegisterReadWrite(CLI::App& app, Runner* run) {
  static IoFlags r_storage;  // lives as long as the program
  auto* r = &r_storage;
  CLI::App* rd = app.add_subcommand("read", "read blocks of a namespace into a file or stdout");
  AddIoFlags(rd, r, false);
  rd->callback([r, run] { *run = [r] { return RunRead(*r); }; });

  static IoFlags w_storage;  // lives as long as the program
  auto* w = &w_storage;
  CLI::App* wr = app.add_subcommand("write", "write a file (or stdin) to blocks of a namespace");
  AddIoFlags(wr, w, true);
  wr->callback([w, run] { *run = [w] { return RunWrite(*w); }; });
}

}  // namespace nvmfctl
