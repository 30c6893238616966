#include "host/file_io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace onedfu::host {

namespace fs = std::filesystem;

namespace {
constexpr size_t kWriteBuffer = 1 << 20;

std::string Errno() { return std::strerror(errno); }

// Large buffers fault in 2 MiB at a time instead of 4 KiB where the kernel
// allows transparent huge pages on request. Purely a speed hint.
void AdviseHugePages(void* data, size_t size) {
  constexpr uintptr_t kHuge = 2u << 20;
  if (size < 4 * kHuge) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size) & ~(kHuge - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}
}  // namespace

Expected<Bytes> ReadFile(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(path.string() + ": cannot open: " + Errno());
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Fail(path.string() + ": is a directory, expected a file");
  }
  Bytes out;
  // Regular files: map and copy once, which skips the zero-fill that
  // resize() + read() would pay for every page of a large input.
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    const size_t size = static_cast<size_t>(st.st_size);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map != MAP_FAILED) {
      const auto* begin = static_cast<const uint8_t*>(map);
      out.reserve(size);
      AdviseHugePages(out.data(), size);
      out.assign(begin, begin + size);
      ::munmap(map, size);
      ::close(fd);
      return out;
    }
  }
  // Pipes, devices and anything mmap refuses: plain reads.
  uint8_t buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = Errno();
      ::close(fd);
      return Fail(path.string() + ": read failed: " + why);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  return out;
}

AtomicFileWriter::AtomicFileWriter(fs::path path, std::string temp, int fd)
    : path_(std::move(path)), temp_(std::move(temp)), fd_(fd) {
  buffer_.reserve(kWriteBuffer);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_.c_str());
  }
}

Expected<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Open(const fs::path& path) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::string temp = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    return Fail(path.string() + ": cannot create a temporary file in " + dir.string() + ": " + Errno());
  }
  ::fchmod(fd, 0644);
  return std::unique_ptr<AtomicFileWriter>(new AtomicFileWriter(path, std::move(temp), fd));
}

Outcome AtomicFileWriter::WriteAll(std::span<const uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail(path_.string() + ": write failed: " + Errno());
    done += static_cast<size_t>(n);
  }
  return Success();
}

Outcome AtomicFileWriter::Flush() {
  Outcome written = WriteAll(buffer_);
  buffer_.clear();
  return written;
}

Outcome AtomicFileWriter::Write(std::span<const uint8_t> data) {
  if (fd_ < 0) return Fail(path_.string() + ": write after commit");
  if (buffer_.size() + data.size() > kWriteBuffer) {
    ONEDFU_PTRY(auto flushed, Flush());
    (void)flushed;
  }
  if (data.size() >= kWriteBuffer) return WriteAll(data);  // large blocks skip the buffer
  buffer_.insert(buffer_.end(), data.begin(), data.end());
  return Success();
}

Outcome AtomicFileWriter::Commit() {
  if (fd_ < 0) return Fail(path_.string() + ": already committed");
  ONEDFU_PTRY(auto flushed, Flush());
  (void)flushed;
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const std::string why = Errno();
    ::unlink(temp_.c_str());
    return Fail(path_.string() + ": close failed: " + why);
  }
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) {
    const std::string why = Errno();
    ::unlink(temp_.c_str());
    return Fail(path_.string() + ": cannot rename the finished file into place: " + why);
  }
  return Success();
}

Outcome WriteFileAtomic(const fs::path& path, std::span<const uint8_t> data) {
  ONEDFU_PTRY(auto writer, AtomicFileWriter::Open(path));
  ONEDFU_PTRY(auto written, writer->Write(data));
  (void)written;
  return writer->Commit();
}

}  // namespace onedfu::host
