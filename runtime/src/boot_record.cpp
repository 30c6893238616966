// Boot record encode/decode; layout in runtime/boot_record.h.
#include "runtime/boot_record.h"

#include <cstring>

#include "runtime/crc32.h"

namespace onedfu::runtime {
namespace {

constexpr Status kTooShort(StatusCode::kOutOfRange, "boot record: buffer too short");
constexpr Status kErased(StatusCode::kNotFound, "boot record: erased, no record");
constexpr Status kBadMagic(StatusCode::kInvalidArgument, "boot record: bad magic");
constexpr Status kBadVersion(StatusCode::kUnimplemented, "boot record: unsupported format version");
constexpr Status kBadRecordSize(StatusCode::kInvalidArgument, "boot record: bad record size");
constexpr Status kBadCrc(StatusCode::kDataLoss, "boot record: CRC mismatch");
constexpr Status kRevoked(StatusCode::kFailedPrecondition, "boot record: revoked");
constexpr Status kTooManySegments(StatusCode::kOutOfRange, "boot record: too many segments");
constexpr Status kWraps(StatusCode::kOutOfRange, "boot record: range wraps past 4 GiB");
constexpr Status kBadText(StatusCode::kInvalidArgument, "boot record: text field not terminated");
constexpr Status kNotZero(StatusCode::kInvalidArgument, "boot record: reserved bytes not zero");

constexpr uint32_t kReservedWordOffset = 28;
constexpr uint32_t kReserved1Offset = kSecurityCounterOffset + 4;  // 244
constexpr uint32_t kReserved1End = kSegmentsOffset;                  // 256

bool AllEqual(const uint8_t* p, size_t n, uint8_t value) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != value) return false;
  }
  return true;
}

// Out of line on purpose: 16 bytes less Cortex-M7 text than inlined at its six call sites.
[[gnu::noinline]] bool Wraps(uint32_t address, uint32_t length) {
  return uint64_t{address} + length > (uint64_t{1} << 32);
}

// A text field is valid when it holds a NUL and only NULs after the first one.
bool TextValid(const char* field) {
  size_t n = 0;
  while (n < kBootTextSize && field[n] != '\0') ++n;
  if (n == kBootTextSize) return false;
  for (size_t i = n; i < kBootTextSize; ++i) {
    if (field[i] != '\0') return false;
  }
  return true;
}

}  // namespace

Status SetBootText(char (&field)[kBootTextSize], const char* text) {
  if (text == nullptr) return kBadText;
  size_t n = 0;
  while (n < kBootTextSize && text[n] != '\0') ++n;
  if (n == kBootTextSize) return Status(StatusCode::kInvalidArgument, "boot record: text too long");
  std::memset(field, 0, kBootTextSize);
  std::memcpy(field, text, n);
  return Status::Ok();
}

uint32_t BootRecordCrc(ByteSpan record_bytes) {
  const ByteSpan r = record_bytes.first(kRecordSize);
  uint32_t c = 0xFFFFFFFFu;
  c = Crc32Update(c, r.subspan(0, kCrcOffset));
  c = Crc32Update(c, r.subspan(kCrcOffset + 4, kRevokeOffset - (kCrcOffset + 4)));
  c = Crc32Update(c, r.subspan(kRevokeOffset + kRevokeSize));
  return ~c;
}

bool IsRevoked(ByteSpan record_bytes) {
  if (record_bytes.size() < kRevokeOffset + kRevokeSize) return false;
  return !AllEqual(record_bytes.data() + kRevokeOffset, kRevokeSize, 0xff);
}

