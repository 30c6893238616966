// ROMFS writer: directory tree first, file data after it at aligned offsets,
// referenced by data pointer records. See romfs.h for the layout contract.
#include <cstring>

#include "runtime/romfs.h"

namespace onedfu::runtime {
namespace {

// Header record: 3 magic bytes + the payload length as a 5-byte padded
// varuint, so the payload always starts at image offset 8 whatever its size.
constexpr size_t kLengthWidth = 5;
constexpr size_t kHeaderSize = 3 + kLengthWidth;
constexpr uint8_t kMagic[3] = {0xd2, 0xcd, 0x31};
// Data pointer record: kind 3, length 10, size and offset as 5-byte varuints
// (fixed width, so the tree size does not depend on where data lands).
constexpr size_t kPointerPayload = 2 * kLengthWidth;
constexpr size_t kPointerRecord = 2 + kPointerPayload;
// Padding record that wraps the data area: kind 1 + 5-byte padded length.
constexpr size_t kPaddingHeader = 1 + kLengthWidth;
constexpr uint32_t kMaxAlign = 4096;
constexpr uint64_t kMaxImage = 0xffffffffu;

struct Layout {
  uint64_t tree_size = 0;   // bytes of the top-level directory/file records
  uint64_t data_begin = 0;  // image offset of the first file's data (aligned)
  uint64_t image_size = 0;  // even
};

uint64_t AlignUp(uint64_t value, uint32_t align) { return (value + align - 1) & ~static_cast<uint64_t>(align - 1); }

// Bytes of a record (kind < 0x80) with a payload of `payload` bytes.
uint64_t RecordSize(uint64_t payload) {
  return 1 + RomfsVarUintSize(static_cast<uint32_t>(payload > kMaxImage ? kMaxImage : payload)) + payload;
}

uint64_t FileRecordSize(size_t name_len) {
  return RecordSize(RomfsVarUintSize(static_cast<uint32_t>(name_len)) + name_len + kPointerRecord);
}

// strcmp of `s` against the first `len` chars of `prefix` (as a string of that length).
int ComparePrefix(const char* s, const char* prefix, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    const auto a = static_cast<unsigned char>(s[i]);
    const auto b = static_cast<unsigned char>(prefix[i]);
    if (a != b) return a < b ? -1 : 1;  // also covers s ending early (a == 0)
  }
  return s[len] == '\0' ? 0 : 1;
}

// The entry whose path equals the first `len` chars of `dir`, or null.
const RomfsFileSpec* EntryNamed(std::span<const RomfsFileSpec> files, const char* dir, size_t len) {
  size_t lo = 0, hi = files.size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    const int c = ComparePrefix(files[mid].path, dir, len);
    if (c == 0) return &files[mid];
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return nullptr;
}

Status CheckPath(const char* path) {
  if (path == nullptr || *path == '\0') return Status(StatusCode::kInvalidArgument, "romfs path empty");
  size_t len = 0, slashes = 0, component = 0;
  for (;; ++len) {
    const char c = path[len];
    if (c == '/' || c == '\0') {
      if (component == 0) return Status(StatusCode::kInvalidArgument, "romfs path has an empty component");
      const char* start = path + len - component;
      if ((component == 1 && start[0] == '.') || (component == 2 && start[0] == '.' && start[1] == '.')) {
        return Status(StatusCode::kInvalidArgument, "romfs path has a '.' or '..' component");
      }
      if (c == '\0') break;
      ++slashes;
      component = 0;
    } else {
      ++component;
    }
    if (len >= kRomfsMaxPath) return Status(StatusCode::kResourceExhausted, "romfs path longer than 255 characters");
  }
  if (slashes > kRomfsMaxDepth) return Status(StatusCode::kResourceExhausted, "romfs path nested deeper than 16 directories");
  return Status::Ok();
}

Status CheckFiles(std::span<const RomfsFileSpec> files) {
  for (size_t i = 0; i < files.size(); ++i) {
    ONEDFU_TRY(CheckPath(files[i].path));
    if (files[i].data.size() > kMaxImage) return Status(StatusCode::kResourceExhausted, "romfs file larger than 4 GiB");
    if (i > 0) {
      const int c = std::strcmp(files[i - 1].path, files[i].path);
      if (c == 0) return Status(StatusCode::kInvalidArgument, "duplicate romfs path");
      if (c > 0) return Status(StatusCode::kInvalidArgument, "romfs paths not sorted");
    }
    if (files[i].is_dir && !files[i].data.empty()) {
      return Status(StatusCode::kInvalidArgument, "romfs directory entry with data");
    }
    // No file (nor empty directory entry) may also be a directory of another path.
    const char* path = files[i].path;
    for (size_t k = 0; path[k] != '\0'; ++k) {
      if (path[k] != '/') continue;
      if (const RomfsFileSpec* parent = EntryNamed(files, path, k)) {
        return Status(StatusCode::kInvalidArgument, parent->is_dir ? "romfs directory entry is not empty"
                                                                   : "romfs path is both a file and a directory");
      }
    }
  }
  return Status::Ok();
}

// End (exclusive) of the run of files from `begin` whose paths start with
// the first `len` chars of files[begin].path. Sorted input keeps them together.
size_t GroupEnd(std::span<const RomfsFileSpec> files, size_t begin, size_t end, size_t len) {
  const char* prefix = files[begin].path;
  size_t i = begin + 1;
  while (i < end && std::strncmp(files[i].path, prefix, len) == 0) ++i;
  return i;
}

// Entry counts gathered while sizing the tree.
struct TreeStats {
  size_t entries = 0;           // files and directories
  size_t largest_dir = 0;       // entries in the fullest directory
};

// Bytes of the records for files[begin, end), whose paths all share the
// `prefix_len`-char directory prefix (trailing '/' included).
uint64_t ListSize(std::span<const RomfsFileSpec> files, size_t begin, size_t end, size_t prefix_len,
                  TreeStats* stats = nullptr) {
  uint64_t total = 0;
  size_t here = 0;
  size_t i = begin;
  while (i < end) {
    ++here;
    const char* rest = files[i].path + prefix_len;
    const char* slash = std::strchr(rest, '/');
    if (slash == nullptr) {
      const size_t name_len = std::strlen(rest);
      total += files[i].is_dir ? RecordSize(RomfsVarUintSize(static_cast<uint32_t>(name_len)) + name_len)
                               : FileRecordSize(name_len);
      ++i;
      continue;
    }
    const size_t name_len = static_cast<size_t>(slash - rest);
    const size_t group_end = GroupEnd(files, i, end, prefix_len + name_len + 1);
    const uint64_t children = ListSize(files, i, group_end, prefix_len + name_len + 1, stats);
    total += RecordSize(RomfsVarUintSize(static_cast<uint32_t>(name_len)) + name_len + children);
    i = group_end;
  }
  if (stats != nullptr) {
    stats->entries += here;
    if (here > stats->largest_dir) stats->largest_dir = here;
  }
  return total;
}

// True when some entry is a file (and so the image has a data area).
bool HasData(std::span<const RomfsFileSpec> files) {
  for (const RomfsFileSpec& file : files) {
    if (!file.is_dir) return true;
  }
  return false;
}

Result<Layout> ComputeLayout(std::span<const RomfsFileSpec> files, const RomfsWriteOptions& options) {
  const uint32_t align = options.data_align;
  if (align == 0 || align > kMaxAlign || (align & (align - 1)) != 0) {
    return Status(StatusCode::kInvalidArgument, "romfs data_align must be a power of two, 1..4096");
  }
  ONEDFU_TRY(CheckFiles(files));

  Layout layout;
  TreeStats stats;
  layout.tree_size = ListSize(files, 0, files.size(), 0, &stats);
  if (stats.entries > kRomfsMaxEntries || stats.largest_dir > kRomfsMaxDirEntries) {
    return Status(StatusCode::kResourceExhausted, "too many romfs entries (in one directory or in all)");
  }
  const uint64_t tree_end = kHeaderSize + layout.tree_size;
  if (!HasData(files) && !options.placed) {
    layout.data_begin = tree_end;
    layout.image_size = AlignUp(tree_end, 2);
    return layout;
  }
  uint64_t data_begin = tree_end + kPaddingHeader;
  if (options.placed) {
    const uint64_t image_size = options.image_size;
    if (image_size % 2 != 0 || image_size < data_begin) {
      return Status(StatusCode::kInvalidArgument, "romfs placed image size odd or smaller than the tree");
    }
    for (const RomfsFileSpec& file : files) {
      if (file.offset % align != 0 || file.offset < data_begin || file.offset + file.data.size() > image_size) {
        return Status(StatusCode::kInvalidArgument, "romfs placed file offset unaligned, in the tree or past the image");
      }
    }
    layout.data_begin = data_begin;
    layout.image_size = image_size;
    return layout;
  }
  if (options.data_start != 0) {
    if (data_begin > options.data_start) {
      return Status(StatusCode::kResourceExhausted, "romfs tree does not fit below data_start");
    }
    data_begin = options.data_start;
  }
  layout.data_begin = AlignUp(data_begin, align);
  uint64_t end = layout.data_begin;
  for (const RomfsFileSpec& file : files) {
    if (file.is_dir) continue;
    end = AlignUp(end, align) + file.data.size();
    if (end > kMaxImage) return Status(StatusCode::kResourceExhausted, "romfs image would exceed 4 GiB");
  }
  layout.image_size = AlignUp(end, 2);
  if (layout.image_size > kMaxImage) return Status(StatusCode::kResourceExhausted, "romfs image would exceed 4 GiB");
  return layout;
}

// Bounded output cursor; the layout was sized beforehand, so running out of
// room is a bug of ours (kInternal).
class Emitter {
 public:
  explicit Emitter(MutableByteSpan out) : out_(out) {}
  size_t position() const { return pos_; }
  bool ok() const { return ok_; }

