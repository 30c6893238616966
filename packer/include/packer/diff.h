// `onedfu diff OLD.dfu NEW.dfu`: what an update from OLD to NEW changes,
// before anyone flashes: ROMFS files added/removed/changed (from the file
// indexes), per memory the sectors whose bytes differ (erase + write for a
// flasher that skips unchanged sectors) against the sectors plain dfu-util
// erases and writes (every sector NEW's elements touch), and the modeled
// device time of both from the board's timing.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "host/expected.h"
#include "runtime/board.h"

namespace onedfu::packer {

using namespace host;

// One ROMFS file whose bytes differ between OLD and NEW (by SHA-256 in the file indexes).
struct RomfsFileChange {
  enum class Kind { kAdded, kRemoved, kChanged };
  Kind kind = Kind::kChanged;
  std::string path;                  // as the index has it (shown escaped: host::EscapeText)
  std::optional<uint32_t> old_size;  // not for kAdded
  std::optional<uint32_t> new_size;  // not for kRemoved
  bool moved = false;                // kChanged: its offset in the image differs too
};

// Erase + write work on one memory: sectors, bytes written into them, modeled device time
// (runtime/flash_timing.h: erase each sector, program the bytes the package writes).
struct SectorWorkload {
  uint32_t sectors = 0;
  uint64_t write_bytes = 0;
  uint64_t device_us = 0;
};

struct MemoryDiff {
  std::string memory;        // the board's memory name
  SectorWorkload differ;     // the sectors NEW touches whose bytes differ from OLD's
  SectorWorkload dfu_util;   // every sector NEW touches (what plain dfu-util erases and writes)
};

struct PackageDiff {
  std::string old_name;
  std::string new_name;
  std::string board_id;
  std::vector<RomfsFileChange> files;  // NEW's index in path order (added, changed), then removed
  std::vector<MemoryDiff> memories;    // board order; only memories NEW writes

  size_t Count(RomfsFileChange::Kind kind) const;
  uint64_t DifferUs() const;   // sum over memories
  uint64_t DfuUtilUs() const;
};

// Compares the two packages on `board`. Bytes of a memory that OLD does not carry count as
// erased. Errors name the file at fault (not a .dfu, no intact boot record, an element
// outside the board's memory).
Expected<PackageDiff> DiffPackages(std::span<const uint8_t> old_bytes, const std::string& old_name,
                                   std::span<const uint8_t> new_bytes, const std::string& new_name,
                                   const runtime::Board& board);

// The text report of `onedfu diff` (README "onedfu diff").
std::string DiffText(const PackageDiff& diff);

// `onedfu diff --json`: one JSON object (README "onedfu diff"):
// {"old":"OLD.dfu","new":"NEW.dfu","board":"ID",
//  "romfs":{"added":N,"removed":N,"changed":N,
//           "files":[{"path":"...","change":"added"|"removed"|"changed","old_size":N|null,"new_size":N|null,"moved":B}]},
//  "memories":[{"name":"...","differ":{"sectors":N,"write_bytes":N,"device_us":N},
//               "dfu_util":{"sectors":N,"write_bytes":N,"device_us":N}}],
//  "device_us":{"differ":N,"dfu_util":N}}
// Strings from the files are escaped (host::EscapeText): always valid JSON.
std::string DiffJson(const PackageDiff& diff);

}  // namespace onedfu::packer
