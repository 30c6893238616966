// Board layout JSON: the bundled boards, the number and sector syntax, and
// that every error names the file and the JSON path at fault.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "host/board_json.h"
#include "host/file_io.h"
#include "runtime/flash_timing.h"

namespace onedfu::host {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kBoards = fs::path(ONEDFU_SOURCE_DIR) / "manifests" / "boards";

std::string ReadText(const fs::path& path) {
  auto bytes = ReadFile(path);
  REQUIRE(bytes.ok());
  return std::string(bytes->begin(), bytes->end());
}

json PybdJson() { return json::parse(ReadText(kBoards / "pybd-sf6.json")); }

// The error of parsing `doc` as "t.json", or "ok".
std::string ErrorOf(const std::string& text) {
  auto board = ParseBoardJson(text, "t.json");
  return board.ok() ? std::string("ok") : board.error().message;
}
std::string ErrorOf(const json& doc) { return ErrorOf(doc.dump()); }

TEST_CASE("board json: every bundled board loads, validates and is named after its file") {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(kBoards)) {
    if (entry.path().extension() != ".json") continue;
    CAPTURE(entry.path().string());
    auto board = LoadBoardFile(entry.path());
    REQUIRE_MESSAGE(board.ok(), (board.ok() ? "" : board.error().message));
    CHECK(entry.path().stem().string() == board->id);
    CHECK(board->FindRole(runtime::RegionRole::kBootloader) != nullptr);
    CHECK(board->FindRole(runtime::RegionRole::kRecord) != nullptr);
    const runtime::Region* romfs = board->FindRole(runtime::RegionRole::kRomfs);
    REQUIRE(romfs != nullptr);
    CHECK(board->memories[romfs->memory].mapped);
    ++count;
  }
  CHECK(count >= 3);
}

TEST_CASE("board json: the large test board") {
  auto board = LoadBoardFile(fs::path(ONEDFU_SOURCE_DIR) / "tests" / "data" / "boards" / "test-large.json");
  REQUIRE_MESSAGE(board.ok(), (board.ok() ? "" : board.error().message));
  const runtime::Region* text1 = board->FindRegion("text1");
  REQUIRE(text1 != nullptr);
  CHECK(text1->size == 64u * 1024 * 1024);
  CHECK(board->RegionStart(*text1) == 0x90000000u);
  CHECK(board->memories[1].size() == 128u * 1024 * 1024);
}

TEST_CASE("board json: \"ecc\" marks a memory with ECC (the ECC test board); absent means none") {
  auto board = LoadBoardFile(fs::path(ONEDFU_SOURCE_DIR) / "tests" / "data" / "boards" / "test-ecc.json");
  REQUIRE_MESSAGE(board.ok(), (board.ok() ? "" : board.error().message));
  CHECK(board->memories[0].ecc);
  auto pybd = LoadBoardFile(kBoards / "pybd-sf6.json");
  REQUIRE(pybd.ok());
  CHECK_FALSE(pybd->memories[0].ecc);
  json doc = PybdJson();
  doc["memories"][0]["ecc"] = "yes";
  CHECK(ErrorOf(doc).find("/memories/0/ecc") != std::string::npos);
}

