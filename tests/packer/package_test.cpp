// Package manifests: the committed examples, every key, path resolution and
// the errors (each names the file and the JSON path).
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "host/board_json.h"
#include "packer/package.h"

namespace onedfu::packer {
namespace {

namespace fs = std::filesystem;

const fs::path kExamples = fs::path(ONEDFU_SOURCE_DIR) / "manifests" / "examples";
const fs::path kBoards = fs::path(ONEDFU_SOURCE_DIR) / "manifests" / "boards";

std::string ErrorOf(const std::string& text, const fs::path& where = "/pkgs/p.json") {
  auto spec = ParsePackageJson(text, where);
  return spec.ok() ? std::string("ok") : spec.error().message;
}

PackageSpec MustParse(const std::string& text, const fs::path& where = "/pkgs/p.json") {
  auto spec = ParsePackageJson(text, where);
  REQUIRE_MESSAGE(spec.ok(), (spec.ok() ? "" : spec.error().message));
  return std::move(spec).value();
}

TEST_CASE("package: the pybd-sf6 example") {
  const fs::path file = kExamples / "pybd-sf6-demo.json";
  auto loaded = LoadPackageFile(file);
  REQUIRE_MESSAGE(loaded.ok(), (loaded.ok() ? "" : loaded.error().message));
  const PackageSpec& spec = *loaded;
  CHECK(spec.name == "pybd-sf6-demo");
  CHECK(spec.version == "1.0.0");
  REQUIRE(spec.board.has_value());
  CHECK(fs::equivalent(*spec.board, kBoards / "pybd-sf6.json"));
  CHECK(spec.vid == uint16_t{0x0483});
  CHECK(spec.pid == uint16_t{0xdf11});
  CHECK(spec.bcd_device == uint16_t{0x0200});

  REQUIRE(spec.firmware.size() == 2);
  CHECK(spec.firmware[0].file == kExamples / "pybd-sf6-demo/firmware/text0.hex");
  CHECK_FALSE(spec.firmware[0].address.has_value());
  CHECK(spec.firmware[0].origin == file.string() + ": /firmware/0");
  CHECK(spec.firmware[1].file == kExamples / "pybd-sf6-demo/firmware/text1.bin");
  CHECK(spec.firmware[1].address == uint32_t{0x90000000});

  REQUIRE(spec.modules.size() == 2);
  CHECK(spec.modules[0].directory);
  CHECK(spec.modules[0].target == "lib");
  CHECK(spec.modules[0].source == kExamples / "pybd-sf6-demo/modules");
  CHECK(spec.modules[0].origin == file.string() + ": /modules/0");
  CHECK_FALSE(spec.modules[1].directory);
  CHECK(spec.modules[1].target == "viper_mod.mpy");
  REQUIRE(spec.assets.size() == 2);
  CHECK(spec.assets[0].target == "assets/font8x8.bin");
  CHECK(spec.assets[1].target == "assets/logo32.pbm");
  REQUIRE(spec.romfs_dir.has_value());
  CHECK(*spec.romfs_dir == kExamples / "pybd-sf6-demo/romfs");
  CHECK(spec.romfs_align == 8u);
  CHECK(spec.mpy_cross.empty());
}

TEST_CASE("package: every path an example names exists") {
  int packages = 0;
  for (const auto& entry : fs::directory_iterator(kExamples)) {
    if (entry.path().extension() != ".json") continue;
    CAPTURE(entry.path().string());
    auto spec = LoadPackageFile(entry.path());
    REQUIRE_MESSAGE(spec.ok(), (spec.ok() ? "" : spec.error().message));
    REQUIRE(spec->board.has_value());
    CHECK(LoadBoardFile(*spec->board).ok());
    CHECK_FALSE(spec->firmware.empty());
    for (const auto& f : spec->firmware) CHECK(fs::is_regular_file(f.file));
    for (const auto* list : {&spec->modules, &spec->assets}) {
      for (const RomfsItem& item : *list) {
        CAPTURE(item.origin);
        CHECK((item.directory ? fs::is_directory(item.source) : fs::is_regular_file(item.source)));
      }
    }
    if (spec->romfs_dir) CHECK(fs::is_directory(*spec->romfs_dir));
    ++packages;
  }
  CHECK(packages >= 2);
}

TEST_CASE("package: the pybv10 example uses the short forms") {
  auto spec = LoadPackageFile(kExamples / "pybv10-demo.json");
  REQUIRE(spec.ok());
  REQUIRE(spec->board.has_value());
  CHECK(spec->board->filename() == "pybv10.json");
  REQUIRE(spec->modules.size() == 1);
  CHECK(spec->modules[0].target == "plain_mod.mpy");  // the file name
  CHECK(spec->romfs_align == 4u);
  CHECK_FALSE(spec->romfs_dir.has_value());
}

TEST_CASE("package: defaults of an empty manifest") {
  const PackageSpec spec = MustParse("{}", "/pkgs/my-product.json");
  CHECK(spec.name == "my-product");
  CHECK(spec.version.empty());
  CHECK_FALSE(spec.board.has_value());
  CHECK(spec.firmware.empty());
  CHECK(spec.modules.empty());
  CHECK(spec.assets.empty());
  CHECK(spec.romfs_align == 8u);
  CHECK_FALSE(spec.vid.has_value());
}

TEST_CASE("package: relative paths are anchored at the package folder") {
  const PackageSpec spec = MustParse(R"({
    "board": "../boards/custom.json",
    "firmware": ["fw.elf", {"file": "/abs/fw.bin", "address": 134250496}],
    "assets": ["data/blob.bin"],
    "romfs": {"dir": "tree"},
    "mpy_cross": "tools/mpy-cross"})",
                                     "/work/pkgs/p.json");
  CHECK(*spec.board == fs::path("/work/pkgs/../boards/custom.json"));
  CHECK(spec.firmware[0].file == fs::path("/work/pkgs/fw.elf"));
  CHECK(spec.firmware[1].file == fs::path("/abs/fw.bin"));
  CHECK(spec.firmware[1].address == uint32_t{0x08008000});
  CHECK(spec.assets[0].source == fs::path("/work/pkgs/data/blob.bin"));
  CHECK(spec.assets[0].target == "blob.bin");
  CHECK(*spec.romfs_dir == fs::path("/work/pkgs/tree"));
  CHECK(spec.mpy_cross == "/work/pkgs/tools/mpy-cross");
  // A bare command stays a command (looked up in PATH when run).
  CHECK(MustParse(R"({"mpy_cross": "mpy-cross"})").mpy_cross == "mpy-cross");
  // A package path without a folder keeps relative paths relative to the working directory.
  CHECK(MustParse(R"({"firmware": ["fw.hex"]})", "p.json").firmware[0].file == fs::path("fw.hex"));
}

