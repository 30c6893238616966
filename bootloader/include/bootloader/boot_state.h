// What a trusting bootloader remembers across boots, power-safely, without an
// erase: the anti-rollback security counter and the "verified" marker of the
// installed record. Embedded-safe; no heap.
//
// Security counter log: the last kCounterAreaSize bytes of the bootloader
// region (never written or erased over DFU, skipped by mass erase, never part
// of a package). It is a log of slots of max(8, write unit) bytes, each
// {u32 value, u32 ~value, 0...}, programmed once from erased; the counter is
// the highest value of an intact slot. Advancing programs the next erased
// slot: a cut mid-program leaves a torn slot that is neither erased nor
// intact, ignored by the reader and skipped by the next advance, so the
// counter is always either the old or the new value. The counter only
// advances to the counter of a record that just passed full verification, so
// that record keeps booting: a cut never leaves a board that boots nothing.
// A full log (PYBD-SF6: 256 slots) stops advancing; it never refuses a boot
// it would otherwise allow.
//
// Verified marker: the last kMarkerSize bytes of the record region (the
// packer keeps them erased), {u32 magic, u32 record CRC, u32 ~record CRC,
// 0...}, programmed after the first boot of a record verified every hash.
// It is erased with the record sector by the next update, and bound to the
// record by its CRC (which covers the signature and every hash), so it never
// vouches for another record; a revoked record does not decode at all.
#pragma once

#include <cstdint>
#include <span>

#include "bootloader/boot.h"
#include "runtime/board.h"
#include "runtime/boot_record.h"
#include "runtime/byte_reader.h"
#include "runtime/flash_memory.h"
#include "runtime/status.h"

namespace onedfu::bootloader {

inline constexpr uint32_t kCounterAreaSize = 2048;  // bytes at the end of the bootloader region
inline constexpr uint32_t kMarkerSize = runtime::kVerifiedMarkerSize;  // bytes at the end of the record region
inline constexpr uint32_t kMarkerMagic = 0x5EC0DE11u;

struct FlashArea {
  int memory = -1;       // board memory index; -1 = the board has no such area
  uint32_t address = 0;  // absolute
  uint32_t size = 0;     // bytes
};

// The counter log area: the end of the bootloader region (which must be at
// least 4 * kCounterAreaSize so the bootloader keeps the rest).
FlashArea CounterArea(const runtime::Board& board);
// The marker: the end of the record region.
FlashArea MarkerArea(const runtime::Board& board);

// Bytes per counter slot on a memory with this write unit.
uint32_t CounterSlotSize(uint32_t write_align);
// The counter in a log's bytes (0 when no slot is intact). The flasher parses
// the bytes it uploaded with the same function.
uint32_t HighestCounter(runtime::ByteSpan area, uint32_t write_align, uint8_t erased_value);

// Reads the counter log through `flash` (mapped in place, else in chunks). A
// slot that cannot be read for its data (kDataLoss: a torn unit on flash with
// ECC) is ignored like any torn slot.
runtime::Result<uint32_t> ReadSecurityCounter(runtime::FlashMemory& flash, const FlashArea& area);
// The counter a boot of this board goes by: ReadSecurityCounter on the board's
// counter area, 0 when there is none or it cannot be read.
uint32_t BootSecurityCounter(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories);
// Raises the counter to `value` (no-op when it is already >= value), in the
// first erased slot (an unreadable one is skipped, never reused).
// kResourceExhausted when no erased slot is left, a flash error as is.
runtime::Status AdvanceSecurityCounter(runtime::FlashMemory& flash, const FlashArea& area, uint32_t value);

// True when the marker area holds a marker for the record with this CRC.
bool MarkedVerified(runtime::ByteSpan marker, uint32_t record_crc);
// Programs the marker for the record with this CRC (the area must be erased).
runtime::Status MarkVerified(runtime::FlashMemory& flash, const FlashArea& area, uint32_t record_crc);

// The power-on of a trusting bootloader, the one sequence its ports run (the
// Cortex-M port, `onedfu-sim run --trust`, the power-cut sweep): reads the
// counter, decides with `keys` (empty: unsigned records boot too) and
// remember_verified, and when the application is to start programs the
// verified marker (after a full verification) and then advances the counter
// to the record's. A failed or cut write of either costs a full verification
// or a counter step on a later boot, never a boot.
BootDecision TrustedBoot(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories,
                         bool forced_dfu, std::span<const runtime::Ed25519PublicKey> keys);

}  // namespace onedfu::bootloader
