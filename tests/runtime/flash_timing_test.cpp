// The flash cost model (runtime/flash_timing.h): erase steps, erase and program times, bounds.
#include "runtime/flash_timing.h"

#include <doctest/doctest.h>

namespace {

using onedfu::runtime::EraseStep;
using onedfu::runtime::EraseStepAt;
using onedfu::runtime::EraseTimeUs;
using onedfu::runtime::Memory;
using onedfu::runtime::ProgramTimeUs;

// QSPI NOR: 32 x 4 KiB at 0x90000000; 4 KiB erase 45 ms, 64 KiB block erase 150 ms; 256-byte
// pages at 700 us.
Memory Qspi() {
  Memory m;
  m.base = 0x90000000;
  m.sectors[0] = {32, 4096};
  m.sector_group_count = 1;
  m.write_align = 4;
  m.erase_timings[0] = {65536, 150000};  // listed before the sector: order does not matter
  m.erase_timings[1] = {4096, 45000};
  m.erase_timing_count = 2;
  m.program_us = 700;
  m.program_bytes = 256;
  return m;
}

// STM32F7-like: 4 x 32 KiB, 1 x 128 KiB (no time listed), 1 x 256 KiB at 0x08000000; 32-bit
// words at 16 us.
Memory Internal() {
  Memory m;
  m.base = 0x08000000;
  m.sectors[0] = {4, 32 * 1024};
  m.sectors[1] = {1, 128 * 1024};
  m.sectors[2] = {1, 256 * 1024};
  m.sector_group_count = 3;
  m.write_align = 4;
  m.erase_timings[0] = {32 * 1024, 450000};
  m.erase_timings[1] = {256 * 1024, 2600000};
  m.erase_timing_count = 2;
  m.program_us = 16;
  m.program_bytes = 4;
  return m;
}

}  // namespace

TEST_CASE("flash timing: an erase step is the largest listed unit that is aligned and fits") {
  const Memory q = Qspi();
  EraseStep step = EraseStepAt(q, 0x90000000, 65536);
  CHECK(step.size == 65536u);
  CHECK(step.microseconds == 150000u);
  CHECK(step.block);
  // Fits but not aligned, aligned but does not fit: the sector.
  step = EraseStepAt(q, 0x90001000, 65536);
  CHECK(step.size == 4096u);
  CHECK(step.microseconds == 45000u);
  CHECK_FALSE(step.block);
  CHECK(EraseStepAt(q, 0x90010000, 65535).size == 4096u);
  // Outside the memory: no step.
  CHECK(EraseStepAt(q, 0x90020000, 4096).size == 0u);
  CHECK(EraseStepAt(q, 0x8fffffff, 4096).size == 0u);
}

TEST_CASE("flash timing: erase time of a run, block erases where they fit") {
  const Memory q = Qspi();
  CHECK(EraseTimeUs(q, 0x90000000, 4096) == 45000u);
  CHECK(EraseTimeUs(q, 0x90000000, 65536) == 150000u);
  CHECK(EraseTimeUs(q, 0x90000000, 0x20000) == 2 * 150000u);  // the whole memory: two blocks
  CHECK(EraseTimeUs(q, 0x90011000, 8192) == 2 * 45000u);
  // 64 KiB from 0x90001000: no block is aligned inside, 16 sector erases.
  CHECK(EraseTimeUs(q, 0x90001000, 65536) == 16 * 45000u);
  // 0x9000f000 + 68 KiB: one sector, then the block at 0x90010000.
  CHECK(EraseTimeUs(q, 0x9000f000, 0x11000) == 45000u + 150000u);

  const Memory m = Internal();
  CHECK(EraseTimeUs(m, 0x08000000, 32 * 1024) == 450000u);
  CHECK(EraseTimeUs(m, 0x08040000, 256 * 1024) == 2600000u);
  CHECK(EraseTimeUs(m, 0x08020000, 128 * 1024) == 0u);  // no time listed for 128 KiB
  CHECK(EraseTimeUs(m, 0x08000000, m.size()) == 4 * 450000u + 2600000u);
}

