#include "runtime/flash_timing.h"

#include "runtime/boot_record.h"

namespace onedfu::runtime {
namespace {

// True when some sector group of the memory has sectors of `size` (> 0)
// bytes: a listed time for that size is a sector erase, not a block
// instruction. Unused group slots hold size 0 and never match (scanning them
// all is smaller code than bounding the loop by sector_group_count).
bool IsSectorSize(const Memory& memory, uint32_t size) {
  for (const SectorGroup& group : memory.sectors) {
    if (group.size == size) return true;
  }
  return false;
}

// True when [address, address + size) lies inside the memory.
bool Inside(const Memory& memory, uint32_t address, uint32_t size) {
  return address >= memory.base && static_cast<uint64_t>(address) + size <= memory.end();
}

}  // namespace

EraseStep EraseStepAt(const Memory& memory, uint32_t address, uint32_t left) {
  auto sector = SectorContaining(memory, address);
  if (!sector.ok()) return EraseStep{};
  EraseStep step{sector->size, 0, false};
  // address is inside the memory, so its offset fits 32 bits (32-bit modulo).
  const uint32_t offset = address - memory.base;
  for (uint8_t t = 0; t < memory.erase_timing_count && t < kMaxEraseTimings; ++t) {
    const EraseTiming& unit = memory.erase_timings[t];
    if (unit.size == sector->size && !step.block) {
      step.microseconds = unit.microseconds;  // the sector's own erase time
    } else if (unit.size > step.size && unit.size <= left && offset % unit.size == 0 &&
               !IsSectorSize(memory, unit.size)) {
      step = EraseStep{unit.size, unit.microseconds, true};
    }
  }
  return step;
}

EraseCost EraseRunCost(const Memory& memory, uint32_t address, uint32_t size) {
  EraseCost cost;
  if (size == 0 || !Inside(memory, address, size)) return cost;
  for (uint32_t at = address, left = size;;) {
    const EraseStep step = EraseStepAt(memory, at, left);
    if (step.size == 0) return cost;
    cost.microseconds += step.microseconds;
    cost.blocks += step.block ? 1 : 0;
    if (step.size >= left) return cost;
    at += step.size;
    left -= step.size;
  }
}

uint64_t ProgramTimeUs(const Memory& memory, uint32_t address, uint32_t size) {
  if (size == 0 || !Inside(memory, address, size)) return 0;
  const uint32_t unit = memory.program_bytes == 0 ? 1 : memory.program_bytes;
  // Inside the memory, offset + size - 1 < memory.size() fits 32 bits.
  const uint32_t first = address - memory.base;
  const uint32_t last = first + (size - 1);
  return static_cast<uint64_t>(last / unit - first / unit + 1) * memory.program_us;
}

}  // namespace onedfu::runtime

namespace onedfu::runtime {

// Host-side figure (the simulator's stats); the device never calls it, so its
// 64-bit division stays out of the Cortex-M image.
uint64_t VerifyTimeUs(const BootCost& cost, uint64_t bytes_hashed, uint32_t signatures) {
  if (cost.clock_mhz == 0) return 0;
  const uint64_t cycles = uint64_t{kRecordSize} * cost.crc32_cycles_per_byte +
                          bytes_hashed * cost.sha256_cycles_per_byte +
                          uint64_t{signatures} * cost.ed25519_verify_cycles;
  return (cycles + cost.clock_mhz - 1) / cost.clock_mhz;
}

}  // namespace onedfu::runtime
