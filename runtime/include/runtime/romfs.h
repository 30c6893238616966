// MicroPython ROMFS (`vfs_rom`) image format: a zero-copy reader over a span
// and a deterministic writer. Embedded-safe: no heap, no exceptions.
//
// Format (all integers are varuints, see below):
//   image  = record of kind kRomfsMagicKind (encoded d2 cd 31) whose payload
//            holds the top-level records; total image size is even.
//   record = varuint kind, varuint payload length, payload bytes.
//   kinds  0 unused: stops parsing of the enclosing record list
//          1 padding: ignored
//          2 file data, stored verbatim in the payload
//          3 data pointer: varuint size, varuint offset counted from the
//            start of the image's payload (the byte after the header record's
//            length varuint)
//          4 directory: varuint name_len, name, nested records
//          5 file: varuint name_len, name, nested records; the first kind 2
//            or 3 record among them is the file's data (vfs_rom treats a file
//            without one as corrupt, and so does this reader)
//          other kinds are skipped.
//   Names are compared byte-exact; this reader also refuses (as corrupt)
//   empty names, names holding '/' or NUL, and duplicate names within one
//   directory, so every path Walk reports is found again by Lookup.
//   varuint = 7-bit groups, most significant first, bit 7 set on every byte
//            but the last; leading 0x80 bytes (zero groups) are allowed as
//            padding.
//
// Limits the reader enforces on untrusted images: every length and offset is
// checked against its enclosing record / the image; directory nesting depth
// <= kRomfsMaxDepth; full paths <= kRomfsMaxPath characters (Walk); at most
// kRomfsMaxEntries entries per Walk and kRomfsMaxDirEntries per directory;
// varuints hold at most 32 bits. The writer keeps within the same limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "runtime/byte_reader.h"
#include "runtime/diag.h"
#include "runtime/status.h"

namespace onedfu::runtime {

inline constexpr uint32_t kRomfsKindUnused = 0;
inline constexpr uint32_t kRomfsKindPadding = 1;
inline constexpr uint32_t kRomfsKindData = 2;
inline constexpr uint32_t kRomfsKindDataPointer = 3;
inline constexpr uint32_t kRomfsKindDirectory = 4;
inline constexpr uint32_t kRomfsKindFile = 5;
inline constexpr uint32_t kRomfsMagicKind = 0x14a6b1;  // encodes as d2 cd 31

inline constexpr size_t kRomfsMaxDepth = 16;        // max '/' separators in an entry's path
inline constexpr size_t kRomfsMaxPath = 255;        // characters of a full path, NUL excluded
inline constexpr size_t kRomfsMaxEntries = 65536;   // entries visited by one Walk
// Entries in one directory. Walk's duplicate-name check is quadratic in this.
inline constexpr size_t kRomfsMaxDirEntries = 4096;
inline constexpr size_t kRomfsMaxVarUintBytes = 5;  // significant bytes of a 32-bit varuint

// ---- varuint helpers ----------------------------------------------------

// Bytes needed to encode `value` without padding (1..5).
size_t RomfsVarUintSize(uint32_t value);

// Encodes `value` into the start of `out`, padded with leading 0x80 bytes to
// at least `min_width` bytes. Returns the bytes written, or 0 when `out` is
// too small (nothing meaningful is written then).
size_t EncodeRomfsVarUint(uint32_t value, MutableByteSpan out, size_t min_width = 0);

// Decodes one varuint at the reader's position (leading 0x80 padding
// accepted). kOutOfRange when the bytes run out or the value exceeds 32 bits;
// the reader does not move on failure.
Result<uint32_t> ReadRomfsVarUint(ByteReader& reader);

// Length in bytes of the ROMFS image at the start of `region` (header record
// included), or 0 when the region does not start with a well-formed header
// record whose payload fits in the region. Useful to find where a stacked
// image ends.
size_t RomfsImageLength(ByteSpan region);

// ---- reader -------------------------------------------------------------

struct RomfsEntry {
  const char* name = nullptr;  // points INTO the image; NOT NUL-terminated
  size_t name_len = 0;
  bool is_dir = false;
  // Files: the file's bytes, pointing INTO the image (empty for an empty file).
  // Directories: empty.
  ByteSpan data;
  uint32_t data_offset = 0;    // files: offset of data[0] from the image start; dirs: 0
};

class RomfsReader {
 public:
  RomfsReader() = default;  // empty reader; use Open()

  // Checks the header record (kind kRomfsMagicKind), that its payload fits in
  // `image`, and that the image size it implies is even. The reader keeps a
  // view of `image` (no copy); `image` may extend past the image's end (a
  // whole flash region), the reader then covers the image only.
  //   kInvalidArgument  no ROMFS header / odd image size
  //   kOutOfRange       payload length runs past the end of `image`
  static Result<RomfsReader> Open(ByteSpan image, Diag* diag);

  // Finds "a/b.mpy" (a leading '/' is allowed; "" or "/" is the root
  // directory). Directory names compare byte-exact.
  // Same matching as vfs_rom: the first directory/file record of a name in
  // stored order wins; a kind-0 record ends a directory's list.
  //   kNotFound         no such entry (or a path component is a file, or a
  //                     file named with a trailing '/')
  //   kInvalidArgument  malformed path (null, empty component "a//b"), or a
  //                     matched file without a data record (corrupt image)
  //   kOutOfRange       corrupt image on the way (a length or data pointer
  //                     runs past its record / the image)
  Result<RomfsEntry> Lookup(const char* path) const;

