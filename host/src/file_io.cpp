#include "host/file_io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <utility>
#include <new>
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


const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string TooLarge(const fs::path& path, uint64_t max_size) {
  return path.string() + ": larger than " + std::to_string(max_size) + " bytes, the most onedfu reads from a file";
}

}  // namespace

Expected<Bytes> ReadFile(const fs::path& path, uint64_t max_size) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Fail(path.string() + ": cannot open: " + Errno());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = Errno();
    ::close(fd);
    return Fail(path.string() + ": cannot read: " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    if (S_ISDIR(st.st_mode)) return Fail(path.string() + ": is a directory, expected a file");
    return Fail(path.string() + ": is " + KindOf(st.st_mode) + ", expected a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    ::close(fd);
    return Fail(TooLarge(path, max_size));
  }
  Bytes out;
  try {
    // Map and copy once, which skips the zero-fill that resize() + read()
    // would pay for every page of a large input.
    if (st.st_size > 0) {
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
    // Files that report no size (/proc) and anything mmap refuses: plain reads, capped.
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
      if (out.size() + static_cast<size_t>(n) > max_size) {
        ::close(fd);
        return Fail(TooLarge(path, max_size));
      }
      out.insert(out.end(), buf, buf + n);
    }
  } catch (const std::bad_alloc&) {
    ::close(fd);
    return Fail(path.string() + ": " + std::to_string(st.st_size) + " bytes do not fit in memory");
  }
  ::close(fd);
  return out;
}

AtomicFileWriter::AtomicFileWriter(fs::path path, fs::path target, std::string temp, int fd)
    : path_(std::move(path)), target_(std::move(target)), temp_(std::move(temp)), fd_(fd) {
  buffer_.reserve(kWriteBuffer);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_.c_str());
  }
}

Expected<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Open(const fs::path& path) {
  // Follow symbolic links to what will be replaced (the link itself stays).
  fs::path target = path;
  struct stat st {};
  bool exists = false;
  for (int hops = 0;; ++hops) {
    if (::lstat(target.c_str(), &st) != 0) {
      if (errno != ENOENT) return Fail(path.string() + ": cannot read: " + Errno());
      break;
    }
    if (!S_ISLNK(st.st_mode)) {
      exists = true;
      break;
    }
    if (hops == 40) return Fail(path.string() + ": too many levels of symbolic links");
    std::error_code ec;
    const fs::path link = fs::read_symlink(target, ec);
    if (ec) return Fail(path.string() + ": cannot read symbolic link " + target.string() + ": " + ec.message());
    target = link.is_absolute() ? link : target.parent_path() / link;
  }
  if (exists && !S_ISREG(st.st_mode)) {
    const std::string shown = target == path ? "" : " (via symbolic link to " + target.string() + ")";
    return Fail(path.string() + shown + ": is " + KindOf(st.st_mode) + "; refusing to replace it with the output");
  }
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string temp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    return Fail(path.string() + ": cannot create a temporary file in " + dir.string() + ": " + Errno());
  }
  if (exists) {
    // Keep what the old file had: owner (where allowed) and mode.
    if (::fchown(fd, st.st_uid, st.st_gid) != 0) {
      // Not ours to give away: the new file stays ours.
    }
    ::fchmod(fd, st.st_mode & 07777);
  } else {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd, 0666 & ~mask);
  }
  return std::unique_ptr<AtomicFileWriter>(new AtomicFileWriter(path, target, std::move(temp), fd));
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
  if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
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

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Expected<TempDir> TempDir::Create(const std::string& prefix) {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string pattern = (base / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return Fail(pattern + ": cannot create a temporary directory: " + std::strerror(errno));
  }
  TempDir dir;
  dir.path_ = pattern;
  return Expected<TempDir>(std::move(dir));
}

}  // namespace onedfu::host
