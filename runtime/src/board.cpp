#include "runtime/board.h"

#define ONEDFU_BOARD_STRINGIFY2(x) #x
#define ONEDFU_BOARD_STRINGIFY(x) ONEDFU_BOARD_STRINGIFY2(x)

namespace onedfu::runtime {

namespace {

bool SameText(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

constexpr bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Sum of count * size over the sector groups, in 64 bits (no wrap-around).
uint64_t MemorySize64(const Memory& memory) {
  uint64_t total = 0;
  const uint8_t groups = memory.sector_group_count <= kMaxSectorGroups
                             ? memory.sector_group_count
                             : static_cast<uint8_t>(kMaxSectorGroups);
  for (uint8_t g = 0; g < groups; ++g) {
    total += static_cast<uint64_t>(memory.sectors[g].count) * memory.sectors[g].size;
  }
  return total;
}

uint64_t End64(const Memory& memory) { return memory.base + MemorySize64(memory); }

constexpr Status kInvalid(StatusCode::kInvalidArgument, "invalid board layout");
constexpr Status kOutside(StatusCode::kOutOfRange, "board region outside its memory");

Diag& MemoryLabel(Diag* diag, const Memory& m) { return diag->Str("memory ").Str(m.name); }

Status CheckMemory(const Memory& m, Diag* diag) {
  if (m.name[0] == '\0') {
    if (diag) diag->Str("memory at ").Hex(m.base).Str(": name is empty");
    return kInvalid;
  }
  if (m.sector_group_count == 0 || m.sector_group_count > kMaxSectorGroups) {
    if (diag) MemoryLabel(diag, m).Str(": needs 1 to ").Dec(kMaxSectorGroups).Str(" sector groups");
    return kInvalid;
  }
  for (uint8_t g = 0; g < m.sector_group_count; ++g) {
    const SectorGroup& group = m.sectors[g];
    if (group.count == 0) {
      if (diag) MemoryLabel(diag, m).Str(": sector group ").Dec(g).Str(" has no sectors");
      return kInvalid;
    }
    if (!IsPowerOfTwo(group.size)) {
      if (diag) {
        MemoryLabel(diag, m).Str(": sector group ").Dec(g).Str(" size ").Dec(group.size).Str(
            " is not a power of two");
      }
      return kInvalid;
    }
  }
  if (End64(m) > (uint64_t{1} << 32)) {
    if (diag) MemoryLabel(diag, m).Str(": ends at ").Hex(End64(m)).Str(", past the 32-bit address space");
    return kOutside;
  }
  if (!IsPowerOfTwo(m.write_align)) {
    if (diag) MemoryLabel(diag, m).Str(": write_align ").Dec(m.write_align).Str(" is not a power of two");
    return kInvalid;
  }
  for (uint8_t g = 0; g < m.sector_group_count; ++g) {
    if (m.sectors[g].size < m.write_align) {
      if (diag) {
        MemoryLabel(diag, m).Str(": sector size ").Dec(m.sectors[g].size).Str(" is smaller than write_align ")
            .Dec(m.write_align);
      }
      return kInvalid;
    }
  }
  if (m.base % m.write_align != 0) {
    if (diag) MemoryLabel(diag, m).Str(": base ").Hex(m.base).Str(" is not a multiple of write_align");
    return kInvalid;
  }
  if (m.erase_timing_count > kMaxEraseTimings) {
    if (diag) MemoryLabel(diag, m).Str(": more than ").Dec(kMaxEraseTimings).Str(" erase timings");
    return kInvalid;
  }
  for (uint8_t t = 0; t < m.erase_timing_count; ++t) {
    if (!IsPowerOfTwo(m.erase_timings[t].size)) {
      if (diag) {
        MemoryLabel(diag, m).Str(": erase timing size ").Dec(m.erase_timings[t].size).Str(
            " is not a power of two");
      }
      return kInvalid;
    }
  }
  if (m.program_bytes == 0) {
    if (diag) MemoryLabel(diag, m).Str(": program_bytes is 0");
    return kInvalid;
  }
  return Status::Ok();
}

Diag& RegionLabel(Diag* diag, const Region& r) { return diag->Str("region ").Str(r.name); }

Status CheckRegion(const Board& board, const Region& r, Diag* diag) {
  if (r.name[0] == '\0') {
    if (diag) diag->Str("region at offset ").Hex(r.offset).Str(": name is empty");
    return kInvalid;
  }
  if (r.memory >= board.memory_count) {
    if (diag) RegionLabel(diag, r).Str(": memory index ").Dec(r.memory).Str(" does not exist");
    return kInvalid;
  }
  if (static_cast<uint8_t>(r.role) > static_cast<uint8_t>(RegionRole::kProvision)) {
    if (diag) RegionLabel(diag, r).Str(": unknown role ").Dec(static_cast<uint8_t>(r.role));
    return kInvalid;
  }
  const Memory& m = board.memories[r.memory];
  if (r.size == 0) {
    if (diag) RegionLabel(diag, r).Str(": size is 0");
    return kInvalid;
  }
  const uint64_t start = static_cast<uint64_t>(m.base) + r.offset;
  const uint64_t end = start + r.size;
  if (end > End64(m)) {
    if (diag) {
      RegionLabel(diag, r).Str(": ends at ").Hex(end).Str(", past memory ").Str(m.name).Str(" (ends ")
          .Hex(End64(m)).Str(")");
    }
    return kOutside;
  }
  if (!IsSectorBoundary(m, start)) {
    if (diag) {
      RegionLabel(diag, r).Str(": starts at ").Hex(start).Str(", not on a sector boundary of memory ")
          .Str(m.name);
    }
    return kInvalid;
  }
  if (!IsSectorBoundary(m, end)) {
    if (diag) {
      RegionLabel(diag, r).Str(": ends at ").Hex(end).Str(", not on a sector boundary of memory ").Str(m.name);
    }
    return kInvalid;
  }
  if (r.role == RegionRole::kRomfs && !m.mapped) {
    if (diag) RegionLabel(diag, r).Str(": role romfs needs a memory-mapped memory");
    return kInvalid;
  }
  return Status::Ok();
}

}  // namespace

uint32_t Memory::size() const { return static_cast<uint32_t>(MemorySize64(*this)); }

uint32_t Memory::sector_count() const {
  uint32_t total = 0;
  for (uint8_t g = 0; g < sector_group_count && g < kMaxSectorGroups; ++g) total += sectors[g].count;
  return total;
}

const char* RegionRoleName(RegionRole role) {
  switch (role) {
    case RegionRole::kBootloader: return "bootloader";
    case RegionRole::kFirmware: return "firmware";
    case RegionRole::kRecord: return "record";
    case RegionRole::kRomfs: return "romfs";
    case RegionRole::kFilesystem: return "filesystem";
    case RegionRole::kReserved: return "reserved";
    case RegionRole::kProvision: return "provision";
  }
  return "unknown";
}

Result<RegionRole> ParseRegionRole(const char* name) {
  constexpr RegionRole kRoles[] = {RegionRole::kBootloader, RegionRole::kFirmware, RegionRole::kRecord,
                                   RegionRole::kRomfs, RegionRole::kFilesystem, RegionRole::kReserved,
                                   RegionRole::kProvision};
  if (name == nullptr) return Status(StatusCode::kNotFound, "unknown region role");
  for (RegionRole role : kRoles) {
    if (SameText(name, RegionRoleName(role))) return role;
  }
  return Status(StatusCode::kNotFound, "unknown region role");
}

const Memory* Board::MemoryAt(uint32_t address) const {
  for (uint8_t i = 0; i < memory_count && i < kMaxMemories; ++i) {
    if (memories[i].Contains(address)) return &memories[i];
  }
  return nullptr;
}

const Region* Board::RegionAt(uint32_t address) const {
  for (uint8_t i = 0; i < region_count && i < kMaxRegions; ++i) {
    const Region& r = regions[i];
    if (r.memory >= memory_count) continue;
    const uint64_t start = RegionStart(r);
    if (address >= start && address < start + r.size) return &r;
  }
  return nullptr;
}

uint64_t Board::FirstReadOnly(uint64_t start, uint64_t size) const {
  const uint64_t end = start + size;
  while (start < end) {
    const Region* r = start <= 0xffffffffu ? RegionAt(static_cast<uint32_t>(start)) : nullptr;
    if (r == nullptr || r->role == RegionRole::kBootloader || r->role == RegionRole::kReserved) return start;
    start = uint64_t{RegionStart(*r)} + r->size;
  }
  return end;
}

const Region* Board::FindRole(RegionRole role) const {
  for (uint8_t i = 0; i < region_count && i < kMaxRegions; ++i) {
    if (regions[i].role == role) return &regions[i];
  }
  return nullptr;
}

const Region* Board::FindRegion(const char* name) const {
  if (name == nullptr) return nullptr;
  for (uint8_t i = 0; i < region_count && i < kMaxRegions; ++i) {
    if (SameText(regions[i].name, name)) return &regions[i];
  }
  return nullptr;
}

Result<SectorInfo> SectorContaining(const Memory& memory, uint32_t address) {
  uint64_t start = memory.base;
  uint32_t index = 0;
  for (uint8_t g = 0; g < memory.sector_group_count && g < kMaxSectorGroups && address >= memory.base; ++g) {
    const SectorGroup& group = memory.sectors[g];
    const uint64_t group_end = start + static_cast<uint64_t>(group.count) * group.size;
    if (address < group_end && group.size != 0) {
      // base <= start <= address here, so the offset fits 32 bits: a 32-bit
      // division (no 64-bit division routine on a 32-bit target).
      const uint32_t within = (address - static_cast<uint32_t>(start)) / group.size;
      SectorInfo info;
      info.index = index + within;
      info.start = static_cast<uint32_t>(start) + within * group.size;
      info.size = group.size;
      return info;
    }
    index += group.count;
    start = group_end;
  }
  return Status(StatusCode::kOutOfRange, "address outside the memory");
}

bool IsSectorBoundary(const Memory& memory, uint64_t address) {
  if (address < memory.base) return false;
  uint64_t start = memory.base;
  for (uint8_t g = 0; g < memory.sector_group_count && g < kMaxSectorGroups; ++g) {
    const SectorGroup& group = memory.sectors[g];
    const uint64_t group_end = start + static_cast<uint64_t>(group.count) * group.size;
    if (address < group_end) {
      // start <= address < group_end, and group.size != 0 (the group is not
      // empty). The offset fits 32 bits on any memory below 4 GiB: a 32-bit
      // remainder (no 64-bit division routine on a 32-bit target).
      const uint64_t within = address - start;
      return within <= 0xffffffffu && static_cast<uint32_t>(within) % group.size == 0;
    }
    start = group_end;
  }
  return address == start;  // the end of the memory
}

Status ValidateBoard(const Board& board, Diag* diag) {
  DiagClear(diag);
  if (board.memory_count == 0 || board.memory_count > kMaxMemories) {
    if (diag) diag->Str("board ").Str(board.id).Str(": needs 1 to ").Dec(kMaxMemories).Str(" memories");
    return kInvalid;
  }
  if (board.region_count > kMaxRegions) {
    if (diag) diag->Str("board ").Str(board.id).Str(": more than ").Dec(kMaxRegions).Str(" regions");
    return kInvalid;
  }
  for (uint8_t i = 0; i < board.memory_count; ++i) {
    ONEDFU_TRY(CheckMemory(board.memories[i], diag));
  }
  for (uint8_t i = 0; i < board.memory_count; ++i) {
    const Memory& a = board.memories[i];
    for (uint8_t j = i + 1; j < board.memory_count; ++j) {
      const Memory& b = board.memories[j];
      if (SameText(a.name, b.name)) {
        if (diag) diag->Str("memories ").Dec(i).Str(" and ").Dec(j).Str(" are both named ").Str(a.name);
        return kInvalid;
      }
      if (a.base < End64(b) && b.base < End64(a)) {
        if (diag) {
          diag->Str("memories ").Str(a.name).Str(" and ").Str(b.name).Str(" overlap at ")
              .Hex(a.base > b.base ? a.base : b.base);
        }
        return kInvalid;
      }
    }
  }
  uint8_t bootloaders = 0;
  uint8_t records = 0;
  for (uint8_t i = 0; i < board.region_count; ++i) {
    const Region& r = board.regions[i];
    ONEDFU_TRY(CheckRegion(board, r, diag));
    if (r.role == RegionRole::kBootloader) ++bootloaders;
    if (r.role == RegionRole::kRecord) ++records;
  }
  for (uint8_t i = 0; i < board.region_count; ++i) {
    const Region& a = board.regions[i];
    const uint64_t a_start = board.RegionStart(a);
    for (uint8_t j = i + 1; j < board.region_count; ++j) {
      const Region& b = board.regions[j];
      if (SameText(a.name, b.name)) {
        if (diag) diag->Str("regions ").Dec(i).Str(" and ").Dec(j).Str(" are both named ").Str(a.name);
        return kInvalid;
      }
      const uint64_t b_start = board.RegionStart(b);
      if (a_start < b_start + b.size && b_start < a_start + a.size) {
        if (diag) {
          diag->Str("regions ").Str(a.name).Str(" and ").Str(b.name).Str(" overlap at ")
              .Hex(a_start > b_start ? a_start : b_start);
        }
        return kInvalid;
      }
    }
  }
  if (bootloaders != 1) {
    if (diag) {
      diag->Str("board ").Str(board.id).Str(": needs exactly one bootloader region, has ").Dec(bootloaders);
    }
    return kInvalid;
  }
  if (records > 1) {
    if (diag) diag->Str("board ").Str(board.id).Str(": has ").Dec(records).Str(" record regions, at most 1");
    return kInvalid;
  }
  return Status::Ok();
}

Status CopyName(char (&dst)[kMaxNameLength + 1], const char* src) {
  if (src == nullptr) return Status(StatusCode::kInvalidArgument, "name is null");
  size_t n = 0;
  while (src[n] != '\0') {
    if (n == kMaxNameLength) {
      return Status(StatusCode::kInvalidArgument,
                    "name longer than " ONEDFU_BOARD_STRINGIFY(ONEDFU_BOARD_MAX_NAME_LENGTH) " characters");
    }
    ++n;
  }
  for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  dst[n] = '\0';
  return Status::Ok();
}

}  // namespace onedfu::runtime
