// `onedfu verify` as strict as the board: files the bootloader or the usual
// host (dfu-util -a 0) cannot use are refused, each with a line naming the
// element, target or suffix field at fault.
#include <doctest/doctest.h>

#include <filesystem>

#include "host/board_json.h"
#include "host/dfuse_file.h"
#include "packer/inspect.h"
#include "packer/pack.h"
#include "test_support.h"

namespace onedfu::packer {
namespace {

namespace fs = std::filesystem;
using testing::RandomBytes;
using testing::TempDir;
using testing::WriteBytes;

const fs::path kSource = ONEDFU_SOURCE_DIR;

struct Fixture {
  TempDir dir;
  PackedPackage packed;
  DfuseImage image;

  Fixture() {
    PackRequest request;
    request.board = kSource / "manifests/boards/pybd-sf6.json";
    request.firmware_flags = {"0x08008000:" + WriteBytes(dir.path / "a.bin", RandomBytes(3000, 1)).string(),
                              "0x90000000:" + WriteBytes(dir.path / "b.bin", RandomBytes(3000, 2)).string()};
    auto built = BuildPackage(request);
    REQUIRE_MESSAGE(built.ok(), (built.ok() ? "" : built.error().message));
    packed = *built;
    image.suffix = packed.suffix;
    image.targets.push_back(DfuseTarget{0, true, packed.target_name, {}});
    for (const PackedElement& e : packed.elements) image.targets[0].elements.push_back({e.address, e.data});
  }

  Verification Check() const { return Verify(SerializeDfuse(image), "x.dfu", packed.board); }
};

bool Names(const Verification& v, const std::string& line) {
  for (const std::string& failed : v.failed) {
    if (failed == line) return true;
  }
  for (const std::string& failed : v.failed) MESSAGE(failed);
  return false;
}

TEST_CASE("verify: the packed file passes every board check") {
  Fixture f;
  const Verification v = f.Check();
  CHECK_MESSAGE(v.ok(), (v.failed.empty() ? "" : v.failed.front()));
  bool strict = false;
  for (const std::string& line : v.passed) strict |= line == "targets, suffix IDs and write alignment suit board pybd-sf6";
  CHECK(strict);
}

TEST_CASE("verify: a target whose alternate setting is not 0") {
  Fixture f;
  f.image.targets[0].alt = 1;
  const Verification v = f.Check();
  CHECK_FALSE(v.ok());
  CHECK(Names(v, "x.dfu: target 0 has alternate setting 1; board pybd-sf6 takes every memory through alt 0, so "
                 "`dfu-util -a 0` would skip its 3 element(s)"));
}

TEST_CASE("verify: suffix IDs rewritten to ffff (fwupd's firmware-convert) or another device's") {
  Fixture f;
  f.image.suffix.vid = 0xffff;
  f.image.suffix.pid = 0xffff;
  f.image.suffix.bcd_device = 0x0100;
  const Verification v = f.Check();
  CHECK_FALSE(v.ok());
  CHECK(Names(v, "x.dfu: suffix idVendor is 0xffff, board pybd-sf6's bootloader reports 0x0483"));
  CHECK(Names(v, "x.dfu: suffix idProduct is 0xffff, board pybd-sf6's bootloader reports 0xdf11"));
  CHECK(Names(v, "x.dfu: suffix bcdDevice is 0x0100, board pybd-sf6's bootloader reports 0x0200"));
  CHECK(v.failed.size() == 3);  // nothing else is wrong
}

TEST_CASE("verify: an element address off the memory's write unit") {
  Fixture f;
  DfuseElement& e = f.image.targets[0].elements[1];  // 0x90000000, QSPI, 4-byte write unit
  e.address += 2;
  const Verification v = f.Check();
  CHECK_FALSE(v.ok());
  CHECK(Names(v, "x.dfu: element 1 at 0x90000002 is not aligned to the 4-byte write unit of memory 'qspi': the "
                 "bootloader refuses the write"));
}

TEST_CASE("verify: a record element not at the start of the record region") {
  Fixture f;
  f.image.targets[0].elements.back().address += 0x100;
  const Verification v = f.Check();
  CHECK_FALSE(v.ok());
  CHECK(Names(v, "x.dfu: the boot record element at 0x901ff100 is not at the start of record region 'record' "
                 "(0x901ff000), the only place the bootloader reads it"));
}

TEST_CASE("verify: a last target without elements is no crash") {
  Fixture f;
  f.image.targets.push_back(DfuseTarget{0, false, "", {}});
  const Verification v = f.Check();
  CHECK(v.ok());  // an empty target writes nothing; the record is still the last element written
}

TEST_CASE("pack refuses package USB IDs other than the board's") {
  TempDir dir;
  const fs::path package = dir.path / "p.json";
  const std::string text = R"({"board": ")" + (kSource / "manifests/boards/pybd-sf6.json").string() +
                           R"(", "usb": {"vid": "0xffff"}, "firmware": [{"file": "fw.bin", "address": "0x08008000"}]})";
  WriteBytes(package, Bytes(text.begin(), text.end()));
  WriteBytes(dir.path / "fw.bin", RandomBytes(100, 3));
  PackRequest request;
  request.package = package;
  auto packed = BuildPackage(request);
  REQUIRE_FALSE(packed.ok());
  CHECK(packed.error().message ==
        "package usb.vid 0xffff differs from board pybd-sf6's 0x0483: the bootloader enumerates with the board's IDs");
}

}  // namespace
}  // namespace onedfu::packer