Status EncodeBootRecord(const BootRecord& record, MutableByteSpan out) {
  if (out.size() < kRecordSize) return kTooShort;
  if (record.segment_count > kMaxSegments) return kTooManySegments;
  if (!TextValid(record.board_id) || !TextValid(record.package_version)) return kBadText;
  for (uint32_t i = 0; i < record.segment_count; ++i) {
    if (Wraps(record.segments[i].address, record.segments[i].length)) return kWraps;
  }
  if (Wraps(record.romfs.address, record.romfs.size) || Wraps(record.index.address, record.index.size)) return kWraps;

  uint8_t* r = out.data();
  std::memset(r, 0, kRecordSize);
  StoreLe32(r + kMagicOffset, kBootRecordMagic);
  StoreLe32(r + kVersionOffset, kBootRecordVersion);
  StoreLe32(r + kRecordSizeOffset, kRecordSize);
  StoreLe32(r + kFlagsOffset, record.flags);
  StoreLe32(r + kSegmentCountOffset, record.segment_count);
  StoreLe32(r + kManifestLengthOffset, record.manifest_length);
  std::memset(r + kRevokeOffset, 0xff, kRevokeSize);
  std::memcpy(r + kBoardIdOffset, record.board_id, kBootTextSize);
  std::memcpy(r + kPackageVersionOffset, record.package_version, kBootTextSize);
  StoreLe32(r + kRomfsOffset, record.romfs.address);
  StoreLe32(r + kRomfsOffset + 4, record.romfs.size);
  std::memcpy(r + kRomfsOffset + 8, record.romfs.sha256.data(), kSha256Size);
  std::memcpy(r + kManifestShaOffset, record.manifest_sha256.data(), kSha256Size);
  StoreLe32(r + kSecurityCounterOffset, record.security_counter);
  if (record.Signed()) {
    std::memcpy(r + kKeyIdOffset, record.key_id.data(), kKeyIdSize);
    std::memcpy(r + kSignatureOffset, record.signature.data(), kSignatureSize);
  }
  StoreLe32(r + kIndexOffset, record.index.address);
  StoreLe32(r + kIndexOffset + 4, record.index.size);
  std::memcpy(r + kIndexOffset + 8, record.index.sha256.data(), kSha256Size);
  for (uint32_t i = 0; i < record.segment_count; ++i) {
    uint8_t* e = r + kSegmentsOffset + i * kSegmentEntrySize;
    StoreLe32(e, record.segments[i].address);
    StoreLe32(e + 4, record.segments[i].length);
    std::memcpy(e + 8, record.segments[i].sha256.data(), kSha256Size);
  }
  StoreLe32(r + kCrcOffset, BootRecordCrc(out));
  return Status::Ok();
}

