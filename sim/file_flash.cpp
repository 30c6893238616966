#include "file_flash.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "runtime/flash_timing.h"

namespace onedfu::sim {
namespace {

std::string Errno() { return std::strerror(errno); }

// Creates `path` holding `size` bytes of `fill` (via `path`.tmp and a rename) and returns it
// open read-write, or a negative fd with `*error` set.
int CreateFilled(const std::filesystem::path& path, size_t size, uint8_t fill, std::string* error) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = tmp.string() + ": cannot create: " + Errno();
    return -1;
  }
  std::vector<uint8_t> chunk(64 * 1024, fill);
  for (size_t done = 0; done < size;) {
    const ssize_t w = ::write(fd, chunk.data(), std::min(chunk.size(), size - done));
    if (w <= 0) {
      *error = tmp.string() + ": cannot write: " + Errno();
      ::close(fd);
      return -1;
    }
    done += static_cast<size_t>(w);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = path.string() + ": cannot create: " + Errno();
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

// ---- MappedFile ------------------------------------------------------------------------------

host::Expected<MappedFile> MappedFile::Open(const std::filesystem::path& path, size_t size, uint8_t fill) {
  bool created = false;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    std::string error;
    fd = CreateFilled(path, size, fill, &error);
    if (fd < 0) return host::Fail(error);
    created = true;
  } else if (fd < 0) {
    return host::Fail(path.string() + ": cannot open: " + Errno());
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string err = Errno();
    ::close(fd);
    return host::Fail(path.string() + ": cannot stat: " + err);
  }
  if (static_cast<uint64_t>(st.st_size) != size) {
    ::close(fd);
    return host::Fail(path.string() + ": holds " + std::to_string(st.st_size) + " bytes, expected " +
                        std::to_string(size));
  }
  void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const std::string err = Errno();
  ::close(fd);
  if (map == MAP_FAILED) return host::Fail(path.string() + ": cannot map: " + err);
  return MappedFile(path, static_cast<uint8_t*>(map), size, created);
}

MappedFile::MappedFile(std::filesystem::path path, uint8_t* data, size_t size, bool created)
    : path_(std::move(path)), data_(data), size_(size), created_(created) {}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      created_(other.created_) {}

MappedFile::~MappedFile() {
  if (data_ == nullptr) return;
  ::msync(data_, size_, MS_SYNC);
  ::munmap(data_, size_);
}

bool MappedFile::Sync() { return data_ != nullptr && ::msync(data_, size_, MS_SYNC) == 0; }

// ---- TimedFlash ------------------------------------------------------------------------------

TimedFlash::TimedFlash(runtime::FakeFlash& fake) : fake_(fake) {
  usage_.sector_erases.assign(fake_.geometry().sector_count(), 0);
}

void TimedFlash::ResetUsage() {
  usage_ = FlashUsage{};
  usage_.sector_erases.assign(fake_.geometry().sector_count(), 0);
  fake_.ResetCounters();
}

runtime::Status TimedFlash::Erase(uint32_t address, uint32_t size) {
  const uint32_t sectors_before = fake_.counters().sectors_erased;
  const runtime::Status status = fake_.Erase(address, size);
  // The sectors the call left wholly erased are the first ones of its range.
  const uint32_t erased = fake_.counters().sectors_erased - sectors_before;
  if (erased != 0) {
    auto first = runtime::SectorContaining(geometry(), address);
    for (uint32_t i = 0; first.ok() && i < erased && first->index + i < usage_.sector_erases.size(); ++i) {
      ++usage_.sector_erases[first->index + i];
    }
  }
  if (status.ok()) {
    const runtime::EraseCost cost = runtime::EraseRunCost(geometry(), address, size);
    usage_.erase_us += cost.microseconds;
    usage_.block_erases += cost.blocks;
  }
  return status;
}

runtime::Status TimedFlash::Write(uint32_t address, runtime::ByteSpan data) {
  const runtime::Status status = fake_.Write(address, data);
  if (status.ok() && !data.empty()) {
    const uint64_t us = runtime::ProgramTimeUs(geometry(), address, static_cast<uint32_t>(data.size()));
    usage_.program_us += us;
    if (geometry().program_us != 0) usage_.program_units += us / geometry().program_us;
  }
  return status;
}

// ---- FileFlash -------------------------------------------------------------------------------

host::Expected<std::unique_ptr<FileFlash>> FileFlash::Open(const runtime::Memory& geometry,
                                                             const std::filesystem::path& path) {
  const size_t size = geometry.size();
  if (size == 0) return host::Fail(path.string() + ": memory '" + geometry.name + "' has no sectors");
  if (geometry.write_align == 0) {
    return host::Fail(path.string() + ": memory '" + geometry.name + "' has write_align 0");
  }
  auto file = MappedFile::Open(path, size, geometry.erased_value);
  if (!file.ok()) return host::Fail(file.error().message + " (memory '" + geometry.name + "')");
  return std::unique_ptr<FileFlash>(new FileFlash(geometry, std::move(file).value()));
}

FileFlash::FileFlash(const runtime::Memory& geometry, MappedFile file)
    : file_(std::move(file)), fake_(geometry, file_.bytes()), timed_(fake_) {}

}  // namespace onedfu::sim
