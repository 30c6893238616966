// Boot record: our binary description of the installed firmware (DESIGN 5, 7).
// It is the LAST element of every package, so hosts write it last; the JSON
// manifest (host/human view) follows it at offset kRecordSize in the record
// region. The bootloader boots only from an intact, unrevoked record whose
// every segment hashes right.
//
// Layout, kRecordSize = 2048 bytes, all integers little-endian:
//
//   off   size  field
//   0     4     magic            kBootRecordMagic (random constant)
//   4     4     format_version   kBootRecordVersion (1)
//   8     4     record_size      bytes, = kRecordSize
//   12    4     crc32            zlib CRC-32 of the record with bytes
//                                [12,16) (this field) and [32,64) (revoke) left out
//   16    4     flags            bit set: kRecordFlagSigned (bit 0); other bits kept as is
//   20    4     segment_count    <= kMaxSegments
//   24    4     manifest_length  bytes of JSON manifest at offset kRecordSize
//   28    4     reserved         0
//   32    32    revoke           0xff in a valid record; programmed to 0x00 to
//                                revoke without an erase; any non-0xff = revoked
//   64    32    board_id         NUL-terminated (<= 31 chars), zero-padded
//   96    32    package_version  NUL-terminated (<= 31 chars), zero-padded
//   128   4     romfs.address    absolute address of the ROMFS image
//   132   4     romfs.size       bytes; 0 = the package carries no ROMFS image
//   136   32    romfs.sha256     SHA-256 of romfs.size bytes at romfs.address
//   168   32    manifest_sha256  SHA-256 of the manifest_length manifest bytes
//   200   4     index.address    absolute address of the ROMFS file index
//                                (runtime/romfs_index.h), inside the ROMFS image
//   204   4     index.size       bytes; 0 = no index (then address and hash are 0)
//   208   32    index.sha256     SHA-256 of index.size bytes at index.address
//   240   4     security_counter anti-rollback counter (0 = none); a bootloader with
//                                counters refuses a record below the highest it booted
//   244   12    reserved         0
//   256   40*32 segments[32]     {u32 address, u32 length (bytes), u8 sha256[32]};
//                                entries >= segment_count are all zero
//   1536  32    key_id           signed: SHA-256 of the signer's raw 32-byte Ed25519
//                                public key (which key to check with); else 0
//   1568  64    signature        signed: Ed25519 (RFC 8032, pure) signature of the
//                                signed message below; else 0
//   1632  416   reserved         0
//
// Signed message (what --sign signs and a trusting bootloader verifies): the
// record's first kSignedSize bytes (everything up to key_id) with the CRC
// field and the revoke block read as zeros, so revoking a signed record does
// not touch what was signed, and the CRC (which covers the signature) can be
// computed last. It covers the magic, version, flags, counter, board id,
// package version, every segment hash, the ROMFS hash, the file index hash
// and the manifest hash. An unsigned record has flags bit 0 clear and zeros
// in [240, 256) and [1536, 2048): byte-identical to format version 1 before
// signing existed.
//
// The revoke block is one 32-byte aligned unit so it can be programmed alone
// on any flash with a write unit <= 32 bytes (STM32H7 flash word). Flash
// writers must skip programming all-0xff write units, so that on ECC flash the
// block stays genuinely erased and can be programmed later.
//
// Embedded-safe: no heap.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "runtime/byte_reader.h"
#include "runtime/diag.h"
#include "runtime/sha256.h"
#include "runtime/status.h"

// ONEDFU_TRUST: 1 (the default, every host build) decodes the signature
// block and the security counter; the default Cortex-M size build
// (scripts/size without --signed) sets 0 and leaves them zero in the decoded
// record (it checks no signatures and keeps no counters), so it does not grow.
#ifndef ONEDFU_TRUST
#define ONEDFU_TRUST 1
#endif