TEST_CASE("package: a board id is looked up among the bundled boards") {
  const PackageSpec spec = MustParse(R"({"board": "wb55"})");
  CHECK(fs::equivalent(*spec.board, kBoards / "wb55.json"));
  const std::string error = ErrorOf(R"({"board": "pyboard-x"})");
  CHECK(error.find("/pkgs/p.json: /board: board \"pyboard-x\": unknown board (known: pybd-sf6, pybv10") == 0);
}

TEST_CASE("package: unknown keys name the JSON path") {
  CHECK(ErrorOf(R"({"modules": [{"source": "a.mpy", "taget": "b.mpy"}]})") ==
        "/pkgs/p.json: /modules/0/taget: unknown key");
  CHECK(ErrorOf(R"({"firmware": ["a.hex", {"file": "b.bin", "adress": 1}]})") ==
        "/pkgs/p.json: /firmware/1/adress: unknown key");
  CHECK(ErrorOf(R"({"romfs": {"alignment": 8}})") == "/pkgs/p.json: /romfs/alignment: unknown key");
  CHECK(ErrorOf(R"({"usb": {"vendor": 1}})") == "/pkgs/p.json: /usb/vendor: unknown key");
  CHECK(ErrorOf(R"({"asset": []})") == "/pkgs/p.json: /asset: unknown key");
}

TEST_CASE("package: item and field errors") {
  CHECK(ErrorOf(R"({"modules": [{"source": "a.mpy", "dir": "d"}]})") ==
        "/pkgs/p.json: /modules/0: give exactly one of \"source\" and \"dir\"");
  CHECK(ErrorOf(R"({"assets": [{"target": "x"}]})") ==
        "/pkgs/p.json: /assets/0: give exactly one of \"source\" and \"dir\"");
  CHECK(ErrorOf(R"({"firmware": [{"address": "0x08000000"}]})") == "/pkgs/p.json: /firmware/0: missing key \"file\"");
  CHECK(ErrorOf(R"({"firmware": "fw.hex"})") == "/pkgs/p.json: /firmware: expected an array");
  CHECK(ErrorOf(R"({"firmware": [""]})") == "/pkgs/p.json: /firmware/0: empty path");
  CHECK(ErrorOf(R"({"firmware": [7]})") == "/pkgs/p.json: /firmware/0: expected an object");
  CHECK(ErrorOf(R"({"firmware": [{"file": "a", "address": "0x1_000"}]})").find(
            "/pkgs/p.json: /firmware/0/address: \"0x1_000\" is not a number") == 0);
  CHECK(ErrorOf(R"({"usb": {"pid": 65536}})") == "/pkgs/p.json: /usb/pid: 65536 is larger than the maximum 65535");
  CHECK(ErrorOf(R"({"version": "1.0.0-with-a-very-long-build-tag-x"})") ==
        "/pkgs/p.json: /version: \"1.0.0-with-a-very-long-build-tag-x\" is longer than 31 characters");
  CHECK(ErrorOf(R"({"version": "1.0\n"})") == "/pkgs/p.json: /version: use printable ASCII only");
  CHECK(ErrorOf(R"({"name": 3})") == "/pkgs/p.json: /name: expected a string");
  CHECK(ErrorOf(R"({"mpy_cross": ""})") == "/pkgs/p.json: /mpy_cross: empty command");
  CHECK(ErrorOf(R"({"romfs": {"align": 3}})") == "/pkgs/p.json: /romfs/align: 3 is not a power of two (1, 2, 4, ... 65536)");
  CHECK(ErrorOf(R"({"romfs": {"align": 0}})") == "/pkgs/p.json: /romfs/align: 0 is not a power of two (1, 2, 4, ... 65536)");
  CHECK(ErrorOf(R"({"romfs": {"align": "128K"}})") ==
        "/pkgs/p.json: /romfs/align: 131072 is larger than the maximum 65536");
  CHECK(MustParse(R"({"romfs": {"align": "64K"}})").romfs_align == 65536u);
  CHECK(ErrorOf(R"({"romfs": []})") == "/pkgs/p.json: /romfs: expected an object");
  CHECK(ErrorOf(R"({"name": "a", "name": "b"})") == "/pkgs/p.json: /name: duplicate key");
  CHECK(ErrorOf("{\"name\": \"a\",}").find("/pkgs/p.json: parse error at line 1") == 0);
}

