// Host-side ROMFS building for the packer: collect files (with per-arch
// native .mpy variants), validate .mpy headers against the board, optionally
// compile .py with mpy-cross, and write the image with the runtime's writer
// (the same code the device uses, so both sides agree on every byte).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "host/expected.h"
#include "host/file_io.h"
#include "runtime/mpy.h"
#include "runtime/sha256.h"

namespace onedfu::host {

struct RomfsSource {
  std::string target_path;           // path inside the ROMFS: "lib/foo.mpy", "fonts/big.bin"
  std::filesystem::path source;      // file on disk
  std::string origin;                // where it was declared, for errors: "package.json: /modules/2"
  bool is_dir = false;               // an empty directory (`source` is not read)
};

struct RomfsBuildOptions {
  uint32_t data_align = 8;           // see runtime::RomfsWriteOptions::data_align
  runtime::MpyArch board_arch = runtime::MpyArch::kNone;  // kNone: bytecode only
  std::string mpy_cross;             // mpy-cross executable; empty = none configured
  // An mpy-cross run that takes longer is stopped (with its process group) and
  // the build fails; mpy-cross needs well under a second per module.
  uint32_t mpy_cross_timeout_ms = 60000;
};

// Walks `dir` recursively and returns one source per regular file and per
// empty directory (is_dir; MicroPython's VfsRom lists them), sorted by target
// path: paths relative to `dir` with '/' separators, origin
// "<dir>/<relative path>". Symbolic links are followed, to files and
// directories inside or outside `dir`, and stored under the link's own path;
// a broken link, a link loop, and anything neither a regular file nor a
// directory (FIFO, socket, device) are errors naming the path. A directory named `native`
// holds per-arch variants `native/<arch>/<name>.mpy`: for each <name> the one
// with the highest arch compatible with options.board_arch is placed as
// `<name>.mpy` beside `native/` (the other variants are left out). Errors:
// unreadable dir, an unknown <arch> directory name, no compatible variant
// for a name (message lists the variants and the board arch), a chosen
// variant whose header holds native code for another arch than its
// directory says, any other file under `native/`, or a variant colliding
// with a plain file of the same target path. A `native/none/` variant
// (bytecode) is allowed as the fallback when no native one fits.
Expected<std::vector<RomfsSource>> CollectRomfsDir(const std::filesystem::path& dir,
                                                   const RomfsBuildOptions& options);

// Builds the image: sorts by target path, rejects duplicates (naming both
// origins) and malformed target paths, reads every source (an is_dir source
// with anything under it is implied by its contents); `.mpy` files must
// be version 6 and suit options.board_arch (runtime::CheckMpyForBoard; the
// error names the file, e.g. "native code for x64 cannot run on armv7emdp");
// `.py` files are refused unless options.mpy_cross is set, in which case each
// is compiled (target `x.py` becomes `x.mpy`, with -march=<board arch> when
// the board has one) into a temporary directory and the result checked the
// same way. Returns the image bytes (even size).
Expected<Bytes> BuildRomfs(std::vector<RomfsSource> sources, const RomfsBuildOptions& options);

// One file of an image as its file index (runtime/romfs_index.h) lists it.
struct RomfsFileRecord {
  std::string path;      // no leading '/'
  uint32_t offset = 0;   // of the data, from the image start
  uint32_t size = 0;     // bytes
  runtime::Sha256Hash sha256{};
};

// An older image that a new one is laid out against (`onedfu pack --base`).
struct RomfsBase {
  Bytes image;                          // the older image's bytes
  std::vector<RomfsFileRecord> files;   // its files
  uint32_t index_offset = 0;            // its index block
  uint32_t index_size = 0;              // 0 = it has none
};

struct RomfsLayoutOptions {
  uint32_t capacity = 0;     // bytes the image may take (the ROMFS region's size)
  uint32_t sector_size = 0;  // erase sector of the region's memory (0 = unknown)
  uint8_t fill = 0xff;       // value of free bytes (the memory's erased value)
  const RomfsBase* base = nullptr;  // null: a fresh layout
};

// A ROMFS image with its file index inside (in the data area, referenced by
// no directory record).
//
// Fresh layout: tree, a little slack for the tree to grow (1/8 of it), the
// index, then every file in path order at data_align; the image ends on a
// boundary of min(sector, 4 KiB) leaving at least 1/16 of the used size free
// (within the capacity), so later versions can place new or grown files
// without moving the rest. The image is larger than the capacity only when
// the files alone do not fit (the caller reports that).
// Base layout: the image keeps the base's size (growing only when it must);
// every file whose path, size and SHA-256 match a base file keeps its offset
// and every byte nobody uses keeps the base image's value, so only the tree,
// the index and the changed files' bytes differ. New or changed files go to
// the first free gap that fits, into as few sectors as they can; the index
// stays where it was when it still fits there. When the files do not fit the
// capacity that way, or more than half of the image would be free space, the
// image is laid out fresh (`compacted` says why).
struct RomfsIndexedImage {
  Bytes image;                          // even size
  std::vector<RomfsFileRecord> files;   // sorted by path, as the index lists them
  uint32_t index_offset = 0;
  uint32_t index_size = 0;
  runtime::Sha256Hash index_sha256{};
  size_t kept = 0;        // files at their base offset
  size_t moved = 0;       // base layout: files placed anew (new, changed, or in the tree's way)
  std::string compacted;  // why the base layout was given up; "" = it was not (or no base)
};

// BuildRomfs's input rules and checks, then the layout above. The image's
// free bytes hold layout.fill (fresh) or the base image's bytes (base).
Expected<RomfsIndexedImage> BuildIndexedRomfs(std::vector<RomfsSource> sources, const RomfsBuildOptions& options,
                                              const RomfsLayoutOptions& layout);

// The files the index at image[offset, offset + size) lists, checked by the
// runtime parser against the image size. `source_name` names it in errors.
Expected<std::vector<RomfsFileRecord>> ReadRomfsIndex(std::span<const uint8_t> image, uint32_t offset,
                                                      uint32_t size, const std::string& source_name);

struct RomfsListing {
  std::string path;    // full path, no leading '/'
  bool is_dir = false;
  uint64_t size = 0;   // file data bytes; 0 for directories
  uint64_t offset = 0; // file data offset from the image start; 0 for directories
};

// Lists every entry of an image in stored order. `source_name` names the
// image in error messages ("pkg.dfu: romfs").
Expected<std::vector<RomfsListing>> ListRomfs(std::span<const uint8_t> image,
                                              const std::string& source_name);

}  // namespace onedfu::host
