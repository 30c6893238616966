// FileFlash: strict checks, persistence in the file, the timing model and fault injection.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "file_flash.h"
#include "test_support.h"

using namespace onedfu;
using onedfu::sim::FileFlash;

namespace {

// A QSPI-like memory: 32 x 4 KiB at 0x90000000, 4-byte writes, 256-byte pages at 700 us,
// 4 KiB erase 45 ms, 64 KiB block erase 150 ms.
runtime::Memory Qspi() {
  runtime::Memory m;
  std::strcpy(m.name, "qspi");
  m.base = 0x90000000;
  m.sectors[0] = {32, 4096};
  m.sector_group_count = 1;
  m.write_align = 4;
  m.mapped = true;
  m.erase_timings[0] = {4096, 45000};
  m.erase_timings[1] = {65536, 150000};
  m.erase_timing_count = 2;
  m.program_us = 700;
  m.program_bytes = 256;
  return m;
}

// Mixed sectors: 2 x 16 KiB + 1 x 64 KiB at 0x08000000.
runtime::Memory Internal() {
  runtime::Memory m;
  std::strcpy(m.name, "internal");
  m.base = 0x08000000;
  m.sectors[0] = {2, 16384};
  m.sectors[1] = {1, 65536};
  m.sector_group_count = 2;
  m.write_align = 4;
  m.mapped = true;
  m.erase_timings[0] = {16384, 300000};
  m.erase_timings[1] = {65536, 700000};
  m.erase_timing_count = 2;
  m.program_us = 16;
  m.program_bytes = 4;
  return m;
}

std::vector<uint8_t> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

}  // namespace

TEST_CASE("a missing file is created erased, an existing one is reopened with its contents") {
  const auto dir = testing::Scratch("file_flash_create");
  const auto path = dir / "qspi.bin";
  {
    auto flash = FileFlash::Open(Qspi(), path);
    REQUIRE(flash.ok());
    CHECK(flash.value()->created());
    CHECK(std::filesystem::file_size(path) == 32u * 4096);
    const auto all = flash.value()->contents();
    CHECK(std::all_of(all.begin(), all.end(), [](uint8_t b) { return b == 0xff; }));
    REQUIRE(flash.value()->Write(0x90001000, Bytes(8, 1)).ok());
  }
  auto again = FileFlash::Open(Qspi(), path);
  REQUIRE(again.ok());
  CHECK_FALSE(again.value()->created());
  std::vector<uint8_t> out(8);
  REQUIRE(again.value()->Read(0x90001000, out).ok());
  CHECK(out == Bytes(8, 1));
  // The file holds the bytes at offset address - base.
  std::ifstream file(path, std::ios::binary);
  file.seekg(0x1000);
  std::vector<uint8_t> raw(8);
  file.read(reinterpret_cast<char*>(raw.data()), 8);
  CHECK(raw == Bytes(8, 1));
}

TEST_CASE("a file of the wrong size is refused with its path") {
  const auto dir = testing::Scratch("file_flash_size");
  const auto path = dir / "qspi.bin";
  std::ofstream(path, std::ios::binary) << "short";
  auto flash = FileFlash::Open(Qspi(), path);
  REQUIRE_FALSE(flash.ok());
  CHECK(flash.error().message.find(path.string()) != std::string::npos);
  CHECK(flash.error().message.find("131072") != std::string::npos);
}

