// The erase-sector rule (packer/layout.h SharesEraseSector): pack joins
// segments that are contiguous or share an erase sector, so a loader that
// erases per element (modelled in tests/support/loader_model.h) leaves every
// element intact; verify names the elements and the sector of a file that
// breaks the rule.
#include <doctest/doctest.h>

#include <filesystem>

#include "elf_builder.h"
#include "host/board_json.h"
#include "host/dfuse_file.h"
#include "loader_model.h"
#include "packer/firmware_input.h"
#include "packer/inspect.h"
#include "packer/layout.h"
#include "packer/pack.h"
#include "runtime/boot_record.h"
#include "test_support.h"

namespace onedfu::packer {
namespace {

namespace fs = std::filesystem;
using testing::DamagedElements;
using testing::FlashErasingPerElement;
using testing::MakeElfOfSegments;
using testing::RandomBytes;
using testing::TempDir;
using testing::WriteBytes;

const fs::path kSource = ONEDFU_SOURCE_DIR;

runtime::Board BoardNamed(const char* name) {
  auto board = LoadBoardFile(kSource / "manifests/boards" / (std::string(name) + ".json"));
  REQUIRE_MESSAGE(board.ok(), (board.ok() ? "" : board.error().message));
  return *board;
}

DfuseImage ImageOf(const PackedPackage& packed) {
  DfuseImage image;
  image.suffix = packed.suffix;
  image.targets.push_back(DfuseTarget{0, true, packed.target_name, {}});
  for (const PackedElement& e : packed.elements) image.targets[0].elements.push_back({e.address, e.data});
  return image;
}

PackedPackage Packed(const PackRequest& request) {
  auto packed = BuildPackage(request);
  REQUIRE_MESSAGE(packed.ok(), (packed.ok() ? "" : packed.error().message));
  return *packed;
}

TEST_CASE("pybv10 demo: the old one-element-per-segment output loses its vector table; the joined one does not") {
  const runtime::Board board = BoardNamed("pybv10");
  // The old output: each ELF load segment its own element (both in sector 5, 0x08020000..0x0803ffff).
  auto segments = LoadFirmware(FirmwareInput{kSource / "manifests/examples/pybv10-demo/firmware/demo.elf", {}, "test"});
  REQUIRE(segments.ok());
  REQUIRE(segments->size() == 2);
  CHECK((*segments)[1].address == (*segments)[0].address + (*segments)[0].data.size());
  DfuseImage old_image;
  old_image.targets.resize(1);
  for (const Segment& s : *segments) old_image.targets[0].elements.push_back({s.address, s.data});
  CHECK(DamagedElements(board, old_image, FlashErasingPerElement(board, old_image)) ==
        std::vector<std::string>{"element 0 at 0x08020000"});

  PackRequest request;
  request.package = kSource / "manifests/examples/pybv10-demo.json";
  const PackedPackage packed = Packed(request);
  REQUIRE(packed.elements.size() == 3);  // firmware, ROMFS, record
  CHECK(packed.elements[0].address == 0x08020000);
  CHECK(packed.elements[0].data.size() == 0xe4);
  const DfuseImage image = ImageOf(packed);
  CHECK(DamagedElements(board, image, FlashErasingPerElement(board, image)).empty());
  const Verification v = Verify(SerializeDfuse(image), "pybv10-demo.dfu", board);
  CHECK_MESSAGE(v.ok(), (v.failed.empty() ? "" : v.failed.front()));
}

TEST_CASE("PYBD-SF6: .data loaded after .text, and a second file in the same sector, join into one element") {
  const runtime::Board board = BoardNamed("pybd-sf6");
  TempDir dir;
  const Bytes text = RandomBytes(0x1000, 1);
  const Bytes data = RandomBytes(0x40, 2);
  const fs::path elf = WriteBytes(dir.path / "fw.elf", MakeElfOfSegments({{0x08008000, text}, {0x08009000, data}}));
  // 0x0800a000 is 0x0fc0 bytes past the end of .data, still in sector 1 (32 KiB, 0x08008000..0x0800ffff).
  const Bytes extra = RandomBytes(100, 3);
  const fs::path bin = WriteBytes(dir.path / "extra.bin", extra);
  PackRequest request;
  request.board = kSource / "manifests/boards/pybd-sf6.json";
  request.firmware_flags = {elf.string(), "0x0800a000:" + bin.string()};
  const PackedPackage packed = Packed(request);
  REQUIRE(packed.elements.size() == 2);  // one firmware element + the record
  const Bytes& joined = packed.elements[0].data;
  REQUIRE(joined.size() == 0x2000 + 100);
  CHECK(std::equal(text.begin(), text.end(), joined.begin()));
  CHECK(std::equal(data.begin(), data.end(), joined.begin() + 0x1000));
  CHECK(std::all_of(joined.begin() + 0x1040, joined.begin() + 0x2000, [](uint8_t b) { return b == 0xff; }));
  CHECK(std::equal(extra.begin(), extra.end(), joined.begin() + 0x2000));
  CHECK(packed.elements[0].origin == elf.string() + ": PT_LOAD 0 + " + elf.string() + ": PT_LOAD 1 + 1 more");
  CHECK(packed.manifest_json.find("\"source\": \"fw.elf, extra.bin\"") != std::string::npos);
  const DfuseImage image = ImageOf(packed);
  CHECK(DamagedElements(board, image, FlashErasingPerElement(board, image)).empty());
  CHECK(Verify(SerializeDfuse(image), "sf6.dfu", board).ok());

  // Segments in different sectors stay apart: 0x08010000 starts sector 2.
  request.firmware_flags = {elf.string(), "0x08010000:" + bin.string()};
  CHECK(Packed(request).elements.size() == 3);
}

TEST_CASE("an ELF of 100 small contiguous load segments packs as one element (the 31-segment limit is lifted)") {
  TempDir dir;
  std::vector<std::pair<uint32_t, Bytes>> segments;
  Bytes all;
  for (uint32_t i = 0; i < 100; ++i) {
    segments.emplace_back(0x08008000 + 64 * i, RandomBytes(64, 100 + i));
    all.insert(all.end(), segments.back().second.begin(), segments.back().second.end());
  }
  PackRequest request;
  request.board = kSource / "manifests/boards/pybd-sf6.json";
  const std::string many = WriteBytes(dir.path / "many.elf", MakeElfOfSegments(segments)).string();
  request.firmware_flags = {many};
  const PackedPackage packed = Packed(request);
  REQUIRE(packed.elements.size() == 2);
  CHECK(packed.elements[0].data == all);
  CHECK(packed.elements[0].origin == many + ": PT_LOAD 0 + " + many + ": PT_LOAD 1 + 98 more");

  // 40 segments in 40 different sectors cannot be joined: the boot record limit still applies.
  segments.clear();
  for (uint32_t i = 0; i < 40; ++i) segments.emplace_back(0x90000000 + 0x1000 * i, RandomBytes(64, i));
  request.firmware_flags = {WriteBytes(dir.path / "spread.elf", MakeElfOfSegments(segments)).string()};
  auto refused = BuildPackage(request);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("40 segments; a boot record holds at most 31") != std::string::npos);
}

TEST_CASE("verify names the elements and the erase sector when two elements share one") {
  const runtime::Board board = BoardNamed("pybv10");
  PackRequest request;
  request.package = kSource / "manifests/examples/pybv10-demo.json";
  DfuseImage image = ImageOf(Packed(request));
  // Split the firmware element back into the two ELF segments, as the old packer wrote them.
  auto& elements = image.targets[0].elements;
  const DfuseElement whole = elements[0];
  elements[0].data.resize(0xe0);
  elements.insert(elements.begin() + 1, DfuseElement{0x080200e0, Bytes(whole.data.begin() + 0xe0, whole.data.end())});
  const Verification v = Verify(SerializeDfuse(image), "split.dfu", board);
  CHECK_FALSE(v.ok());
  bool named = false;
  for (const std::string& line : v.failed) {
    named |= line == "split.dfu: element 0 at 0x08020000..0x080200df (224 bytes) and element 1 at "
                     "0x080200e0..0x080200e3 (4 bytes) touch the same erase sector 0x08020000..0x0803ffff "
                     "(128 KiB) of memory 'internal': a loader that erases each element's sectors before "
                     "writing it (pydfu.py, mboot) would wipe element 0 there; join them into one element";
  }
  CHECK(named);
}

TEST_CASE("SharesEraseSector: the last sector of one block against the first of the next") {
  const runtime::Board board = BoardNamed("pybd-sf6");
  CHECK(SharesEraseSector(board, 0x08008000, 0x100, 0x08008100));
  CHECK(SharesEraseSector(board, 0x08008000, 0x8000, 0x0800fff0));
  CHECK_FALSE(SharesEraseSector(board, 0x08008000, 0x8000, 0x08010000));
  CHECK(SharesEraseSector(board, 0x08008000, 0x8001, 0x08010010));  // its last byte is in sector 2
  CHECK_FALSE(SharesEraseSector(board, 0x08008000, 0x10000, 0x08018000));
  CHECK_FALSE(SharesEraseSector(board, 0x08008000, 0x100, 0x90000000));  // another memory
  CHECK_FALSE(SharesEraseSector(board, 0x08008000, 0, 0x08008000));
}

}  // namespace
}  // namespace onedfu::packer
