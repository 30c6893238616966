// ROMFS reader and varuint helpers. See romfs.h for the format.
#include "runtime/romfs.h"

namespace onedfu::runtime {
namespace {

constexpr uint8_t kMagic[3] = {0xd2, 0xcd, 0x31};  // kRomfsMagicKind as a varuint

// One record: kind, payload and where it starts in the image.
struct Record {
  uint32_t kind = 0;
  ByteSpan payload;
  size_t offset = 0;  // of the record's first byte, from the image start
};

// Reads one record from `reader`, whose bytes start at image offset `base`.
Status ReadRecord(ByteReader& reader, size_t base, Record* record, Diag* diag) {
  const size_t start = reader.position();
  record->offset = base + start;
  auto kind = ReadRomfsVarUint(reader);
  auto length = kind.ok() ? ReadRomfsVarUint(reader) : kind;
  if (!length.ok()) {
    if (diag) diag->Str("romfs record at ").Hex(record->offset).Str(": kind or length runs past its parent");
    return Status(StatusCode::kOutOfRange, "romfs record header truncated");
  }
  auto payload = reader.Bytes(length.value());
  if (!payload.ok()) {
    if (diag) {
      diag->Str("romfs record at ").Hex(record->offset).Str(": payload of ").Dec(length.value())
          .Str(" bytes runs past its parent");
    }
    return Status(StatusCode::kOutOfRange, "romfs record runs past its parent");
  }
  record->kind = kind.value();
  record->payload = payload.value();
  return Status::Ok();
}

// Splits a directory/file record payload into name and nested records.
Status ReadNamed(const Record& record, ByteSpan* name, ByteSpan* nested, Diag* diag) {
  ByteReader reader(record.payload);
  auto name_len = ReadRomfsVarUint(reader);
  auto name_bytes = name_len.ok() ? reader.Bytes(name_len.value()) : Result<ByteSpan>(name_len.status());
  if (!name_bytes.ok()) {
    if (diag) diag->Str("romfs entry at ").Hex(record.offset).Str(": name runs past the record");
    return Status(StatusCode::kOutOfRange, "romfs name runs past its record");
  }
  *name = name_bytes.value();
  *nested = reader.rest();
  return Status::Ok();
}

Status CheckName(ByteSpan name, size_t offset, Diag* diag) {
  bool bad = name.empty();
  for (uint8_t c : name) bad = bad || c == '/' || c == '\0';
  if (!bad) return Status::Ok();
  if (diag) diag->Str("romfs entry at ").Hex(offset).Str(": empty name, or name holds '/' or NUL");
  return Status(StatusCode::kInvalidArgument, "bad romfs entry name");
}

// The data of a file: its first kind-2 or kind-3 nested record.
Status ReadFileData(ByteSpan image, ByteSpan payload, const Record& file, ByteSpan nested,
                    ByteSpan* data, Diag* diag) {
  const size_t base = static_cast<size_t>(nested.data() - image.data());
  ByteReader reader(nested);
  while (!reader.empty()) {
    Record record;
    ONEDFU_TRY(ReadRecord(reader, base, &record, diag));
    if (record.kind == kRomfsKindUnused) break;
    if (record.kind == kRomfsKindData) {
      *data = record.payload;
      return Status::Ok();
    }
    if (record.kind != kRomfsKindDataPointer) continue;
    ByteReader pointer(record.payload);
    auto size = ReadRomfsVarUint(pointer);
    auto offset = size.ok() ? ReadRomfsVarUint(pointer) : size;
    if (!offset.ok()) {
      if (diag) diag->Str("romfs data pointer at ").Hex(record.offset).Str(": size or offset truncated");
      return Status(StatusCode::kOutOfRange, "romfs data pointer truncated");
    }
    if (offset.value() > payload.size() || size.value() > payload.size() - offset.value()) {
      if (diag) {
        diag->Str("romfs data pointer at ").Hex(record.offset).Str(": ").Dec(size.value())
            .Str(" bytes at payload offset ").Hex(offset.value()).Str(" run past the image");
      }
      return Status(StatusCode::kOutOfRange, "romfs data pointer runs past the image");
    }
    *data = payload.subspan(offset.value(), size.value());
    return Status::Ok();
  }
  if (diag) diag->Str("romfs file at ").Hex(file.offset).Str(": no data record");
  return Status(StatusCode::kInvalidArgument, "romfs file without data record");
}

bool NameEquals(ByteSpan name, const char* text, size_t len) {
  if (name.size() != len) return false;
  for (size_t i = 0; i < len; ++i) {
    if (name[i] != static_cast<uint8_t>(text[i])) return false;
  }
  return true;
}

bool NameEquals(ByteSpan a, ByteSpan b) {
  return NameEquals(a, reinterpret_cast<const char*>(b.data()), b.size());
}

// Parses the header record at the start of `region`; fills the image length
// and payload on success.
Status ParseHeader(ByteSpan region, size_t* image_len, ByteSpan* payload, Diag* diag) {
  if (region.size() < 4 || region[0] != kMagic[0] || region[1] != kMagic[1] || region[2] != kMagic[2]) {
    if (diag) diag->Str("romfs: no header (d2 cd 31) at offset 0x00000000");
    return Status(StatusCode::kInvalidArgument, "no romfs header");
  }
  ByteReader reader(region.subspan(3));
  auto length = ReadRomfsVarUint(reader);
  if (!length.ok()) {
    if (diag) diag->Str("romfs header: payload length truncated or too large");
    return Status(StatusCode::kOutOfRange, "romfs header length truncated");
  }
  auto bytes = reader.Bytes(length.value());
  if (!bytes.ok()) {
    if (diag) {
      diag->Str("romfs header: payload of ").Dec(length.value()).Str(" bytes runs past the end (")
          .Dec(region.size()).Str(" bytes available)");
    }
    return Status(StatusCode::kOutOfRange, "romfs payload runs past the end");
  }
  const size_t total = 3 + reader.position();
  if (total % 2 != 0) {
    if (diag) diag->Str("romfs header: image size ").Dec(total).Str(" is odd");
    return Status(StatusCode::kInvalidArgument, "romfs image size is odd");
  }
  *image_len = total;
  *payload = bytes.value();
  return Status::Ok();
}

// Depth-first walk state shared by the recursion.
struct WalkState {
  ByteSpan image;
  ByteSpan payload;
  RomfsReader::WalkVisitor* visitor;
  Diag* diag;
  char path[kRomfsMaxPath + 1];
  size_t entries;
};

// True when `name` appears as the name of a directory/file record of
// `list` before image offset `before`. Only called on lists already parsed
// up to `before` without errors.
bool NameSeenBefore(const WalkState& state, ByteSpan list, size_t before, ByteSpan name) {
  const size_t base = static_cast<size_t>(list.data() - state.image.data());
  ByteReader reader(list);
  while (!reader.empty() && base + reader.position() < before) {
    Record record;
    if (!ReadRecord(reader, base, &record, nullptr).ok()) return false;
    if (record.kind == kRomfsKindUnused) return false;
    if (record.kind != kRomfsKindDirectory && record.kind != kRomfsKindFile) continue;
    ByteSpan other, nested;
    if (!ReadNamed(record, &other, &nested, nullptr).ok()) return false;
    if (NameEquals(other, name)) return true;
  }
  return false;
}

// Visits the entries of `list`, which sit `depth` directories below the
// root; state.path[0, path_len) is the path of the directory holding them.
Status WalkList(WalkState& state, ByteSpan list, size_t depth, size_t path_len) {
  const size_t base = static_cast<size_t>(list.data() - state.image.data());
  ByteReader reader(list);
  size_t dir_entries = 0;
  while (!reader.empty()) {
    Record record;
    ONEDFU_TRY(ReadRecord(reader, base, &record, state.diag));
    if (record.kind == kRomfsKindUnused) break;
    if (record.kind != kRomfsKindDirectory && record.kind != kRomfsKindFile) continue;

    if (depth > kRomfsMaxDepth) {
      if (state.diag) state.diag->Str("romfs entry at ").Hex(record.offset).Str(": nested deeper than 16 directories");
      return Status(StatusCode::kResourceExhausted, "romfs directories nested too deep");
    }
    if (++dir_entries > kRomfsMaxDirEntries) {
      if (state.diag) {
        state.diag->Str("romfs entry at ").Hex(record.offset).Str(": more than ").Dec(kRomfsMaxDirEntries)
            .Str(" entries in one directory");
      }
      return Status(StatusCode::kResourceExhausted, "too many entries in a romfs directory");
    }
    if (++state.entries > kRomfsMaxEntries) {
      if (state.diag) state.diag->Str("romfs: more than ").Dec(kRomfsMaxEntries).Str(" entries");
      return Status(StatusCode::kResourceExhausted, "too many romfs entries");
    }
    ByteSpan name, nested;
    ONEDFU_TRY(ReadNamed(record, &name, &nested, state.diag));
    ONEDFU_TRY(CheckName(name, record.offset, state.diag));
    const size_t sep = path_len == 0 ? 0 : 1;
    if (path_len + sep + name.size() > kRomfsMaxPath) {
      if (state.diag) state.diag->Str("romfs entry at ").Hex(record.offset).Str(": path longer than 255 characters");
      return Status(StatusCode::kResourceExhausted, "romfs path too long");
    }
    if (NameSeenBefore(state, list, record.offset, name)) {
      if (state.diag) state.diag->Str("romfs entry at ").Hex(record.offset).Str(": duplicate name in its directory");
      return Status(StatusCode::kInvalidArgument, "duplicate romfs entry name");
    }
    size_t len = path_len;
    if (sep) state.path[len++] = '/';
    for (uint8_t c : name) state.path[len++] = static_cast<char>(c);
    state.path[len] = '\0';

    RomfsEntry entry;
    entry.name = reinterpret_cast<const char*>(name.data());
    entry.name_len = name.size();
    entry.is_dir = record.kind == kRomfsKindDirectory;
    if (!entry.is_dir) {
      ONEDFU_TRY(ReadFileData(state.image, state.payload, record, nested, &entry.data, state.diag));
      entry.data_offset = static_cast<uint32_t>(entry.data.data() - state.image.data());
    }
    ONEDFU_TRY(state.visitor->OnEntry(state.path, entry));
    if (entry.is_dir) ONEDFU_TRY(WalkList(state, nested, depth + 1, len));
  }
  return Status::Ok();
}

}  // namespace

size_t RomfsVarUintSize(uint32_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

size_t EncodeRomfsVarUint(uint32_t value, MutableByteSpan out, size_t min_width) {
  const size_t needed = RomfsVarUintSize(value);
  const size_t width = needed > min_width ? needed : min_width;
  if (out.size() < width) return 0;
  for (size_t i = 0; i < width; ++i) {
    const size_t shift_groups = width - 1 - i;  // 7-bit groups below this byte
    const uint8_t group = shift_groups < 5 ? static_cast<uint8_t>((value >> (7 * shift_groups)) & 0x7f) : 0;
    out[i] = static_cast<uint8_t>(group | (shift_groups != 0 ? 0x80 : 0));
  }
  return width;
}

Result<uint32_t> ReadRomfsVarUint(ByteReader& reader) {
  ByteSpan rest = reader.rest();
  uint64_t value = 0;
  size_t i = 0;
  while (true) {
    if (i >= rest.size()) return Status(StatusCode::kOutOfRange, "varuint runs past the end");
    const uint8_t byte = rest[i++];
    value = (value << 7) | (byte & 0x7f);
    if (value > 0xffffffffu) return Status(StatusCode::kOutOfRange, "varuint exceeds 32 bits");
    if ((byte & 0x80) == 0) break;
  }
  reader.Skip(i).IgnoreError();  // i <= rest.size(): cannot fail
  return static_cast<uint32_t>(value);
}

size_t RomfsImageLength(ByteSpan region) {
  size_t length = 0;
  ByteSpan payload;
  if (!ParseHeader(region, &length, &payload, nullptr).ok()) return 0;
  return length;
}

Result<RomfsReader> RomfsReader::Open(ByteSpan image, Diag* diag) {
  DiagClear(diag);
  size_t length = 0;
  ByteSpan payload;
  ONEDFU_TRY(ParseHeader(image, &length, &payload, diag));
  RomfsReader reader;
  reader.image_ = image.first(length);
  reader.payload_ = payload;
  return reader;
}

Result<RomfsEntry> RomfsReader::Lookup(const char* path) const {
  if (path == nullptr) return Status(StatusCode::kInvalidArgument, "null romfs path");
  if (*path == '/') ++path;

  RomfsEntry entry;
  entry.name = "";
  entry.is_dir = true;
  ByteSpan list = payload_;
  while (*path != '\0') {
    if (!entry.is_dir) return Status(StatusCode::kNotFound, "romfs path goes through a file");
    size_t len = 0;
    while (path[len] != '\0' && path[len] != '/') ++len;
    if (len == 0) return Status(StatusCode::kInvalidArgument, "empty component in romfs path");

    const size_t base = static_cast<size_t>(list.data() - image_.data());
    ByteReader reader(list);
    bool found = false;
    while (!found && !reader.empty()) {
      Record record;
      ONEDFU_TRY(ReadRecord(reader, base, &record, nullptr));
      if (record.kind == kRomfsKindUnused) break;
      if (record.kind != kRomfsKindDirectory && record.kind != kRomfsKindFile) continue;
      ByteSpan name, nested;
      ONEDFU_TRY(ReadNamed(record, &name, &nested, nullptr));
      if (!NameEquals(name, path, len)) continue;
      found = true;
      entry.name = reinterpret_cast<const char*>(name.data());
      entry.name_len = name.size();
      entry.is_dir = record.kind == kRomfsKindDirectory;
      if (entry.is_dir) {
        list = nested;
      } else {
        ONEDFU_TRY(ReadFileData(image_, payload_, record, nested, &entry.data, nullptr));
        entry.data_offset = static_cast<uint32_t>(entry.data.data() - image_.data());
      }
    }
    if (!found) return Status(StatusCode::kNotFound, "no such romfs entry");
    path += len;
    if (*path == '/') {
      ++path;
      if (*path == '\0' && !entry.is_dir) return Status(StatusCode::kNotFound, "romfs file named with a trailing '/'");
    }
  }
  return entry;
}

Status RomfsReader::Walk(WalkVisitor& visitor, Diag* diag) const {
  DiagClear(diag);
  WalkState state{};
  state.image = image_;
  state.payload = payload_;
  state.visitor = &visitor;
  state.diag = diag;
  state.path[0] = '\0';
  state.entries = 0;
  return WalkList(state, payload_, 0, 0);
}

}  // namespace onedfu::runtime
