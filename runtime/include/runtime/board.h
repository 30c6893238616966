// Board layout model: memories (with mixed sector maps and timing) and the
// regions laid over them. Fixed capacity, no heap: the bootloader keeps one
// Board in static storage; the packer fills one from manifests/boards/*.json.
//
// All addresses are absolute bus addresses (memory base + offset), 32-bit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/diag.h"
#include "runtime/status.h"

namespace onedfu::runtime {

// Capacities. A flash-tight device build whose board is a constant may lower
// them (every translation unit of that build with the same -D values), so the
// constant carries no empty slots; the defaults are what boards/*.json allow.
#ifndef ONEDFU_BOARD_MAX_NAME_LENGTH
#define ONEDFU_BOARD_MAX_NAME_LENGTH 31
#endif
#ifndef ONEDFU_BOARD_MAX_MEMORIES
#define ONEDFU_BOARD_MAX_MEMORIES 4
#endif
#ifndef ONEDFU_BOARD_MAX_SECTOR_GROUPS
#define ONEDFU_BOARD_MAX_SECTOR_GROUPS 8
#endif
#ifndef ONEDFU_BOARD_MAX_ERASE_TIMINGS
#define ONEDFU_BOARD_MAX_ERASE_TIMINGS 4
#endif
#ifndef ONEDFU_BOARD_MAX_REGIONS
#define ONEDFU_BOARD_MAX_REGIONS 16
#endif

inline constexpr size_t kMaxNameLength = ONEDFU_BOARD_MAX_NAME_LENGTH;      // characters, NUL excluded
inline constexpr size_t kMaxMemories = ONEDFU_BOARD_MAX_MEMORIES;
inline constexpr size_t kMaxSectorGroups = ONEDFU_BOARD_MAX_SECTOR_GROUPS;  // "4*32K,1*128K,7*256K" is 3 groups
inline constexpr size_t kMaxEraseTimings = ONEDFU_BOARD_MAX_ERASE_TIMINGS;
inline constexpr size_t kMaxRegions = ONEDFU_BOARD_MAX_REGIONS;
// Counts are uint8_t fields.
static_assert(kMaxNameLength >= 1 && kMaxMemories >= 1 && kMaxMemories <= 255 && kMaxSectorGroups >= 1 &&
              kMaxSectorGroups <= 255 && kMaxEraseTimings <= 255 && kMaxRegions <= 255);

struct SectorGroup {
  uint32_t count = 0;  // number of sectors
  uint32_t size = 0;   // bytes per sector, a power of two
};

// Typical time to erase one erase unit of `size` bytes. A QSPI NOR part lists
// both its 4 KiB sector and its 64 KiB block erase.
struct EraseTiming {
  uint32_t size = 0;         // bytes
  uint32_t microseconds = 0;
};

struct Memory {
  char name[kMaxNameLength + 1] = {};   // file name stem in the simulator: <name>.bin
  char label[kMaxNameLength + 1] = {};  // DfuSe layout label, e.g. "Internal Flash"
  uint32_t base = 0;
  SectorGroup sectors[kMaxSectorGroups] = {};
  uint8_t sector_group_count = 0;
  uint32_t write_align = 1;   // bytes; writes start and end on this boundary
  uint8_t erased_value = 0xff;
  bool mapped = false;        // readable in the CPU address space (XIP)
  bool ecc = false;           // ECC per write unit (STM32H7-class): reading a torn unit faults
  EraseTiming erase_timings[kMaxEraseTimings] = {};
  uint8_t erase_timing_count = 0;
  uint32_t program_us = 0;    // typical time to program one program unit
  uint32_t program_bytes = 1; // bytes in one program unit (word, page)

