// Package manifests (manifests/examples/*.json): what `onedfu pack` puts in
// one .dfu. Parsing only records paths; nothing here reads the inputs.
//
// Schema (every key checked; an unknown key at any level is an error naming
// its JSON path, e.g. "pkg.json: /modules/2/taget: unknown key"):
//
//   {
//     "name": "demo",             optional; printable ASCII, <= 255 chars
//                                 (default: the package file's stem)
//     "version": "1.4.0",         optional; printable ASCII, <= 31 chars
//     "board": "pybd-sf6",        optional; a board id (bundled boards) or a
//                                 path to a board JSON (contains '/' or ends in .json)
//     "usb": { "vid": N, "pid": N, "bcd_device": N },  optional; each must equal the
//                                 board's (its bootloader enumerates with those, and
//                                 verify checks the suffix against them)
//     "firmware": [               optional
//       "build/firmware.elf",     FILE (format sniffed: bin, Intel HEX, ELF, DfuSe)
//       { "file": "text1.bin", "address": "0x90000000" }  ADDRESS only for raw .bin
//     ],
//     "modules": [ ITEM, ... ],   optional; .mpy (or .py when mpy_cross is set)
//     "assets":  [ ITEM, ... ],   optional; any bytes (fonts, bitmaps)
//     "romfs": { "dir": "romfs", "align": 8 },  optional; a tree added as is,
//                                 and the file data alignment (power of two, <= 65536)
//     "mpy_cross": "mpy-cross"    optional; command or path of mpy-cross
//   }
//   ITEM = "path/file.mpy"                        target: the file name, at the ROMFS root
//        | { "source": "f.mpy", "target": "lib/f.mpy" }
//        | { "dir": "modules", "target": "lib" }  a whole tree under target ("" = root);
//                                                 native/<arch>/ variants are chosen by
//                                                 the ROMFS builder (CollectRomfsDir)
//
// N is a JSON number or a string "0x1000", "4096", "4K", "1M". Relative paths
// (board, file, source, dir, and mpy_cross when it contains '/') are resolved
// against the package file's folder. Targets are relative '/'-separated paths
// without empty, "." or ".." components.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/expected.h"

namespace onedfu::packer {

using namespace host;  // the shared host utilities (Expected, Bytes, boards, files)

struct FirmwareInput {
  std::filesystem::path file;
  std::optional<uint32_t> address;  // required for raw binaries, refused for other formats
  std::string origin;               // "pkg.json: /firmware/0" or "--firmware"
};

struct RomfsItem {
  std::string target;               // path inside the ROMFS ("" = the root, directories only)
  std::filesystem::path source;     // a file, or a directory when `directory`
  std::string origin;               // "pkg.json: /modules/1"
  bool directory = false;           // declared with "dir": the whole tree goes under `target`
};

struct PackageSpec {
  std::optional<std::filesystem::path> board;  // resolved: a board file path
  std::vector<FirmwareInput> firmware;
  std::vector<RomfsItem> modules;    // .mpy (or .py with mpy_cross)
  std::vector<RomfsItem> assets;     // any bytes
  std::optional<std::filesystem::path> romfs_dir;  // a directory tree added as is
  std::string version;
  std::optional<uint16_t> vid, pid, bcd_device;
  uint32_t romfs_align = 8;          // bytes, a power of two
  std::string mpy_cross;             // empty = none
  std::string name;
};

// Parses a package manifest. `package_path` names the file in errors and
// origins and anchors relative paths; the inputs are not opened. A board id is
// looked up among the bundled boards (FindBoard); an unknown id is an error.
Expected<PackageSpec> ParsePackageJson(std::string_view text, const std::filesystem::path& package_path);

// Reads `path` and parses it.
Expected<PackageSpec> LoadPackageFile(const std::filesystem::path& path);

// Parses a --firmware flag: "FILE" or "ADDR:FILE" with ADDR in hex ("0x08008000:fw.bin").
// A flag not starting with "0x" is a file name, colons and all. Origin "--firmware".
Expected<FirmwareInput> ParseFirmwareFlag(const std::string& flag);

// The rule for "version" (printable ASCII, <= 31 characters: the boot
// record's field), for a version given elsewhere: `where` starts the error
// ("--version \"1\xff\": use printable ASCII only").
Outcome CheckPackageVersion(const std::string& version, const std::string& where);

// Checks a ROMFS target path (see the schema); the error text says what is wrong.
Outcome CheckRomfsTarget(std::string_view target, bool allow_empty);

}  // namespace onedfu::packer
