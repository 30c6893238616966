// Generated board constants (generated_boards.h, made by onedfu-board-header
// from manifests/boards/*.json at build time) against the JSON loader, field
// by field, for every shipped board; and the generator's own rules.
#include "host/board_header.h"

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "generated_boards.h"
#include "host/board_json.h"

namespace onedfu::host {
namespace {

namespace fs = std::filesystem;
using runtime::Board;
using runtime::Memory;
using runtime::Region;

const fs::path kBoards = fs::path(ONEDFU_SOURCE_DIR) / "manifests" / "boards";

// Every field of `a` and `b` that differs, named by its path
// ("memories[1].erase_timings[0].size"); all capacity slots are compared,
// unused ones included.
std::vector<std::string> Differences(const Board& a, const Board& b) {
  std::vector<std::string> out;
  const auto field = [&](const std::string& name, bool same) {
    if (!same) out.push_back(name);
  };
  const auto text = [&](const std::string& name, const char* x, const char* y, size_t n) {
    field(name, std::memcmp(x, y, n) == 0);
  };
  text("id", a.id, b.id, sizeof a.id);
  text("arch", a.arch, b.arch, sizeof a.arch);
  field("vid", a.vid == b.vid);
  field("pid", a.pid == b.pid);
  field("bcd_device", a.bcd_device == b.bcd_device);
  for (size_t m = 0; m < runtime::kMaxMemories; ++m) {
    const Memory& x = a.memories[m];
    const Memory& y = b.memories[m];
    const std::string at = "memories[" + std::to_string(m) + "].";
    text(at + "name", x.name, y.name, sizeof x.name);
    text(at + "label", x.label, y.label, sizeof x.label);
    field(at + "base", x.base == y.base);
    for (size_t g = 0; g < runtime::kMaxSectorGroups; ++g) {
      const std::string sg = at + "sectors[" + std::to_string(g) + "].";
      field(sg + "count", x.sectors[g].count == y.sectors[g].count);
      field(sg + "size", x.sectors[g].size == y.sectors[g].size);
    }
    field(at + "sector_group_count", x.sector_group_count == y.sector_group_count);
    field(at + "write_align", x.write_align == y.write_align);
    field(at + "erased_value", x.erased_value == y.erased_value);
    field(at + "mapped", x.mapped == y.mapped);
    field(at + "ecc", x.ecc == y.ecc);
    for (size_t t = 0; t < runtime::kMaxEraseTimings; ++t) {
      const std::string et = at + "erase_timings[" + std::to_string(t) + "].";
      field(et + "size", x.erase_timings[t].size == y.erase_timings[t].size);
      field(et + "microseconds", x.erase_timings[t].microseconds == y.erase_timings[t].microseconds);
    }
    field(at + "erase_timing_count", x.erase_timing_count == y.erase_timing_count);
    field(at + "program_us", x.program_us == y.program_us);
    field(at + "program_bytes", x.program_bytes == y.program_bytes);
  }
  field("memory_count", a.memory_count == b.memory_count);
  for (size_t r = 0; r < runtime::kMaxRegions; ++r) {
    const Region& x = a.regions[r];
    const Region& y = b.regions[r];
    const std::string at = "regions[" + std::to_string(r) + "].";
    text(at + "name", x.name, y.name, sizeof x.name);
    field(at + "memory", x.memory == y.memory);
    field(at + "offset", x.offset == y.offset);
    field(at + "size", x.size == y.size);
    field(at + "role", x.role == y.role);
  }
  field("region_count", a.region_count == b.region_count);
  return out;
}

std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

TEST_CASE("board header: every generated constant equals what the JSON loader reads, field by field") {
  std::set<std::string> generated;
  for (const boards::GeneratedBoard& g : boards::kGeneratedBoards) {
    CAPTURE(g.file);
    generated.insert(g.file);
    auto loaded = LoadBoardFile(kBoards / g.file);
    REQUIRE_MESSAGE(loaded.ok(), loaded.error().message);
    CHECK_MESSAGE(Differences(*loaded, *g.board).empty(), Joined(Differences(*loaded, *g.board)));
  }
  // Every shipped board is generated (CMake globs manifests/boards/*.json).
  std::set<std::string> shipped;
  for (const auto& entry : fs::directory_iterator(kBoards)) {
    if (entry.path().extension() == ".json") shipped.insert(entry.path().filename().string());
  }
  CHECK(generated == shipped);
  CHECK(shipped.count("pybd-sf6.json") == 1);
  CHECK(std::strcmp(boards::kPybdSf6.id, "pybd-sf6") == 0);
}

TEST_CASE("board header: the comparison names each field that differs") {
  const Board base = boards::kPybdSf6;
  CHECK(Differences(base, base).empty());
  struct Change {
    const char* field;
    void (*apply)(Board&);
  };
  const Change changes[] = {
      {"id", [](Board& b) { b.id[0] = 'P'; }},
      {"arch", [](Board& b) { b.arch[8] = '\0'; }},
      {"vid", [](Board& b) { b.vid = 1; }},
      {"pid", [](Board& b) { b.pid = 1; }},
      {"bcd_device", [](Board& b) { b.bcd_device = 1; }},
      {"memories[1].label", [](Board& b) { b.memories[1].label[0] = 'q'; }},
      {"memories[0].name", [](Board& b) { b.memories[0].name[0] = 'I'; }},
      {"memories[0].base", [](Board& b) { b.memories[0].base += 4; }},
      {"memories[0].sectors[2].count", [](Board& b) { b.memories[0].sectors[2].count = 6; }},
      {"memories[1].sectors[0].size", [](Board& b) { b.memories[1].sectors[0].size = 8192; }},
      {"memories[0].sector_group_count", [](Board& b) { b.memories[0].sector_group_count = 2; }},
      {"memories[1].write_align", [](Board& b) { b.memories[1].write_align = 8; }},
      {"memories[0].erased_value", [](Board& b) { b.memories[0].erased_value = 0; }},
      {"memories[1].mapped", [](Board& b) { b.memories[1].mapped = false; }},
      {"memories[0].erase_timings[1].size", [](Board& b) { b.memories[0].erase_timings[1].size = 1; }},
      {"memories[1].erase_timings[0].microseconds", [](Board& b) { b.memories[1].erase_timings[0].microseconds = 1; }},
      {"memories[1].erase_timing_count", [](Board& b) { b.memories[1].erase_timing_count = 1; }},
      {"memories[0].program_us", [](Board& b) { b.memories[0].program_us = 17; }},
      {"memories[1].program_bytes", [](Board& b) { b.memories[1].program_bytes = 1; }},
      {"memory_count", [](Board& b) { b.memory_count = 1; }},
      {"regions[5].name", [](Board& b) { b.regions[5].name[0] = 'R'; }},
      {"regions[3].memory", [](Board& b) { b.regions[3].memory = 0; }},
      {"regions[1].offset", [](Board& b) { b.regions[1].offset = 0; }},
      {"regions[4].size", [](Board& b) { b.regions[4].size = 0; }},
      {"regions[0].role", [](Board& b) { b.regions[0].role = runtime::RegionRole::kFirmware; }},
      {"region_count", [](Board& b) { b.region_count = 5; }},
  };
  for (const Change& c : changes) {
    CAPTURE(c.field);
    Board changed = base;
    c.apply(changed);
    CHECK(Differences(base, changed) == std::vector<std::string>{c.field});
  }
  // Unused slots count too.
  Board extra = base;
  extra.regions[runtime::kMaxRegions - 1].size = 1;
  CHECK(Joined(Differences(base, extra)) == "regions[" + std::to_string(runtime::kMaxRegions - 1) + "].size");
}

TEST_CASE("board header: constant names, string escapes, clashes and capacities") {
  CHECK(BoardConstantName("pybd-sf6") == "kPybdSf6");
  CHECK(BoardConstantName("wb55") == "kWb55");
  CHECK(BoardConstantName("nucleo_h743.rev-b") == "kNucleoH743RevB");
  CHECK(BoardConstantName("1bitsquared") == "k1bitsquared");

  BoardSource a{"a.json", boards::kPybdSf6};
  BoardSource b{"b.json", boards::kPybdSf6};
  (void)runtime::CopyName(b.board.id, "pybd_sf6");
  auto clash = BoardHeader({a, b});
  REQUIRE_FALSE(clash.ok());
  CHECK(clash.error().message == "b.json: board id \"pybd_sf6\" gives the constant kPybdSf6, as the board of a.json does");

  (void)runtime::CopyName(b.board.id, "other");
  (void)runtime::CopyName(b.board.memories[0].label, "Say \"hi\" \\ \x01");
  auto header = BoardHeader({a, b});
  REQUIRE(header.ok());
  CHECK(header->find(".label = \"Say \\\"hi\\\" \\\\ \\001\",") != std::string::npos);
  CHECK(header->find("inline constexpr runtime::Board kOther = {") != std::string::npos);
  CHECK(header->find("{\"b.json\", &kOther},") != std::string::npos);
  CHECK(header->find("static_assert(runtime::kMaxRegions >= 6, \"a.json: its region list needs "
                     "ONEDFU_BOARD_MAX_REGIONS >= 6\");") != std::string::npos);

  // The smallest capacities that hold every board; at least 1 each.
  CHECK(BoardCapacityFlags({a}) ==
        "-DONEDFU_BOARD_MAX_NAME_LENGTH=14 -DONEDFU_BOARD_MAX_MEMORIES=2 -DONEDFU_BOARD_MAX_SECTOR_GROUPS=3 "
        "-DONEDFU_BOARD_MAX_ERASE_TIMINGS=3 -DONEDFU_BOARD_MAX_REGIONS=6");
  BoardSource bare{"bare.json", Board{}};
  (void)runtime::CopyName(bare.board.id, "b");
  CHECK(BoardCapacityFlags({bare}) ==
        "-DONEDFU_BOARD_MAX_NAME_LENGTH=1 -DONEDFU_BOARD_MAX_MEMORIES=1 -DONEDFU_BOARD_MAX_SECTOR_GROUPS=1 "
        "-DONEDFU_BOARD_MAX_ERASE_TIMINGS=1 -DONEDFU_BOARD_MAX_REGIONS=1");
  BoardSource longer = b;
  (void)runtime::CopyName(longer.board.regions[2].name, "a-much-longer-name");
  CHECK(BoardCapacityFlags({a, longer}).find("-DONEDFU_BOARD_MAX_NAME_LENGTH=18 ") == 0);
}

}  // namespace
}  // namespace onedfu::host
