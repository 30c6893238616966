#include "bootloader/boot.h"

#include <cstring>

#include "runtime/boot_record.h"
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

constexpr size_t kHashChunk = 256;  // bytes of stack for unmapped reads

// Index of the memory holding all of [address, address + length), or -1.
int MemoryHolding(const Board& board, uint32_t address, uint32_t length) {
  for (uint8_t i = 0; i < board.memory_count && i < runtime::kMaxMemories; ++i) {
    const Memory& m = board.memories[i];
    if (address >= m.base && static_cast<uint64_t>(address) + length <= m.end()) return i;
  }
  return -1;
}

// SHA-256 of `length` bytes at `address` in memory `m`: in place when the
// memory is mapped, else through bounded reads. False on a read error.
bool HashRange(FlashMemory* flash, uint32_t address, uint32_t length, Sha256Hash* out, uint64_t* counted) {
  if (flash == nullptr) return false;
  Sha256 sha;
  const ByteSpan mapped = flash->Mapped();
  const uint64_t offset = address - flash->geometry().base;
  if (mapped.size() >= offset + length) {
    sha.Update(mapped.subspan(offset, length));
  } else {
    uint8_t chunk[kHashChunk];
    for (uint32_t done = 0; done < length;) {
      const uint32_t n = length - done < kHashChunk ? length - done : static_cast<uint32_t>(kHashChunk);
      if (!flash->Read(address + done, MutableByteSpan(chunk, n)).ok()) return false;
      sha.Update(ByteSpan(chunk, n));
      done += n;
    }
  }
  *out = sha.Final();
  *counted += length;
  return true;
}

BootDecision Stay(BootDecision d, BootReason reason) {
  d.start_application = false;
  d.reason = reason;
  return d;
}

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
  }
  return "unknown";
}

BootDecision Decide(const Board& board, std::span<FlashMemory* const> memories, bool forced_dfu) {
  BootDecision d;
  if (forced_dfu) {
    d.message.Str("DFU mode requested");
    return Stay(d, BootReason::kForced);
  }
  const runtime::Region* record_region = board.FindRole(RegionRole::kRecord);
  const runtime::Region* firmware_region = board.FindRole(RegionRole::kFirmware);
  if (record_region == nullptr || firmware_region == nullptr || record_region->memory >= board.memory_count ||
      firmware_region->memory >= board.memory_count || memories.size() < board.memory_count) {
    d.message.Str("board ").Str(board.id).Str(" has no record or firmware region");
    return Stay(d, BootReason::kNoRecordRegion);
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
    return Stay(d, BootReason::kFlashError);
  }

  runtime::Diag why;
  auto decoded = runtime::DecodeBootRecord(record_bytes, &why);
  if (!decoded.ok()) {
    d.message.Str(why.c_str());
    switch (decoded.status().code()) {
      case StatusCode::kNotFound: return Stay(d, BootReason::kNoRecord);
      case StatusCode::kFailedPrecondition: return Stay(d, BootReason::kRevoked);
      default: return Stay(d, BootReason::kDamagedRecord);
    }
  }
  const BootRecord& record = decoded.value();
  if (std::strncmp(record.board_id, board.id, runtime::kBootTextSize) != 0) {
    d.message.Str("boot record is for board ").Str(record.board_id).Str(", this is ").Str(board.id);
    return Stay(d, BootReason::kWrongBoard);
  }

  // Structure first (cheap), hashes after.
  const uint32_t entry = board.RegionStart(*firmware_region);
  bool has_entry = false;
  for (uint32_t i = 0; i < record.segment_count; ++i) {
    const runtime::BootSegment& s = record.segments[i];
    if (s.length == 0 || MemoryHolding(board, s.address, s.length) < 0) {
      d.segment = static_cast<uint8_t>(i);
      d.message.Str("segment ").Dec(i).Str(" at ").Hex(s.address).Str(" (").Dec(s.length)
          .Str(" bytes) is not inside one memory");
      return Stay(d, BootReason::kDamagedRecord);
    }
    if (entry >= s.address && entry - s.address < s.length) has_entry = true;
  }
  if (!has_entry) {
    d.message.Str("no segment holds the application entry ").Hex(entry);
    return Stay(d, BootReason::kNoApplication);
  }

  for (uint32_t i = 0; i < record.segment_count; ++i) {
    const runtime::BootSegment& s = record.segments[i];
    Sha256Hash digest;
    d.segment = static_cast<uint8_t>(i);
    if (!HashRange(memories[MemoryHolding(board, s.address, s.length)], s.address, s.length, &digest,
                   &d.bytes_hashed)) {
      d.message.Str("cannot read segment ").Dec(i).Str(" at ").Hex(s.address);
      return Stay(d, BootReason::kFlashError);
    }
    if (digest != s.sha256) {
      d.message.Str("segment ").Dec(i).Str(" at ").Hex(s.address).Str(" (").Dec(s.length)
          .Str(" bytes): SHA-256 mismatch");
      return Stay(d, BootReason::kHashMismatch);
    }
  }
  d.segment = 0;

  if (record.romfs.size > 0) {
    bool also_segment = false;
    for (uint32_t i = 0; i < record.segment_count; ++i) {
      const runtime::BootSegment& s = record.segments[i];
      also_segment |= s.address == record.romfs.address && s.length == record.romfs.size &&
                      s.sha256 == record.romfs.sha256;
    }
    if (!also_segment) {
      const int m = MemoryHolding(board, record.romfs.address, record.romfs.size);
      Sha256Hash digest;
      if (m < 0) {
        d.message.Str("ROMFS image at ").Hex(record.romfs.address).Str(" is not inside one memory");
        return Stay(d, BootReason::kDamagedRecord);
      }
      if (!HashRange(memories[m], record.romfs.address, record.romfs.size, &digest, &d.bytes_hashed)) {
        d.message.Str("cannot read the ROMFS image at ").Hex(record.romfs.address);
        return Stay(d, BootReason::kFlashError);
      }
      if (digest != record.romfs.sha256) {
        d.message.Str("ROMFS image at ").Hex(record.romfs.address).Str(": SHA-256 mismatch");
        return Stay(d, BootReason::kRomfsMismatch);
      }
    }
  }

  if (record.manifest_length > 0) {
    const uint64_t manifest = static_cast<uint64_t>(record_address) + runtime::kManifestOffset;
    const int m = manifest <= 0xffffffffu
                      ? MemoryHolding(board, static_cast<uint32_t>(manifest), record.manifest_length)
                      : -1;
    Sha256Hash digest;
    if (m < 0 || uint64_t{runtime::kManifestOffset} + record.manifest_length > record_region->size) {
      d.message.Str("manifest of ").Dec(record.manifest_length).Str(" bytes does not fit the record region");
      return Stay(d, BootReason::kDamagedRecord);
    }
    if (!HashRange(memories[m], static_cast<uint32_t>(manifest), record.manifest_length, &digest,
                   &d.bytes_hashed)) {
      d.message.Str("cannot read the manifest at ").Hex(manifest);
      return Stay(d, BootReason::kFlashError);
    }
    if (digest != record.manifest_sha256) {
      d.message.Str("manifest at ").Hex(manifest).Str(": SHA-256 mismatch");
      return Stay(d, BootReason::kManifestMismatch);
    }
  }

  d.start_application = true;
  d.reason = BootReason::kStartApplication;
  d.entry = entry;
  d.message.Str("package ").Str(record.package_version).Str(": ").Dec(record.segment_count)
      .Str(" segments verified");
  return d;
}

}  // namespace onedfu::bootloader