  class WalkVisitor {
   public:
    // `path` is the full path without a leading '/' ("lib/foo.mpy"),
    // NUL-terminated, valid only during the call. A non-OK status stops the
    // walk and is returned by Walk.
    virtual Status OnEntry(const char* path, const RomfsEntry& entry) = 0;

   protected:
    ~WalkVisitor() = default;
  };

  // Visits every entry depth-first in stored order: a directory before its
  // contents. Fails on the first corrupt record (Diag says where), on a
  // duplicate or malformed name (kInvalidArgument), on a path longer than
  // kRomfsMaxPath, deeper than kRomfsMaxDepth, more than kRomfsMaxEntries
  // entries or kRomfsMaxDirEntries in a directory (kResourceExhausted).
  // Cost: linear in the image size plus quadratic in directory sizes.
  Status Walk(WalkVisitor& visitor, Diag* diag) const;

  // The whole image, header record included (from the start of the span
  // given to Open to the end of the payload).
  ByteSpan image() const { return image_; }
  // The header record's payload: the top-level records. Data pointer offsets
  // count from payload().data().
  ByteSpan payload() const { return payload_; }
  // Offset of payload() from the image start.
  size_t payload_offset() const { return image_.size() - payload_.size(); }

 private:
  ByteSpan image_;
  ByteSpan payload_;
};

// ---- writer -------------------------------------------------------------

struct RomfsFileSpec {
  const char* path = nullptr;  // "lib/foo.mpy": '/'-separated, no leading '/', NUL-terminated
  ByteSpan data;
  // An empty directory (MicroPython's VfsRom lists it): data must be empty and
  // no other path may lie under it (directories holding files come from the
  // file paths).
  bool is_dir = false;
  uint32_t offset = 0;  // placed layout only: image offset of the data (see RomfsWriteOptions)
};

struct RomfsWriteOptions {
  // Alignment of every file's data relative to the IMAGE START (the image is
  // placed at a sector-aligned address). A power of two, 1..4096.
  uint32_t data_align = 8;
  // Lowest image offset at which file data may start (0 = right after the
  // tree). Reserving room here lets the tree grow in a later image while the
  // data keeps its offsets. Must hold the tree, else kResourceExhausted.
  uint32_t data_start = 0;
  // Placed layout: every file's data goes to its RomfsFileSpec::offset (the
  // caller chose them, e.g. to keep unchanged files where an older image had
  // them), and the image is exactly image_size bytes (even). Each offset must
  // be a multiple of data_align, at or after the end of the tree (and its
  // padding record header), with the data inside the image; files may share
  // bytes only when they agree on them (else kInvalidArgument). data_start is
  // ignored.
  bool placed = false;
  uint32_t image_size = 0;
  // Value of the bytes no file occupies (alignment gaps, free space).
  uint8_t fill = 0;
  // Leave the bytes no record or file occupies as they are in `out` (the
  // caller put e.g. the older image there, so unchanged flash stays unchanged)
  // instead of writing `fill` to them.
  bool keep_free_bytes = false;
};

// Layout written (deterministic for the same input):
//   offset 0  header record: d2 cd 31, payload length as a 5-byte padded
//             varuint, so the payload always starts at image offset 8
//   offset 8  directory tree: kind 4/5 records in input order (directories
//             derived from the paths), each file holding one kind-3 data
//             pointer record: size and payload offset (= image offset - 8),
//             both as 5-byte padded varuints (the tree size does not depend
//             on where data lands)
//             (an is_dir entry is a kind 4 record without nested records)
//   then      (if there are files) one kind-1 padding record, 5-byte padded
//             length, wrapping the rest of the image: the data of each file
//             in input order at an offset aligned to data_align from the
//             image start (at or after data_start), gaps zero-filled, and a
//             final zero byte if needed to make the image size even.
// An empty file list gives the 8-byte image d2 cd 31 80 80 80 80 00.
//
// `files` must be sorted by path (byte-wise strcmp order) with unique paths;
// every path component non-empty, no "." or "..", no leading/trailing '/',
// and no file path may also be a directory of another path (nor may an
// is_dir entry: it must stay empty).
//   kInvalidArgument    a path breaks the rules above (unsorted, duplicate,
//                       malformed), an is_dir entry with data, or bad options
//   kResourceExhausted  the tree does not fit below data_start, or the
//                       image would exceed 4 GiB, or paths nest deeper than
//                       kRomfsMaxDepth / are longer than kRomfsMaxPath, or
//                       more entries than kRomfsMaxEntries (files and
//                       directories) / kRomfsMaxDirEntries in one directory
Result<size_t> RomfsImageSize(std::span<const RomfsFileSpec> files, const RomfsWriteOptions& options);

// Image offset of the first byte file data may occupy: after the header, the
// directory tree for `files` (sizes do not matter) and the padding record's
// header. RomfsImageSize's codes.
Result<size_t> RomfsDataBegin(std::span<const RomfsFileSpec> files, const RomfsWriteOptions& options);

// Writes the image to the start of `out` and returns its size in bytes.
//   RomfsImageSize's codes, and kResourceExhausted when `out` is too small.
Result<size_t> WriteRomfs(std::span<const RomfsFileSpec> files, const RomfsWriteOptions& options,
                          MutableByteSpan out);

}  // namespace onedfu::runtime
