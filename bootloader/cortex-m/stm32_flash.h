// Register-level FlashMemory drivers for an STM32F7-class MCU (no vendor HAL).
// They exist so the Cortex-M size build links real driver-shaped code; the
// register addresses and bit positions follow the STM32F76x reference
// manual (RM0410) and a W25Q-class QSPI NOR, but they are placeholders that
// have not run on hardware.
//
// InternalFlash: mixed sector sizes from the board geometry; erase by sector
//   number (FLASH_CR.SNB), program 32-bit words (PSIZE x32). Mapped at its base.
// QspiFlash: 4 KiB sector erase (0x20), 64 KiB block erase (0xD8) when the
//   range is 64 KiB aligned, 256-byte page program (0x02); reads through the
//   memory-mapped window. Indirect mode for erase/program, memory-mapped
//   mode restored afterwards.
#pragma once

#include <cstdint>

#include "runtime/board.h"
#include "runtime/byte_reader.h"
#include "runtime/flash_memory.h"
#include "runtime/status.h"

namespace onedfu::cortexm {

class InternalFlash final : public runtime::FlashMemory {
 public:
  explicit InternalFlash(const runtime::Memory& geometry) : geometry_(geometry) {}
  const runtime::Memory& geometry() const override { return geometry_; }
  runtime::Status Erase(uint32_t address, uint32_t size) override;
  runtime::Status Read(uint32_t address, runtime::MutableByteSpan out) override;
  runtime::Status Write(uint32_t address, runtime::ByteSpan data) override;
  runtime::ByteSpan Mapped() const override;

 private:
  const runtime::Memory& geometry_;
};

class QspiFlash final : public runtime::FlashMemory {
 public:
  explicit QspiFlash(const runtime::Memory& geometry) : geometry_(geometry) {}
  const runtime::Memory& geometry() const override { return geometry_; }
  runtime::Status Erase(uint32_t address, uint32_t size) override;
  runtime::Status Read(uint32_t address, runtime::MutableByteSpan out) override;
  runtime::Status Write(uint32_t address, runtime::ByteSpan data) override;
  runtime::ByteSpan Mapped() const override;

 private:
  const runtime::Memory& geometry_;
};

}  // namespace onedfu::cortexm
