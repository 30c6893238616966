// ROMFS file index writer and parser; layout in runtime/romfs_index.h.
#include "runtime/romfs_index.h"

#include <cstring>

namespace onedfu::runtime {
namespace {

constexpr uint64_t kMaxTable = 0xffffffffu;

// Byte-wise comparison of two paths of given lengths (a shorter prefix sorts first).
int ComparePaths(const char* a, size_t a_len, const char* b, size_t b_len) {
  const size_t n = a_len < b_len ? a_len : b_len;
  for (size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x != y) return x < y ? -1 : 1;
  }
  if (a_len == b_len) return 0;
  return a_len < b_len ? -1 : 1;
}

// The ROMFS path rules (romfs.h), on a counted string.
bool PathValid(const char* path, size_t len) {
  if (path == nullptr || len == 0 || len > kRomfsMaxPath) return false;
  size_t component = 0;
  for (size_t i = 0; i <= len; ++i) {
    const char c = i < len ? path[i] : '/';
    if (c == '\0') return false;
    if (c != '/') {
      ++component;
      continue;
    }
    if (component == 0) return false;
    const char* start = path + i - component;
    if ((component == 1 && start[0] == '.') || (component == 2 && start[0] == '.' && start[1] == '.')) return false;
    component = 0;
  }
  return true;
}

Status CheckEntries(std::span<const RomfsIndexEntry> entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!PathValid(entries[i].path, entries[i].path_len)) {
      return Status(StatusCode::kInvalidArgument, "romfs index: bad path");
    }
    if (i > 0 && ComparePaths(entries[i - 1].path, entries[i - 1].path_len, entries[i].path,
                              entries[i].path_len) >= 0) {
      return Status(StatusCode::kInvalidArgument, "romfs index: paths not strictly ascending");
    }
  }
  return Status::Ok();
}

void DecodeEntry(const uint8_t* e, RomfsIndexEntry* out) {
  out->offset = LoadLe32(e);
  out->size = LoadLe32(e + 4);
  std::memcpy(out->sha256.data(), e + 8, kSha256Size);
  out->path_len = e[40];
  out->path = reinterpret_cast<const char*>(e + kRomfsIndexEntryFixed);
}

}  // namespace

Result<uint32_t> RomfsIndexSize(std::span<const RomfsIndexEntry> entries) {
  if (entries.size() > kRomfsMaxEntries) {
    return Status(StatusCode::kResourceExhausted, "romfs index: too many entries");
  }
  uint64_t total = kRomfsIndexHeaderSize;
  for (const RomfsIndexEntry& e : entries) {
    if (e.path == nullptr || e.path_len == 0 || e.path_len > kRomfsMaxPath) {
      return Status(StatusCode::kInvalidArgument, "romfs index: bad path");
    }
    total += kRomfsIndexEntryFixed + e.path_len;
  }
  if (total > kMaxTable) return Status(StatusCode::kResourceExhausted, "romfs index: over 4 GiB");
  return static_cast<uint32_t>(total);
}

Result<uint32_t> WriteRomfsIndex(std::span<const RomfsIndexEntry> entries, MutableByteSpan out) {
  ONEDFU_TRY_ASSIGN(const uint32_t size, RomfsIndexSize(entries));
  ONEDFU_TRY(CheckEntries(entries));
  if (out.size() < size) return Status(StatusCode::kResourceExhausted, "romfs index: output buffer too small");
  uint8_t* p = out.data();
  StoreLe32(p, kRomfsIndexMagic);
  StoreLe32(p + 4, kRomfsIndexVersion);
  StoreLe32(p + 8, static_cast<uint32_t>(entries.size()));
  StoreLe32(p + 12, size);
  p += kRomfsIndexHeaderSize;
  for (const RomfsIndexEntry& e : entries) {
    StoreLe32(p, e.offset);
    StoreLe32(p + 4, e.size);
    std::memcpy(p + 8, e.sha256.data(), kSha256Size);
    p[40] = static_cast<uint8_t>(e.path_len);
    std::memcpy(p + kRomfsIndexEntryFixed, e.path, e.path_len);
    p += kRomfsIndexEntryFixed + e.path_len;
  }
  return size;
}

