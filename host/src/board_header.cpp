#include "host/board_header.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

namespace onedfu::host {

using runtime::Board;
using runtime::Memory;
using runtime::Region;
using runtime::RegionRole;

namespace {

// What one board needs of each capacity.
struct Needs {
  size_t name_length = 1;
  size_t memories = 1;
  size_t sector_groups = 1;
  size_t erase_timings = 1;
  size_t regions = 1;
};

Needs NeedsOf(const Board& b) {
  Needs n;
  const auto name = [&](const char* text) { n.name_length = std::max(n.name_length, std::strlen(text)); };
  name(b.id);
  name(b.arch);
  n.memories = std::max<size_t>(n.memories, b.memory_count);
  for (uint8_t m = 0; m < b.memory_count; ++m) {
    const Memory& memory = b.memories[m];
    name(memory.name);
    name(memory.label);
    n.sector_groups = std::max<size_t>(n.sector_groups, memory.sector_group_count);
    n.erase_timings = std::max<size_t>(n.erase_timings, memory.erase_timing_count);
  }
  n.regions = std::max<size_t>(n.regions, b.region_count);
  for (uint8_t r = 0; r < b.region_count; ++r) name(b.regions[r].name);
  return n;
}

// A C++ string literal: printable ASCII as is, '"' and '\' escaped, other
// bytes as three-digit octal escapes (never run into a following digit).
std::string Literal(const char* text) {
  std::string out = "\"";
  for (const char* p = text; *p != '\0'; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\%03o", c);
      out += escape;
    }
  }
  return out + "\"";
}

std::string Hex(uint32_t value, int digits = 1) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%0*x", digits, value);
  return text;
}

const char* RoleConstant(RegionRole role) {
  switch (role) {
    case RegionRole::kBootloader: return "runtime::RegionRole::kBootloader";
    case RegionRole::kFirmware: return "runtime::RegionRole::kFirmware";
    case RegionRole::kRecord: return "runtime::RegionRole::kRecord";
    case RegionRole::kRomfs: return "runtime::RegionRole::kRomfs";
    case RegionRole::kFilesystem: return "runtime::RegionRole::kFilesystem";
    case RegionRole::kReserved: return "runtime::RegionRole::kReserved";
    case RegionRole::kProvision: return "runtime::RegionRole::kProvision";
  }
  return "runtime::RegionRole::kFirmware";
}

void AppendMemory(std::string& out, const Memory& m) {
  out += "        {\n";
  out += "            .name = " + Literal(m.name) + ",\n";
  out += "            .label = " + Literal(m.label) + ",\n";
  out += "            .base = " + Hex(m.base, 8) + ",\n";
  out += "            .sectors = {";
  for (uint8_t g = 0; g < m.sector_group_count; ++g) {
    out += (g ? ", {" : "{") + std::to_string(m.sectors[g].count) + ", " + Hex(m.sectors[g].size) + "}";
  }
  out += "},\n";
  out += "            .sector_group_count = " + std::to_string(m.sector_group_count) + ",\n";
  out += "            .write_align = " + std::to_string(m.write_align) + ",\n";
  out += "            .erased_value = " + Hex(m.erased_value, 2) + ",\n";
  out += std::string("            .mapped = ") + (m.mapped ? "true" : "false") + ",\n";
  out += std::string("            .ecc = ") + (m.ecc ? "true" : "false") + ",\n";
  out += "            .erase_timings = {";
  for (uint8_t t = 0; t < m.erase_timing_count; ++t) {
    out += (t ? ", {" : "{") + Hex(m.erase_timings[t].size) + ", " + std::to_string(m.erase_timings[t].microseconds) +
           "}";
  }
  out += "},\n";
  out += "            .erase_timing_count = " + std::to_string(m.erase_timing_count) + ",\n";
  out += "            .program_us = " + std::to_string(m.program_us) + ",\n";
  out += "            .program_bytes = " + std::to_string(m.program_bytes) + ",\n";
  out += "        },\n";
}

void AppendRegion(std::string& out, const Region& r) {
  out += "        {.name = " + Literal(r.name) + ", .memory = " + std::to_string(r.memory) +
         ", .offset = " + Hex(r.offset) + ", .size = " + Hex(r.size) + ", .role = " + RoleConstant(r.role) + "},\n";
}

void AppendCapacityChecks(std::string& out, const BoardSource& source) {
  const Needs n = NeedsOf(source.board);
  const auto check = [&](const char* constant, const char* macro, size_t need, const char* what) {
    out += "static_assert(runtime::" + std::string(constant) + " >= " + std::to_string(need) + ", " +
           Literal((source.file + ": " + what + " needs " + macro + " >= " + std::to_string(need)).c_str()) + ");\n";
  };
  check("kMaxNameLength", "ONEDFU_BOARD_MAX_NAME_LENGTH", n.name_length, "its longest name");
  check("kMaxMemories", "ONEDFU_BOARD_MAX_MEMORIES", n.memories, "its memory list");
  check("kMaxSectorGroups", "ONEDFU_BOARD_MAX_SECTOR_GROUPS", n.sector_groups, "its longest sector map");
  check("kMaxEraseTimings", "ONEDFU_BOARD_MAX_ERASE_TIMINGS", n.erase_timings, "its longest erase timing list");
  check("kMaxRegions", "ONEDFU_BOARD_MAX_REGIONS", n.regions, "its region list");
}

