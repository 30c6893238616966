// GuardedFlash: every flash change the DFU protocol asks for goes through
// here, and here the update policy is enforced whatever the host sends
// (DESIGN.md 7):
//   - read-only flash (Board::FirstReadOnly: the bootloader region, reserved
//     regions, flash no region lists) is never erased or written: errADDRESS,
//     as for an address outside every memory (the request names an address
//     the device will not program; errWRITE would say a program attempt
//     failed, which is a flash fault, not a refused address);
//   - addresses outside every memory are refused (errADDRESS);
//   - mass erase skips read-only flash and the filesystem regions;
//   - never brick: before the first erase or write that touches anything the
//     current boot record covers (its segments, its ROMFS image, its own
//     kRecordSize bytes), the record's revoke block is programmed (no erase),
//     so a half-finished update never boots. The record is re-read after any
//     change in the record's bytes, so a new record written in the same
//     session is protected the same way.
//   - data is written in write units; units that are all erased value are
//     skipped (keeps ECC flash words programmable, e.g. the revoke block),
//     and every write is read back and compared (errVERIFY).
//
// Each operation returns a DFU bStatus (kOk on success); on error message()
// says what went wrong, e.g. "address 0x08000000 is read-only (bootloader,
// reserved or in no region)". Flash access only through the FlashMemory objects
// passed in (index i serves board.memories[i]). Not owning; no heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "bootloader/dfu.h"
#include "runtime/board.h"
#include "runtime/boot_record.h"
#include "runtime/byte_reader.h"
#include "runtime/diag.h"
#include "runtime/flash_memory.h"
#include "runtime/status.h"

namespace onedfu::bootloader {

// Largest write unit (geometry().write_align) GuardedFlash supports, bytes.
inline constexpr uint32_t kMaxWriteAlign = 64;

class GuardedFlash {
 public:
  GuardedFlash(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories);
  const runtime::Board& board() const { return board_; }

  // kOk when every board memory has a FlashMemory with the same base and
  // size and a supported write unit, and the record region's memory can
  // revoke (write unit <= kRevokeSize, erases to 0xff); kInvalidArgument
  // otherwise (diag says which memory).
  runtime::Status Check(runtime::Diag* diag) const;

  // DfuSe set-address check: errADDRESS when `address` is in no memory.
  DfuStatus CheckAddress(uint32_t address);
  // Erases the sector containing `address` (any address inside it).
  DfuStatus ErasePageContaining(uint32_t address);
  // Erases every sector of every memory except read-only ones and those of
  // filesystem regions; contiguous runs in one Erase call (so a QSPI driver
  // can use block erase).
  DfuStatus MassErase();
  // Requires a successful Check() (DfuDevice::Init), like every operation below.
  // Programs `data` (<= any size) at `address`: one memory, none of it
  // read-only, address on the write unit; a short tail is padded
  // with the erased value. Verified by read-back.
  DfuStatus Write(uint32_t address, runtime::ByteSpan data);
  // Reads min(out.size(), bytes left in the memory) bytes at `address`;
  // *length receives the count. An address in no memory reads 0 bytes (kOk):
  // an UPLOAD that runs past the end of a memory ends with a short or empty
  // block, not a STALL (the DfuSe address pointer itself is checked by
  // CheckAddress, so only a block past a memory's end lands there).
  DfuStatus Read(uint32_t address, runtime::MutableByteSpan out, size_t* length);
  // SHA-256 of [address, address + length) into `out` (32 bytes): errADDRESS
  // unless the range lies inside one memory and holds at most
  // kDfuseHashMaxLength bytes (bounded work), errTARGET when it cannot be read.
  DfuStatus Hash(uint32_t address, uint32_t length, uint8_t* out);

  // Typical durations of the flash calls each operation makes, from the
  // board timing model (runtime/flash_timing.h, the model the simulator
  // charges), microseconds; 0 outside every memory. WriteEstimateUs counts
  // every unit of the data: units that are all erased value, which Write
  // skips, make it an upper bound. The revoke write before the first change
  // of a covered range (one program of kRevokeSize bytes) is not included.
  uint64_t EraseEstimateUs(uint32_t address) const;
  uint64_t MassEraseEstimateUs() const;
  uint64_t WriteEstimateUs(uint32_t address, size_t length) const;

  // What the last failing operation said (empty after success of the first op).
  const char* message() const { return message_.c_str(); }
  // Times a boot record was revoked by this object.
  uint32_t revocations() const { return revocations_; }

 private:
  // Index of the memory holding `address`, or -1.
  int MemoryIndex(uint32_t address) const;
  // The first region of `role` that [start, start + size) overlaps, or null.
  const runtime::Region* TouchesRole(runtime::RegionRole role, uint64_t start, uint64_t size) const;
  // Revokes the current record first when [start, start + size) touches
  // what it covers. kOk when nothing needed doing.
  DfuStatus RevokeIfCovered(uint64_t start, uint64_t size);
  // Sets message() to "address <address> is read-only ..."; errADDRESS.
  DfuStatus ReadOnly(uint64_t address);
  // Marks the cached record stale when [start, start + size) touches it.
  void NoteChange(uint64_t start, uint64_t size);
  void LoadRecord();
  DfuStatus EraseRange(int memory, uint32_t start, uint32_t size);
  // The next run of contiguous mass-erasable sectors of memory `m` at or
  // after `from`; false when there is none.
  bool MassEraseRun(uint8_t m, uint64_t from, uint64_t* start, uint64_t* size) const;
  // Sets message() to "<operation> of <length> bytes at <address> failed: <cause>".
  DfuStatus Failed(DfuStatus status, const char* operation, uint64_t length, uint64_t address,
                   const runtime::Status& cause);

  const runtime::Board& board_;
  std::span<runtime::FlashMemory* const> memories_;
  runtime::Diag message_;
  uint32_t revocations_ = 0;

  // Cached view of the boot record at the start of the record region.
  bool have_record_region_ = false;
  uint32_t record_address_ = 0;
  int record_memory_ = -1;
  bool record_loaded_ = false;
  bool record_live_ = false;  // intact and not revoked: must be revoked before changes
  runtime::BootRecord record_{};
  uint8_t record_buffer_[runtime::kRecordSize] = {};
};

}  // namespace onedfu::bootloader
