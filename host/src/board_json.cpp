#include "host/board_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <system_error>

#include "bootloader/descriptors.h"
#include "bootloader/guarded_flash.h"
#include "host/json_reader.h"
#include "host/file_io.h"
#include "runtime/boot_record.h"
#include "runtime/mpy.h"

#ifndef ONEDFU_SOURCE_BOARDS_DIR
#define ONEDFU_SOURCE_BOARDS_DIR ""
#endif

namespace onedfu::host {

namespace fs = std::filesystem;
using json_reader::Json;
using json_reader::Object;
using json_reader::ReadNumber;
using json_reader::ReadString;
using json_reader::Throw;

namespace {

constexpr uint64_t kMax32 = UINT32_MAX;

// Identifiers end up in file names and the boot record: keep them plain.
void CopyIdentifier(char (&dst)[runtime::kMaxNameLength + 1], const std::string& text, const std::string& path) {
  if (text.empty()) Throw(path, "must not be empty");
  for (char c : text) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                       c == '_' || c == '-';
    if (!plain) Throw(path, "\"" + text + "\": use only letters, digits, '.', '_' and '-'");
  }
  if (!runtime::CopyName(dst, text.c_str()).ok()) {
    Throw(path, "\"" + text + "\" is longer than " + std::to_string(runtime::kMaxNameLength) + " characters");
  }
}

void CopyLabel(char (&dst)[runtime::kMaxNameLength + 1], const std::string& text, const std::string& path) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e || c == '/') Throw(path, "\"" + text + "\": printable ASCII without '/' only");
  }
  if (!runtime::CopyName(dst, text.c_str()).ok()) {
    Throw(path, "\"" + text + "\" is longer than " + std::to_string(runtime::kMaxNameLength) + " characters");
  }
}