TEST_CASE("board json: pybd-sf6 fields as written in the file") {
  auto board = LoadBoardFile(kBoards / "pybd-sf6.json");
  REQUIRE(board.ok());
  CHECK(std::strcmp(board->id, "pybd-sf6") == 0);
  CHECK(std::strcmp(board->arch, "armv7emdp") == 0);
  CHECK(board->vid == 0x0483);
  CHECK(board->pid == 0xdf11);
  CHECK(board->bcd_device == 0x0200);
  REQUIRE(board->memory_count == 2);
  const runtime::Memory& internal = board->memories[0];
  CHECK(std::strcmp(internal.name, "internal") == 0);
  CHECK(std::strcmp(internal.label, "Internal Flash") == 0);
  CHECK(internal.base == 0x08000000u);
  REQUIRE(internal.sector_group_count == 3);
  CHECK(internal.sectors[0].count == 4u);
  CHECK(internal.sectors[0].size == 32u * 1024);
  CHECK(internal.sectors[1].count == 1u);
  CHECK(internal.sectors[1].size == 128u * 1024);
  CHECK(internal.sectors[2].count == 7u);
  CHECK(internal.sectors[2].size == 256u * 1024);
  CHECK(internal.write_align == 4u);
  CHECK(internal.erased_value == 0xff);
  CHECK(internal.mapped);
  CHECK(runtime::EraseTimeUs(internal, 0x08000000, 32 * 1024) == 450000u);
  CHECK(runtime::EraseTimeUs(internal, 0x08040000, 256 * 1024) == 2600000u);
  CHECK(internal.program_us == 16u);
  CHECK(internal.program_bytes == 4u);
  const runtime::Memory& qspi = board->memories[1];
  CHECK(qspi.base == 0x90000000u);
  CHECK(qspi.sector_count() == 512u);
  CHECK(runtime::EraseTimeUs(qspi, 0x90000000, 64 * 1024) == 150000u);  // one block erase
  CHECK(qspi.program_bytes == 256u);
  REQUIRE(board->region_count == 6);
  const runtime::Region* text0 = board->FindRegion("text0");
  REQUIRE(text0 != nullptr);
  CHECK(board->RegionStart(*text0) == 0x08008000u);
  CHECK(text0->size == 0x1b8000u);
  CHECK(text0->role == runtime::RegionRole::kFirmware);
  const runtime::Region* romfs = board->FindRegion("romfs");
  REQUIRE(romfs != nullptr);
  CHECK(romfs->memory == 1);
  CHECK(board->RegionStart(*romfs) == 0x90100000u);
  CHECK(romfs->size == 0xff000u);
  const runtime::Region* fs_region = board->FindRegion("filesystem");
  REQUIRE(fs_region != nullptr);
  CHECK(fs_region->size == 256u * 1024);
}

TEST_CASE("board json: the default board is the first file, pybd-sf6") {
  const fs::path def = DefaultBoardPath();
  CHECK(def.filename() == "pybd-sf6.json");
  const auto files = ListBoardFiles();
  REQUIRE(files.size() >= 3);
  CHECK(files.front() == def);
  for (size_t i = 1; i < files.size(); ++i) CHECK(files[i - 1].filename().string() < files[i].filename().string());
  CHECK(fs::equivalent(BoardsDirectory(), kBoards));
}

TEST_CASE("board json: FindBoard takes an id or a path") {
  auto by_id = FindBoard("pybv10");
  REQUIRE(by_id.ok());
  CHECK(by_id->filename() == "pybv10.json");
  CHECK(LoadBoardFile(*by_id).ok());
  auto by_path = FindBoard("some/dir/custom.json");
  REQUIRE(by_path.ok());
  CHECK(*by_path == fs::path("some/dir/custom.json"));
  auto unknown = FindBoard("pyboard-d");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("board \"pyboard-d\": unknown board (known: pybd-sf6, pybv10") == 0);
  CHECK_FALSE(FindBoard("").ok());
}

TEST_CASE("board json: numbers as JSON numbers, hex, decimal and K/M strings") {
  // The same 64 KiB region offset written five ways gives the same board.
  for (json offset : {json(65536), json("0x10000"), json("0X10000"), json("65536"), json("64K")}) {
    CAPTURE(offset.dump());
    json doc = PybdJson();
    doc["regions"][1]["offset"] = offset;  // text0
    doc["regions"][1]["size"] = "0x1b0000";
    auto board = ParseBoardJson(doc.dump(), "t.json");
    REQUIRE_MESSAGE(board.ok(), (board.ok() ? "" : board.error().message));
    CHECK(board->RegionStart(board->regions[1]) == 0x08010000u);
  }
  json doc = PybdJson();
  doc["regions"][3]["size"] = "1M";
  REQUIRE(ParseBoardJson(doc.dump(), "t.json").ok());
  CHECK(ParseBoardJson(doc.dump(), "t.json")->regions[3].size == 0x100000u);
}

