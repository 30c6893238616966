// Placement rules: every violation is reported, naming origin and address.
#include <doctest/doctest.h>

#include <algorithm>

#include "host/board_json.h"
#include "packer/layout.h"

namespace onedfu::packer {
namespace {

using runtime::RegionRole;

runtime::Board DefaultBoard() {
  auto board = LoadBoardFile(std::string(ONEDFU_SOURCE_DIR) + "/manifests/boards/pybd-sf6.json");
  REQUIRE_MESSAGE(board.ok(), (board.ok() ? "" : board.error().message));
  return board.value();
}

TEST_CASE("firmware inside firmware regions passes") {
  const auto board = DefaultBoard();
  const std::vector<Placement> ok = {{0x08008000, 70000, "fw.elf: PT_LOAD 0", RegionRole::kFirmware},
                                     {0x90000000, 4096, "fw.elf: PT_LOAD 1", RegionRole::kFirmware},
                                     {0x90100000, 1024, "ROMFS image", RegionRole::kRomfs},
                                     {0x901ff000, 2048, "boot record", RegionRole::kRecord}};
  CHECK(CheckPlacements(board, ok).ok());
}

TEST_CASE("each rule names the origin and the address") {
  const auto board = DefaultBoard();
  struct Case {
    Placement placement;
    const char* expected;
  };
  const Case cases[] = {
      {{0x08000000, 16, "boot.bin", RegionRole::kFirmware}, "protected bootloader region 'bootloader'"},
      {{0x08007ff0, 64, "early.bin", RegionRole::kFirmware}, "protected bootloader region"},
      {{0x20000000, 16, "ram.bin", RegionRole::kFirmware}, "0x20000000"},
      {{0x20000000, 16, "ram.bin", RegionRole::kFirmware}, "outside every memory"},
      {{0x081bfff0, 64, "big.bin", RegionRole::kFirmware}, "crosses the end of region 'text0' at 0x081c0000 into 'filesystem'"},
      {{0x081c0000, 16, "fs.bin", RegionRole::kFirmware}, "lands in region 'filesystem' (role filesystem)"},
      {{0x90100000, 16, "fw.bin", RegionRole::kFirmware}, "region 'romfs'"},
      {{0xfffffff0, 64, "wrap.bin", RegionRole::kFirmware}, "32-bit address space"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.expected);
    const Outcome result = CheckPlacements(board, {c.placement});
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().message.find(c.placement.origin) != std::string::npos);
    CHECK(result.error().message.find(c.expected) != std::string::npos);
  }
}

TEST_CASE("flash that is not the package's (reserved region, unlisted flash) is refused, naming the address") {
  // WB55: 0x080d1000-0x08100000 (the CPU2 radio stack) is in no region.
  auto wb55 = LoadBoardFile(std::string(ONEDFU_SOURCE_DIR) + "/manifests/boards/wb55.json");
  REQUIRE(wb55.ok());
  Outcome result = CheckPlacements(wb55.value(), {{0x080d1000, 4096, "radio.bin", RegionRole::kFirmware}});
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find("radio.bin at 0x080d1000..0x080d1fff (4096 bytes): outside every region of "
                                    "board wb55 (flash no region lists is read-only") != std::string::npos);
  result = CheckPlacements(wb55.value(), {{0x080d0000, 8192, "record.bin", RegionRole::kRecord}});
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find("crosses the end of region 'record' at 0x080d1000 into flash no region lists "
                                    "(read-only)") != std::string::npos);
  // PYBD-SF6 with text1 made a reserved region.
  runtime::Board board = DefaultBoard();
  board.regions[3].role = RegionRole::kReserved;
  result = CheckPlacements(board, {{0x90000000, 64, "fw.bin", RegionRole::kFirmware}});
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find("fw.bin at 0x90000000..0x9000003f (64 bytes): writes into the protected reserved "
                                    "region 'text1' (0x90000000..0x900fffff), which the bootloader keeps read-only") !=
        std::string::npos);
}

TEST_CASE("overlaps are reported with both origins, and all problems at once") {
  const auto board = DefaultBoard();
  const std::vector<Placement> placements = {{0x08008000, 0x1000, "a.hex", RegionRole::kFirmware},
                                             {0x08008800, 0x1000, "b.elf: PT_LOAD 0", RegionRole::kFirmware},
                                             {0x08000000, 4, "boot.bin", RegionRole::kFirmware}};
  const Outcome result = CheckPlacements(board, placements);
  REQUIRE_FALSE(result.ok());
  const std::string& m = result.error().message;
  CHECK(m.find("a.hex at 0x08008000") != std::string::npos);
  CHECK(m.find("overlaps b.elf: PT_LOAD 0 at 0x08008800") != std::string::npos);
  CHECK(m.find("boot.bin") != std::string::npos);
  CHECK(std::count(m.begin(), m.end(), '\n') == 1);  // two problems, one per line
}

TEST_CASE("adjacent placements do not overlap, but must not share an erase sector; region names resolve") {
  const auto board = DefaultBoard();
  CHECK(CheckPlacements(board, {{0x08008000, 0x8000, "a", RegionRole::kFirmware},
                                {0x08010000, 0x100, "b", RegionRole::kFirmware}})
            .ok());
  const Outcome shared = CheckPlacements(board, {{0x08008100, 0x100, "b", RegionRole::kFirmware},
                                                 {0x08008000, 0x100, "a", RegionRole::kFirmware}});
  REQUIRE_FALSE(shared.ok());
  // File order decides which one a per-element-erasing loader wipes: the earlier, b.
  CHECK(shared.error().message ==
        "b at 0x08008100..0x080081ff (256 bytes) and a at 0x08008000..0x080080ff (256 bytes) touch the same erase "
        "sector 0x08008000..0x0800ffff (32 KiB) of memory 'internal': a loader that erases each element's sectors "
        "before writing it (pydfu.py, mboot) would wipe b there; join them into one element");
  CHECK(RegionNameAt(board, 0x08008000) == "text0");
  CHECK(RegionNameAt(board, 0x901ff800) == "record");
  CHECK(RegionNameAt(board, 0x20000000).empty());
  CHECK(HexAddress(0x8008000) == "0x08008000");
}

}  // namespace
}  // namespace onedfu::packer
