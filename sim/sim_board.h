// SimBoard: the simulated board (DESIGN.md 8): a runtime::Board from a board file and one
// FileFlash per memory in a state directory (`<state>/<memory name>.bin`). The state directory
// IS the board: it persists between runs.
//
// A memory file that did not exist is created erased; when the bootloader region's memory was
// just created, the bootloader image (BootloaderImage()) is placed at the start of the
// bootloader region, as a factory would. Boot() is power-on / reset: power returns to every
// memory and the bootloader core's boot decision (bootloader/boot.h) says whether the
// application starts or the board stays in DFU mode, and why.
//
// Host only. Not thread-safe.
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "bootloader/boot.h"
#include "file_flash.h"
#include "host/expected.h"
#include "runtime/board.h"
#include "runtime/boot_record.h"
#include "runtime/flash_memory.h"

namespace onedfu::sim {

// The simulated bootloader image for `board`: a deterministic Cortex-M vector table (initial
// SP, reset handler and 14 more handler words inside the bootloader region) followed by the
// text "onedfu-sim bootloader <board id>", padded with 0x00 to a multiple of 256 bytes and
// cut to the region size. Empty when the board has no bootloader region.
std::vector<uint8_t> BootloaderImage(const runtime::Board& board);

class SimBoard {
 public:
  // Creates `state_dir` when missing, opens every memory file (see file comment). Errors name
  // the file or directory.
  static host::Expected<std::unique_ptr<SimBoard>> Open(const runtime::Board& board,
                                                           const std::filesystem::path& state_dir);

  const runtime::Board& board() const { return board_; }
  const std::filesystem::path& state_dir() const { return state_dir_; }
  // memories()[i] serves board().memories[i] (what DfuDevice and Decide take).
  std::span<runtime::FlashMemory* const> memories() { return pointers_; }
  FileFlash& flash(size_t i) { return *flashes_[i]; }
  const FileFlash& flash(size_t i) const { return *flashes_[i]; }
  size_t memory_count() const { return flashes_.size(); }
  // The FileFlash holding `address`, or null.
  FileFlash* FlashAt(uint32_t address);
  // True when Open() created at least one memory file (a blank board).
  bool created() const { return created_; }

  // Power-on / reset: restores power to every memory, clears pending faults, runs the boot
  // decision. `forced_dfu` is the held boot button (or an application's request to enter DFU).
  bootloader::BootDecision Boot(bool forced_dfu);

  // Makes this board's bootloader a trusting one (`onedfu-sim run --trust KEY.pub.pem`...):
  // only records signed by one of `keys` boot (none: unsigned ones too), the security
  // counter log is kept (bootloader/boot_state.h) and a record verified once is not
  // re-hashed. Boot() then runs bootloader::TrustedBoot, as the Cortex-M port does.
  void SetTrust(std::vector<runtime::Ed25519PublicKey> keys);
  bool trusting() const { return trusting_; }
  // The board's security counter (0 without a counter area or when never advanced).
  uint32_t SecurityCounter();

  // The bytes currently at [address, address + size) (bypassing faults); empty when the range
  // is not inside one memory.
  std::vector<uint8_t> Peek(uint32_t address, uint32_t size) const;
  // The decoded boot record at the start of the record region; an error status when there is
  // none or it is damaged/revoked (runtime::DecodeBootRecord's codes), kNotFound without a
  // record region.
  runtime::Result<runtime::BootRecord> ReadRecord() const;

  void ResetUsage();
  // msync every memory; false when one failed.
  bool Sync();

 private:
  SimBoard() = default;

  runtime::Board board_;
  std::filesystem::path state_dir_;
  std::vector<std::unique_ptr<FileFlash>> flashes_;
  std::vector<runtime::FlashMemory*> pointers_;
  bool created_ = false;
  bool trusting_ = false;
  std::vector<runtime::Ed25519PublicKey> keys_;
};

}  // namespace onedfu::sim