Result<BootRecord> DecodeBootRecord(ByteSpan bytes, Diag* diag) {
  DiagClear(diag);
  if (bytes.size() < kRecordSize) {
    if (diag) diag->Str("boot record: ").Dec(bytes.size()).Str(" bytes, need ").Dec(kRecordSize);
    return kTooShort;
  }
  const uint8_t* r = bytes.data();
  if (AllEqual(r, kRecordSize, 0xff)) {
    if (diag) diag->Str("boot record: erased (no record)");
    return kErased;
  }
  const uint32_t magic = LoadLe32(r + kMagicOffset);
  if (magic != kBootRecordMagic) {
    if (diag) diag->Str("boot record: magic ").Hex(magic).Str(", expected ").Hex(kBootRecordMagic);
    return kBadMagic;
  }
  const uint32_t version = LoadLe32(r + kVersionOffset);
  if (version != kBootRecordVersion) {
    if (diag) diag->Str("boot record: format version ").Dec(version).Str(" not supported (1)");
    return kBadVersion;
  }
  const uint32_t record_size = LoadLe32(r + kRecordSizeOffset);
  if (record_size != kRecordSize) {
    if (diag) diag->Str("boot record: record size ").Dec(record_size).Str(", expected ").Dec(kRecordSize);
    return kBadRecordSize;
  }
  const uint32_t stored_crc = LoadLe32(r + kCrcOffset);
  const uint32_t computed_crc = BootRecordCrc(bytes);
  if (stored_crc != computed_crc) {
    if (diag) {
      diag->Str("boot record: CRC ").Hex(stored_crc).Str(" does not match computed ").Hex(computed_crc);
    }
    return kBadCrc;
  }
  if (IsRevoked(bytes)) {
    if (diag) diag->Str("boot record: revoked");
    return kRevoked;
  }

  BootRecord record;
  record.flags = LoadLe32(r + kFlagsOffset);
  record.segment_count = LoadLe32(r + kSegmentCountOffset);
  record.manifest_length = LoadLe32(r + kManifestLengthOffset);
  if (record.segment_count > kMaxSegments) {
    if (diag) {
      diag->Str("boot record: segment count ").Dec(record.segment_count).Str(" over the cap of ");
      diag->Dec(kMaxSegments);
    }
    return kTooManySegments;
  }
  // Unsigned: key_id and signature are reserved too. (The size-only build
  // leaves the gap before key_id of a signed record unchecked: it reads
  // nothing there.)
  const uint32_t tail = kSegmentsEnd + (record.flags & kRecordFlagSigned) * (kSignatureEnd - kSegmentsEnd);
  static_assert(kRecordFlagSigned == 1);
  if (LoadLe32(r + kReservedWordOffset) != 0 ||
      !AllEqual(r + kReserved1Offset, kReserved1End - kReserved1Offset, 0) ||
#if ONEDFU_TRUST
      !AllEqual(r + kSegmentsEnd, kKeyIdOffset - kSegmentsEnd, 0) ||
#endif
      !AllEqual(r + tail, kRecordSize - tail, 0)) {
    if (diag) diag->Str("boot record: reserved bytes not zero");
    return kNotZero;
  }
#if ONEDFU_TRUST
  record.security_counter = LoadLe32(r + kSecurityCounterOffset);
  std::memcpy(record.key_id.data(), r + kKeyIdOffset, kKeyIdSize);  // both zero when unsigned
  std::memcpy(record.signature.data(), r + kSignatureOffset, kSignatureSize);
#endif
  std::memcpy(record.board_id, r + kBoardIdOffset, kBootTextSize);
  std::memcpy(record.package_version, r + kPackageVersionOffset, kBootTextSize);
  if (!TextValid(record.board_id)) {
    if (diag) diag->Str("boot record: board id not NUL-terminated and zero-padded");
    return kBadText;
  }
  if (!TextValid(record.package_version)) {
    if (diag) diag->Str("boot record: package version not NUL-terminated and zero-padded");
    return kBadText;
  }
  record.romfs.address = LoadLe32(r + kRomfsOffset);
  record.romfs.size = LoadLe32(r + kRomfsOffset + 4);
  std::memcpy(record.romfs.sha256.data(), r + kRomfsOffset + 8, kSha256Size);
  if (Wraps(record.romfs.address, record.romfs.size)) {
    if (diag) {
      diag->Str("boot record: ROMFS at ").Hex(record.romfs.address).Str(" size ");
      diag->Dec(record.romfs.size).Str(" wraps past 4 GiB");
    }
    return kWraps;
  }
  std::memcpy(record.manifest_sha256.data(), r + kManifestShaOffset, kSha256Size);
  record.index.address = LoadLe32(r + kIndexOffset);
  record.index.size = LoadLe32(r + kIndexOffset + 4);
  std::memcpy(record.index.sha256.data(), r + kIndexOffset + 8, kSha256Size);
  if (Wraps(record.index.address, record.index.size)) {
    if (diag) diag->Str("boot record: file index wraps past 4 GiB");
    return kWraps;
  }
  for (uint32_t i = 0; i < kMaxSegments; ++i) {
    const uint8_t* e = r + kSegmentsOffset + i * kSegmentEntrySize;
    if (i >= record.segment_count) {
      if (!AllEqual(e, kSegmentEntrySize, 0)) {
        if (diag) diag->Str("boot record: unused segment ").Dec(i).Str(" not zero");
        return kNotZero;
      }
      continue;
    }
    BootSegment& s = record.segments[i];
    s.address = LoadLe32(e);
    s.length = LoadLe32(e + 4);
    std::memcpy(s.sha256.data(), e + 8, kSha256Size);
    if (Wraps(s.address, s.length)) {
      if (diag) {
        diag->Str("boot record: segment ").Dec(i).Str(" at ").Hex(s.address).Str(" length ");
        diag->Dec(s.length).Str(" wraps past 4 GiB");
      }
      return kWraps;
    }
  }
  return record;
}

}  // namespace onedfu::runtime
