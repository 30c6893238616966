// ROMFS file index: one small table that tells a host every installed file's
// path, size, data offset and SHA-256 without reading the whole ROMFS image.
//
// Where it lives: inside the ROMFS image, in the data area (inside the kind-1
// padding record that wraps the file data, referenced by no directory record,
// so MicroPython never sees it). The boot record locates it (index.address,
// index.size) and pins its SHA-256 (index.sha256); the boot record's ROMFS
// hash covers it too, because it lies inside the image. A host reads the
// 2 KiB record, then uploads index.size bytes at index.address.
//
// Layout, all integers little-endian:
//   header, kRomfsIndexHeaderSize = 16 bytes
//     0   4  magic        kRomfsIndexMagic (random constant)
//     4   4  version      kRomfsIndexVersion (1)
//     8   4  entry_count  <= kRomfsMaxEntries
//     12  4  total_size   bytes of header + entries (= the boot record's index.size)
//   entries, entry_count of them, back to back, strictly ascending by path
//   (byte-wise, shorter prefix first), one per file of the image:
//     0   4  offset       of the file's data from the ROMFS image start
//     4   4  size         bytes of file data
//     8   32 sha256       of those bytes
//     40  1  path_len     1..kRomfsMaxPath
//     41  n  path         '/'-separated, no leading/trailing '/', no empty,
//                         "." or ".." component, no NUL (not NUL-terminated)
//
// Embedded-safe: no heap. The parser checks everything once in Open; walking
// or searching an opened index cannot fail.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "runtime/byte_reader.h"
#include "runtime/diag.h"
#include "runtime/romfs.h"
#include "runtime/sha256.h"
#include "runtime/status.h"

namespace onedfu::runtime {

inline constexpr uint32_t kRomfsIndexMagic = 0x7D1C5A93u;
inline constexpr uint32_t kRomfsIndexVersion = 1;
inline constexpr uint32_t kRomfsIndexHeaderSize = 16;
inline constexpr uint32_t kRomfsIndexEntryFixed = 41;  // entry bytes before the path

struct RomfsIndexEntry {
  const char* path = nullptr;  // reader: points INTO the index, NOT NUL-terminated
  size_t path_len = 0;
  uint32_t offset = 0;  // from the image start
  uint32_t size = 0;    // bytes
  Sha256Hash sha256{};
};

// Bytes of the index for `entries` (header included); kInvalidArgument for a
// path that is empty or longer than kRomfsMaxPath, kResourceExhausted for
// more than kRomfsMaxEntries entries or a table over 4 GiB.
Result<uint32_t> RomfsIndexSize(std::span<const RomfsIndexEntry> entries);

// Writes the index to the start of `out`; returns its size. `entries` must be
// strictly ascending by path with valid paths (kInvalidArgument otherwise);
// kResourceExhausted when `out` is too small.
Result<uint32_t> WriteRomfsIndex(std::span<const RomfsIndexEntry> entries, MutableByteSpan out);

class RomfsIndex {
 public:
  RomfsIndex() = default;  // empty index; use Open()

  // Checks the whole table at the start of `bytes` (may be longer than the
  // table). With image_size != 0 every entry's [offset, offset + size) must
  // lie inside [0, image_size). Errors, with Diag naming the entry:
  //   kOutOfRange       table shorter than its header / total_size / an entry
  //   kInvalidArgument  bad magic, bad path, entries not strictly ascending,
  //                     entries not ending exactly at total_size, data range
  //                     outside the image
  //   kUnimplemented    another version
  //   kResourceExhausted  entry_count over kRomfsMaxEntries
  static Result<RomfsIndex> Open(ByteSpan bytes, uint32_t image_size, Diag* diag);

  uint32_t entry_count() const { return count_; }
  // The table bytes (header + entries).
  ByteSpan bytes() const { return table_; }

  // Walking: start with cursor 0; each call fills *entry and advances the
  // cursor. False at the end.
  bool Next(uint32_t* cursor, RomfsIndexEntry* entry) const;

  // The entry for `path` (no leading '/'), kNotFound when absent. Linear, but
  // stops at the first entry sorting after `path`.
  Result<RomfsIndexEntry> Find(const char* path) const;

 private:
  ByteSpan table_;
  uint32_t count_ = 0;
};

}  // namespace onedfu::runtime