TEST_CASE("board json: bad numbers name their path") {
  json doc = PybdJson();
  doc["regions"][1]["offset"] = "32k";
  CHECK(ErrorOf(doc) ==
        "t.json: /regions/1/offset: \"32k\" is not a number (write 4096, \"0x1000\", \"4K\" or \"1M\")");
  doc = PybdJson();
  doc["regions"][1]["offset"] = -4;
  CHECK(ErrorOf(doc) == "t.json: /regions/1/offset: must not be negative");
  doc = PybdJson();
  doc["regions"][1]["offset"] = 1.5;
  CHECK(ErrorOf(doc) == "t.json: /regions/1/offset: must be a whole number");
  doc = PybdJson();
  doc["memories"][0]["base"] = "0x100000000";
  CHECK(ErrorOf(doc) == "t.json: /memories/0/base: 4294967296 is larger than the maximum 4294967295");
  doc = PybdJson();
  doc["memories"][0]["erased"] = 256;
  CHECK(ErrorOf(doc) == "t.json: /memories/0/erased: 256 is larger than the maximum 255");
  doc = PybdJson();
  doc["usb"]["vid"] = true;
  CHECK(ErrorOf(doc) == "t.json: /usb/vid: expected a number or a string such as \"0x1000\" or \"4K\"");
  doc = PybdJson();
  doc["regions"][0]["size"] = "0x";
  CHECK(ErrorOf(doc).find("t.json: /regions/0/size: \"0x\" is not a number") == 0);
  doc = PybdJson();
  doc["regions"][0]["size"] = "99999999999999999999999K";
  CHECK(ErrorOf(doc).find("t.json: /regions/0/size: \"99999999999999999999999K\" is not a number") == 0);
}

TEST_CASE("board json: sector maps") {
  json doc = PybdJson();
  // 1 MiB of 4K, 512 KiB of 64K, 1 MiB of 4K: the pybd regions still sit on boundaries.
  doc["memories"][1]["sectors"] = " 256*4K , 8*64K,256*4K ";
  auto board = ParseBoardJson(doc.dump(), "t.json");
  REQUIRE_MESSAGE(board.ok(), (board.ok() ? "" : board.error().message));
  CHECK(board->memories[1].sector_group_count == 3);
  CHECK(board->memories[1].sectors[1].count == 8u);
  CHECK(board->memories[1].sectors[1].size == 65536u);
  CHECK(board->memories[1].size() == 2621440u);

  doc["memories"][1]["sectors"] = "512x4K";
  CHECK(ErrorOf(doc) ==
        "t.json: /memories/1/sectors: \"512x4K\": write sector groups as COUNT*SIZE, e.g. \"4*32K,1*128K,7*256K\"");
  doc["memories"][1]["sectors"] = "512*3K";
  CHECK(ErrorOf(doc) == "t.json: /memories/1/sectors: \"512*3K\": sector size must be a power of two below 4 GiB");
  doc["memories"][1]["sectors"] = "0*4K";
  CHECK(ErrorOf(doc) == "t.json: /memories/1/sectors: \"0*4K\": sector count must be 1 to 4294967295");
  doc["memories"][1]["sectors"] = "1*4K,1*4K,1*4K,1*4K,1*4K,1*4K,1*4K,1*4K,1*4K";
  CHECK(ErrorOf(doc) == "t.json: /memories/1/sectors: more than 8 sector groups");
  doc["memories"][1]["sectors"] = "512*4K,";
  CHECK(ErrorOf(doc).find("t.json: /memories/1/sectors: \"\": write sector groups") == 0);
}