namespace onedfu::runtime {

inline constexpr uint32_t kBootRecordMagic = 0x1BCBE781u;
inline constexpr uint32_t kBootRecordVersion = 1;
inline constexpr uint32_t kRecordSize = 2048;          // bytes
inline constexpr uint32_t kManifestOffset = kRecordSize;  // manifest follows the record
inline constexpr uint32_t kMaxSegments = 32;
inline constexpr uint32_t kBootTextSize = 32;  // board_id / package_version field, bytes

// Field offsets (bytes from the start of the record).
inline constexpr uint32_t kMagicOffset = 0;
inline constexpr uint32_t kVersionOffset = 4;
inline constexpr uint32_t kRecordSizeOffset = 8;
inline constexpr uint32_t kCrcOffset = 12;
inline constexpr uint32_t kFlagsOffset = 16;
inline constexpr uint32_t kSegmentCountOffset = 20;
inline constexpr uint32_t kManifestLengthOffset = 24;
inline constexpr uint32_t kRevokeOffset = 32;
inline constexpr uint32_t kRevokeSize = 32;
inline constexpr uint8_t kRevokedByte = 0x00;  // what a revoker programs into the block
inline constexpr uint32_t kBoardIdOffset = 64;
inline constexpr uint32_t kPackageVersionOffset = 96;
inline constexpr uint32_t kRomfsOffset = 128;
inline constexpr uint32_t kManifestShaOffset = 168;
inline constexpr uint32_t kIndexOffset = 200;
inline constexpr uint32_t kSecurityCounterOffset = 240;
inline constexpr uint32_t kKeyIdOffset = 1536;
inline constexpr uint32_t kKeyIdSize = 32;  // SHA-256 of the public key
inline constexpr uint32_t kSignatureOffset = 1568;
inline constexpr uint32_t kSignatureSize = 64;  // Ed25519
inline constexpr uint32_t kSignatureEnd = kSignatureOffset + kSignatureSize;
inline constexpr uint32_t kSignedSize = kKeyIdOffset;  // bytes of the signed message
inline constexpr uint32_t kRecordFlagSigned = 1u << 0;
// The last kVerifiedMarkerSize bytes of the record region stay erased in every
// package: a trusting bootloader programs its "verified" marker there
// (bootloader/boot_state.h). Packages keep the record + manifest below it.
inline constexpr uint32_t kVerifiedMarkerSize = 32;
inline constexpr uint32_t kSegmentsOffset = 256;
inline constexpr uint32_t kSegmentEntrySize = 40;
inline constexpr uint32_t kSegmentsEnd = kSegmentsOffset + kMaxSegments * kSegmentEntrySize;

static_assert(kRevokeOffset % kRevokeSize == 0, "revoke block must be write-unit aligned");
static_assert(kCrcOffset + 4 <= kRevokeOffset);
static_assert(kManifestLengthOffset + 4 + 4 == kRevokeOffset);  // + reserved word
static_assert(kBoardIdOffset == kRevokeOffset + kRevokeSize);
static_assert(kPackageVersionOffset == kBoardIdOffset + kBootTextSize);
static_assert(kRomfsOffset == kPackageVersionOffset + kBootTextSize);
static_assert(kManifestShaOffset == kRomfsOffset + 8 + kSha256Size);
static_assert(kIndexOffset == kManifestShaOffset + kSha256Size);
static_assert(kIndexOffset + 8 + kSha256Size <= kSegmentsOffset);
static_assert(kSegmentEntrySize == 8 + kSha256Size);
static_assert(kSegmentsEnd <= kKeyIdOffset);
static_assert(kSecurityCounterOffset == kIndexOffset + 8 + kSha256Size);
static_assert(kSignatureOffset == kKeyIdOffset + kKeyIdSize);
static_assert(kSignatureEnd <= kRecordSize);

struct BootSegment {
  uint32_t address = 0;  // absolute flash address
  uint32_t length = 0;   // bytes
  Sha256Hash sha256{};   // of `length` bytes at `address`
  friend bool operator==(const BootSegment&, const BootSegment&) = default;
};

struct RomfsState {
  uint32_t address = 0;  // absolute address of the image
  uint32_t size = 0;     // bytes; 0 = no ROMFS image in the package
  Sha256Hash sha256{};
  friend bool operator==(const RomfsState&, const RomfsState&) = default;
};

// Where the ROMFS file index lies (paths, sizes and hashes of every file).
struct IndexState {
  uint32_t address = 0;  // absolute
  uint32_t size = 0;     // bytes; 0 = none
  Sha256Hash sha256{};
  friend bool operator==(const IndexState&, const IndexState&) = default;
};

struct BootRecord {
  uint32_t flags = 0;
  char board_id[kBootTextSize] = {};         // NUL-terminated, zero-padded
  char package_version[kBootTextSize] = {};  // NUL-terminated, zero-padded
  uint32_t segment_count = 0;                // <= kMaxSegments
  std::array<BootSegment, kMaxSegments> segments{};  // [0, segment_count) used
  RomfsState romfs{};
  IndexState index{};
  uint32_t manifest_length = 0;  // bytes of JSON manifest at kManifestOffset
  Sha256Hash manifest_sha256{};
  uint32_t security_counter = 0;  // 0 = none
  // Meaningful when flags & kRecordFlagSigned; all zero otherwise.
  std::array<uint8_t, kKeyIdSize> key_id{};
  std::array<uint8_t, kSignatureSize> signature{};
  bool Signed() const { return (flags & kRecordFlagSigned) != 0; }
  friend bool operator==(const BootRecord&, const BootRecord&) = default;
};

// Copy `text` into a board_id / package_version field, zero-padding it.
// kInvalidArgument when it does not fit (>= kBootTextSize chars) or is null.
Status SetBootText(char (&field)[kBootTextSize], const char* text);

// Writes exactly kRecordSize bytes to out[0, kRecordSize): revoke block 0xff,
// CRC filled, unused segments/reserved zero. Errors (nothing useful written):
// kOutOfRange (out too small, segment_count > kMaxSegments, a segment or the
// ROMFS or index range wrapping past 4 GiB), kInvalidArgument (text not NUL-terminated
// or not zero-padded).
Status EncodeBootRecord(const BootRecord& record, MutableByteSpan out);

// Decodes and checks the first kRecordSize bytes of `bytes`, in this order:
//   kOutOfRange          fewer than kRecordSize bytes
//   kNotFound            the record is fully erased (all 0xff): no record
//   kInvalidArgument     bad magic, or record_size != kRecordSize
//   kUnimplemented       format_version != kBootRecordVersion
//   kDataLoss            CRC mismatch (e.g. a torn write)
//   kFailedPrecondition  the record is revoked
//   kOutOfRange          segment_count > kMaxSegments, a range wrapping past 4 GiB
//   kInvalidArgument     text fields not NUL-terminated/zero-padded, reserved or
//                        unused-segment bytes not zero (key_id/signature of an
//                        unsigned record count as reserved)
// Diag says which field, e.g. "boot record: CRC 0x... does not match computed 0x...".
Result<BootRecord> DecodeBootRecord(ByteSpan bytes, Diag* diag);

// True when the revoke block of `record_bytes` holds any byte other than 0xff.
// False when record_bytes is too short to contain the block.
bool IsRevoked(ByteSpan record_bytes);

// The CRC-32 a record's bytes should carry (zlib style, over everything but
// the CRC field and the revoke block). `record_bytes` must hold >= kRecordSize bytes.
uint32_t BootRecordCrc(ByteSpan record_bytes);

// Feeds the signed message of `record_bytes` (>= kRecordSize bytes; see the
// layout) to `sink(ByteSpan)` in order, in a few pieces, without a copy: a
// signer concatenates them, a verifier hashes them as they come.
template <typename Sink>
void ForEachSignedPiece(ByteSpan record_bytes, Sink&& sink) {
  static constexpr uint8_t kZeros[kRevokeSize] = {};
  static_assert(kRevokeSize >= 4);
  sink(record_bytes.subspan(0, kCrcOffset));
  sink(ByteSpan(kZeros, 4));
  sink(record_bytes.subspan(kCrcOffset + 4, kRevokeOffset - (kCrcOffset + 4)));
  sink(ByteSpan(kZeros, kRevokeSize));
  sink(record_bytes.subspan(kRevokeOffset + kRevokeSize, kSignedSize - (kRevokeOffset + kRevokeSize)));
}

}  // namespace onedfu::runtime
