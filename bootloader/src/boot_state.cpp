// Security counter log and verified marker (bootloader/boot_state.h).
#include "bootloader/boot_state.h"

namespace onedfu::bootloader {

using runtime::ByteSpan;
using runtime::FlashMemory;
using runtime::MutableByteSpan;
using runtime::Status;
using runtime::StatusCode;

namespace {

constexpr uint32_t kMaxSlot = 32;  // write units up to 32 bytes (STM32H7)

bool AllValue(ByteSpan bytes, uint8_t value) {
  for (uint8_t b : bytes) {
    if (b != value) return false;
  }
  return true;
}

FlashArea AreaAtEnd(const runtime::Board& board, runtime::RegionRole role, uint32_t size, uint32_t min_region) {
  const runtime::Region* r = board.FindRole(role);
  if (r == nullptr || r->size < min_region || r->memory >= board.memory_count) return {};
  return FlashArea{r->memory, board.RegionStart(*r) + r->size - size, size};
}

// A slot holds {value, ~value}, the rest zero.
bool IntactSlot(ByteSpan slot, uint32_t* value) {
  const uint32_t v = runtime::LoadLe32(slot.data());
  if (runtime::LoadLe32(slot.data() + 4) != ~v || !AllValue(slot.subspan(8), 0)) return false;
  *value = v;
  return true;
}

// Reads one counter slot into `out`. False (with *status) on a flash error; true with
// *status = kDataLoss when the slot's data is unreadable (ignored like a torn slot).
bool ReadSlot(FlashMemory& flash, uint32_t address, MutableByteSpan out, Status* status) {
  *status = flash.Read(address, out);
  return status->ok() || status->code() == StatusCode::kDataLoss;
}

}  // namespace

FlashArea CounterArea(const runtime::Board& board) {
  return AreaAtEnd(board, runtime::RegionRole::kBootloader, kCounterAreaSize, 4 * kCounterAreaSize);
}

FlashArea MarkerArea(const runtime::Board& board) {
  return AreaAtEnd(board, runtime::RegionRole::kRecord, kMarkerSize, 2 * kMarkerSize);
}

uint32_t CounterSlotSize(uint32_t write_align) { return write_align > 8 ? write_align : 8; }

uint32_t HighestCounter(ByteSpan area, uint32_t write_align, uint8_t /*erased_value*/) {
  const uint32_t slot = CounterSlotSize(write_align);
  uint32_t highest = 0;
  for (size_t at = 0; at + slot <= area.size(); at += slot) {
    uint32_t v = 0;
    if (IntactSlot(area.subspan(at, slot), &v) && v > highest) highest = v;
  }
  return highest;
}

runtime::Result<uint32_t> ReadSecurityCounter(FlashMemory& flash, const FlashArea& area) {
  Status status = Status::Ok();
  const runtime::Memory& m = flash.geometry();
  const uint32_t slot = CounterSlotSize(m.write_align);
  if (area.memory < 0 || slot > kMaxSlot) return Status(StatusCode::kNotFound, "no security counter area");
  uint32_t highest = 0;
  uint8_t buf[kMaxSlot];
  for (uint32_t at = 0; at + slot <= area.size; at += slot) {
    if (!ReadSlot(flash, area.address + at, MutableByteSpan(buf, slot), &status)) return status;
    uint32_t v = 0;
    if (status.ok() && IntactSlot(ByteSpan(buf, slot), &v) && v > highest) highest = v;
  }
  return highest;
}

uint32_t BootSecurityCounter(const runtime::Board& board, std::span<FlashMemory* const> memories) {
  const FlashArea counter = CounterArea(board);
  if (counter.memory < 0 || static_cast<size_t>(counter.memory) >= memories.size() ||
      memories[counter.memory] == nullptr) {
    return 0;
  }
  auto value = ReadSecurityCounter(*memories[counter.memory], counter);
  return value.ok() ? value.value() : 0;
}

Status AdvanceSecurityCounter(FlashMemory& flash, const FlashArea& area, uint32_t value) {
  const runtime::Memory& m = flash.geometry();
  const uint32_t slot = CounterSlotSize(m.write_align);
  if (area.memory < 0 || slot > kMaxSlot) return Status(StatusCode::kNotFound, "no security counter area");
  uint32_t highest = 0;
  uint32_t free_at = area.size;
  uint8_t buf[kMaxSlot];
  Status status = Status::Ok();
  for (uint32_t at = 0; at + slot <= area.size; at += slot) {
    if (!ReadSlot(flash, area.address + at, MutableByteSpan(buf, slot), &status)) return status;
    if (!status.ok()) continue;  // unreadable (torn on ECC flash): neither a value nor free
    uint32_t v = 0;
    if (IntactSlot(ByteSpan(buf, slot), &v) && v > highest) highest = v;
    if (free_at == area.size && AllValue(ByteSpan(buf, slot), m.erased_value)) free_at = at;
  }
  if (highest >= value) return Status::Ok();
  if (free_at == area.size) return Status(StatusCode::kResourceExhausted, "security counter log full");
  for (uint32_t i = 0; i < slot; ++i) buf[i] = 0;
  runtime::StoreLe32(buf, value);
  runtime::StoreLe32(buf + 4, ~value);
  return flash.Write(area.address + free_at, ByteSpan(buf, slot));
}

bool MarkedVerified(ByteSpan marker, uint32_t record_crc) {
  if (marker.size() < kMarkerSize) return false;
  return runtime::LoadLe32(marker.data()) == kMarkerMagic && runtime::LoadLe32(marker.data() + 4) == record_crc &&
         runtime::LoadLe32(marker.data() + 8) == ~record_crc && AllValue(marker.subspan(12, kMarkerSize - 12), 0);
}

Status MarkVerified(FlashMemory& flash, const FlashArea& area, uint32_t record_crc) {
  if (area.memory < 0) return Status(StatusCode::kNotFound, "no record region");
  uint8_t buf[kMarkerSize] = {};
  runtime::StoreLe32(buf, kMarkerMagic);
  runtime::StoreLe32(buf + 4, record_crc);
  runtime::StoreLe32(buf + 8, ~record_crc);
  return flash.Write(area.address, ByteSpan(buf, kMarkerSize));
}

BootDecision TrustedBoot(const runtime::Board& board, std::span<FlashMemory* const> memories, bool forced_dfu,
                         std::span<const runtime::Ed25519PublicKey> keys) {
  TrustPolicy policy;
  policy.keys = keys;
  policy.remember_verified = true;
  policy.min_security_counter = BootSecurityCounter(board, memories);
  const FlashArea counter = CounterArea(board);
  FlashMemory* const counter_flash =
      counter.memory >= 0 && static_cast<size_t>(counter.memory) < memories.size() ? memories[counter.memory] : nullptr;
  BootDecision d = Decide(board, memories, forced_dfu, &policy);
  if (!d.start_application) return d;
  const FlashArea marker = MarkerArea(board);
  if (d.mark_verified && marker.memory >= 0 && static_cast<size_t>(marker.memory) < memories.size() &&
      memories[marker.memory] != nullptr) {
    (void)MarkVerified(*memories[marker.memory], marker, d.record_crc);
  }
  if (counter_flash != nullptr && d.security_counter > policy.min_security_counter) {
    (void)AdvanceSecurityCounter(*counter_flash, counter, d.security_counter);
  }
  return d;
}

}  // namespace onedfu::bootloader