// "4*32K,1*128K,7*256K" -> sector groups.
void ParseSectors(runtime::Memory& memory, const std::string& text, const std::string& path) {
  memory.sector_group_count = 0;
  size_t pos = 0;
  while (true) {
    const size_t comma = text.find(',', pos);
    std::string group = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    group.erase(0, group.find_first_not_of(" \t"));
    group.erase(group.find_last_not_of(" \t") + 1);
    const size_t star = group.find('*');
    uint64_t count = 0;
    uint64_t size = 0;
    const std::string help = ": write sector groups as COUNT*SIZE, e.g. \"4*32K,1*128K,7*256K\"";
    if (star == std::string::npos ||
        !json_reader::ParseNumberText(std::string_view(group).substr(0, star), &count) ||
        !json_reader::ParseNumberText(std::string_view(group).substr(star + 1), &size)) {
      Throw(path, "\"" + group + "\"" + help);
    }
    if (count == 0 || count > kMax32) Throw(path, "\"" + group + "\": sector count must be 1 to 4294967295");
    if (size == 0 || size > kMax32 || (size & (size - 1)) != 0) {
      Throw(path, "\"" + group + "\": sector size must be a power of two below 4 GiB");
    }
    if (memory.sector_group_count == runtime::kMaxSectorGroups) {
      Throw(path, "more than " + std::to_string(runtime::kMaxSectorGroups) + " sector groups");
    }
    memory.sectors[memory.sector_group_count++] = {static_cast<uint32_t>(count), static_cast<uint32_t>(size)};
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
}

void ParseTiming(runtime::Memory& memory, const Object& timing) {
  timing.AllowOnly({"erase_ms", "program_us", "program_bytes"});
  if (const Json* erase = timing.Find("erase_ms")) {
    const Object sizes(*erase, timing.PathOf("erase_ms"));
    for (auto it = erase->begin(); it != erase->end(); ++it) {
      const std::string path = sizes.PathOf(it.key());
      uint64_t size = 0;
      if (!json_reader::ParseNumberText(it.key(), &size) || size == 0 || size > kMax32) {
        Throw(path, "the key must be a sector size such as \"4K\" or \"0x1000\"");
      }
      if (memory.erase_timing_count == runtime::kMaxEraseTimings) {
        Throw(path, "more than " + std::to_string(runtime::kMaxEraseTimings) + " erase timings");
      }
      const double ms = json_reader::ReadReal(it.value(), path, 4.0e6);  // about 70 minutes
      memory.erase_timings[memory.erase_timing_count++] = {static_cast<uint32_t>(size),
                                                           static_cast<uint32_t>(std::llround(ms * 1000.0))};
    }
  }
  if (const Json* v = timing.Find("program_us")) {
    memory.program_us = static_cast<uint32_t>(ReadNumber(*v, timing.PathOf("program_us"), kMax32));
  }
  if (const Json* v = timing.Find("program_bytes")) {
    const std::string path = timing.PathOf("program_bytes");
    memory.program_bytes = static_cast<uint32_t>(ReadNumber(*v, path, kMax32));
    if (memory.program_bytes == 0) Throw(path, "must be at least 1");
  }
}

runtime::Memory ParseMemory(const Json& value, const std::string& path) {
  const Object obj(value, path);
  obj.AllowOnly({"name", "label", "base", "sectors", "write_align", "erased", "mapped", "ecc", "timing"});
  runtime::Memory m;
  const std::string name = ReadString(obj.Require("name"), obj.PathOf("name"));
  CopyIdentifier(m.name, name, obj.PathOf("name"));
  if (const Json* v = obj.Find("label")) {
    CopyLabel(m.label, ReadString(*v, obj.PathOf("label")), obj.PathOf("label"));
  } else {
    CopyLabel(m.label, name, obj.PathOf("name"));
  }
  m.base = static_cast<uint32_t>(ReadNumber(obj.Require("base"), obj.PathOf("base"), kMax32));
  ParseSectors(m, ReadString(obj.Require("sectors"), obj.PathOf("sectors")), obj.PathOf("sectors"));
  if (const Json* v = obj.Find("write_align")) {
    m.write_align = static_cast<uint32_t>(ReadNumber(*v, obj.PathOf("write_align"), kMax32));
  }
  if (const Json* v = obj.Find("erased")) {
    m.erased_value = static_cast<uint8_t>(ReadNumber(*v, obj.PathOf("erased"), 0xff));
  }
  if (const Json* v = obj.Find("mapped")) m.mapped = json_reader::ReadBool(*v, obj.PathOf("mapped"));
  if (const Json* v = obj.Find("ecc")) m.ecc = json_reader::ReadBool(*v, obj.PathOf("ecc"));
  if (const Json* v = obj.Find("timing")) ParseTiming(m, Object(*v, obj.PathOf("timing")));
  return m;
}

runtime::Region ParseRegion(const runtime::Board& board, const Json& value, const std::string& path) {
  const Object obj(value, path);
  obj.AllowOnly({"name", "memory", "offset", "size", "role"});
  runtime::Region r;
  CopyIdentifier(r.name, ReadString(obj.Require("name"), obj.PathOf("name")), obj.PathOf("name"));
  const Json& memory = obj.Require("memory");
  const std::string memory_path = obj.PathOf("memory");
  if (memory.is_string()) {
    const std::string name = memory.get<std::string>();
    bool found = false;
    for (uint8_t i = 0; i < board.memory_count && !found; ++i) {
      if (name == board.memories[i].name) {
        r.memory = i;
        found = true;
      }
    }
    if (!found) Throw(memory_path, "no memory named \"" + name + "\"");
  } else {
    const uint64_t index = ReadNumber(memory, memory_path, 255);
    if (index >= board.memory_count) Throw(memory_path, "memory index " + std::to_string(index) + " does not exist");
    r.memory = static_cast<uint8_t>(index);
  }
  r.offset = static_cast<uint32_t>(ReadNumber(obj.Require("offset"), obj.PathOf("offset"), kMax32));
  r.size = static_cast<uint32_t>(ReadNumber(obj.Require("size"), obj.PathOf("size"), kMax32));
  const std::string role = ReadString(obj.Require("role"), obj.PathOf("role"));
  auto parsed = runtime::ParseRegionRole(role.c_str());
  if (!parsed.ok()) {
    Throw(obj.PathOf("role"), "\"" + role + "\" is not a role (bootloader, firmware, record, romfs, filesystem, reserved, provision)");
  }
  r.role = *parsed;
  return r;
}

// "boot_cost": {"cpu": "...", "clock_mhz": N, "sha256_cycles_per_byte": N,
//               "crc32_cycles_per_byte": N, "ed25519_verify_cycles": N}
void ParseBootCost(runtime::BootCost& cost, const Object& obj) {
  obj.AllowOnly({"cpu", "note", "clock_mhz", "sha256_cycles_per_byte", "crc32_cycles_per_byte", "ed25519_verify_cycles"});
  if (const Json* v = obj.Find("cpu")) ReadString(*v, obj.PathOf("cpu"));
  if (const Json* v = obj.Find("note")) ReadString(*v, obj.PathOf("note"));
  cost.clock_mhz = static_cast<uint32_t>(ReadNumber(obj.Require("clock_mhz"), obj.PathOf("clock_mhz"), 100000));
  if (cost.clock_mhz == 0) Throw(obj.PathOf("clock_mhz"), "must be at least 1");
  const auto read = [&](const char* name, uint32_t* out) {
    if (const Json* v = obj.Find(name)) *out = static_cast<uint32_t>(ReadNumber(*v, obj.PathOf(name), 0xffffffffu));
  };
  read("sha256_cycles_per_byte", &cost.sha256_cycles_per_byte);
  read("crc32_cycles_per_byte", &cost.crc32_cycles_per_byte);
  read("ed25519_verify_cycles", &cost.ed25519_verify_cycles);
}

void ParseUsb(runtime::Board& board, const Object& usb) {
  usb.AllowOnly({"vid", "pid", "bcd_device"});
  if (const Json* v = usb.Find("vid")) board.vid = static_cast<uint16_t>(ReadNumber(*v, usb.PathOf("vid"), 0xffff));
  if (const Json* v = usb.Find("pid")) board.pid = static_cast<uint16_t>(ReadNumber(*v, usb.PathOf("pid"), 0xffff));
  if (const Json* v = usb.Find("bcd_device")) {
    board.bcd_device = static_cast<uint16_t>(ReadNumber(*v, usb.PathOf("bcd_device"), 0xffff));
  }
}

runtime::Board ParseBoardDocument(const Json& doc) {
  const Object top(doc, "");
  top.AllowOnly({"id", "description", "notes", "arch", "usb", "memories", "regions", "boot_cost"});
  runtime::Board board;
  CopyIdentifier(board.id, ReadString(top.Require("id"), top.PathOf("id")), top.PathOf("id"));
  if (const Json* v = top.Find("description")) ReadString(*v, top.PathOf("description"));
  if (const Json* v = top.Find("notes")) {
    if (!v->is_array()) Throw(top.PathOf("notes"), "expected an array of strings");
    for (size_t i = 0; i < v->size(); ++i) ReadString((*v)[i], json_reader::Child(top.PathOf("notes"), i));
  }
  if (const Json* v = top.Find("arch")) {
    const std::string arch = ReadString(*v, top.PathOf("arch"));
    auto parsed = runtime::ParseMpyArch(arch.c_str());
    if (!parsed.ok() || *parsed == runtime::MpyArch::kNone) {
      Throw(top.PathOf("arch"), "\"" + arch + "\" is not a MicroPython native arch (armv6m, armv7emsp, ...)");
    }
    CopyIdentifier(board.arch, arch, top.PathOf("arch"));
  }
  if (const Json* v = top.Find("usb")) ParseUsb(board, Object(*v, top.PathOf("usb")));
  if (const Json* v = top.Find("boot_cost")) ParseBootCost(board.boot_cost, Object(*v, top.PathOf("boot_cost")));

  const Json& memories = top.Require("memories");
  const std::string memories_path = top.PathOf("memories");
  if (!memories.is_array() || memories.empty()) Throw(memories_path, "expected a non-empty array");
  if (memories.size() > runtime::kMaxMemories) {
    Throw(memories_path, "more than " + std::to_string(runtime::kMaxMemories) + " memories");
  }
  for (size_t i = 0; i < memories.size(); ++i) {
    board.memories[board.memory_count++] = ParseMemory(memories[i], json_reader::Child(memories_path, i));
  }

  const Json& regions = top.Require("regions");
  const std::string regions_path = top.PathOf("regions");
  if (!regions.is_array()) Throw(regions_path, "expected an array");
  if (regions.size() > runtime::kMaxRegions) {
    Throw(regions_path, "more than " + std::to_string(runtime::kMaxRegions) + " regions");
  }
  for (size_t i = 0; i < regions.size(); ++i) {
    board.regions[board.region_count++] = ParseRegion(board, regions[i], json_reader::Child(regions_path, i));
  }
  return board;
}

// What the bootloader refuses at start-up (DfuDevice::Init: GuardedFlash::Check
// and the DfuSe layout string), checked where every tool loads a board, so pack
// never makes a package for a board whose bootloader would not run.
std::string BootloaderProblem(const runtime::Board& board) {
  for (uint8_t i = 0; i < board.memory_count; ++i) {
    const runtime::Memory& m = board.memories[i];
    if (m.write_align > bootloader::kMaxWriteAlign) {
      return std::string("memory ") + m.name + ": write_align " + std::to_string(m.write_align) +
             " is larger than the " + std::to_string(bootloader::kMaxWriteAlign) +
             "-byte write unit the bootloader supports";
    }
  }
  if (const runtime::Region* record = board.FindRole(runtime::RegionRole::kRecord)) {
    const runtime::Memory& m = board.memories[record->memory];
    if (m.write_align > runtime::kRevokeSize) {
      return std::string("memory ") + m.name + " holds record region '" + record->name + "': its write_align " +
             std::to_string(m.write_align) + " is larger than the " + std::to_string(runtime::kRevokeSize) +
             "-byte revoke block the bootloader programs to invalidate a record";
    }
    if (m.erased_value != 0xff) {
      char erased[8];
      std::snprintf(erased, sizeof erased, "0x%02x", m.erased_value);
      return std::string("memory ") + m.name + " holds record region '" + record->name + "': it erases to " + erased +
             ", but a boot record is revoked by programming its 0xff revoke block to 0x00 without an erase, so "
             "the record memory must erase to 0xff (put the record region on such a memory)";
    }
  }
  char layout[bootloader::kMaxStringChars + 1];
  const auto built = bootloader::BuildLayoutString(board, layout, sizeof layout);
  if (!built.ok()) {
    return std::string("the DfuSe layout string of its memories and sectors is longer than the ") +
           std::to_string(bootloader::kMaxStringChars) +
           " characters of a USB string descriptor (fewer memories or sector groups)";
  }
  return "";
}

fs::path ExecutableDirectory() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return exe.parent_path();
}

