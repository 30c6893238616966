// Board layout files (manifests/boards/*.json) -> runtime::Board.
//
// Schema (every key checked; an unknown key at any level is an error that
// names its JSON path, e.g. "pybd-sf6.json: /memories/1/timng: unknown key"):
//
//   {
//     "id": "pybd-sf6",                  required; [A-Za-z0-9._-], <= 31 chars
//     "description": "...",              optional text
//     "notes": ["...", ...],             optional text lines (layout rationale)
//     "arch": "armv7emdp",               optional; a MicroPython native arch name
//     "usb": { "vid": N, "pid": N, "bcd_device": N },   optional, each optional
//                                        (defaults 0x0483, 0xdf11, 0x0200)
//     "memories": [ {                    1..4 entries
//         "name": "internal",            required; [A-Za-z0-9._-] (simulator file stem)
//         "label": "Internal Flash",     optional (default: name); no '/'
//         "base": N,                     required
//         "sectors": "4*32K,1*128K,7*256K",  required; COUNT*SIZE groups, <= 8
//         "write_align": N,              optional, default 1
//         "erased": N,                   optional, default 0xff
//         "mapped": true,                optional, default false (XIP readable)
//         "timing": {                    optional
//           "erase_ms": { "32K": 450, "256K": 2600 },  SIZE -> typical ms, <= 4
//           "program_us": N,             typical us per program unit
//           "program_bytes": N } } ],    bytes per program unit (default 1)
//     "regions": [ {                     0..16 entries
//         "name": "text0", "memory": "internal" (name or index),
//         "offset": N, "size": N,
//         "role": "bootloader" | "firmware" | "record" | "romfs" | "filesystem"
//                 | "reserved" } ]      reserved: not the package's (read-only over
//                                        USB, like the bootloader and unlisted flash)
//   }
//
// N is a JSON number or a string: "0x1b8000", "4096", "32K", "1M" (K = 1024).
// After parsing, runtime::ValidateBoard checks the layout rules; its message
// is reported after the source name. Then what the bootloader checks at
// start-up: every write_align <= bootloader::kMaxWriteAlign (64), the record
// region's memory write_align <= the 32-byte revoke block and erased value
// 0xff (the revoke programs 0xff to 0x00 without an erase), and the DfuSe
// layout string within one USB string descriptor (126 characters).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "host/expected.h"
#include "runtime/board.h"

namespace onedfu::host {

// Parses and validates a board. `source_name` starts every error message.
Expected<runtime::Board> ParseBoardJson(std::string_view text, const std::string& source_name);

// Reads and parses `path`; errors start with the path as given.
Expected<runtime::Board> LoadBoardFile(const std::filesystem::path& path);

// The folder of bundled boards: $ONEDFU_BOARDS_DIR if set, else
// <executable dir>/../share/onedfu/boards when it exists (installed), else the
// source tree's manifests/boards. Empty when none of them exists.
std::filesystem::path BoardsDirectory();

// Every *.json in BoardsDirectory(), sorted by file name.
std::vector<std::filesystem::path> ListBoardFiles();

// The default board: the first *.json in alphabetical order under
// BoardsDirectory() (pybd-sf6.json). Empty when there is none.
std::filesystem::path DefaultBoardPath();

// Resolves a --board argument: a value containing '/' or ending in ".json" is
// a path (returned as is); anything else is a board id looked up as
// BoardsDirectory()/<id>.json. Error for an unknown id lists the known ones.
Expected<std::filesystem::path> FindBoard(std::string_view name_or_path);

}  // namespace onedfu::host
