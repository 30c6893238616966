#include "runtime/fake_flash.h"

#include <cstring>

namespace onedfu::runtime {
namespace {

// The index of the sector containing the absolute `address`; at or past the
// end of the memory, the sector count. So for a sector boundary it is the
// number of sectors below it.
uint32_t SectorIndex(const Memory& m, uint64_t address) {
  auto sector = SectorContaining(m, static_cast<uint32_t>(address));
  return sector.ok() && address <= 0xffffffffu ? sector->index : m.sector_count();
}

}  // namespace

FakeFlash::FakeFlash(const Memory& geometry, MutableByteSpan storage)
    : geometry_(geometry), storage_(storage) {
  // The 64-bit total (Memory::size() is 32-bit and could wrap on a bad map).
  uint64_t total = 0;
  for (uint8_t g = 0; g < geometry_.sector_group_count && g < kMaxSectorGroups; ++g) {
    total += static_cast<uint64_t>(geometry_.sectors[g].count) * geometry_.sectors[g].size;
  }
  valid_ = total == storage_.size() && geometry_.write_align != 0;
}

uint32_t FakeFlash::Random() {
  random_ ^= random_ << 13;
  random_ ^= random_ >> 17;
  random_ ^= random_ << 5;
  return random_;
}

bool FakeFlash::TouchesTorn(uint64_t offset, uint64_t size) const {
  if (torn_overflow_) return true;
  for (uint8_t i = 0; i < torn_count_; ++i) {
    if (offset < uint64_t{torn_[i].offset} + torn_[i].size && torn_[i].offset < offset + size) return true;
  }
  return false;
}

void FakeFlash::AddTorn(uint32_t offset, uint32_t size) {
  if (!geometry_.ecc) return;
  if (torn_count_ == kMaxTornRanges) {
    torn_overflow_ = true;
    return;
  }
  torn_[torn_count_++] = TornRange{offset, size};
}

void FakeFlash::ClearTorn(uint64_t offset, uint64_t size) {
  uint8_t kept = 0;
  for (uint8_t i = 0; i < torn_count_; ++i) {
    const bool inside = torn_[i].offset >= offset && uint64_t{torn_[i].offset} + torn_[i].size <= offset + size;
    if (!inside) torn_[kept++] = torn_[i];
  }
  torn_count_ = kept;
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
  torn_count_ = 0;
  torn_overflow_ = false;
  if (!storage_.empty()) std::memset(storage_.data(), geometry_.erased_value, storage_.size());
}

bool FakeFlash::Preload(uint32_t address, ByteSpan data) {
  if (!valid_ || !CheckRange(address, data.size()).ok()) return false;
  // Set-up bytes are sound: no torn ECC unit they overlap stays torn.
  const uint64_t offset = address - geometry_.base;
  uint8_t kept = 0;
  for (uint8_t i = 0; i < torn_count_; ++i) {
    const bool overlaps = offset < uint64_t{torn_[i].offset} + torn_[i].size && torn_[i].offset < offset + data.size();
    if (!overlaps) torn_[kept++] = torn_[i];
  }
  torn_count_ = kept;
  if (!data.empty()) std::memcpy(storage_.data() + (address - geometry_.base), data.data(), data.size());
  return true;
}

ByteSpan FakeFlash::Mapped() const {
  if (!valid_ || !powered_ || !geometry_.mapped) return {};
  if (torn_count_ != 0 || torn_overflow_) return {};  // a CPU read of a torn ECC unit would fault
  return storage_;
}

Status FakeFlash::Read(uint32_t address, MutableByteSpan out) {
  if (!valid_) return Refuse(Status(StatusCode::kInternal, "fake flash: storage does not match geometry"));
  if (!powered_) return Refuse(Status(StatusCode::kUnavailable, "fake flash: power is off"));
  if (Status s = CheckRange(address, out.size()); !s.ok()) return Refuse(s);
  if (!out.empty() && TouchesTorn(address - geometry_.base, out.size())) {
    return Refuse(Status(StatusCode::kDataLoss, "fake flash: ECC error (torn write unit)"));
  }
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
  const uint64_t end = static_cast<uint64_t>(address) + size;
  if (size == 0 || !IsSectorBoundary(geometry_, address) || !IsSectorBoundary(geometry_, end)) {
    return Refuse(Status(StatusCode::kInvalidArgument, "fake flash: erase not on sector boundaries"));
  }
  const uint32_t first = SectorIndex(geometry_, address);
  uint8_t* target = storage_.data() + offset;
  switch (TakeFault()) {
    case Fault::kFail:
      return Refuse(Status(StatusCode::kUnavailable, "fake flash: injected erase failure"));
    case Fault::kCut:
      powered_ = false;
      return Refuse(Status(StatusCode::kUnavailable, "fake flash: power cut before erase"));
    case Fault::kCutTorn: {
      const uint32_t align = geometry_.write_align;
      uint32_t part = (size / 2) / align * align;
      if (torn_model_ == TornModel::kRandom) {
        // Sectors before a random one erased; that one half-erased at random.
        const uint32_t sectors = SectorIndex(geometry_, end) - first;
        auto torn = SectorContaining(geometry_, address);
        for (uint32_t skip = Random() % sectors; torn.ok() && skip > 0; --skip) {
          torn = SectorContaining(geometry_, torn->start + torn->size);
        }
        if (!torn.ok()) return Refuse(Status(StatusCode::kInternal, "fake flash: torn sector out of range"));
        part = torn->start - address;
        uint8_t* bytes = storage_.data() + (torn->start - geometry_.base);
        for (uint32_t i = 0; i < torn->size; ++i) {
          const uint8_t toward = static_cast<uint8_t>(bytes[i] ^ geometry_.erased_value);
          bytes[i] = static_cast<uint8_t>(bytes[i] ^ (toward & Random()));
        }
        ClearTorn(offset, part);
        AddTorn(torn->start - geometry_.base, torn->size);
      }
      std::memset(target, geometry_.erased_value, part);
      powered_ = false;
      ++counters_.erases;  // it did start: counted as an operation
      // The sectors wholly inside the erased part (the one containing its
      // end, if any, is only partly erased).
      counters_.sectors_erased += SectorIndex(geometry_, address + part) - first;
      counters_.bytes_erased += part;
      return Status(StatusCode::kUnavailable, "fake flash: power cut during erase");
    }
    case Fault::kNone:
      break;
  }
  std::memset(target, geometry_.erased_value, size);
  ClearTorn(offset, size);
  ++counters_.erases;
  counters_.sectors_erased += SectorIndex(geometry_, end) - first;
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
  if (data.empty()) return Status::Ok();  // changes nothing: no operation, no fault taken
  uint8_t* target = storage_.data() + (address - geometry_.base);
  const uint8_t erased = geometry_.erased_value;
  if (TouchesTorn(address - geometry_.base, data.size())) {
    return Refuse(Status(StatusCode::kFailedPrecondition, "fake flash: write to a torn ECC unit"));
  }
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
      if (torn_model_ == TornModel::kRandom) {
        // Units before a random one programmed; that one gets a random subset of its bits.
        count = Random() % (data.size() / align) * align;
        for (size_t i = count; i < count + align; ++i) {
          const uint8_t programmed = static_cast<uint8_t>((data[i] ^ erased) & Random());
          target[i] = static_cast<uint8_t>(erased ^ programmed);
        }
        AddTorn(static_cast<uint32_t>(address - geometry_.base + count), align);
      }
      if (count > 0) std::memcpy(target, data.data(), count);
      powered_ = false;
      ++counters_.writes;
      counters_.bytes_written += count;
      return Status(StatusCode::kUnavailable, "fake flash: power cut during write");
    case Fault::kNone:
      break;
  }
  std::memcpy(target, data.data(), count);
  ++counters_.writes;
  counters_.bytes_written += count;
  return Status::Ok();
}

}  // namespace onedfu::runtime