TEST_CASE("board json: unknown keys at every level name the JSON path") {
  json doc = PybdJson();
  doc["memories"][1]["timng"] = doc["memories"][1]["timing"];
  CHECK(ErrorOf(doc) == "t.json: /memories/1/timng: unknown key");
  doc = PybdJson();
  doc["memories"][0]["timing"]["program_ns"] = 3;
  CHECK(ErrorOf(doc) == "t.json: /memories/0/timing/program_ns: unknown key");
  doc = PybdJson();
  doc["regions"][5]["flags"] = "rw";
  CHECK(ErrorOf(doc) == "t.json: /regions/5/flags: unknown key");
  doc = PybdJson();
  doc["usb"]["serial"] = "1";
  CHECK(ErrorOf(doc) == "t.json: /usb/serial: unknown key");
  doc = PybdJson();
  doc["a/b"] = 1;  // JSON pointer escaping of '/'
  CHECK(ErrorOf(doc) == "t.json: /a~1b: unknown key");
}

TEST_CASE("board json: structure errors") {
  json doc = PybdJson();
  doc["memories"][0].erase("base");
  CHECK(ErrorOf(doc) == "t.json: /memories/0: missing key \"base\"");
  doc = PybdJson();
  doc.erase("id");
  CHECK(ErrorOf(doc) == "t.json: missing key \"id\"");
  doc = PybdJson();
  doc["regions"][2]["memory"] = "flash";
  CHECK(ErrorOf(doc) == "t.json: /regions/2/memory: no memory named \"flash\"");
  doc = PybdJson();
  doc["regions"][2]["memory"] = 2;
  CHECK(ErrorOf(doc) == "t.json: /regions/2/memory: memory index 2 does not exist");
  doc = PybdJson();
  doc["regions"][2]["memory"] = 0;  // by index works
  CHECK(ErrorOf(doc) == "ok");
  doc = PybdJson();
  doc["regions"][4]["role"] = "rom";
  CHECK(ErrorOf(doc) ==
        "t.json: /regions/4/role: \"rom\" is not a role (bootloader, firmware, record, romfs, filesystem, "
        "reserved, provision)");
  doc = PybdJson();
  doc["memories"] = json::array();
  CHECK(ErrorOf(doc) == "t.json: /memories: expected a non-empty array");
  doc = PybdJson();
  doc["regions"] = json::object();
  CHECK(ErrorOf(doc) == "t.json: /regions: expected an array");
  doc = PybdJson();
  doc["notes"][1] = 7;
  CHECK(ErrorOf(doc) == "t.json: /notes/1: expected a string");
  doc = PybdJson();
  doc["arch"] = "armv7emdb";
  CHECK(ErrorOf(doc) == "t.json: /arch: \"armv7emdb\" is not a MicroPython native arch (armv6m, armv7emsp, ...)");
  CHECK(ErrorOf(std::string("[1, 2]")) == "t.json: expected an object");
}

TEST_CASE("board json: role reserved (flash that is not the package's)") {
  json doc = PybdJson();
  doc["regions"][3]["name"] = "radio";
  doc["regions"][3]["role"] = "reserved";
  auto board = ParseBoardJson(doc.dump(), "t.json");
  REQUIRE_MESSAGE(board.ok(), (board.ok() ? "" : board.error().message));
  const runtime::Region* radio = board->FindRegion("radio");
  REQUIRE(radio != nullptr);
  CHECK(radio->role == runtime::RegionRole::kReserved);
  CHECK(std::string(runtime::RegionRoleName(radio->role)) == "reserved");
  // Read-only like the bootloader and unlisted flash; the rest stays writable.
  CHECK(board->FirstReadOnly(0x90000000, 4096) == 0x90000000);
  CHECK(board->FirstReadOnly(0x08008000, 4096) == 0x08008000 + 4096);
  CHECK(board->FirstReadOnly(0x08008000 - 16, 32) == 0x08008000 - 16);
}

