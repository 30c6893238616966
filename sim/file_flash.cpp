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

namespace onedfu::sim {
namespace {

using runtime::Status;
using runtime::StatusCode;

std::string Errno() { return std::strerror(errno); }

// The sector index and start (offset from base) of `offset`, or false past the end.
bool SectorAt(const runtime::Memory& m, uint64_t offset, uint32_t* index, uint64_t* start,
              uint32_t* size) {
  uint64_t group_start = 0;
  uint32_t before = 0;
  for (uint8_t g = 0; g < m.sector_group_count && g < runtime::kMaxSectorGroups; ++g) {
    const runtime::SectorGroup& group = m.sectors[g];
    const uint64_t span = static_cast<uint64_t>(group.count) * group.size;
    if (offset < group_start + span && group.size != 0) {
      const uint64_t k = (offset - group_start) / group.size;
      *index = before + static_cast<uint32_t>(k);
      *start = group_start + k * group.size;
      *size = group.size;
      return true;
    }
    group_start += span;
    before += group.count;
  }
  return false;
}

// True when `offset` is a sector boundary (the end of the memory counts).
bool IsBoundary(const runtime::Memory& m, uint64_t offset) {
  if (offset == m.size()) return true;
  uint32_t index = 0;
  uint64_t start = 0;
  uint32_t size = 0;
  return SectorAt(m, offset, &index, &start, &size) && start == offset;
}

}  // namespace

host::Expected<std::unique_ptr<FileFlash>> FileFlash::Open(const runtime::Memory& geometry,
                                                             const std::filesystem::path& path) {
  const size_t size = geometry.size();
  if (size == 0) return host::Fail(path.string() + ": memory '" + geometry.name + "' has no sectors");
  if (geometry.write_align == 0) {
    return host::Fail(path.string() + ": memory '" + geometry.name + "' has write_align 0");
  }
  bool created = false;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    // Create under a temporary name, fill, then rename: a half-created file never looks like
    // a board memory.
    const std::filesystem::path tmp = path.string() + ".tmp";
    fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return host::Fail(tmp.string() + ": cannot create: " + Errno());
    std::vector<uint8_t> chunk(64 * 1024, geometry.erased_value);
    for (size_t done = 0; done < size;) {
      const size_t n = std::min(chunk.size(), size - done);
      const ssize_t w = ::write(fd, chunk.data(), n);
      if (w <= 0) {
        const std::string err = Errno();
        ::close(fd);
        return host::Fail(tmp.string() + ": cannot write: " + err);
      }
      done += static_cast<size_t>(w);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const std::string err = Errno();
      ::close(fd);
      return host::Fail(path.string() + ": cannot create: " + err);
    }
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
    return host::Fail(path.string() + ": holds " + std::to_string(st.st_size) + " bytes, memory '" +
                        geometry.name + "' has " + std::to_string(size));
  }
  void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const std::string err = Errno();
  ::close(fd);
  if (map == MAP_FAILED) return host::Fail(path.string() + ": cannot map: " + err);
  return std::unique_ptr<FileFlash>(
      new FileFlash(geometry, path, static_cast<uint8_t*>(map), size, created));
}

FileFlash::FileFlash(const runtime::Memory& geometry, std::filesystem::path path, uint8_t* data,
                     size_t size, bool created)
    : geometry_(geometry), path_(std::move(path)), data_(data), size_(size), created_(created) {
  usage_.sector_erases.assign(geometry_.sector_count(), 0);
}

FileFlash::~FileFlash() {
  if (data_ != nullptr) {
    ::msync(data_, size_, MS_SYNC);
    ::munmap(data_, size_);
  }
}

bool FileFlash::Sync() { return ::msync(data_, size_, MS_SYNC) == 0; }

void FileFlash::ResetUsage() {
  usage_ = FlashUsage{};
  usage_.sector_erases.assign(geometry_.sector_count(), 0);
}

Status FileFlash::Refuse(Status status) {
  ++usage_.refused;
  return status;
}

