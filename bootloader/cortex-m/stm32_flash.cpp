#include "stm32_flash.h"

#include <cstring>

#include "mmio.h"

namespace onedfu::cortexm {

using runtime::ByteSpan;
using runtime::MutableByteSpan;
using runtime::Status;
using runtime::StatusCode;

namespace {

constexpr Status kOutside(StatusCode::kOutOfRange, "flash: range outside the memory");
constexpr Status kMisaligned(StatusCode::kInvalidArgument, "flash: misaligned");
constexpr Status kDevice(StatusCode::kUnavailable, "flash: device error");

bool Inside(const runtime::Memory& m, uint32_t address, uint64_t size) {
  return address >= m.base && address + size <= m.end();
}

// --- embedded flash (RM0410 3.7: registers) ---------------------------------
constexpr uint32_t kFlash = 0x40023c00;
constexpr uint32_t kFlashKeyr = kFlash + 0x04;
constexpr uint32_t kFlashSr = kFlash + 0x0c;
constexpr uint32_t kFlashCr = kFlash + 0x10;
constexpr uint32_t kSrBusy = 1u << 16;
constexpr uint32_t kSrErrors = 0xf2;  // ERSERR, PGPERR, PGAERR, WRPERR, OPERR
constexpr uint32_t kCrPg = 1u << 0;
constexpr uint32_t kCrSer = 1u << 1;
constexpr uint32_t kCrPsize32 = 2u << 8;
constexpr uint32_t kCrStrt = 1u << 16;
constexpr uint32_t kCrLock = 1u << 31;

bool FlashUnlock() {
  if (!WaitBits(kFlashSr, kSrBusy, 0)) return false;
  if (Reg(kFlashCr) & kCrLock) {
    Reg(kFlashKeyr) = 0x45670123;
    Reg(kFlashKeyr) = 0xcdef89ab;
  }
  Reg(kFlashSr) = kSrErrors;  // clear stale error flags
  return (Reg(kFlashCr) & kCrLock) == 0;
}

// Waits for the operation, locks again; true when no error flag is set.
bool FlashFinish(bool more) {
  const bool done = WaitBits(kFlashSr, kSrBusy, 0) && (Reg(kFlashSr) & kSrErrors) == 0;
  if (!done || !more) Reg(kFlashCr) = kCrLock;
  return done;
}

// --- QUADSPI (RM0410 14.5: registers) + W25Q instructions --------------------
constexpr uint32_t kQspi = 0xa0001000;
constexpr uint32_t kQspiCr = kQspi + 0x00;
constexpr uint32_t kQspiDcr = kQspi + 0x04;
constexpr uint32_t kQspiSr = kQspi + 0x08;
constexpr uint32_t kQspiFcr = kQspi + 0x0c;
constexpr uint32_t kQspiDlr = kQspi + 0x10;
constexpr uint32_t kQspiCcr = kQspi + 0x14;
constexpr uint32_t kQspiAr = kQspi + 0x18;
constexpr uint32_t kQspiDr = kQspi + 0x20;
constexpr uint32_t kQspiPsmkr = kQspi + 0x24;
constexpr uint32_t kQspiPsmar = kQspi + 0x28;
constexpr uint32_t kQspiPir = kQspi + 0x2c;
constexpr uint32_t kRccAhb3enr = 0x40023838;  // QSPIEN bit 1 (RM0410 5.3.12)
constexpr uint32_t kCrEn = 1u << 0;
constexpr uint32_t kCrAbort = 1u << 1;
constexpr uint32_t kCrApms = 1u << 22;
constexpr uint32_t kCrPrescaler3 = 2u << 24;  // QUADSPI clock = AHB / 3 = 48 MHz
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
constexpr uint8_t kCmdWriteEnable = 0x06;
constexpr uint8_t kCmdReadStatus1 = 0x05;
constexpr uint8_t kCmdSectorErase = 0x20;
constexpr uint8_t kCmdBlockErase = 0xd8;
constexpr uint8_t kCmdPageProgram = 0x02;
constexpr uint8_t kCmdRead = 0x03;
constexpr uint32_t kPageSize = 256;

// Leaves memory-mapped (or any) mode: ABORT, then BUSY must clear.
bool QspiIdle() {
  Reg(kQspiCr) |= kCrAbort;
  return WaitBits(kQspiCr, kCrAbort, 0) && WaitBits(kQspiSr, kSrBusyQ, 0);
}

bool QspiWriteEnable() {
  Reg(kQspiCcr) = kFmodeWrite | kImode1 | kCmdWriteEnable;
  return WaitBits(kQspiSr, kSrBusyQ, 0);
}

// Auto-polls status register 1 until BUSY (bit 0) reads 0.
bool QspiWaitReady() {
  Reg(kQspiPsmkr) = 0x01;
  Reg(kQspiPsmar) = 0x00;
  Reg(kQspiPir) = 0x10;
  Reg(kQspiDlr) = 0;
  Reg(kQspiCr) |= kCrApms;
  Reg(kQspiCcr) = kFmodePoll | kDmode1 | kImode1 | kCmdReadStatus1;
  if (!WaitBits(kQspiSr, kSrSmf, kSrSmf, 0xffffffff)) return false;
  Reg(kQspiFcr) = kSrSmf;
  return WaitBits(kQspiSr, kSrBusyQ, 0);
}

bool QspiMapped() {
  if (!QspiIdle()) return false;
  Reg(kQspiCcr) = kFmodeMapped | kDmode1 | kAdsize24 | kAdmode1 | kImode1 | kCmdRead;
  return true;
}

}  // namespace

Status InternalFlash::Erase(uint32_t address, uint32_t size) {
  if (!Inside(geometry_, address, size)) return kOutside;
  for (uint64_t at = address; at < uint64_t{address} + size;) {
    auto sector = runtime::SectorContaining(geometry_, static_cast<uint32_t>(at));
    if (!sector.ok() || sector->start != at) return kMisaligned;
    if (!FlashUnlock()) return kDevice;
    Reg(kFlashCr) = kCrSer | kCrPsize32 | (sector->index << 3);
    Reg(kFlashCr) |= kCrStrt;
    if (!FlashFinish(false)) return kDevice;
    at += sector->size;
  }
  return Status::Ok();
}

Status MappedFlash::Read(uint32_t address, MutableByteSpan out) {
  if (!Inside(geometry_, address, out.size())) return kOutside;
  std::memcpy(out.data(), reinterpret_cast<const void*>(address), out.size());
  return Status::Ok();
}

ByteSpan MappedFlash::Mapped() const {
  return ByteSpan(reinterpret_cast<const uint8_t*>(geometry_.base), geometry_.size());
}

Status InternalFlash::Write(uint32_t address, ByteSpan data) {
  if (!Inside(geometry_, address, data.size())) return kOutside;
  if (address % 4 != 0 || data.size() % 4 != 0) return kMisaligned;
  if (!FlashUnlock()) return kDevice;
  Reg(kFlashCr) = kCrPg | kCrPsize32;
  for (size_t i = 0; i < data.size(); i += 4) {
    Reg(address + static_cast<uint32_t>(i)) = runtime::LoadLe32(data.data() + i);
    __asm__ volatile("dsb" ::: "memory");
    if (!FlashFinish(i + 4 < data.size())) return kDevice;
  }
  return Status::Ok();
}


bool QspiFlash::Init() {
  Reg(kRccAhb3enr) |= 1u << 1;
  // FSIZE = log2(bytes) - 1; chip select high >= 2 cycles between commands.
  Reg(kQspiDcr) = static_cast<uint32_t>(31 - __builtin_clz(geometry_.size()) - 1) << 16 | (1u << 8);
  Reg(kQspiCr) = kCrPrescaler3 | kCrEn;
  return QspiMapped();
}

Status QspiFlash::Erase(uint32_t address, uint32_t size) {
  if (!Inside(geometry_, address, size)) return kOutside;
  if ((address - geometry_.base) % 4096 != 0 || size % 4096 != 0) return kMisaligned;
  uint32_t offset = address - geometry_.base;
  const uint32_t end = offset + size;
  bool ok = QspiIdle();
  while (ok && offset < end) {
    const bool block = offset % 65536 == 0 && end - offset >= 65536;
    ok = QspiWriteEnable();
    Reg(kQspiCcr) = kFmodeWrite | kAdsize24 | kAdmode1 | kImode1 | (block ? kCmdBlockErase : kCmdSectorErase);
    Reg(kQspiAr) = offset;
    ok = ok && WaitBits(kQspiSr, kSrBusyQ, 0) && QspiWaitReady();
    offset += block ? 65536 : 4096;
  }
  ok = QspiMapped() && ok;
  return ok ? Status::Ok() : kDevice;
}


Status QspiFlash::Write(uint32_t address, ByteSpan data) {
  if (!Inside(geometry_, address, data.size())) return kOutside;
  uint32_t offset = address - geometry_.base;
  size_t done = 0;
  bool ok = QspiIdle();
  while (ok && done < data.size()) {
    // A page program must not cross a 256-byte page boundary.
    size_t n = kPageSize - offset % kPageSize;
    if (n > data.size() - done) n = data.size() - done;
    ok = QspiWriteEnable();
    Reg(kQspiDlr) = static_cast<uint32_t>(n - 1);
    Reg(kQspiCcr) = kFmodeWrite | kDmode1 | kAdsize24 | kAdmode1 | kImode1 | kCmdPageProgram;
    Reg(kQspiAr) = offset;
    for (size_t i = 0; ok && i < n; ++i) {
      ok = WaitBits(kQspiSr, kSrFtf, kSrFtf);
      if (ok) Reg8(kQspiDr) = data[done + i];
    }
    ok = ok && WaitBits(kQspiSr, kSrTcf, kSrTcf);
    Reg(kQspiFcr) = kSrTcf;
    ok = ok && WaitBits(kQspiSr, kSrBusyQ, 0) && QspiWaitReady();
    offset += static_cast<uint32_t>(n);
    done += n;
  }
  ok = QspiMapped() && ok;
  return ok ? Status::Ok() : kDevice;
}


}  // namespace onedfu::cortexm
