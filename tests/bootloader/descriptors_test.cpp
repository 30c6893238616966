// Descriptors and the DfuSe layout string. Expected bytes are derived by hand
// from the USB 2.0 chapter 9 layouts, DFU 1.1 section 4.2 and DESIGN.md 6
// (the functional descriptor bytes are quoted there); expected layout
// strings from the board geometry and the documented formatting rules.
#include "bootloader/descriptors.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rig.h"

using namespace onedfu;
using namespace onedfu::test;

namespace {

std::string Layout(const Board& board) {
  char buf[200];
  auto r = bootloader::BuildLayoutString(board, buf, sizeof buf);
  REQUIRE(r.ok());
  CHECK(r.value() == std::strlen(buf));
  return buf;
}

Board SingleMemory(uint32_t count, uint32_t size, uint32_t boot_size) {
  Board b;
  Memory& m = b.memories[0];
  std::strcpy(m.name, "internal");
  std::strcpy(m.label, "Internal Flash");
  m.base = 0x08000000;
  m.sectors[0] = {count, size};
  m.sector_group_count = 1;
  b.memory_count = 1;
  b.regions[0] = MakeRegion("bootloader", 0, 0, boot_size, RegionRole::kBootloader);
  b.regions[1] = MakeRegion("text0", 0, boot_size, count * size - boot_size, RegionRole::kFirmware);
  b.region_count = 2;
  return b;
}

}  // namespace

TEST_CASE("layout string: PYBD-SF6, two zones, bootloader sector read-only") {
  CHECK(Layout(PybdBoard()) ==
        "@Internal Flash  /0x08000000/01*032Ka,03*032Kg,01*128Kg,07*256Kg/0x90000000/512*04Kg");
}

TEST_CASE("layout string: other geometries") {
  // PYBV10-like F405: 4*16K, 1*64K, 7*128K; bootloader in the first 16K sector.
  Board f405 = SingleMemory(4, 16 * 1024, 16 * 1024);
  f405.memories[0].sectors[1] = {1, 64 * 1024};
  f405.memories[0].sectors[2] = {7, 128 * 1024};
  f405.memories[0].sector_group_count = 3;
  f405.regions[1].size = f405.memories[0].size() - f405.regions[1].offset;
  CHECK(Layout(f405) == "@Internal Flash  /0x08000000/01*016Ka,03*016Kg,01*064Kg,07*128Kg");
  // A 32K bootloader covers two 16K sectors.
  f405.regions[0].size = 32 * 1024;
  f405.regions[1] = MakeRegion("text0", 0, 32 * 1024, f405.memories[0].size() - 32 * 1024, RegionRole::kFirmware);
  CHECK(Layout(f405) == "@Internal Flash  /0x08000000/02*016Ka,02*016Kg,01*064Kg,07*128Kg");
  // NUCLEO-H743-like: 16*128K.
  CHECK(Layout(SingleMemory(16, 128 * 1024, 128 * 1024)) == "@Internal Flash  /0x08000000/01*128Ka,15*128Kg");
  // WB55-like: 256*4K, 32K bootloader: three-digit counts keep two-digit sizes.
  CHECK(Layout(SingleMemory(256, 4096, 32 * 1024)) == "@Internal Flash  /0x08000000/08*04Ka,248*04Kg");
  // Sizes that are not whole KiB are given in bytes, whole MiB in M.
  CHECK(Layout(SingleMemory(8, 512, 512)) == "@Internal Flash  /0x08000000/01*512 a,07*512 g");
  CHECK(Layout(SingleMemory(4, 1024 * 1024, 1024 * 1024)) == "@Internal Flash  /0x08000000/01*001Ma,03*001Mg");
}

TEST_CASE("layout string: flash that is not the package's is read-only ('a'): unlisted and reserved") {
  // The shipped WB55 board leaves 0x080d1000-0x08100000 (47 pages, the CPU2
  // radio stack) out of every region.
  CHECK(Layout(boards::kWb55) == "@Internal Flash  /0x08000000/08*04Ka,201*04Kg,47*04Ka");
  // A reserved region in the middle of writable flash, and unlisted pages before the end.
  Board b = SingleMemory(16, 4096, 4096);
  b.regions[1].size = 4 * 4096;
  b.regions[2] = MakeRegion("radio", 0, 5 * 4096, 2 * 4096, RegionRole::kReserved);
  b.regions[3] = MakeRegion("text1", 0, 7 * 4096, 6 * 4096, RegionRole::kFirmware);
  b.region_count = 4;
  CHECK(Layout(b) == "@Internal Flash  /0x08000000/01*004Ka,04*004Kg,02*004Ka,06*004Kg,03*004Ka");
}

TEST_CASE("layout string: errors") {
  Board empty;
  char buf[100];
  CHECK(bootloader::BuildLayoutString(empty, buf, sizeof buf).status().code() ==
        runtime::StatusCode::kInvalidArgument);
  char small[20];
  CHECK(bootloader::BuildLayoutString(PybdBoard(), small, sizeof small).status().code() ==
        runtime::StatusCode::kResourceExhausted);
  // More than a string descriptor can carry (126 characters).
  Board many = PybdBoard();
  for (int g = 0; g < 8; ++g) many.memories[1].sectors[g] = {1, g % 2 ? 4096u : 8192u};
  many.memories[1].sector_group_count = 8;
  char big[400];
  CHECK(bootloader::BuildLayoutString(many, big, sizeof big).status().code() ==
        runtime::StatusCode::kResourceExhausted);
}

