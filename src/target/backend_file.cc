// FileBackend: a regular file (whose size it keeps) or a block device, opened read-write.
// I/O goes through the calling thread's io_uring (uring.h) so that a slow disk never
// stalls the loop, or, where io_uring cannot be set up, through worker threads. Write
// zeroes and deallocate both use fallocate (punch hole, then zero range, then writes of
// zeroes where unsupported): on a block device the kernel turns these into its zero-out
// (with unmap for punch hole), which, unlike BLKDISCARD, guarantees that the range reads
// as zeroes, and through io_uring it needs no worker thread.
#include "target/backend_file.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "target/backend_internal.h"
#include "target/uring.h"

namespace nvmf::target {
namespace {

class FileBackend final : public Backend {
 public:
  FileBackend(int fd, bool regular, const std::string& path, uint64_t size, uint32_t block)
      : size_(size), block_size_(block) {
    file_.fd = fd;
    file_.regular = regular;
    file_.path = path;
  }
  ~FileBackend() override { close(file_.fd); }

  std::string Describe() const override { return "file:" + file_.path; }
  // Beside a regular file only: a block device's directory is /dev, which does not keep
  // files across a reboot.
  std::string StatePath() const override { return file_.regular ? file_.path : std::string(); }
  uint64_t size() const override { return size_.load(std::memory_order_relaxed); }
  uint32_t block_size() const override { return block_size_; }
  FileHandle& handle() { return file_; }
  // A regular file grows or shrinks to the new size; a block device's size is its own.
  Status Resize(uint64_t bytes) override {
    if (!file_.regular) return Status::NotSupported(file_.path + " is a block device: its size is its own");
    if (ftruncate(file_.fd, static_cast<off_t>(bytes)) != 0) {
      return Status::IoError("resizing " + file_.path + ": " + std::strerror(errno));
    }
    size_.store(bytes, std::memory_order_relaxed);
    return Status::OK();
  }

  void Read(EventLoop* loop, uint64_t offset, const MemDesc& dst, size_t len,
            IoCallback cb) override {
    if (Check("read", offset, len, len <= dst.length(), cb)) {
      Start(loop, FileOp::kRead, offset, &dst, len, cb);
    }
  }
  void Write(EventLoop* loop, uint64_t offset, const MemDesc& src, size_t len,
             IoCallback cb) override {
    if (Check("write", offset, len, len <= src.length(), cb)) {
      Start(loop, FileOp::kWrite, offset, &src, len, cb);
    }
  }
  void WriteDurable(EventLoop* loop, uint64_t offset, const MemDesc& src, size_t len,
                    IoCallback cb) override {
    if (Check("write", offset, len, len <= src.length(), cb)) {
      Start(loop, FileOp::kWriteDurable, offset, &src, len, cb);
    }
  }
  void Flush(EventLoop* loop, IoCallback cb) override {
    Start(loop, FileOp::kFlush, 0, nullptr, 0, cb);
  }
  void WriteZeroes(EventLoop* loop, uint64_t offset, uint64_t len, IoCallback cb) override {
    if (Check("write zeroes", offset, len, true, cb)) {
      Start(loop, FileOp::kZero, offset, nullptr, len, cb);
    }
  }
  void Deallocate(EventLoop* loop, uint64_t offset, uint64_t len, IoCallback cb) override {
    if (Check("deallocate", offset, len, true, cb)) {
      Start(loop, FileOp::kZero, offset, nullptr, len, cb);
    }
  }

 private:
  // False when the call is done already: a bad range (an error), or nothing to do.
  bool Check(const char* what, uint64_t offset, uint64_t len, bool mem_ok, const IoCallback& cb) {
    const uint64_t size = this->size();
    if (!mem_ok || !InRange(offset, len, size)) {
      cb(RangeError(what, offset, len, size));
      return false;
    }
    if (len == 0) {
      cb(Status::OK());
      return false;
    }
    return true;
  }

  void Start(EventLoop* loop, FileOp op, uint64_t offset, const MemDesc* mem, uint64_t len,
             IoCallback cb) {
    if (Uring* u = Uring::For(loop)) {
      u->Start(op, &file_, offset, mem, len, cb);
    } else {
      RunOnWorker(loop, op, &file_, offset, mem != nullptr ? *mem : MemDesc(), len, cb);
    }
  }

  FileHandle file_;
  std::atomic<uint64_t> size_;
  const uint32_t block_size_;
};

Status Bad(const std::string& path, const std::string& why) {
  return Status::InvalidArgument("backend 'file:" + path + "': " + why);
}

}  // namespace

bool SetZeroMethodForTesting(Backend* b, int method) {
  auto* f = dynamic_cast<FileBackend*>(b);
  if (f == nullptr) return false;
  f->handle().zero_method.store(method);
  return true;
}

Status OpenFileBackend(const std::string& path, std::unique_ptr<Backend>* out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Bad(path, strerror(errno));
  bool regular = S_ISREG(st.st_mode);
  if (!regular && !S_ISBLK(st.st_mode)) return Bad(path, "not a regular file or block device");
  // O_EXCL on a block device fails if it is mounted or otherwise claimed.
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | (regular ? 0 : O_EXCL));
  if (fd < 0) {
    int e = errno;
    std::string why = std::string("cannot open read-write: ") + strerror(e);
    if (e == EBUSY) why += " (mounted or in use?)";
    return Status::IoError("backend 'file:" + path + "': " + why);
  }
  uint64_t size = 0;
  uint32_t block = 512;
  Status s;
  if (fstat(fd, &st) != 0) {
    s = Status::IoError("backend 'file:" + path + "': " + strerror(errno));
  } else if (S_ISREG(st.st_mode) != regular || (!regular && !S_ISBLK(st.st_mode))) {
    s = Bad(path, "changed while being opened");
  } else if (regular) {
    size = static_cast<uint64_t>(st.st_size);
    if (size == 0) {
      s = Bad(path, "the file is empty; give it the namespace's size first (truncate -s 1G " +
                        path + ")");
    } else if (size % 512 != 0) {
      s = Bad(path, "file size " + std::to_string(size) + " is not a multiple of 512 bytes");
    }
  } else {
    int lbs = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) != 0 || ioctl(fd, BLKSSZGET, &lbs) != 0) {
      s = Status::IoError("backend 'file:" + path +
                          "': cannot get the device's size: " + strerror(errno));
    } else if (size == 0) {
      s = Bad(path, "the device has size 0 (no medium?)");
    } else {
      if (lbs > 0) block = static_cast<uint32_t>(lbs);
      size -= size % block;
    }
  }
  if (!s.ok()) {
    close(fd);
    return s;
  }
  if (regular && OnMemoryFileSystem(fd) && MapMemoryFile(fd, path, size, out)) {
    return Status::OK();
  }
  *out = std::make_unique<FileBackend>(fd, regular, path, size, block);
  return Status::OK();
}

}  // namespace nvmf::target
