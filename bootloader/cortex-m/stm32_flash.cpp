#include "stm32_flash.h"

#include <cstring>

namespace onedfu::cortexm {

using runtime::ByteSpan;
using runtime::MutableByteSpan;
using runtime::Status;
using runtime::StatusCode;

namespace {

inline volatile uint32_t& Reg(uint32_t address) { return *reinterpret_cast<volatile uint32_t*>(address); }
inline volatile uint8_t& Reg8(uint32_t address) { return *reinterpret_cast<volatile uint8_t*>(address); }

constexpr Status kOutside(StatusCode::kOutOfRange, "flash: range outside the memory");
constexpr Status kMisaligned(StatusCode::kInvalidArgument, "flash: misaligned");
constexpr Status kDevice(StatusCode::kUnavailable, "flash: device error");

bool Inside(const runtime::Memory& m, uint32_t address, uint64_t size) {
  return address >= m.base && address + size <= m.end();
}

// --- STM32F7 embedded flash (RM0410 section 3) ------------------------------
constexpr uint32_t kFlash = 0x40023c00;
constexpr uint32_t kFlashKeyr = kFlash + 0x04;
constexpr uint32_t kFlashSr = kFlash + 0x0c;
constexpr uint32_t kFlashCr = kFlash + 0x10;
constexpr uint32_t kSrBusy = 1u << 16;
constexpr uint32_t kSrErrors = 0xf2;  // OPERR, WRPERR, PGAERR, PGPERR, ERSERR
constexpr uint32_t kCrPg = 1u << 0;
constexpr uint32_t kCrSer = 1u << 1;
constexpr uint32_t kCrPsize32 = 2u << 8;
constexpr uint32_t kCrStrt = 1u << 16;
constexpr uint32_t kCrLock = 1u << 31;

void FlashUnlock() {
  if (Reg(kFlashCr) & kCrLock) {
    Reg(kFlashKeyr) = 0x45670123;
    Reg(kFlashKeyr) = 0xcdef89ab;
  }
  Reg(kFlashSr) = kSrErrors;  // clear stale error flags
}

bool FlashWait() {
  while (Reg(kFlashSr) & kSrBusy) {
  }
  return (Reg(kFlashSr) & kSrErrors) == 0;
}

void FlashLock() { Reg(kFlashCr) = kCrLock; }

// --- QUADSPI + W25Q-class NOR (RM0410 section 14) ---------------------------
constexpr uint32_t kQspi = 0xa0001000;
constexpr uint32_t kQspiCr = kQspi + 0x00;
constexpr uint32_t kQspiSr = kQspi + 0x08;
constexpr uint32_t kQspiFcr = kQspi + 0x0c;
constexpr uint32_t kQspiDlr = kQspi + 0x10;
constexpr uint32_t kQspiCcr = kQspi + 0x14;
constexpr uint32_t kQspiAr = kQspi + 0x18;
constexpr uint32_t kQspiDr = kQspi + 0x20;
constexpr uint32_t kQspiPsmkr = kQspi + 0x24;
constexpr uint32_t kQspiPsmar = kQspi + 0x28;
constexpr uint32_t kCrAbort = 1u << 1;
constexpr uint32_t kCrApms = 1u << 22;
constexpr uint32_t kSrTcf = 1u << 1;
constexpr uint32_t kSrFtf = 1u << 2;
constexpr uint32_t kSrSmf = 1u << 3;
constexpr uint32_t kSrBusyQ = 1u << 5;
constexpr uint32_t kImode1 = 1u << 8;
constexpr uint32_t kAdmode1 = 1u << 10;
constexpr uint32_t kAdsize24 = 2u << 12;
constexpr uint32_t kDmode1 = 1u << 24;
constexpr uint32_t kFmodeWrite = 0u << 26;
constexpr uint32_t kFmodePoll = 2u << 26;
constexpr uint32_t kFmodeMapped = 3u << 26;
constexpr uint32_t kPageSize = 256;

void QspiIdle() {
  Reg(kQspiCr) |= kCrAbort;
  while (Reg(kQspiCr) & kCrAbort) {
  }
  while (Reg(kQspiSr) & kSrBusyQ) {
  }
}

void QspiCommand(uint8_t instruction) {
  Reg(kQspiCcr) = kFmodeWrite | kImode1 | instruction;
  while (Reg(kQspiSr) & kSrBusyQ) {
  }
}

// Polls the status register (0x05) until WIP (bit 0) clears.
void QspiWaitReady() {
  Reg(kQspiPsmkr) = 0x01;
  Reg(kQspiPsmar) = 0x00;
  Reg(kQspiDlr) = 0;
  Reg(kQspiCr) |= kCrApms;
  Reg(kQspiCcr) = kFmodePoll | kDmode1 | kImode1 | 0x05;
  while (!(Reg(kQspiSr) & kSrSmf)) {
  }
  Reg(kQspiFcr) = kSrSmf;
}

void QspiMapped() {
  QspiIdle();
  Reg(kQspiCcr) = kFmodeMapped | kDmode1 | kAdsize24 | kAdmode1 | kImode1 | 0x03;
}

}  // namespace

Status InternalFlash::Erase(uint32_t address, uint32_t size) {
  if (!Inside(geometry_, address, size)) return kOutside;
  FlashUnlock();
  for (uint64_t at = address; at < uint64_t{address} + size;) {
    auto sector = runtime::SectorContaining(geometry_, static_cast<uint32_t>(at));
    if (!sector.ok() || sector->start != at) {
      FlashLock();
      return kMisaligned;
    }
    Reg(kFlashCr) = kCrSer | kCrPsize32 | (sector->index << 3);
    Reg(kFlashCr) |= kCrStrt;
    if (!FlashWait()) {
      FlashLock();
      return kDevice;
    }
    at += sector->size;
  }
  FlashLock();
  return Status::Ok();
}

Status InternalFlash::Read(uint32_t address, MutableByteSpan out) {
  if (!Inside(geometry_, address, out.size())) return kOutside;
  std::memcpy(out.data(), reinterpret_cast<const void*>(address), out.size());
  return Status::Ok();
}

Status InternalFlash::Write(uint32_t address, ByteSpan data) {
  if (!Inside(geometry_, address, data.size())) return kOutside;
  if (address % 4 != 0 || data.size() % 4 != 0) return kMisaligned;
  FlashUnlock();
  Reg(kFlashCr) = kCrPg | kCrPsize32;
  for (size_t i = 0; i < data.size(); i += 4) {
    Reg(address + static_cast<uint32_t>(i)) = runtime::LoadLe32(data.data() + i);
    __asm__ volatile("dsb" ::: "memory");
    if (!FlashWait()) {
      FlashLock();
      return kDevice;
    }
  }
  FlashLock();
  return Status::Ok();
}

ByteSpan InternalFlash::Mapped() const {
  return ByteSpan(reinterpret_cast<const uint8_t*>(geometry_.base), geometry_.size());
}

Status QspiFlash::Erase(uint32_t address, uint32_t size) {
  if (!Inside(geometry_, address, size)) return kOutside;
  if ((address - geometry_.base) % 4096 != 0 || size % 4096 != 0) return kMisaligned;
  QspiIdle();
  uint32_t offset = address - geometry_.base;
  const uint32_t end = offset + size;
  while (offset < end) {
    const bool block = offset % 65536 == 0 && end - offset >= 65536;
    QspiCommand(0x06);  // write enable
    Reg(kQspiCcr) = kFmodeWrite | kAdsize24 | kAdmode1 | kImode1 | (block ? 0xd8u : 0x20u);
    Reg(kQspiAr) = offset;
    while (Reg(kQspiSr) & kSrBusyQ) {
    }
    QspiWaitReady();
    offset += block ? 65536 : 4096;
  }
  QspiMapped();
  return Status::Ok();
}

Status QspiFlash::Read(uint32_t address, MutableByteSpan out) {
  if (!Inside(geometry_, address, out.size())) return kOutside;
  std::memcpy(out.data(), reinterpret_cast<const void*>(address), out.size());
  return Status::Ok();
}

Status QspiFlash::Write(uint32_t address, ByteSpan data) {
  if (!Inside(geometry_, address, data.size())) return kOutside;
  QspiIdle();
  uint32_t offset = address - geometry_.base;
  size_t done = 0;
  while (done < data.size()) {
    // A page program must not cross a 256-byte page boundary.
    size_t n = kPageSize - offset % kPageSize;
    if (n > data.size() - done) n = data.size() - done;
    QspiCommand(0x06);
    Reg(kQspiDlr) = static_cast<uint32_t>(n - 1);
    Reg(kQspiCcr) = kFmodeWrite | kDmode1 | kAdsize24 | kAdmode1 | kImode1 | 0x02;
    Reg(kQspiAr) = offset;
    for (size_t i = 0; i < n; ++i) {
      while (!(Reg(kQspiSr) & kSrFtf)) {
      }
      Reg8(kQspiDr) = data[done + i];
    }
    while (!(Reg(kQspiSr) & kSrTcf)) {
    }
    Reg(kQspiFcr) = kSrTcf;
    QspiWaitReady();
    offset += static_cast<uint32_t>(n);
    done += n;
  }
  QspiMapped();
  return Status::Ok();
}

ByteSpan QspiFlash::Mapped() const {
  return ByteSpan(reinterpret_cast<const uint8_t*>(geometry_.base), geometry_.size());
}

}  // namespace onedfu::cortexm