void AppendBoard(std::string& out, const std::string& constant, const BoardSource& source) {
  const Board& b = source.board;
  out += "// " + source.file + "\n";
  AppendCapacityChecks(out, source);
  out += "inline constexpr runtime::Board " + constant + " = {\n";
  out += "    .id = " + Literal(b.id) + ",\n";
  out += "    .arch = " + Literal(b.arch) + ",\n";
  out += "    .vid = " + Hex(b.vid, 4) + ",\n";
  out += "    .pid = " + Hex(b.pid, 4) + ",\n";
  out += "    .bcd_device = " + Hex(b.bcd_device, 4) + ",\n";
  out += "    .memories = {\n";
  for (uint8_t m = 0; m < b.memory_count; ++m) AppendMemory(out, b.memories[m]);
  out += "    },\n";
  out += "    .memory_count = " + std::to_string(b.memory_count) + ",\n";
  out += "    .regions = {\n";
  for (uint8_t r = 0; r < b.region_count; ++r) AppendRegion(out, b.regions[r]);
  out += "    },\n";
  out += "    .region_count = " + std::to_string(b.region_count) + ",\n";
  const runtime::BootCost& c = b.boot_cost;
  out += "    .boot_cost = {" + std::to_string(c.clock_mhz) + ", " + std::to_string(c.sha256_cycles_per_byte) + ", " +
         std::to_string(c.crc32_cycles_per_byte) + ", " + std::to_string(c.ed25519_verify_cycles) + "},\n";
  out += "};\n\n";
}

}  // namespace

std::string BoardConstantName(std::string_view id) {
  std::string out = "k";
  bool start = true;
  for (char c : id) {
    if (c == '-' || c == '_' || c == '.') {
      start = true;
      continue;
    }
    out += start && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
    start = false;
  }
  return out;
}

Expected<std::string> BoardHeader(const std::vector<BoardSource>& boards) {
  std::map<std::string, std::string> file_of;  // constant -> file
  std::vector<std::string> constants;
  std::string files;
  for (const BoardSource& source : boards) {
    const std::string constant = BoardConstantName(source.board.id);
    if (auto [it, fresh] = file_of.emplace(constant, source.file); !fresh) {
      return Fail(source.file + ": board id \"" + source.board.id + "\" gives the constant " + constant +
                  ", as the board of " + it->second + " does");
    }
    constants.push_back(constant);
    files += (files.empty() ? "" : ", ") + source.file;
  }
  std::string out;
  out += "// Generated by onedfu-board-header from " + files + ". Do not edit: change the JSON.\n";
  out += "// Each board as a constant, equal field by field to what host::LoadBoardFile reads\n";
  out += "// (tests/host/board_header_test.cpp checks it).\n";
  out += "#pragma once\n\n#include \"runtime/board.h\"\n\nnamespace onedfu::boards {\n\n";
  for (size_t i = 0; i < boards.size(); ++i) AppendBoard(out, constants[i], boards[i]);
  out += "// Every board above, with the file it came from.\n";
  out += "struct GeneratedBoard {\n  const char* file;\n  const runtime::Board* board;\n};\n";
  out += "inline constexpr GeneratedBoard kGeneratedBoards[] = {\n";
  for (size_t i = 0; i < boards.size(); ++i) out += "    {" + Literal(boards[i].file.c_str()) + ", &" + constants[i] + "},\n";
  out += "};\n\n}  // namespace onedfu::boards\n";
  return out;
}

std::string BoardCapacityFlags(const std::vector<BoardSource>& boards) {
  Needs all;
  for (const BoardSource& source : boards) {
    const Needs n = NeedsOf(source.board);
    all.name_length = std::max(all.name_length, n.name_length);
    all.memories = std::max(all.memories, n.memories);
    all.sector_groups = std::max(all.sector_groups, n.sector_groups);
    all.erase_timings = std::max(all.erase_timings, n.erase_timings);
    all.regions = std::max(all.regions, n.regions);
  }
  return "-DONEDFU_BOARD_MAX_NAME_LENGTH=" + std::to_string(all.name_length) +
         " -DONEDFU_BOARD_MAX_MEMORIES=" + std::to_string(all.memories) +
         " -DONEDFU_BOARD_MAX_SECTOR_GROUPS=" + std::to_string(all.sector_groups) +
         " -DONEDFU_BOARD_MAX_ERASE_TIMINGS=" + std::to_string(all.erase_timings) +
         " -DONEDFU_BOARD_MAX_REGIONS=" + std::to_string(all.regions);
}

}  // namespace onedfu::host
