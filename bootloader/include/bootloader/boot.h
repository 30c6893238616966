// The boot decision (DESIGN.md 7, rule 3; STYLE 6): the core decides, the
// port acts. Decide() reads the boot record at the start of the board's
// record region and returns whether to start the application, and if not,
// why the board stays in DFU mode, with a message for the status string /
// LED hook. It never jumps and never writes flash.
//
// Checks, in order (the first failure decides):
//   forced DFU entry (button, application request)            kForced
//   the board has a record region and a firmware region         kNoRecordRegion
//   record bytes readable                                       kFlashError
//   record present (not all 0xff)                               kNoRecord
//   record revoked (an update started and did not finish)       kRevoked
//   record intact: magic, version, CRC, fields                  kDamagedRecord
//   record made for this board (board_id == Board::id)          kWrongBoard
//   with trusted keys (TrustPolicy, ONEDFU_TRUST builds):
//     record signed                                             kUnsigned
//     by one of the keys (key_id), signature valid              kBadSignature
//     security counter >= the highest booted one                kRollback
//   every segment, the ROMFS image and the manifest lie inside
//   one memory (the manifest inside the record region)          kDamagedRecord
//   a segment holds the application entry (first firmware
//   region start: its vector table)                            kNoApplication
//   every segment's SHA-256 matches                             kHashMismatch (segment index)
//   the ROMFS image's SHA-256 (when it is not also a segment)   kRomfsMismatch
//   the JSON manifest's SHA-256                                 kManifestMismatch
//   -> kStartApplication, entry = the vector table address.
//
// Verification cost at boot, and how it is bounded:
//   Every boot hashes every byte the record lists (segments, ROMFS image,
//   manifest) exactly once, and reads nothing else but the 2 KiB record.
//   The total is bounded by the memories the segments must lie in, in
//   practice by the board's firmware + romfs + record regions; the work is
//   one linear SHA-256 pass reading memory-mapped flash in place (zero copy)
//   or other flash in 256-byte chunks through a stack buffer. Stack: a 2 KiB
//   record copy only when the record memory is not mapped, plus ~0.8 KiB;
//   no heap. BootDecision::bytes_hashed reports the exact count.
//   Estimate (the board file's boot_cost, runtime::VerifyTimeUs): a Cortex-M7
//   at the port's 144 MHz (STM32F7; portable C SHA-256 at -Os is a
//   ~3300-cycle compression loop per 64-byte block, ~50 cycles/byte, with the
//   loop in the I-cache/ART): ~2.9 MB/s, i.e. ~0.36 s per MiB hashed.
//   PYBD-SF6: the demo package (manifests/examples/pybd-sf6-demo, packed by
//   `onedfu pack`, flashed through DfuDevice) hashes 15,810 bytes (~5.5 ms);
//   the worst case the layout allows (TEXT0 1.7 MiB + TEXT1 1 MiB + ROMFS
//   ~1 MiB) ~3.8 MiB, ~1.4 s. A verified-once boot skips these hashes after
//   the first boot (boot_state.h). A hardware hash unit (STM32 HASH peripheral on
//   F7/H7 parts with crypto) cuts that by an order of magnitude; the port can
//   swap it in behind the same Sha256 interface.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/board.h"
#include "runtime/ed25519.h"
#include "runtime/diag.h"
#include "runtime/flash_memory.h"

namespace onedfu::bootloader {

enum class BootReason : uint8_t {
  kStartApplication,
  kForced,
  kNoRecordRegion,
  kFlashError,
  kNoRecord,
  kRevoked,
  kDamagedRecord,
  kWrongBoard,
  kNoApplication,
  kHashMismatch,
  kRomfsMismatch,
  kManifestMismatch,
  kUnsigned,      // trusted keys configured, record not signed
  kBadSignature,  // signed by an unknown key, or the signature does not verify
  kRollback,      // security counter below the highest one this board booted
};

// What a bootloader built with public keys demands (ONEDFU_TRUST builds; the
// default size build compiles the checks out and ignores it).
struct TrustPolicy {
  // Empty: unsigned records boot too (no keys built in). Otherwise only
  // records signed by one of these (several: key rotation).
  std::span<const runtime::Ed25519PublicKey> keys;
  // The highest security counter this board has booted (anti-rollback); a
  // record with a lower one is refused. 0 = none yet.
  uint32_t min_security_counter = 0;
  // Verified once (bootloader/boot_state.h): when the record region's marker
  // vouches for this record, skip the segment/ROMFS/manifest hashes.
  bool remember_verified = false;
};

// Short lower-case name, e.g. "hash mismatch".
const char* BootReasonName(BootReason reason);

struct BootDecision {
  bool start_application = false;
  BootReason reason = BootReason::kNoRecord;
  uint8_t segment = 0;       // kHashMismatch / kDamagedRecord: the segment index
  uint32_t entry = 0;        // kStartApplication: vector table address to jump to
  uint64_t bytes_hashed = 0; // how much flash this decision hashed
  bool signature_checked = false;  // an Ed25519 signature was verified (counts for the cost model)
  uint32_t security_counter = 0;   // kStartApplication: the record's counter (the port advances its store)
  uint32_t record_crc = 0;         // of the record decided on (binds the verified marker)
  bool hashes_skipped = false;     // the verified marker vouched; no hash was computed
  bool mark_verified = false;      // kStartApplication after full verification with
                                   // remember_verified: the port programs the marker
  runtime::Diag message;     // e.g. "segment 1 at 0x90000000 (1048576 bytes): SHA-256 mismatch"
};

// `memories[i]` serves board.memories[i]; a null entry reads as a flash error
// when something must be read from it.
BootDecision Decide(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories,
                    bool forced_dfu, const TrustPolicy* trust = nullptr);

}  // namespace onedfu::bootloader
