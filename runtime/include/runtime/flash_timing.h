// The flash cost model: typical erase and program times from a memory's
// timing (Memory::erase_timings, program_us, program_bytes; DESIGN.md 8).
//
// One model for both sides: the bootloader reports it as bwPollTimeout
// (bootloader/guarded_flash.h estimates), the simulator charges it to its
// modeled clock (sim/file_flash.h), so the poll timeout a host sees and the
// time the simulator adds up agree for the same operation.
//
// Erase: a driver erases a run of sectors step by step; at each step it uses
// the largest listed block erase that is aligned (offset from the memory
// base) and inside the run (a QSPI NOR 64 KiB block), else the one sector
// there. A listed unit is a block erase when it is larger than that sector
// and no sector of the memory has its size (on an STM32 the 256 KiB time is
// the 256 KiB sectors' own, never a block over 32 KiB sectors). Each step
// costs its unit's listed time (0 when the board lists none for that size).
// Hash: SHA-256 of flash (runtime/sha256.h, Sha256UpdateFlash) costs the
// board's boot_cost figure (sha256_cycles_per_byte at clock_mhz, the one the
// boot cost model VerifyTimeUs uses too), the same for every memory; none
// when the board gives no boot_cost. The one figure the device (its
// bwPollTimeout), the simulator and the benchmarks use.
// Program: one Write call costs program_us for every program unit
// (program_bytes, aligned to the memory base) its bytes touch.
//
// Embedded-safe: offsets are 32-bit inside the memory, so there is no 64-bit
// division on the device path.
#pragma once

#include <cstdint>

#include "runtime/board.h"

namespace onedfu::runtime {

// One erase step of a driver.
struct EraseStep {
  uint32_t size = 0;          // bytes the step erases; 0 when the address is outside the memory
  uint32_t microseconds = 0;  // its typical time
  bool block = false;         // a listed unit larger than the sector (block erase)
};

// The step a driver takes at `address` (a sector start) when `left` bytes of
// the run remain; see the file comment.
EraseStep EraseStepAt(const Memory& memory, uint32_t address, uint32_t left);

// What erasing the sectors [address, address + size) in one call (address a
// sector start) costs, as the steps above. Zero unless the range is non-empty
// and inside the memory.
struct EraseCost {
  uint64_t microseconds = 0;  // typical time
  uint32_t blocks = 0;        // steps that were block erases
};
EraseCost EraseRunCost(const Memory& memory, uint32_t address, uint32_t size);

// EraseRunCost's time, microseconds.
inline uint64_t EraseTimeUs(const Memory& memory, uint32_t address, uint32_t size) {
  return EraseRunCost(memory, address, size).microseconds;
}

// Typical time of one Write of `size` bytes at `address`, microseconds. 0 for
// size 0 or a range not inside the memory.
uint64_t ProgramTimeUs(const Memory& memory, uint32_t address, uint32_t size);

// SHA-256 of one KiB of flash on the board's CPU, microseconds (rounded up);
// 0 when the board gives no clock. Per KiB, so the device divides in 32 bits.
constexpr uint32_t HashUsPerKiB(const BootCost& cost) {
  return cost.clock_mhz == 0 ? 0 : (1024u * cost.sha256_cycles_per_byte + cost.clock_mhz - 1) / cost.clock_mhz;
}

// Typical time to hash `size` bytes of flash, microseconds (rounded up).
constexpr uint64_t HashTimeUs(const BootCost& cost, uint64_t size) { return (size * HashUsPerKiB(cost) + 1023) >> 10; }

// Modeled CPU time of one boot decision's verification, microseconds, from
// the board's BootCost: the record CRC (kRecordSize bytes), `bytes_hashed`
// SHA-256 bytes and `signatures` Ed25519 checks. 0 when the board gives no
// clock.
uint64_t VerifyTimeUs(const BootCost& cost, uint64_t bytes_hashed, uint32_t signatures);

}  // namespace onedfu::runtime
