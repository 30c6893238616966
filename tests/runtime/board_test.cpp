// Board model: geometry queries and every ValidateBoard rule, on the shipped
// PYBD-SF6 board as a generated constant (no JSON parsing in runtime tests).
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "generated_boards.h"
#include "runtime/board.h"

namespace onedfu::runtime {
namespace {

Memory MakeMemory(const char* name, uint32_t base, std::initializer_list<SectorGroup> groups, bool mapped) {
  Memory m;
  REQUIRE(CopyName(m.name, name).ok());
  REQUIRE(CopyName(m.label, name).ok());
  m.base = base;
  for (const SectorGroup& g : groups) m.sectors[m.sector_group_count++] = g;
  m.write_align = 4;
  m.mapped = mapped;
  return m;
}

// The shipped PYBD-SF6 board (manifests/boards/pybd-sf6.json, generated into a
// constant at build time): internal 2 MiB (4*32K, 1*128K, 7*256K) at 0x08000000,
// QSPI 2 MiB (512*4K) at 0x90000000.
Board MakePybd() { return boards::kPybdSf6; }

std::string Check(const Board& b, Status* status_out = nullptr) {
  Diag diag;
  const Status s = ValidateBoard(b, &diag);
  if (status_out) *status_out = s;
  return s.ok() ? std::string("ok") : std::string(diag.c_str());
}

TEST_CASE("board: memory geometry") {
  const Board b = MakePybd();
  CHECK(b.memories[0].size() == 2u * 1024 * 1024);
  CHECK(b.memories[0].sector_count() == 12u);
  CHECK(b.memories[0].end() == 0x08200000u);
  CHECK(b.memories[1].size() == 2u * 1024 * 1024);
  CHECK(b.memories[1].sector_count() == 512u);
  CHECK(b.memories[0].Contains(0x081fffff));
  CHECK_FALSE(b.memories[0].Contains(0x08200000));
  CHECK_FALSE(b.memories[0].Contains(0x07ffffff));
}

TEST_CASE("board: a memory ending at 4 GiB") {
  Memory m = MakeMemory("top", 0xfff00000, {{256, 4096}}, true);
  CHECK(m.end() == 0x100000000ull);
  CHECK(m.Contains(0xffffffff));
  auto last = SectorContaining(m, 0xffffffff);
  REQUIRE(last.ok());
  CHECK(last->start == 0xfffff000u);
  CHECK(last->index == 255u);
}

TEST_CASE("board: SectorContaining walks mixed sector groups") {
  const Memory& m = MakePybd().memories[0];
  auto first = SectorContaining(m, 0x08000000);
  REQUIRE(first.ok());
  CHECK(first->index == 0u);
  CHECK(first->start == 0x08000000u);
  CHECK(first->size == 0x8000u);

  // An unaligned address inside sector 1 (dfu-util sends those).
  auto s1 = SectorContaining(m, 0x08008123);
  REQUIRE(s1.ok());
  CHECK(s1->index == 1u);
  CHECK(s1->start == 0x08008000u);

  // The 128K sector is index 4 at 0x08020000; the 256K ones follow.
  auto s4 = SectorContaining(m, 0x0803ffff);
  REQUIRE(s4.ok());
  CHECK(s4->index == 4u);
  CHECK(s4->start == 0x08020000u);
  CHECK(s4->size == 0x20000u);
  auto s11 = SectorContaining(m, 0x081fffff);
  REQUIRE(s11.ok());
  CHECK(s11->index == 11u);
  CHECK(s11->start == 0x081c0000u);
  CHECK(s11->size == 0x40000u);

  CHECK(SectorContaining(m, 0x08200000).status().code() == StatusCode::kOutOfRange);
  CHECK(SectorContaining(m, 0x07ffffff).status().code() == StatusCode::kOutOfRange);
}

TEST_CASE("board: IsSectorBoundary over mixed sector groups and at the ends") {
  const Memory& m = MakePybd().memories[0];  // 4*32K, 1*128K, 7*256K at 0x08000000
  CHECK(IsSectorBoundary(m, 0x08000000));
  CHECK(IsSectorBoundary(m, 0x08008000));
  CHECK(IsSectorBoundary(m, 0x08020000));  // first 128K sector: a group boundary
  CHECK(IsSectorBoundary(m, 0x08040000));  // first 256K sector
  CHECK(IsSectorBoundary(m, 0x081c0000));
  CHECK(IsSectorBoundary(m, 0x08200000));  // the end counts
  CHECK_FALSE(IsSectorBoundary(m, 0x08004000));  // inside a 32K sector
  CHECK_FALSE(IsSectorBoundary(m, 0x08030000));  // 32K-aligned, inside the 128K sector
  CHECK_FALSE(IsSectorBoundary(m, 0x08060000));  // 128K-aligned, inside a 256K sector
  CHECK_FALSE(IsSectorBoundary(m, 0x07fff000));  // below the base
  CHECK_FALSE(IsSectorBoundary(m, 0x08240000));  // past the end
  CHECK_FALSE(IsSectorBoundary(m, 0x108000000ull));  // past 4 GiB, base + 4 GiB
  // A memory that ends at 4 GiB: its end is a boundary, one sector more is not.
  const Memory top = MakeMemory("top", 0xfff00000, {{256, 4096}}, true);
  CHECK(IsSectorBoundary(top, 0xfffff000));
  CHECK(IsSectorBoundary(top, 0x100000000ull));
  CHECK_FALSE(IsSectorBoundary(top, 0x100001000ull));
  CHECK_FALSE(IsSectorBoundary(top, 0xfffff800));
}

TEST_CASE("board: lookups by address, role and name") {
  const Board b = MakePybd();
  CHECK(b.MemoryAt(0x90000010) == &b.memories[1]);
  CHECK(b.MemoryAt(0x20000000) == nullptr);
  const Region* r = b.RegionAt(0x08008000);
  REQUIRE(r != nullptr);
  CHECK(std::strcmp(r->name, "text0") == 0);
  CHECK(b.RegionAt(0x08007fff) == &b.regions[0]);
  CHECK(b.RegionAt(0x901fffff) == &b.regions[5]);
  CHECK(b.RegionAt(0x90200000) == nullptr);
  CHECK(b.FindRole(RegionRole::kRomfs) == &b.regions[4]);
  CHECK(b.FindRole(RegionRole::kFirmware) == &b.regions[1]);  // the first one
  CHECK(b.FindRegion("record") == &b.regions[5]);
  CHECK(b.FindRegion("recor") == nullptr);
  CHECK(b.FindRegion(nullptr) == nullptr);
  CHECK(b.RegionStart(b.regions[4]) == 0x90100000u);
}

TEST_CASE("board: FirstReadOnly: bootloader, reserved and unlisted flash are read-only") {
  Board b = MakePybd();
  // Writable regions, contiguous across region boundaries (text1 -> romfs -> record).
  CHECK(b.FirstReadOnly(0x08008000, 0x1b8000) == 0x081c0000u);
  CHECK(b.FirstReadOnly(0x90000000, 0x200000) == 0x90200000u);
  CHECK(b.FirstReadOnly(0x08008000, 0) == 0x08008000u);
  // The bootloader, from its first byte or from inside a range that starts before it.
  CHECK(b.FirstReadOnly(0x08000000, 16) == 0x08000000u);
  CHECK(b.FirstReadOnly(0x08007ff0, 32) == 0x08007ff0u);
  // Past the end of every region, and beyond the 32-bit address space.
  CHECK(b.FirstReadOnly(0x901ff000, 0x2000) == 0x90200000u);
  CHECK(b.FirstReadOnly(0xfffff000, 0x2000) == 0xfffff000u);
  // A reserved region (text1 made one) and a dropped region (filesystem, now unlisted).
  b.regions[3].role = RegionRole::kReserved;
  CHECK(b.FirstReadOnly(0x90000000, 16) == 0x90000000u);
  CHECK(b.FirstReadOnly(0x90100000, 16) == 0x90100000u + 16);
  b.regions[2] = b.regions[5];
  b.region_count = 5;
  CHECK(b.FirstReadOnly(0x081bf000, 0x2000) == 0x081c0000u);
  CHECK(Check(b) == "ok");
}

TEST_CASE("board: region role names round-trip") {
  for (RegionRole role : {RegionRole::kBootloader, RegionRole::kFirmware, RegionRole::kRecord, RegionRole::kRomfs,
                          RegionRole::kFilesystem, RegionRole::kReserved}) {
    auto parsed = ParseRegionRole(RegionRoleName(role));
    REQUIRE(parsed.ok());
    CHECK(*parsed == role);
  }
  CHECK(std::strcmp(RegionRoleName(RegionRole::kRomfs), "romfs") == 0);
  CHECK(std::strcmp(RegionRoleName(RegionRole::kReserved), "reserved") == 0);
  CHECK(ParseRegionRole("ROMFS").status().code() == StatusCode::kNotFound);
  CHECK(ParseRegionRole("").status().code() == StatusCode::kNotFound);
  CHECK(ParseRegionRole(nullptr).status().code() == StatusCode::kNotFound);
}

TEST_CASE("board: CopyName limits") {
  char name[kMaxNameLength + 1] = {};
  CHECK(CopyName(name, "0123456789012345678901234567890").ok());  // 31 characters
  CHECK(std::strlen(name) == 31);
  CHECK(CopyName(name, "01234567890123456789012345678901").code() == StatusCode::kInvalidArgument);
  CHECK(std::strcmp(name, "0123456789012345678901234567890") == 0);  // unchanged on failure
  CHECK(CopyName(name, nullptr).code() == StatusCode::kInvalidArgument);
  CHECK(CopyName(name, "").ok());
  CHECK(name[0] == '\0');
}

TEST_CASE("board: the reference board is valid") {
  CHECK(Check(MakePybd()) == "ok");
}

TEST_CASE("board: region past the end of its memory") {
  Board b = MakePybd();
  b.regions[3].size = 0x100001;  // text1 runs one byte into romfs and past the sector grid
  b.regions[3].offset = 0x100000;
  b.regions[4].offset = 0x1ff000;
  b.regions[4].size = 0x1000;
  b.region_count = 5;  // drop the record
  Status s;
  CHECK(Check(b, &s) == "region text1: ends at 0x90200001, past memory qspi (ends 0x90200000)");
  CHECK(s.code() == StatusCode::kOutOfRange);
}

TEST_CASE("board: regions on sector boundaries") {
  Board b = MakePybd();
  b.regions[1].offset = 0x8004;
  CHECK(Check(b) == "region text0: starts at 0x08008004, not on a sector boundary of memory internal");
  b = MakePybd();
  b.regions[1].size = 0x1b7000;  // ends inside the last 256K sector
  CHECK(Check(b) == "region text0: ends at 0x081bf000, not on a sector boundary of memory internal");
}

TEST_CASE("board: overlapping regions are named") {
  Board b = MakePybd();
  b.regions[4].offset = 0xff000;  // romfs starts inside text1
  b.regions[4].size = 0x100000;
  CHECK(Check(b) == "regions text1 and romfs overlap at 0x900ff000");
}

TEST_CASE("board: romfs needs a memory-mapped memory") {
  Board b = MakePybd();
  b.memories[1].mapped = false;
  CHECK(Check(b) == "region romfs: role romfs needs a memory-mapped memory");
}

TEST_CASE("board: exactly one bootloader region") {
  Board b = MakePybd();
  b.regions[0].role = RegionRole::kFirmware;
  CHECK(Check(b) == "board pybd-sf6: needs exactly one bootloader region, has 0");
  b = MakePybd();
  b.regions[2].role = RegionRole::kBootloader;
  CHECK(Check(b) == "board pybd-sf6: needs exactly one bootloader region, has 2");
}

TEST_CASE("board: at most one record region") {
  Board b = MakePybd();
  b.regions[2].role = RegionRole::kRecord;
  CHECK(Check(b) == "board pybd-sf6: has 2 record regions, at most 1");
}

TEST_CASE("board: sector sizes and write_align are powers of two") {
  Board b = MakePybd();
  b.memories[1].sectors[0] = {512, 4000};
  CHECK(Check(b) == "memory qspi: sector group 0 size 4000 is not a power of two");
  b = MakePybd();
  b.memories[0].write_align = 12;
  CHECK(Check(b) == "memory internal: write_align 12 is not a power of two");
  b = MakePybd();
  b.memories[1].write_align = 8192;  // larger than a 4K sector
  CHECK(Check(b) == "memory qspi: sector size 4096 is smaller than write_align 8192");
  b = MakePybd();
  b.memories[1].sectors[0].count = 0;
  CHECK(Check(b) == "memory qspi: sector group 0 has no sectors");
}

TEST_CASE("board: memories must not overlap and must fit 32 bits") {
  Board b = MakePybd();
  b.memories[1].base = 0x081ff000;
  CHECK(Check(b) == "memories internal and qspi overlap at 0x081ff000");
  b = MakePybd();
  b.memories[1].base = 0xfff00000;  // 2 MiB from here runs past 4 GiB
  CHECK(Check(b) == "memory qspi: ends at 0x100100000, past the 32-bit address space");
  b = MakePybd();
  REQUIRE(CopyName(b.memories[1].name, "internal").ok());
  CHECK(Check(b) == "memories 0 and 1 are both named internal");
}

TEST_CASE("board: region fields are checked") {
  Board b = MakePybd();
  b.regions[3].memory = 2;
  CHECK(Check(b) == "region text1: memory index 2 does not exist");
  b = MakePybd();
  b.regions[2].size = 0;
  CHECK(Check(b) == "region filesystem: size is 0");
  b = MakePybd();
  REQUIRE(CopyName(b.regions[2].name, "text0").ok());
  CHECK(Check(b) == "regions 1 and 2 are both named text0");
  b = MakePybd();
  b.regions[2].name[0] = '\0';
  CHECK(Check(b) == "region at offset 0x001c0000: name is empty");
}

TEST_CASE("board: counts are capped") {
  Board b = MakePybd();
  b.memory_count = 0;
  CHECK(Check(b) == "board pybd-sf6: needs 1 to 4 memories");
  b = MakePybd();
  b.region_count = kMaxRegions + 1;
  CHECK(Check(b) == "board pybd-sf6: more than 16 regions");
  b = MakePybd();
  b.memories[0].sector_group_count = kMaxSectorGroups + 1;
  CHECK(Check(b) == "memory internal: needs 1 to 8 sector groups");
}

TEST_CASE("board: ValidateBoard accepts a null Diag") {
  Board b = MakePybd();
  CHECK(ValidateBoard(b, nullptr).ok());
  b.memories[1].mapped = false;
  CHECK_FALSE(ValidateBoard(b, nullptr).ok());
}

}  // namespace
}  // namespace onedfu::runtime