Status FileFlash::CheckRange(uint32_t address, uint64_t size) const {
  const uint64_t base = geometry_.base;
  const uint64_t end = base + size_;
  if (address < base || address > end || size > end - address) {
    return Status(StatusCode::kOutOfRange, "file flash: range outside the memory");
  }
  return Status::Ok();
}

FileFlash::Fault FileFlash::TakeFault() {
  if (fault_ == Fault::kNone) return Fault::kNone;
  if (fault_countdown_ > 0) {
    --fault_countdown_;
    return Fault::kNone;
  }
  return std::exchange(fault_, Fault::kNone);
}

void FileFlash::FailAfter(uint32_t operations) {
  fault_ = Fault::kFail;
  fault_countdown_ = operations;
}

void FileFlash::CutPowerAfter(uint32_t operations, bool torn) {
  fault_ = torn ? Fault::kCutTorn : Fault::kCut;
  fault_countdown_ = operations;
}

void FileFlash::ClearFaults() {
  fault_ = Fault::kNone;
  fault_countdown_ = 0;
}

bool FileFlash::Preload(uint32_t address, runtime::ByteSpan data) {
  if (!CheckRange(address, data.size()).ok()) return false;
  if (!data.empty()) std::memcpy(data_ + (address - geometry_.base), data.data(), data.size());
  return true;
}

runtime::ByteSpan FileFlash::Mapped() const {
  if (!powered_ || !geometry_.mapped) return {};
  return {data_, size_};
}

Status FileFlash::Read(uint32_t address, runtime::MutableByteSpan out) {
  if (!powered_) return Refuse(Status(StatusCode::kUnavailable, "file flash: power is off"));
  if (Status s = CheckRange(address, out.size()); !s.ok()) return Refuse(s);
  if (!out.empty()) std::memcpy(out.data(), data_ + (address - geometry_.base), out.size());
  return Status::Ok();
}

uint64_t FileFlash::EraseCostUs(uint32_t address, uint32_t size) const {
  if (!CheckRange(address, size).ok()) return 0;
  uint64_t total = 0;
  uint64_t at = address - geometry_.base;
  const uint64_t end = at + size;
  while (at < end) {
    uint32_t index = 0;
    uint64_t start = 0;
    uint32_t sector = 0;
    if (!SectorAt(geometry_, at, &index, &start, &sector)) break;
    uint64_t unit = sector;
    uint64_t us = runtime::EraseMicroseconds(geometry_, sector);
    for (uint8_t t = 0; t < geometry_.erase_timing_count && t < runtime::kMaxEraseTimings; ++t) {
      const uint64_t s = geometry_.erase_timings[t].size;
      if (s > unit && at % s == 0 && at + s <= end) {
        unit = s;
        us = geometry_.erase_timings[t].microseconds;
      }
    }
    total += us;
    at += unit;
  }
  return total;
}

uint64_t FileFlash::ProgramCostUs(uint32_t address, uint32_t size) const {
  if (size == 0 || !CheckRange(address, size).ok()) return 0;
  const uint64_t unit = geometry_.program_bytes == 0 ? 1 : geometry_.program_bytes;
  const uint64_t first = (address - geometry_.base) / unit;
  const uint64_t last = (address - geometry_.base + size - 1) / unit;
  return (last - first + 1) * geometry_.program_us;
}

void FileFlash::CountErase(uint32_t start, uint32_t size) {
  ++usage_.erase_calls;
  usage_.bytes_erased += size;
  usage_.erase_us += EraseCostUs(start, size);
  uint64_t at = start - geometry_.base;
  const uint64_t end = at + size;
  while (at < end) {
    uint32_t index = 0;
    uint64_t sector_start = 0;
    uint32_t sector = 0;
    if (!SectorAt(geometry_, at, &index, &sector_start, &sector)) break;
    if (index < usage_.sector_erases.size()) ++usage_.sector_erases[index];
    ++usage_.sectors_erased;
    at = sector_start + sector;
  }
  // Block erases the timing model used (units larger than the sector).
  at = start - geometry_.base;
  while (at < end) {
    uint32_t index = 0;
    uint64_t sector_start = 0;
    uint32_t sector = 0;
    if (!SectorAt(geometry_, at, &index, &sector_start, &sector)) break;
    uint64_t unit = sector;
    for (uint8_t t = 0; t < geometry_.erase_timing_count && t < runtime::kMaxEraseTimings; ++t) {
      const uint64_t s = geometry_.erase_timings[t].size;
      if (s > unit && at % s == 0 && at + s <= end) unit = s;
    }
    if (unit > sector) ++usage_.block_erases;
    at += unit;
  }
}