TEST_CASE("device descriptor from the board") {
  std::vector<uint8_t> d(18);
  REQUIRE(bootloader::BuildDeviceDescriptor(PybdBoard(), d) == 18);
  const std::vector<uint8_t> want = {0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x40, 0x83,
                                     0x04, 0x11, 0xdf, 0x00, 0x02, 0x01, 0x02, 0x03, 0x01};
  CHECK(d == want);
  Board b = PybdBoard();
  b.vid = 0x1209;
  b.pid = 0x0001;
  REQUIRE(bootloader::BuildDeviceDescriptor(b, d) == 18);
  CHECK(d[8] == 0x09);
  CHECK(d[9] == 0x12);
  CHECK(d[10] == 0x01);
  CHECK(d[11] == 0x00);
  std::vector<uint8_t> small(17);
  CHECK(bootloader::BuildDeviceDescriptor(b, small) == 0);
}

TEST_CASE("configuration descriptor: one DFU interface and the functional descriptor") {
  std::vector<uint8_t> c(27);
  REQUIRE(bootloader::BuildConfigDescriptor(c) == 27);
  const std::vector<uint8_t> want = {
      0x09, 0x02, 0x1b, 0x00, 0x01, 0x01, 0x00, 0x80, 0x32,  // config
      0x09, 0x04, 0x00, 0x00, 0x00, 0xfe, 0x01, 0x02, 0x04,  // interface 0 alt 0, DFU mode, iInterface 4
      0x09, 0x21, 0x0b, 0xff, 0x00, 0x00, 0x08, 0x1a, 0x01,  // functional (DESIGN.md 6)
  };
  CHECK(c == want);
  std::vector<uint8_t> f(9);
  REQUIRE(bootloader::BuildFunctionalDescriptor(f) == 9);
  CHECK(std::vector<uint8_t>(want.begin() + 18, want.end()) == f);
}

TEST_CASE("string descriptors are UTF-16LE and truncate safely") {
  std::vector<uint8_t> s(10);
  REQUIRE(bootloader::BuildStringDescriptor("AB", s) == 6);
  CHECK(std::vector<uint8_t>(s.begin(), s.begin() + 6) == std::vector<uint8_t>{6, 3, 'A', 0, 'B', 0});
  // Room for 4 characters only.
  REQUIRE(bootloader::BuildStringDescriptor("ABCDEFG", s) == 10);
  CHECK(s[0] == 10);
  CHECK(s[8] == 'D');
  // Capped at 126 characters (bLength 254).
  std::string longer(300, 'x');
  std::vector<uint8_t> big(600);
  CHECK(bootloader::BuildStringDescriptor(longer.c_str(), big) == 254);
  CHECK(big[0] == 254);
  std::vector<uint8_t> lang(4);
  REQUIRE(bootloader::BuildLanguageDescriptor(lang) == 4);
  CHECK(lang == std::vector<uint8_t>{4, 3, 0x09, 0x04});
}

TEST_CASE("GET_DESCRIPTOR through the device, truncated to wLength") {
  Rig rig;
  REQUIRE(rig.init_ok);
  std::vector<uint8_t> b;
  // Device descriptor, first 8 bytes only (as a host does first).
  CHECK_FALSE(rig.In(0x80, 6, 0x0100, 0, 8, &b).stall);
  CHECK(b == std::vector<uint8_t>{0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x40});
  CHECK_FALSE(rig.In(0x80, 6, 0x0200, 0, 255, &b).stall);
  CHECK(b.size() == 27);
  // The layout string through index 4.
  CHECK_FALSE(rig.In(0x80, 6, 0x0304, 0x0409, 255, &b).stall);
  std::string text;
  for (size_t i = 2; i < b.size(); i += 2) text.push_back(static_cast<char>(b[i]));
  CHECK(text == "@Internal Flash  /0x08000000/01*032Ka,03*032Kg,01*128Kg,07*256Kg/0x90000000/512*04Kg");
  CHECK(text == rig.dev().layout());
  CHECK_FALSE(rig.In(0x80, 6, 0x0300, 0, 255, &b).stall);
  CHECK(b == std::vector<uint8_t>{4, 3, 0x09, 0x04});
  // Functional descriptor asked for on the interface.
  CHECK_FALSE(rig.In(0x81, 6, 0x2100, 0, 9, &b).stall);
  CHECK(b.size() == 9);
  // Unknown string index, device qualifier (full speed only), other config.
  CHECK(rig.In(0x80, 6, 0x0309, 0, 255, &b).stall);
  CHECK(rig.In(0x80, 6, 0x0600, 0, 10, &b).stall);
  CHECK(rig.In(0x80, 6, 0x0201, 0, 255, &b).stall);
}