TEST_CASE("board json: erased value 0x00 or 0xff on every role: only the record's memory must erase to 0xff") {
  // PYBD-SF6 with a third memory "extra" that erases to `erased` and holds one region of
  // `role` (the role moved there from the other memories; a new one for reserved).
  for (const char* role : {"bootloader", "firmware", "record", "romfs", "filesystem", "reserved"}) {
    for (const char* erased : {"0xff", "0x00"}) {
      CAPTURE(role);
      CAPTURE(erased);
      json doc = PybdJson();
      doc["memories"].push_back({{"name", "extra"}, {"base", "0xa0000000"}, {"sectors", "16*4K"},
                                 {"write_align", 8}, {"erased", erased}, {"mapped", true}});
      json regions = json::array();
      for (const json& r : doc["regions"]) {
        if (r["role"] != role) regions.push_back(r);
      }
      regions.push_back({{"name", "moved"}, {"memory", "extra"}, {"offset", 0}, {"size", "64K"}, {"role", role}});
      doc["regions"] = regions;
      const std::string error = ErrorOf(doc);
      if (std::string(role) == "record" && std::string(erased) == "0x00") {
        CHECK(error == "t.json: memory extra holds record region 'moved': it erases to 0x00, but a boot record is "
                       "revoked by programming its 0xff revoke block to 0x00 without an erase, so the record memory "
                       "must erase to 0xff (put the record region on such a memory); the bootloader would refuse "
                       "to start");
      } else {
        CHECK(error == "ok");
      }
    }
  }
}

TEST_CASE("board json: names") {
  json doc = PybdJson();
  doc["id"] = "pyboard d";
  CHECK(ErrorOf(doc) == "t.json: /id: \"pyboard d\": use only letters, digits, '.', '_' and '-'");
  doc = PybdJson();
  doc["regions"][0]["name"] = std::string(32, 'b');
  CHECK(ErrorOf(doc) == "t.json: /regions/0/name: \"" + std::string(32, 'b') + "\" is longer than 31 characters");
  doc = PybdJson();
  doc["memories"][0]["label"] = "Internal/Flash";
  CHECK(ErrorOf(doc) == "t.json: /memories/0/label: \"Internal/Flash\": printable ASCII without '/' only");
  doc = PybdJson();
  doc["memories"][0].erase("label");
  auto board = ParseBoardJson(doc.dump(), "t.json");
  REQUIRE(board.ok());
  CHECK(std::strcmp(board->memories[0].label, "internal") == 0);  // defaults to the name
}

TEST_CASE("board json: duplicate keys and syntax errors") {
  std::string text = ReadText(kBoards / "pybd-sf6.json");
  const size_t base = text.find("\"base\"");
  REQUIRE(base != std::string::npos);
  text.insert(base, "\"base\": \"0x0\", ");
  CHECK(ErrorOf(text) == "t.json: /memories/0/base: duplicate key");

  const std::string dup_in_region = R"({"id":"x","memories":[{"name":"m","base":0,"sectors":"4*4K"}],
    "regions":[{"name":"a","memory":"m","offset":0,"size":"4K","role":"bootloader"},
               {"name":"b","memory":"m","offset":"4K","size":"4K","role":"record","role":"romfs"}]})";
  CHECK(ErrorOf(dup_in_region) == "t.json: /regions/1/role: duplicate key");

  const std::string broken = "{\n  \"id\": \"x\",\n  \"memories\": [\n}";
  const std::string error = ErrorOf(broken);
  CHECK(error.find("t.json: parse error at line 4, column 1") == 0);
  CHECK(ErrorOf(std::string()).find("t.json: parse error") == 0);
}

