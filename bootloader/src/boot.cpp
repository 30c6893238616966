#include "bootloader/boot.h"


#include "bootloader/boot_state.h"
#include "runtime/boot_record.h"
#include "runtime/ed25519.h"
#include "runtime/sha256.h"

namespace onedfu::bootloader {

using runtime::Board;
using runtime::BootRecord;
using runtime::ByteSpan;
using runtime::FlashMemory;
using runtime::Memory;
using runtime::MutableByteSpan;
using runtime::RegionRole;
using runtime::Sha256;
using runtime::Sha256Hash;
using runtime::StatusCode;

namespace {

// Index of the memory holding all of [address, address + length), or -1.
int MemoryHolding(const Board& board, uint32_t address, uint32_t length) {
  for (uint8_t i = 0; i < board.memory_count && i < runtime::kMaxMemories; ++i) {
    const Memory& m = board.memories[i];
    if (address >= m.base && static_cast<uint64_t>(address) + length <= m.end()) return i;
  }
  return -1;
}

// SHA-256 of `length` bytes at `address` in memory `m` (runtime::Sha256UpdateFlash).
// False on a read error.
bool HashRange(FlashMemory* flash, uint32_t address, uint32_t length, Sha256Hash* out, uint64_t* counted) {
  if (flash == nullptr) return false;
  Sha256 sha;
  if (!runtime::Sha256UpdateFlash(sha, *flash, address, length).ok()) return false;
  *out = sha.Final();
  *counted += length;
  return true;
}

// Equal NUL-terminated ids (the record's field is at most kBootTextSize
// bytes); a plain loop keeps libc's large strcmp out of the image.
bool SameId(const char* a, const char* b) {
  for (size_t i = 0; i < runtime::kBootTextSize; ++i) {
    if (a[i] != b[i]) return false;
    if (a[i] == '\0') return true;
  }
  return true;
}

// Every path of Decide returns its one local BootDecision by name (NRVO): no
// copy of the ~190-byte decision per exit.
void Stay(BootDecision& d, BootReason reason) {
  d.start_application = false;
  d.reason = reason;
}

#if ONEDFU_TRUST
// The signature and counter checks of a trusting bootloader; false (with the
// decision filled) when the record must not boot.
bool CheckTrust(const TrustPolicy& trust, const BootRecord& record, ByteSpan record_bytes, BootDecision& d) {
  if (!trust.keys.empty()) {
    if (!record.Signed()) {
      d.message.Str("boot record is not signed; this bootloader boots only signed packages");
      Stay(d, BootReason::kUnsigned);
      return false;
    }
    const runtime::Ed25519PublicKey* key = nullptr;
    for (const runtime::Ed25519PublicKey& k : trust.keys) {
      if (runtime::Sha256Digest(k) == record.key_id) key = &k;
    }
    if (key == nullptr) {
      d.message.Str("boot record signed by an unknown key");
      Stay(d, BootReason::kBadSignature);
      return false;
    }
    runtime::Ed25519Verifier verifier(*key, record.signature.data());
    runtime::ForEachSignedPiece(record_bytes, [&verifier](ByteSpan piece) { verifier.Update(piece); });
    if (!verifier.Finish()) {
      d.message.Str("boot record signature does not verify");
      Stay(d, BootReason::kBadSignature);
      return false;
    }
    d.signature_checked = true;
  }
  if (record.security_counter < trust.min_security_counter) {
    d.message.Str("rollback: security counter ").Dec(record.security_counter).Str(" is below the board's ");
    d.message.Dec(trust.min_security_counter);
    Stay(d, BootReason::kRollback);
    return false;
  }
  return true;
}
#endif

}  // namespace

const char* BootReasonName(BootReason reason) {
  switch (reason) {
    case BootReason::kStartApplication: return "start application";
    case BootReason::kForced: return "forced DFU entry";
    case BootReason::kNoRecordRegion: return "no record region";
    case BootReason::kFlashError: return "flash error";
    case BootReason::kNoRecord: return "no boot record";
    case BootReason::kRevoked: return "revoked boot record";
    case BootReason::kDamagedRecord: return "damaged boot record";
    case BootReason::kWrongBoard: return "record for another board";
    case BootReason::kNoApplication: return "no application";
    case BootReason::kHashMismatch: return "hash mismatch";
    case BootReason::kRomfsMismatch: return "ROMFS hash mismatch";
    case BootReason::kManifestMismatch: return "manifest hash mismatch";
    case BootReason::kUnsigned: return "unsigned boot record";
    case BootReason::kBadSignature: return "bad signature";
    case BootReason::kRollback: return "rollback refused";
  }
  return "unknown";
}

BootDecision Decide(const Board& board, std::span<FlashMemory* const> memories, bool forced_dfu,
                    [[maybe_unused]] const TrustPolicy* trust) {
  BootDecision d;
  if (forced_dfu) {
    d.message.Str("DFU mode requested");
    Stay(d, BootReason::kForced);
    return d;
  }
  const runtime::Region* record_region = board.FindRole(RegionRole::kRecord);
  const runtime::Region* firmware_region = board.FindRole(RegionRole::kFirmware);
  if (record_region == nullptr || firmware_region == nullptr || record_region->memory >= board.memory_count ||
      firmware_region->memory >= board.memory_count || memories.size() < board.memory_count) {
    d.message.Str("board ").Str(board.id).Str(" has no record or firmware region");
    Stay(d, BootReason::kNoRecordRegion);
    return d;
  }
  const uint32_t record_address = board.RegionStart(*record_region);
  FlashMemory* record_flash = memories[record_region->memory];

  // The record bytes: in place when mapped, else one copy on the stack.
  uint8_t copy[runtime::kRecordSize];
  ByteSpan record_bytes;
  if (record_flash != nullptr) {
    const ByteSpan mapped = record_flash->Mapped();
    const uint64_t offset = record_address - record_flash->geometry().base;
    if (mapped.size() >= offset + runtime::kRecordSize) {
      record_bytes = mapped.subspan(offset, runtime::kRecordSize);
    } else if (record_flash->Read(record_address, copy).ok()) {
      record_bytes = copy;
    }
  }
  if (record_bytes.empty()) {
    d.message.Str("cannot read the boot record at ").Hex(record_address);
    Stay(d, BootReason::kFlashError);
    return d;
  }

  runtime::Diag why;
  auto decoded = runtime::DecodeBootRecord(record_bytes, &why);
  if (!decoded.ok()) {
    d.message.Str(why.c_str());
    switch (decoded.status().code()) {
      case StatusCode::kNotFound: Stay(d, BootReason::kNoRecord); break;
      case StatusCode::kFailedPrecondition: Stay(d, BootReason::kRevoked); break;
      default: Stay(d, BootReason::kDamagedRecord); break;
    }
    return d;
  }
  const BootRecord& record = decoded.value();
  if (!SameId(record.board_id, board.id)) {
    d.message.Str("boot record is for board ").Str(record.board_id).Str(", this is ").Str(board.id);
    Stay(d, BootReason::kWrongBoard);
    return d;
  }

#if ONEDFU_TRUST
  if (trust != nullptr && !CheckTrust(*trust, record, record_bytes, d)) return d;
#endif

  // What the record covers: its segments, then the ROMFS image (unless it is
  // also a segment), then the manifest. Structure first (cheap), hashes after.
  struct Item {
    uint64_t address;
    uint32_t length;
    const Sha256Hash* sha256;
  };
  Item items[runtime::kMaxSegments + 2];
  uint32_t count = 0;
  for (uint32_t i = 0; i < record.segment_count; ++i) {
    const runtime::BootSegment& s = record.segments[i];
    items[count++] = {s.address, s.length, &s.sha256};
  }
  bool romfs_is_segment = false;
  for (uint32_t i = 0; i < record.segment_count; ++i) {
    const runtime::BootSegment& s = record.segments[i];
    romfs_is_segment |= s.address == record.romfs.address && s.length == record.romfs.size &&
                        s.sha256 == record.romfs.sha256;
  }
  const uint32_t romfs_item = record.romfs.size > 0 && !romfs_is_segment ? count : ~0u;
  if (romfs_item == count) items[count++] = {record.romfs.address, record.romfs.size, &record.romfs.sha256};
  const uint32_t manifest_item = record.manifest_length > 0 ? count : ~0u;
  if (manifest_item == count) {
    items[count++] = {uint64_t{record_address} + runtime::kManifestOffset, record.manifest_length,
                      &record.manifest_sha256};
  }
  const auto name = [&](uint32_t i) -> runtime::Diag& {
    if (i == romfs_item) return d.message.Str("ROMFS image");
    if (i == manifest_item) return d.message.Str("manifest");
    d.segment = static_cast<uint8_t>(i);
    return d.message.Str("segment ").Dec(i);
  };

  const uint32_t entry = board.RegionStart(*firmware_region);
  bool has_entry = false;
  int holder[runtime::kMaxSegments + 2];
  for (uint32_t i = 0; i < count; ++i) {
    const Item& it = items[i];
    holder[i] = it.address <= 0xffffffffu && it.length > 0
                    ? MemoryHolding(board, static_cast<uint32_t>(it.address), it.length)
                    : -1;
    const bool outside_record = i == manifest_item &&
                                uint64_t{runtime::kManifestOffset} + it.length > record_region->size;
    if (holder[i] < 0 || outside_record) {
      name(i).Str(" at ").Hex(it.address).Str(" (").Dec(it.length).Str(" bytes) is not inside one memory region");
      Stay(d, BootReason::kDamagedRecord);
      return d;
    }
    if (i < record.segment_count && entry >= it.address && entry - it.address < it.length) has_entry = true;
  }
  if (!has_entry) {
    d.message.Str("no segment holds the application entry ").Hex(entry);
    Stay(d, BootReason::kNoApplication);
    return d;
  }
#if ONEDFU_TRUST
  d.record_crc = runtime::LoadLe32(record_bytes.data() + runtime::kCrcOffset);
  if (trust != nullptr && trust->remember_verified) {
    const FlashArea marker = MarkerArea(board);
    uint8_t marker_bytes[kMarkerSize];
    const bool marked = marker.memory >= 0 && memories[marker.memory] != nullptr &&
                        memories[marker.memory]->Read(marker.address, marker_bytes).ok() &&
                        MarkedVerified(marker_bytes, d.record_crc);
    d.hashes_skipped = marked;
    d.mark_verified = !marked;
  }
  if (d.hashes_skipped) count = 0;
#endif
  for (uint32_t i = 0; i < count; ++i) {
    const Item& it = items[i];
    Sha256Hash digest;
    if (!HashRange(memories[holder[i]], static_cast<uint32_t>(it.address), it.length, &digest, &d.bytes_hashed)) {
      name(i).Str(" at ").Hex(it.address).Str(": cannot be read");
      Stay(d, BootReason::kFlashError);
      return d;
    }
    if (digest != *it.sha256) {
      name(i).Str(" at ").Hex(it.address).Str(" (").Dec(it.length).Str(" bytes): SHA-256 mismatch");
      Stay(d, i == romfs_item      ? BootReason::kRomfsMismatch
              : i == manifest_item ? BootReason::kManifestMismatch
                                   : BootReason::kHashMismatch);
      return d;
    }
  }
  d.segment = 0;

  d.start_application = true;
  d.reason = BootReason::kStartApplication;
  d.entry = entry;
#if ONEDFU_TRUST
  d.security_counter = record.security_counter;
#endif
  d.message.Str("package ").Str(record.package_version).Str(": ").Dec(record.segment_count)
      .Str(" segments verified");
#if ONEDFU_TRUST
  if (d.hashes_skipped) d.message.Str(" on an earlier boot");
#endif
  return d;
}

}  // namespace onedfu::bootloader
