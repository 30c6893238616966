#include "runtime/fake_flash.h"

#include <cstring>

namespace onedfu::runtime {
namespace {

// Geometry arithmetic kept local (64-bit, no reliance on a board.cpp).
uint64_t TotalSize(const Memory& m) {
  uint64_t total = 0;
  for (uint8_t g = 0; g < m.sector_group_count && g < kMaxSectorGroups; ++g) {
    total += static_cast<uint64_t>(m.sectors[g].count) * m.sectors[g].size;
  }
  return total;
}

// True when `offset` (from the memory base) is a sector boundary (the end of
// the memory counts as one). `*sectors_before` receives the number of whole
// sectors below it.
bool IsBoundary(const Memory& m, uint64_t offset, uint64_t* sectors_before) {
  uint64_t start = 0;
  uint64_t before = 0;
  for (uint8_t g = 0; g < m.sector_group_count && g < kMaxSectorGroups; ++g) {
    const SectorGroup& group = m.sectors[g];
    const uint64_t span = static_cast<uint64_t>(group.count) * group.size;
    if (offset < start + span || (offset == start + span && g + 1 == m.sector_group_count)) {
      if (group.size == 0) return false;
      if ((offset - start) % group.size != 0) return false;
      *sectors_before = before + (offset - start) / group.size;
      return true;
    }
    start += span;
    before += group.count;
  }
  if (offset == start) {  // empty geometry
    *sectors_before = before;
    return true;
  }
  return false;
}

}  // namespace

FakeFlash::FakeFlash(const Memory& geometry, MutableByteSpan storage)
    : geometry_(geometry), storage_(storage) {
  valid_ = TotalSize(geometry_) == storage_.size() && geometry_.write_align != 0;
}

Status FakeFlash::Refuse(Status status) {
  ++counters_.refused;
  return status;
}

Status FakeFlash::CheckRange(uint32_t address, uint64_t size) const {
  const uint64_t base = geometry_.base;
  const uint64_t end = base + storage_.size();
  if (address < base || address > end || size > end - address) {
    return Status(StatusCode::kOutOfRange, "fake flash: range outside the memory");
  }
  return Status::Ok();
}

FakeFlash::Fault FakeFlash::TakeFault() {
  if (fault_ == Fault::kNone) return Fault::kNone;
  if (fault_countdown_ > 0) {
    --fault_countdown_;
    return Fault::kNone;
  }
  const Fault hit = fault_;
  fault_ = Fault::kNone;
  return hit;
}

void FakeFlash::FailAfter(uint32_t operations) {
  fault_ = Fault::kFail;
  fault_countdown_ = operations;
}

void FakeFlash::CutPowerAfter(uint32_t operations, bool torn) {
  fault_ = torn ? Fault::kCutTorn : Fault::kCut;
  fault_countdown_ = operations;
}

void FakeFlash::ClearFaults() {
  fault_ = Fault::kNone;
  fault_countdown_ = 0;
}

void FakeFlash::EraseAll() {
  if (!storage_.empty()) std::memset(storage_.data(), geometry_.erased_value, storage_.size());
}

bool FakeFlash::Preload(uint32_t address, ByteSpan data) {
  if (!valid_ || !CheckRange(address, data.size()).ok()) return false;
  if (!data.empty()) std::memcpy(storage_.data() + (address - geometry_.base), data.data(), data.size());
  return true;
}

ByteSpan FakeFlash::Mapped() const {
  if (!valid_ || !powered_ || !geometry_.mapped) return {};
  return storage_;
}

Status FakeFlash::Read(uint32_t address, MutableByteSpan out) {
  if (!valid_) return Refuse(Status(StatusCode::kInternal, "fake flash: storage does not match geometry"));
  if (!powered_) return Refuse(Status(StatusCode::kUnavailable, "fake flash: power is off"));
  if (Status s = CheckRange(address, out.size()); !s.ok()) return Refuse(s);
  if (!out.empty()) std::memcpy(out.data(), storage_.data() + (address - geometry_.base), out.size());
  ++counters_.reads;
  counters_.bytes_read += out.size();
  return Status::Ok();
}

Status FakeFlash::Erase(uint32_t address, uint32_t size) {
  if (!valid_) return Refuse(Status(StatusCode::kInternal, "fake flash: storage does not match geometry"));
  if (!powered_) return Refuse(Status(StatusCode::kUnavailable, "fake flash: power is off"));
  if (Status s = CheckRange(address, size); !s.ok()) return Refuse(s);
  const uint64_t offset = address - geometry_.base;
  uint64_t first = 0;
  uint64_t last = 0;
  if (size == 0 || !IsBoundary(geometry_, offset, &first) ||
      !IsBoundary(geometry_, offset + size, &last)) {
    return Refuse(Status(StatusCode::kInvalidArgument, "fake flash: erase not on sector boundaries"));
  }
  uint8_t* target = storage_.data() + offset;
  switch (TakeFault()) {
    case Fault::kFail:
      return Refuse(Status(StatusCode::kUnavailable, "fake flash: injected erase failure"));
    case Fault::kCut:
      powered_ = false;
      return Refuse(Status(StatusCode::kUnavailable, "fake flash: power cut before erase"));
    case Fault::kCutTorn: {
      const uint32_t align = geometry_.write_align;
      const uint32_t part = (size / 2) / align * align;
      std::memset(target, geometry_.erased_value, part);
      powered_ = false;
      ++counters_.erases;  // it did start: counted as an operation
      counters_.bytes_erased += part;
      return Status(StatusCode::kUnavailable, "fake flash: power cut during erase");
    }
    case Fault::kNone:
      break;
  }
  std::memset(target, geometry_.erased_value, size);
  ++counters_.erases;
  counters_.sectors_erased += static_cast<uint32_t>(last - first);
  counters_.bytes_erased += size;
  return Status::Ok();
}

Status FakeFlash::Write(uint32_t address, ByteSpan data) {
  if (!valid_) return Refuse(Status(StatusCode::kInternal, "fake flash: storage does not match geometry"));
  if (!powered_) return Refuse(Status(StatusCode::kUnavailable, "fake flash: power is off"));
  if (Status s = CheckRange(address, data.size()); !s.ok()) return Refuse(s);
  const uint32_t align = geometry_.write_align;
  if ((address - geometry_.base) % align != 0 || data.size() % align != 0) {
    return Refuse(Status(StatusCode::kInvalidArgument, "fake flash: misaligned write"));
  }
  uint8_t* target = storage_.data() + (address - geometry_.base);
  const uint8_t erased = geometry_.erased_value;
  for (size_t i = 0; i < data.size(); ++i) {
    const uint8_t old_value = target[i];
    if (old_value == erased) continue;
    // Bits already moved away from the erased value must stay there.
    const uint8_t programmed_old = static_cast<uint8_t>(old_value ^ erased);
    const uint8_t programmed_new = static_cast<uint8_t>(data[i] ^ erased);
    const bool only_further = (programmed_old & ~programmed_new) == 0;
    if (!allow_bit_clear_ || !only_further) {
      return Refuse(Status(StatusCode::kFailedPrecondition, "fake flash: write to bytes that are not erased"));
    }
  }
  size_t count = data.size();
  switch (TakeFault()) {
    case Fault::kFail:
      return Refuse(Status(StatusCode::kUnavailable, "fake flash: injected write failure"));
    case Fault::kCut:
      powered_ = false;
      return Refuse(Status(StatusCode::kUnavailable, "fake flash: power cut before write"));
    case Fault::kCutTorn:
      count = (data.size() / 2) / align * align;
      if (count > 0) std::memcpy(target, data.data(), count);
      powered_ = false;
      ++counters_.writes;
      counters_.bytes_written += count;
      return Status(StatusCode::kUnavailable, "fake flash: power cut during write");
    case Fault::kNone:
      break;
  }
  if (count > 0) std::memcpy(target, data.data(), count);
  ++counters_.writes;
  counters_.bytes_written += count;
  return Status::Ok();
}

}  // namespace onedfu::runtime