void FileFlash::CountWrite(uint32_t address, uint32_t size) {
  ++usage_.write_calls;
  usage_.bytes_programmed += size;
  const uint64_t us = ProgramCostUs(address, size);
  usage_.program_us += us;
  if (geometry_.program_us != 0) usage_.program_units += us / geometry_.program_us;
}

Status FileFlash::Erase(uint32_t address, uint32_t size) {
  if (!powered_) return Refuse(Status(StatusCode::kUnavailable, "file flash: power is off"));
  if (Status s = CheckRange(address, size); !s.ok()) return Refuse(s);
  const uint64_t offset = address - geometry_.base;
  if (size == 0 || !IsBoundary(geometry_, offset) || !IsBoundary(geometry_, offset + size)) {
    return Refuse(Status(StatusCode::kInvalidArgument, "file flash: erase not on sector boundaries"));
  }
  uint8_t* target = data_ + offset;
  switch (TakeFault()) {
    case Fault::kFail:
      return Refuse(Status(StatusCode::kUnavailable, "file flash: injected erase failure"));
    case Fault::kCut:
      powered_ = false;
      return Refuse(Status(StatusCode::kUnavailable, "file flash: power cut before erase"));
    case Fault::kCutTorn: {
      const uint32_t align = geometry_.write_align;
      const uint32_t part = (size / 2) / align * align;
      std::memset(target, geometry_.erased_value, part);
      powered_ = false;
      ++usage_.erase_calls;  // it did start: counted as an operation
      usage_.bytes_erased += part;
      return Status(StatusCode::kUnavailable, "file flash: power cut during erase");
    }
    case Fault::kNone:
      break;
  }
  std::memset(target, geometry_.erased_value, size);
  CountErase(address, size);
  return Status::Ok();
}

Status FileFlash::Write(uint32_t address, runtime::ByteSpan data) {
  if (!powered_) return Refuse(Status(StatusCode::kUnavailable, "file flash: power is off"));
  if (Status s = CheckRange(address, data.size()); !s.ok()) return Refuse(s);
  const uint32_t align = geometry_.write_align;
  if ((address - geometry_.base) % align != 0 || data.size() % align != 0) {
    return Refuse(Status(StatusCode::kInvalidArgument, "file flash: misaligned write"));
  }
  if (data.empty()) return Status::Ok();
  uint8_t* target = data_ + (address - geometry_.base);
  const uint8_t erased = geometry_.erased_value;
  for (size_t i = 0; i < data.size(); ++i) {
    if (target[i] != erased) {
      return Refuse(Status(StatusCode::kFailedPrecondition, "file flash: write to bytes that are not erased"));
    }
  }
  size_t count = data.size();
  switch (TakeFault()) {
    case Fault::kFail:
      return Refuse(Status(StatusCode::kUnavailable, "file flash: injected write failure"));
    case Fault::kCut:
      powered_ = false;
      return Refuse(Status(StatusCode::kUnavailable, "file flash: power cut before write"));
    case Fault::kCutTorn:
      count = (data.size() / 2) / align * align;
      if (count > 0) std::memcpy(target, data.data(), count);
      powered_ = false;
      ++usage_.write_calls;
      usage_.bytes_programmed += count;
      return Status(StatusCode::kUnavailable, "file flash: power cut during write");
    case Fault::kNone:
      break;
  }
  std::memcpy(target, data.data(), count);
  CountWrite(address, static_cast<uint32_t>(count));
  return Status::Ok();
}

}  // namespace onedfu::sim
