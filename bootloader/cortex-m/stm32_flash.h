// Register-level FlashMemory drivers for the STM32F767 (no vendor HAL).
//
// InternalFlash follows RM0410 section 3 (embedded flash memory): 3.3.3
// unlocking (FLASH_KEYR KEY1/KEY2, FLASH_CR.LOCK), 3.3.5 sector erase (SER,
// SNB, STRT, wait BSY), 3.3.6 programming (PG, PSIZE = x32 for 2.7-3.6 V:
// every write is one aligned 32-bit word, then dsb and wait BSY), 3.3.7
// error flags (FLASH_SR OPERR, WRPERR, PGAERR, PGPERR, ERSERR, cleared by
// writing 1), single-bank layout (nDBANK = 1: 4*32K, 1*128K, 7*256K, the
// board geometry). The lock is set again after every operation. Reads are
// the memory-mapped bytes (AXIM at 0x08000000; D-cache off).
//
// QspiFlash follows RM0410 section 14 (QUADSPI): 14.3.2 indirect mode (CCR
// FMODE 00, DLR, AR starts an addressed command, bytes through DR while
// FTF says the FIFO has room, TCF at the end), 14.3.4 status-flag polling
// mode (FMODE 10, PSMKR/PSMAR, APMS: stop at the first match, SMF), 14.3.5
// memory-mapped mode (FMODE 11), 14.3.10 (CCR may be written only when BUSY
// = 0: ABORT first), and the W25Q128JV datasheet: 7.1 status register 1
// (BUSY/WIP bit 0), 8.2 instructions 06h write enable, 05h read status 1,
// 20h 4 KiB sector erase, D8h 64 KiB block erase, 02h page program (256-byte
// page, never across a page boundary), 03h read data (<= 50 MHz, hence the
// 48 MHz QUADSPI clock). Erase and program run in single-line (1-1-1) mode;
// afterwards the window at 0x90000000 is memory-mapped again, which is how
// the bootloader verifies and how the application executes from it.
#pragma once

#include <cstdint>

#include "runtime/board.h"
#include "runtime/byte_reader.h"
#include "runtime/flash_memory.h"
#include "runtime/status.h"

namespace onedfu::cortexm {

// What both drivers share: the memory is read where the CPU sees it mapped
// (internal flash on AXIM, the QSPI window in memory-mapped mode).
class MappedFlash : public runtime::FlashMemory {
 public:
  explicit MappedFlash(const runtime::Memory& geometry) : geometry_(geometry) {}
  const runtime::Memory& geometry() const override { return geometry_; }
  runtime::Status Read(uint32_t address, runtime::MutableByteSpan out) override;
  runtime::ByteSpan Mapped() const override;

 protected:
  ~MappedFlash() = default;
  const runtime::Memory& geometry_;
};

class InternalFlash final : public MappedFlash {
 public:
  using MappedFlash::MappedFlash;
  runtime::Status Erase(uint32_t address, uint32_t size) override;
  runtime::Status Write(uint32_t address, runtime::ByteSpan data) override;
};

class QspiFlash final : public MappedFlash {
 public:
  using MappedFlash::MappedFlash;
  // Clocks QUADSPI (pins: PinsInit), clock = AHB / 3, device size from the
  // geometry, memory-mapped mode. False when the peripheral stays busy.
  [[nodiscard]] bool Init();
  runtime::Status Erase(uint32_t address, uint32_t size) override;
  runtime::Status Write(uint32_t address, runtime::ByteSpan data) override;
};

}  // namespace onedfu::cortexm