TEST_CASE("board json: layout rules run after parsing") {
  json doc = PybdJson();
  doc["memories"][1]["mapped"] = false;
  CHECK(ErrorOf(doc) == "t.json: region romfs: role romfs needs a memory-mapped memory");
  doc = PybdJson();
  doc["regions"][3]["size"] = "0x100001";
  CHECK(ErrorOf(doc) == "t.json: region text1: ends at 0x90100001, not on a sector boundary of memory qspi");
  doc = PybdJson();
  doc["regions"][4]["offset"] = "0xff000";
  CHECK(ErrorOf(doc) == "t.json: regions text1 and romfs overlap at 0x900ff000");
}

TEST_CASE("board json: timing") {
  json doc = PybdJson();
  doc["memories"][1]["timing"]["erase_ms"] = {{"0x1000", 0.5}, {"64K", 150}};
  auto board = ParseBoardJson(doc.dump(), "t.json");
  REQUIRE_MESSAGE(board.ok(), (board.ok() ? "" : board.error().message));
  CHECK(runtime::EraseTimeUs(board->memories[1], 0x90000000, 4096) == 500u);
  doc["memories"][1]["timing"]["erase_ms"] = {{"sector", 45}};
  CHECK(ErrorOf(doc) ==
        "t.json: /memories/1/timing/erase_ms/sector: the key must be a sector size such as \"4K\" or \"0x1000\"");
  doc["memories"][1]["timing"]["erase_ms"] = {{"4K", -1}};
  CHECK(ErrorOf(doc) == "t.json: /memories/1/timing/erase_ms/4K: must not be negative");
  doc["memories"][1]["timing"]["erase_ms"] = {{"4K", 1}, {"8K", 1}, {"16K", 1}, {"32K", 1}, {"64K", 1}};
  CHECK(ErrorOf(doc).find("t.json: /memories/1/timing/erase_ms/") == 0);
  CHECK(ErrorOf(doc).find("more than 4 erase timings") != std::string::npos);
  doc = PybdJson();
  doc["memories"][1]["timing"]["program_bytes"] = 0;
  CHECK(ErrorOf(doc) == "t.json: /memories/1/timing/program_bytes: must be at least 1");
}

TEST_CASE("board json: a missing file names the path") {
  auto board = LoadBoardFile("/nonexistent/dir/b.json");
  REQUIRE_FALSE(board.ok());
  CHECK(board.error().message.find("/nonexistent/dir/b.json") == 0);
}

}  // namespace
}  // namespace onedfu::host

namespace onedfu::host {
namespace {

TEST_CASE("board json: boards the bootloader would refuse at start-up are refused when loaded") {
  json doc = PybdJson();
  doc["memories"][0]["write_align"] = 128;
  CHECK(ErrorOf(doc) == "t.json: memory internal: write_align 128 is larger than the 64-byte write unit the "
                        "bootloader supports; the bootloader would refuse to start");

  doc = PybdJson();
  doc["memories"][1]["write_align"] = 64;  // qspi holds the record region
  CHECK(ErrorOf(doc) == "t.json: memory qspi holds record region 'record': its write_align 64 is larger than the "
                        "32-byte revoke block the bootloader programs to invalidate a record; the bootloader would "
                        "refuse to start");
  doc["memories"][1]["write_align"] = 32;
  CHECK(ErrorOf(doc) == "ok");
  doc["memories"][0]["write_align"] = 64;  // not the record's memory: fine
  CHECK(ErrorOf(doc) == "ok");

  doc = PybdJson();
  for (const char* base : {"0xa0000000", "0xb0000000"}) {
    doc["memories"].push_back({{"name", std::string("extra") + base}, {"base", base},
                               {"sectors", "1*4K,1*8K,1*4K,1*8K,1*4K,1*8K,1*4K,1*8K"}});
  }
  CHECK(ErrorOf(doc) == "t.json: the DfuSe layout string of its memories and sectors is longer than the 126 "
                        "characters of a USB string descriptor (fewer memories or sector groups); the bootloader "
                        "would refuse to start");
}

}  // namespace
}  // namespace onedfu::host