  uint32_t size() const;
  uint32_t sector_count() const;
  // Absolute end (one past the last byte), as 64-bit so a memory that ends at 4 GiB is fine.
  uint64_t end() const { return static_cast<uint64_t>(base) + size(); }
  bool Contains(uint32_t address) const { return address >= base && address < end(); }
};

// kReserved: flash that is not the package's (e.g. a radio co-processor's
// stack): read-only over USB like the bootloader, never in a package.
// kProvision: per-board factory data (runtime/provision_record.h), written by the station
// (`onedfu flash --provision`), never by a package's segments; kept by mass erase.
enum class RegionRole : uint8_t { kBootloader, kFirmware, kRecord, kRomfs, kFilesystem, kReserved, kProvision };

// "bootloader", "firmware", "record", "romfs", "filesystem", "reserved", "provision".
const char* RegionRoleName(RegionRole role);
// Parses a role name; kNotFound for anything else.
Result<RegionRole> ParseRegionRole(const char* name);

struct Region {
  char name[kMaxNameLength + 1] = {};
  uint8_t memory = 0;   // index into Board::memories
  uint32_t offset = 0;  // from the memory's base
  uint32_t size = 0;
  RegionRole role = RegionRole::kFirmware;
};

// What verifying a package costs the board's CPU at boot (board JSON
// "boot_cost"; runtime/flash_timing.h VerifyTimeUs): typical figures of our
// portable code at -Os, per byte hashed and per signature check. All 0 when
// the board file gives none.
struct BootCost {
  uint32_t clock_mhz = 0;               // CPU clock
  uint32_t sha256_cycles_per_byte = 0;  // runtime/sha256.cpp, flash read in place
  uint32_t crc32_cycles_per_byte = 0;   // the record CRC
  uint32_t ed25519_verify_cycles = 0;   // one runtime/ed25519.cpp verification (2 KiB record)
  friend bool operator==(const BootCost&, const BootCost&) = default;
};

struct Board {
  char id[kMaxNameLength + 1] = {};
  char arch[kMaxNameLength + 1] = {};  // MicroPython native arch name, e.g. "armv7emdp"
  uint16_t vid = 0x0483;
  uint16_t pid = 0xdf11;
  uint16_t bcd_device = 0x0200;
  Memory memories[kMaxMemories] = {};
  uint8_t memory_count = 0;
  Region regions[kMaxRegions] = {};
  uint8_t region_count = 0;
  BootCost boot_cost{};

  uint32_t RegionStart(const Region& r) const { return memories[r.memory].base + r.offset; }
  // The memory holding `address`, or null.
  const Memory* MemoryAt(uint32_t address) const;
  // The region holding `address`, or null.
  const Region* RegionAt(uint32_t address) const;
  // The first region with this role, or null.
  const Region* FindRole(RegionRole role) const;
  const Region* FindRegion(const char* name) const;
  // The one "may USB change this?" rule (layout string letters, erase, write,
  // mass erase): only flash inside a region whose role is not bootloader or
  // reserved may be erased or written; those regions and flash that no region
  // lists are read-only. Returns the first read-only address of
  // [start, start + size), or start + size when all of it may change.
  uint64_t FirstReadOnly(uint64_t start, uint64_t size) const;
};

// Where one sector lies, in absolute addresses.
struct SectorInfo {
  uint32_t index = 0;
  uint32_t start = 0;
  uint32_t size = 0;
};

// The sector of `memory` that contains `address`; kOutOfRange outside it.
Result<SectorInfo> SectorContaining(const Memory& memory, uint32_t address);

// The one sector-boundary rule: true when the absolute `address` is the start
// of a sector of `memory` or its end (one past the last byte; 64-bit so a
// memory ending at 4 GiB works). False below the base, past the end, and
// inside a sector. An erase, a region or a slot starts and ends on one.
bool IsSectorBoundary(const Memory& memory, uint64_t address);

// Checks every structural rule and names the offender in `diag`:
// sector sizes are powers of two, write_align is a power of two, regions lie
// inside their memory on sector boundaries, regions do not overlap, exactly one
// bootloader region, romfs regions are memory-mapped, memories do not overlap.
Status ValidateBoard(const Board& board, Diag* diag);

// Copies a NUL-terminated string into a fixed name field; kInvalidArgument if too long.
Status CopyName(char (&dst)[kMaxNameLength + 1], const char* src);

}  // namespace onedfu::runtime