Result<RomfsIndex> RomfsIndex::Open(ByteSpan bytes, uint32_t image_size, Diag* diag) {
  DiagClear(diag);
  if (bytes.size() < kRomfsIndexHeaderSize) {
    if (diag) diag->Str("romfs index: ").Dec(bytes.size()).Str(" bytes, shorter than its 16-byte header");
    return Status(StatusCode::kOutOfRange, "romfs index: too short");
  }
  const uint8_t* p = bytes.data();
  const uint32_t magic = LoadLe32(p);
  if (magic != kRomfsIndexMagic) {
    if (diag) diag->Str("romfs index: magic ").Hex(magic).Str(", expected ").Hex(kRomfsIndexMagic);
    return Status(StatusCode::kInvalidArgument, "romfs index: bad magic");
  }
  const uint32_t version = LoadLe32(p + 4);
  if (version != kRomfsIndexVersion) {
    if (diag) diag->Str("romfs index: version ").Dec(version).Str(" not supported (1)");
    return Status(StatusCode::kUnimplemented, "romfs index: unsupported version");
  }
  const uint32_t count = LoadLe32(p + 8);
  const uint32_t total = LoadLe32(p + 12);
  if (count > kRomfsMaxEntries) {
    if (diag) diag->Str("romfs index: ").Dec(count).Str(" entries, over the cap of ").Dec(kRomfsMaxEntries);
    return Status(StatusCode::kResourceExhausted, "romfs index: too many entries");
  }
  if (total < kRomfsIndexHeaderSize || total > bytes.size()) {
    if (diag) diag->Str("romfs index: total size ").Dec(total).Str(" outside 16..").Dec(bytes.size());
    return Status(StatusCode::kOutOfRange, "romfs index: total size out of range");
  }
  size_t pos = kRomfsIndexHeaderSize;
  RomfsIndexEntry previous;
  for (uint32_t i = 0; i < count; ++i) {
    if (total - pos < kRomfsIndexEntryFixed + 1 || total - pos < kRomfsIndexEntryFixed + p[pos + 40]) {
      if (diag) diag->Str("romfs index: entry ").Dec(i).Str(" at byte ").Dec(pos).Str(" runs past the table");
      return Status(StatusCode::kOutOfRange, "romfs index: entry runs past the table");
    }
    RomfsIndexEntry e;
    DecodeEntry(p + pos, &e);
    if (!PathValid(e.path, e.path_len)) {
      if (diag) diag->Str("romfs index: entry ").Dec(i).Str(" at byte ").Dec(pos).Str(": bad path");
      return Status(StatusCode::kInvalidArgument, "romfs index: bad path");
    }
    if (i > 0 && ComparePaths(previous.path, previous.path_len, e.path, e.path_len) >= 0) {
      if (diag) diag->Str("romfs index: entry ").Dec(i).Str(" at byte ").Dec(pos).Str(": path not after the previous one");
      return Status(StatusCode::kInvalidArgument, "romfs index: paths not strictly ascending");
    }
    if (image_size != 0 && (e.offset > image_size || e.size > image_size - e.offset)) {
      if (diag) {
        diag->Str("romfs index: entry ").Dec(i).Str(": data at ").Dec(e.offset).Str(" size ").Dec(e.size);
        diag->Str(" outside the ").Dec(image_size).Str("-byte image");
      }
      return Status(StatusCode::kInvalidArgument, "romfs index: data outside the image");
    }
    previous = e;
    pos += kRomfsIndexEntryFixed + e.path_len;
  }
  if (pos != total) {
    if (diag) diag->Str("romfs index: entries end at byte ").Dec(pos).Str(", total size says ").Dec(total);
    return Status(StatusCode::kInvalidArgument, "romfs index: size mismatch");
  }
  RomfsIndex index;
  index.table_ = bytes.first(total);
  index.count_ = count;
  return index;
}

bool RomfsIndex::Next(uint32_t* cursor, RomfsIndexEntry* entry) const {
  const uint32_t pos = *cursor == 0 ? kRomfsIndexHeaderSize : *cursor;
  if (pos >= table_.size()) return false;
  DecodeEntry(table_.data() + pos, entry);
  *cursor = pos + kRomfsIndexEntryFixed + static_cast<uint32_t>(entry->path_len);
  return true;
}

Result<RomfsIndexEntry> RomfsIndex::Find(const char* path) const {
  if (path == nullptr) return Status(StatusCode::kInvalidArgument, "romfs index: null path");
  const size_t len = std::strlen(path);
  uint32_t cursor = 0;
  RomfsIndexEntry e;
  while (Next(&cursor, &e)) {
    const int c = ComparePaths(e.path, e.path_len, path, len);
    if (c == 0) return e;
    if (c > 0) break;
  }
  return Status(StatusCode::kNotFound, "romfs index: no such file");
}

}  // namespace onedfu::runtime