bool IsDirectory(const fs::path& path) {
  std::error_code ec;
  return !path.empty() && fs::is_directory(path, ec);
}

}  // namespace

Expected<runtime::Board> ParseBoardJson(std::string_view text, const std::string& source_name) {
  runtime::Board board;
  try {
    board = ParseBoardDocument(json_reader::ParseDocument(text));
  } catch (const json_reader::JsonFieldError& e) {
    return Fail(json_reader::Describe(source_name, e));
  } catch (const std::exception& e) {
    return Fail(source_name + ": " + e.what());
  }
  runtime::Diag diag;
  if (!runtime::ValidateBoard(board, &diag).ok()) return Fail(source_name + ": " + diag.c_str());
  if (const std::string problem = BootloaderProblem(board); !problem.empty()) {
    return Fail(source_name + ": " + problem + "; the bootloader would refuse to start");
  }
  return board;
}

Expected<runtime::Board> LoadBoardFile(const fs::path& path) {
  ONEDFU_PTRY(const Bytes bytes, ReadFile(path, kMaxJsonSize));
  return ParseBoardJson(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path.string());
}

fs::path BoardsDirectory() {
  if (const char* env = std::getenv("ONEDFU_BOARDS_DIR"); env != nullptr && env[0] != '\0') return fs::path(env);
  const fs::path exe_dir = ExecutableDirectory();
  if (!exe_dir.empty()) {
    const fs::path installed = exe_dir / ".." / "share" / "onedfu" / "boards";
    if (IsDirectory(installed)) return installed.lexically_normal();
  }
  const fs::path source = ONEDFU_SOURCE_BOARDS_DIR;
  if (IsDirectory(source)) return source;
  return {};
}

std::vector<fs::path> ListBoardFiles() {
  std::vector<fs::path> files;
  const fs::path dir = BoardsDirectory();
  if (dir.empty()) return files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".json" && it->is_regular_file(ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
  return files;
}

fs::path DefaultBoardPath() {
  const std::vector<fs::path> files = ListBoardFiles();
  return files.empty() ? fs::path() : files.front();
}

Expected<fs::path> FindBoard(std::string_view name_or_path) {
  const std::string text(name_or_path);
  if (text.empty()) return Fail("board: empty name");
  if (text.find('/') != std::string::npos || fs::path(text).extension() == ".json") return fs::path(text);
  std::string known;
  for (const fs::path& file : ListBoardFiles()) {
    if (file.stem().string() == text) return file;
    known += (known.empty() ? "" : ", ") + file.stem().string();
  }
  if (known.empty()) return Fail("board \"" + text + "\": no board files found (set ONEDFU_BOARDS_DIR)");
  return Fail("board \"" + text + "\": unknown board (known: " + known + ")");
}

}  // namespace onedfu::host
