// DfuseFlash: the bootloader's DfuBackend: ST DfuSe (UM0424) over the guarded
// flash policy (GuardedFlash), as dfu-util, pydfu and mboot use it
// (DESIGN.md 6):
//   - DNLOAD block 0 is a command: `21 a0..a3` set the address pointer
//     (errADDRESS outside every memory), `41 a0..a3` erase the sector
//     containing the address, `41` mass erase (read-only flash and filesystem
//     regions skipped), `92` read-unprotect (accepted, no effect), and the
//     onedfu vendor command `48 a0..a3 l0..l3` (dfu.h kDfuseHash): SHA-256 of
//     the range, which must lie inside one memory and hold at most
//     kDfuseHashMaxLength bytes (errADDRESS otherwise), so the work per
//     request is bounded; its bwPollTimeout is runtime::HashTimeUs (the
//     board's boot_cost figure for SHA-256). A wrong length or another command byte: errUNKNOWN.
//   - DNLOAD block n >= 2 writes its data at BlockAddress(n); UPLOAD block
//     n >= 2 reads there, and ends short or empty where it runs past the end
//     of a memory (or of 4 GiB), never a STALL. UPLOAD block 0 returns the
//     command list 00 21 41 92 48, or, once after a hash command (unless
//     another DNLOAD came in between), 48 and the 32-byte SHA-256.
//   - Block 1 is not defined: refused (the request stalls).
// Every flash change and read goes through GuardedFlash, which enforces the
// update policy whatever the host sends. Not owning the flash; no heap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "bootloader/dfu_backend.h"
#include "bootloader/guarded_flash.h"
#include "runtime/board.h"
#include "runtime/flash_memory.h"

namespace onedfu::bootloader {

class DfuseFlash final : public DfuBackend {
 public:
  // The address pointer starts at the board's first memory.
  DfuseFlash(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories);

  // The flash drivers against the board (GuardedFlash::Check).
  runtime::Status Check(runtime::Diag* diag) const { return flash_.Check(diag); }
  const char* RefuseBlock(uint16_t block) const override;
  uint64_t DownloadEstimateUs(uint16_t block, runtime::ByteSpan data) const override;
  DfuStatus Download(uint16_t block, runtime::ByteSpan data, runtime::Diag& message) override;
  DfuStatus Upload(uint16_t block, runtime::MutableByteSpan out, size_t* length, runtime::Diag& message) override;

  uint32_t address_pointer() const { return address_pointer_; }
  const GuardedFlash& flash() const { return flash_; }

 private:
  // The one block-address rule: data block `block` (>= 2) starts at
  // address_pointer + (block - 2) * kTransferSize. errADDRESS when that
  // passes 4 GiB (`message`, when given, says so).
  DfuStatus BlockAddress(uint16_t block, uint32_t* address, runtime::Diag* message) const;
  DfuStatus Command(runtime::ByteSpan command, runtime::Diag& message);

  GuardedFlash flash_;
  uint32_t address_pointer_;
  // The reply to the UPLOAD of block 0 after a hash command: kDfuseHash, then
  // the digest; byte 0 is 0 while no result is pending.
  uint8_t hash_reply_[kDfuseHashReplySize] = {};
};

}  // namespace onedfu::bootloader