TEST_CASE("package: ROMFS targets") {
  CHECK(ErrorOf(R"({"modules": [{"source": "a.mpy", "target": "../a.mpy"}]})") ==
        "/pkgs/p.json: /modules/0/target: \"../a.mpy\": \".\" and \"..\" are not allowed");
  CHECK(ErrorOf(R"({"modules": [{"source": "a.mpy", "target": "/lib/a.mpy"}]})") ==
        "/pkgs/p.json: /modules/0/target: \"/lib/a.mpy\": ROMFS target paths are relative (no leading '/')");
  CHECK(ErrorOf(R"({"assets": [{"source": "a", "target": "x//a"}]})") ==
        "/pkgs/p.json: /assets/0/target: \"x//a\": empty path component");
  CHECK(ErrorOf(R"({"assets": [{"source": "a", "target": "x/"}]})") ==
        "/pkgs/p.json: /assets/0/target: \"x/\": empty path component");
  CHECK(ErrorOf(R"({"assets": [{"source": "a", "target": ""}]})") ==
        "/pkgs/p.json: /assets/0/target: empty ROMFS target path");
  CHECK(ErrorOf(R"({"assets": ["dir/"]})") == "/pkgs/p.json: /assets/0: empty ROMFS target path");
  // A directory may go to the root; without a target it does.
  const PackageSpec spec = MustParse(R"({"modules": [{"dir": "mods", "target": ""}, {"dir": "more"}]})");
  CHECK(spec.modules[0].target.empty());
  CHECK(spec.modules[1].target.empty());
  CHECK(spec.modules[1].directory);
  CHECK(CheckRomfsTarget("lib/a.b/c.mpy", false).ok());
  CHECK(CheckRomfsTarget("a\\b", false).error().message == "\"a\\b\": NUL and '\\' are not allowed");
  CHECK_FALSE(CheckRomfsTarget("", false).ok());
  CHECK(CheckRomfsTarget("", true).ok());
}

TEST_CASE("package: --firmware flags") {
  auto plain = ParseFirmwareFlag("build/fw.hex");
  REQUIRE(plain.ok());
  CHECK(plain->file == fs::path("build/fw.hex"));
  CHECK_FALSE(plain->address.has_value());
  CHECK(plain->origin == "--firmware");

  auto with_address = ParseFirmwareFlag("0x08008000:fw.bin");
  REQUIRE(with_address.ok());
  CHECK(with_address->address == uint32_t{0x08008000});
  CHECK(with_address->file == fs::path("fw.bin"));

  auto colon_in_name = ParseFirmwareFlag("0X90000000:dir/a:b.bin");
  REQUIRE(colon_in_name.ok());
  CHECK(colon_in_name->address == uint32_t{0x90000000});
  CHECK(colon_in_name->file == fs::path("dir/a:b.bin"));

  auto no_hex = ParseFirmwareFlag("c:fw.bin");  // not an address: the whole flag is the file
  REQUIRE(no_hex.ok());
  CHECK(no_hex->file == fs::path("c:fw.bin"));
  CHECK_FALSE(no_hex->address.has_value());

  CHECK(ParseFirmwareFlag("0x0800800g:fw.bin").error().message ==
        "--firmware 0x0800800g:fw.bin: \"0x0800800g\" is not a 32-bit hex address (write 0x08008000:FILE)");
  CHECK(ParseFirmwareFlag("0x100000000:fw.bin").error().message ==
        "--firmware 0x100000000:fw.bin: \"0x100000000\" is not a 32-bit hex address (write 0x08008000:FILE)");
  CHECK(ParseFirmwareFlag("0x08000000:").error().message ==
        "--firmware 0x08000000:: no file name (write [0xADDR:]FILE)");
  CHECK_FALSE(ParseFirmwareFlag("").ok());
}

TEST_CASE("package: a missing file names the path") {
  auto spec = LoadPackageFile("/nonexistent/pkg.json");
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.error().message.find("/nonexistent/pkg.json") == 0);
}

}  // namespace
}  // namespace onedfu::packer