  void Byte(uint8_t value) {
    if (pos_ >= out_.size()) {
      ok_ = false;
      return;
    }
    out_[pos_++] = value;
  }
  void VarUint(uint64_t value, size_t min_width = 0) {
    const size_t n = EncodeRomfsVarUint(static_cast<uint32_t>(value), out_.subspan(pos_), min_width);
    if (n == 0 || value > kMaxImage) {
      ok_ = false;
      return;
    }
    pos_ += n;
  }
  void Bytes(const char* text, size_t len) {
    for (size_t i = 0; i < len; ++i) Byte(static_cast<uint8_t>(text[i]));
  }

 private:
  MutableByteSpan out_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Writes the records for files[begin, end) (see ListSize); `next_data` is the
// image offset where the next file's data may start (before alignment).
void WriteList(Emitter& out, std::span<const RomfsFileSpec> files, size_t begin, size_t end,
               size_t prefix_len, uint32_t align, bool placed, uint64_t& next_data) {
  size_t i = begin;
  while (i < end) {
    const char* rest = files[i].path + prefix_len;
    const char* slash = std::strchr(rest, '/');
    if (slash == nullptr && files[i].is_dir) {
      const size_t name_len = std::strlen(rest);
      out.Byte(static_cast<uint8_t>(kRomfsKindDirectory));
      out.VarUint(RomfsVarUintSize(static_cast<uint32_t>(name_len)) + name_len);
      out.VarUint(name_len);
      out.Bytes(rest, name_len);
      ++i;
      continue;
    }
    if (slash == nullptr) {
      const size_t name_len = std::strlen(rest);
      const uint64_t offset = placed ? files[i].offset : AlignUp(next_data, align);
      if (!placed) next_data = offset + files[i].data.size();
      out.Byte(static_cast<uint8_t>(kRomfsKindFile));
      out.VarUint(RomfsVarUintSize(static_cast<uint32_t>(name_len)) + name_len + kPointerRecord);
      out.VarUint(name_len);
      out.Bytes(rest, name_len);
      out.Byte(static_cast<uint8_t>(kRomfsKindDataPointer));
      out.VarUint(kPointerPayload);
      out.VarUint(files[i].data.size(), kLengthWidth);
      out.VarUint(offset - kHeaderSize, kLengthWidth);  // counted from the payload start
      ++i;
      continue;
    }
    const size_t name_len = static_cast<size_t>(slash - rest);
    const size_t child_prefix = prefix_len + name_len + 1;
    const size_t group_end = GroupEnd(files, i, end, child_prefix);
    const uint64_t children = ListSize(files, i, group_end, child_prefix);
    out.Byte(static_cast<uint8_t>(kRomfsKindDirectory));
    out.VarUint(RomfsVarUintSize(static_cast<uint32_t>(name_len)) + name_len + children);
    out.VarUint(name_len);
    out.Bytes(rest, name_len);
    WriteList(out, files, i, group_end, child_prefix, align, placed, next_data);
    i = group_end;
  }
}

}  // namespace

Result<size_t> RomfsImageSize(std::span<const RomfsFileSpec> files, const RomfsWriteOptions& options) {
  ONEDFU_TRY_ASSIGN(const Layout layout, ComputeLayout(files, options));
  return static_cast<size_t>(layout.image_size);
}

Result<size_t> RomfsDataBegin(std::span<const RomfsFileSpec> files, const RomfsWriteOptions& options) {
  RomfsWriteOptions automatic = options;
  automatic.placed = false;
  automatic.data_start = 0;
  automatic.data_align = 1;
  ONEDFU_TRY_ASSIGN(const Layout layout, ComputeLayout(files, automatic));
  return static_cast<size_t>(files.empty() ? layout.data_begin + kPaddingHeader : layout.data_begin);
}

Result<size_t> WriteRomfs(std::span<const RomfsFileSpec> files, const RomfsWriteOptions& options,
                          MutableByteSpan out) {
  ONEDFU_TRY_ASSIGN(const Layout layout, ComputeLayout(files, options));
  const size_t image_size = static_cast<size_t>(layout.image_size);
  if (out.size() < image_size) return Status(StatusCode::kResourceExhausted, "romfs output buffer too small");
  MutableByteSpan image = out.first(image_size);
  if (!options.keep_free_bytes) {
    for (uint8_t& b : image) b = options.fill;
  }

  Emitter emit(image);
  for (uint8_t b : kMagic) emit.Byte(b);
  emit.VarUint(image_size - kHeaderSize, kLengthWidth);
  uint64_t next_data = layout.data_begin;
  WriteList(emit, files, 0, files.size(), 0, options.data_align, options.placed, next_data);
  if (!emit.ok() || emit.position() != kHeaderSize + layout.tree_size) {
    return Status(StatusCode::kInternal, "romfs tree size mismatch");
  }
  if (HasData(files) || options.placed) {
    emit.Byte(static_cast<uint8_t>(kRomfsKindPadding));
    emit.VarUint(image_size - emit.position() - kLengthWidth, kLengthWidth);
    if (!emit.ok()) return Status(StatusCode::kInternal, "romfs padding record does not fit");
  }

  if (options.placed) {
    for (const RomfsFileSpec& file : files) {
      if (!file.data.empty()) std::memcpy(image.data() + file.offset, file.data.data(), file.data.size());
    }
    // Files that share bytes must agree on them: read every one back.
    for (const RomfsFileSpec& file : files) {
      if (!file.data.empty() && std::memcmp(image.data() + file.offset, file.data.data(), file.data.size()) != 0) {
        return Status(StatusCode::kInvalidArgument, "romfs placed files overlap with different bytes");
      }
    }
    return image_size;
  }
  // Copy the data to the offsets the pointers name (same order, same rule).
  uint64_t offset = layout.data_begin;
  for (const RomfsFileSpec& file : files) {
    if (file.is_dir) continue;
    offset = AlignUp(offset, options.data_align);
    if (offset + file.data.size() > image_size) return Status(StatusCode::kInternal, "romfs data past the image");
    if (!file.data.empty()) std::memcpy(image.data() + offset, file.data.data(), file.data.size());
    offset += file.data.size();
  }
  return image_size;
}

}  // namespace onedfu::runtime