TEST_CASE("flash timing: erase time bounds") {
  const Memory q = Qspi();
  CHECK(EraseTimeUs(q, 0x90000000, 0) == 0u);
  CHECK(EraseTimeUs(q, 0x8ffff000, 4096) == 0u);            // below the base
  CHECK(EraseTimeUs(q, 0x9001f000, 4096) == 45000u);        // the last sector
  CHECK(EraseTimeUs(q, 0x9001f000, 8192) == 0u);            // one sector past the end
  CHECK(EraseTimeUs(q, 0x90000000, 0xffffffffu) == 0u);     // no wrap-around
  // A memory ending at 4 GiB.
  Memory top = Qspi();
  top.base = 0xfffe0000;
  CHECK(EraseTimeUs(top, 0xfffff000, 4096) == 45000u);
  CHECK(EraseTimeUs(top, 0xfffe0000, 0x20000) == 2 * 150000u);
  CHECK(EraseTimeUs(top, 0xfffff000, 8192) == 0u);
}

TEST_CASE("flash timing: program time counts the program units a write touches") {
  const Memory q = Qspi();
  CHECK(ProgramTimeUs(q, 0x90000000, 2048) == 8 * 700u);
  CHECK(ProgramTimeUs(q, 0x90000010, 2048) == 9 * 700u);  // not page aligned: one page more
  CHECK(ProgramTimeUs(q, 0x900010fc, 8) == 2 * 700u);     // straddles a page boundary
  CHECK(ProgramTimeUs(q, 0x90000000, 257) == 2 * 700u);
  CHECK(ProgramTimeUs(q, 0x90000004, 1) == 700u);
  CHECK(ProgramTimeUs(q, 0x90000000, 0) == 0u);
  const Memory m = Internal();
  CHECK(ProgramTimeUs(m, 0x08008000, 2048) == 512 * 16u);
  CHECK(ProgramTimeUs(m, 0x08008002, 4) == 2 * 16u);
  // A program unit of 0 bytes (not a valid board) counts bytes.
  Memory bytes = m;
  bytes.program_bytes = 0;
  CHECK(ProgramTimeUs(bytes, 0x08008000, 10) == 10 * 16u);
}

TEST_CASE("flash timing: program time bounds") {
  const Memory q = Qspi();
  CHECK(ProgramTimeUs(q, 0x9001fffc, 4) == 700u);   // the last word
  CHECK(ProgramTimeUs(q, 0x9001fffc, 8) == 0u);     // runs past the end
  CHECK(ProgramTimeUs(q, 0x8ffffffc, 4) == 0u);     // below the base
  CHECK(ProgramTimeUs(q, 0x90000000, 0xffffffffu) == 0u);
  Memory top = Qspi();
  top.base = 0xfffe0000;
  CHECK(ProgramTimeUs(top, 0xfffffffc, 4) == 700u);
  CHECK(ProgramTimeUs(top, 0xffffff00, 256) == 700u);
  CHECK(ProgramTimeUs(top, 0xfffffffc, 8) == 0u);
}

TEST_CASE("flash timing: a time listed for a sector size is never a block erase") {
  // 0x08000000 is 256 KiB aligned and a 256 KiB run fits, but 256 KiB is the size of the
  // memory's last sector: its time is that sector's, so the 32 KiB sectors erase one by one.
  const Memory m = Internal();
  const EraseStep step = EraseStepAt(m, 0x08000000, 256 * 1024);
  CHECK(step.size == 32u * 1024);
  CHECK_FALSE(step.block);
  CHECK(EraseTimeUs(m, 0x08000000, 256 * 1024) == 4 * 450000u);  // + the unlisted 128 KiB
}

TEST_CASE("flash timing: EraseRunCost counts the block erases it used") {
  const Memory q = Qspi();
  onedfu::runtime::EraseCost cost = onedfu::runtime::EraseRunCost(q, 0x9000f000, 0x11000);
  CHECK(cost.microseconds == 45000u + 150000u);
  CHECK(cost.blocks == 1u);
  cost = onedfu::runtime::EraseRunCost(q, 0x90000000, 0x20000);
  CHECK(cost.blocks == 2u);
  CHECK(onedfu::runtime::EraseRunCost(q, 0x90001000, 8192).blocks == 0u);
  CHECK(onedfu::runtime::EraseRunCost(q, 0x9001f000, 8192).blocks == 0u);  // outside: nothing
}