TEST_CASE("strict: misaligned writes, writes to programmed bytes, erases off sector boundaries") {
  const auto dir = testing::Scratch("file_flash_strict");
  auto opened = FileFlash::Open(Internal(), dir / "internal.bin");
  REQUIRE(opened.ok());
  FileFlash& f = *opened.value();
  CHECK(f.Write(0x08000002, Bytes(4, 0)).code() == runtime::StatusCode::kInvalidArgument);
  CHECK(f.Write(0x08000000, Bytes(6, 0)).code() == runtime::StatusCode::kInvalidArgument);
  REQUIRE(f.Write(0x08000000, Bytes(8, 3)).ok());
  CHECK(f.Write(0x08000004, Bytes(4, 9)).code() == runtime::StatusCode::kFailedPrecondition);
  CHECK(f.Erase(0x08000000, 8192).code() == runtime::StatusCode::kInvalidArgument);
  CHECK(f.Erase(0x08002000, 16384).code() == runtime::StatusCode::kInvalidArgument);
  CHECK(f.Erase(0x08000000, 0).code() == runtime::StatusCode::kInvalidArgument);
  CHECK(f.Erase(0x08000000, 0x20000).code() == runtime::StatusCode::kOutOfRange);
  CHECK(f.Write(0x07fffffc, Bytes(4, 0)).code() == runtime::StatusCode::kOutOfRange);
  std::vector<uint8_t> past(8);
  CHECK(f.Read(0x08017ffc, past).code() == runtime::StatusCode::kOutOfRange);
  CHECK(f.usage().refused == 9);
  // Refused calls changed nothing and cost nothing.
  std::vector<uint8_t> out(8);
  REQUIRE(f.Read(0x08000000, out).ok());
  CHECK(out == Bytes(8, 3));
  CHECK(f.usage().erase_us == 0);
  CHECK(f.usage().erase_calls == 0);
  // Sector 1 + sector 2 (mixed sizes) in one call.
  REQUIRE(f.Erase(0x08004000, 16384 + 65536).ok());
  REQUIRE(f.Erase(0x08000000, 16384).ok());
  REQUIRE(f.Read(0x08000000, out).ok());
  CHECK(out == std::vector<uint8_t>(8, 0xff));
  CHECK(f.usage().sectors_erased == 3);
  CHECK(f.usage().sector_erases == std::vector<uint32_t>{1, 1, 1});
  CHECK(f.usage().erase_us == 300000 + 700000 + 300000);
}

TEST_CASE("timing model: QSPI block erase when aligned, page program units") {
  const auto dir = testing::Scratch("file_flash_timing");
  auto opened = FileFlash::Open(Qspi(), dir / "qspi.bin");
  REQUIRE(opened.ok());
  FileFlash& f = *opened.value();
  // 64 KiB aligned: one block erase (150 ms) covering 16 sectors.
  REQUIRE(f.Erase(0x90000000, 65536).ok());
  CHECK(f.usage().erase_us == 150000);
  CHECK(f.usage().block_erases == 1);
  CHECK(f.usage().sectors_erased == 16);
  // 8 KiB not covering a 64 KiB block: two sector erases.
  REQUIRE(f.Erase(0x90011000, 8192).ok());
  CHECK(f.usage().erase_us == 150000 + 2 * 45000);
  CHECK(f.usage().sector_erases[17] == 1);
  CHECK(f.usage().sector_erases[18] == 1);
  CHECK(f.usage().sector_erases[16] == 0);
  // 2048 bytes at a page boundary: 8 pages; 8 bytes straddling a page boundary: 2 pages.
  REQUIRE(f.Write(0x90000000, Bytes(2048, 5)).ok());
  CHECK(f.usage().program_us == 8 * 700);
  REQUIRE(f.Write(0x900010fc, Bytes(8, 5)).ok());
  CHECK(f.usage().program_us == 10 * 700);
  CHECK(f.usage().program_units == 10);
  CHECK(f.usage().bytes_programmed == 2056);
  CHECK(f.EraseCostUs(0x90000000, 0x20000) == 2 * 150000);
  CHECK(f.ProgramCostUs(0x90000000, 257) == 2 * 700);
  f.ResetUsage();
  CHECK(f.usage().erase_us == 0);
  CHECK(f.usage().sector_erases.size() == 32);
}

TEST_CASE("power cut: torn write keeps half, then everything fails until PowerOn") {
  const auto dir = testing::Scratch("file_flash_cut");
  auto opened = FileFlash::Open(Qspi(), dir / "qspi.bin");
  REQUIRE(opened.ok());
  FileFlash& f = *opened.value();
  f.CutPowerAfter(1, true);
  REQUIRE(f.Write(0x90000000, Bytes(16, 1)).ok());
  CHECK(f.Write(0x90000010, Bytes(16, 2)).code() == runtime::StatusCode::kUnavailable);
  CHECK_FALSE(f.powered());
  CHECK(f.Mapped().empty());
  std::vector<uint8_t> out(16);
  CHECK(f.Read(0x90000010, out).code() == runtime::StatusCode::kUnavailable);
  f.PowerOn();
  REQUIRE(f.Read(0x90000010, out).ok());
  std::vector<uint8_t> expect = Bytes(16, 2);
  std::fill(expect.begin() + 8, expect.end(), 0xff);
  CHECK(out == expect);
  CHECK(f.operations() == 2);
  // FailAfter: one transient failure, nothing written.
  f.FailAfter(0);
  CHECK(f.Write(0x90000020, Bytes(4, 3)).code() == runtime::StatusCode::kUnavailable);
  CHECK(f.powered());
  REQUIRE(f.Write(0x90000020, Bytes(4, 3)).ok());
}
