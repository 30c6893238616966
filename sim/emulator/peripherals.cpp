#include "peripherals.h"

#include <cstdio>
#include <string>

namespace onedfu::sim::emu {
namespace {

uint64_t FlashTimeUs(const FileFlash& f) { return f.usage().erase_us + f.usage().program_us; }

}  // namespace

// --- RCC (RM0410 5.3) ------------------------------------------------------------------------

void RccModel::Reset() {
  cr_ = 0x00000083;       // HSION | HSIRDY, HSITRIM 16
  pllcfgr_ = 0x24003010;
  cfgr_ = 0;
  ahb1enr_ = 0x00100000;  // DTCMRAMEN
  ahb2enr_ = ahb3enr_ = apb1enr_ = apb2enr_ = dckcfgr2_ = 0;
}

uint64_t RccModel::SysclkHz() const {
  switch (cfgr_ & 3) {
    case 1: return 25'000'000;
    case 2: {
      const uint64_t in = (pllcfgr_ >> 22) & 1 ? 25'000'000 : 16'000'000;
      const uint64_t m = pllcfgr_ & 0x3f, n = (pllcfgr_ >> 6) & 0x1ff, p = 2 * (((pllcfgr_ >> 16) & 3) + 1);
      return m == 0 ? 0 : in / m * n / p;
    }
    default: return 16'000'000;
  }
}

uint64_t RccModel::Pll48Hz() const {
  if (!(cr_ & (1u << 25)) || (dckcfgr2_ >> 27) & 1) return 0;
  const uint64_t in = (pllcfgr_ >> 22) & 1 ? 25'000'000 : 16'000'000;
  const uint64_t m = pllcfgr_ & 0x3f, n = (pllcfgr_ >> 6) & 0x1ff, q = (pllcfgr_ >> 24) & 0xf;
  return m == 0 || q < 2 ? 0 : in / m * n / q;
}

bool RccModel::Read(uint32_t offset, uint32_t* value) {
  switch (offset) {
    case 0x00: *value = cr_; return true;
    case 0x04: *value = pllcfgr_; return true;
    case 0x08: *value = (cfgr_ & ~0xcu) | ((cfgr_ & 3) << 2); return true;
    case 0x30: *value = ahb1enr_; return true;
    case 0x34: *value = ahb2enr_; return true;
    case 0x38: *value = ahb3enr_; return true;
    case 0x40: *value = apb1enr_; return true;
    case 0x44: *value = apb2enr_; return true;
    case 0x90: *value = dckcfgr2_; return true;
    default: return false;
  }
}

bool RccModel::Write(uint32_t offset, unsigned /*size*/, uint32_t value) {
  switch (offset) {
    case 0x00: {
      const bool pll_on = value & (1u << 24);
      if (pll_on && !(cr_ & (1u << 24))) {
        const uint64_t in = (pllcfgr_ >> 22) & 1 ? 25'000'000 : 16'000'000;
        const uint64_t m = pllcfgr_ & 0x3f, n = (pllcfgr_ >> 6) & 0x1ff;
        if ((pllcfgr_ >> 22) & 1 && !(cr_ & (1u << 17))) {
          m_.Fault("RCC_CR.PLLON with the HSE as PLL source before RCC_CR.HSERDY");
          return true;
        }
        if (m < 2 || in / m < 1'000'000 || in / m > 2'000'000 || in / m * n < 100'000'000 || in / m * n > 432'000'000) {
          m_.Fault("RCC_CR.PLLON with RCC_PLLCFGR " + Hex(pllcfgr_) + ": VCO input must be 1-2 MHz, VCO 100-432 MHz");
          return true;
        }
      }
      // Ready flags follow the enables at once (the model does not time oscillator start-up).
      uint32_t cr = (value & 0x01050001u) | (cr_ & 0xf8u);
      if (cr & 1) cr |= 2;
      if (cr & (1u << 16)) cr |= 1u << 17;
      if (cr & (1u << 24)) cr |= 1u << 25;
      cr_ = cr;
      return true;
    }
    case 0x04:
      if (cr_ & (1u << 24)) {
        m_.Fault("RCC_PLLCFGR written while the PLL runs (RM0410 5.3.2: configure it with PLLON = 0)");
        return true;
      }
      pllcfgr_ = value;
      return true;
    case 0x08: {
      const uint32_t sw = value & 3;
      if (sw == 2 && !(cr_ & (1u << 25))) {
        m_.Fault("RCC_CFGR.SW = PLL before RCC_CR.PLLRDY");
        return true;
      }
      if (sw == 3) {
        m_.Fault("RCC_CFGR.SW = 3 (reserved)");
        return true;
      }
      cfgr_ = value & ~0xcu;
      const uint64_t hz = SysclkHz();
      // RM0410 table 7, 2.7-3.6 V: one more wait state per 30 MHz.
      const uint64_t needed = hz == 0 ? 0 : (hz - 1) / 30'000'000;
      if (hz > 216'000'000 || m_.flash().latency() < needed) {
        m_.Fault("RCC_CFGR: SYSCLK " + std::to_string(hz / 1'000'000) + " MHz with FLASH_ACR.LATENCY " +
                 std::to_string(m_.flash().latency()) + " (needs " + std::to_string(needed) + ")");
        return true;
      }
      const unsigned ppre1 = (value >> 10) & 7, ppre2 = (value >> 13) & 7;
      const uint64_t apb1 = ppre1 < 4 ? hz : hz >> (ppre1 - 3), apb2 = ppre2 < 4 ? hz : hz >> (ppre2 - 3);
      if (apb1 > 54'000'000 || apb2 > 108'000'000) {
        m_.Fault("RCC_CFGR: APB1 " + std::to_string(apb1) + " Hz / APB2 " + std::to_string(apb2) +
                 " Hz above 54 / 108 MHz");
      }
      return true;
    }
    case 0x30: ahb1enr_ = value; return true;
    case 0x34: ahb2enr_ = value; return true;
    case 0x38: ahb3enr_ = value; return true;
    case 0x40: apb1enr_ = value; return true;
    case 0x44: apb2enr_ = value; return true;
    case 0x90: dckcfgr2_ = value; return true;
    default: return false;
  }
}

// --- FLASH (RM0410 3.7) ----------------------------------------------------------------------

constexpr uint32_t kFlashLock = 1u << 31;
constexpr uint32_t kFlashBsy = 1u << 16;
constexpr uint32_t kFlashErrors = 0xf3;  // EOP, OPERR, WRPERR, PGAERR, PGPERR, ERSERR

void FlashModel::Reset() {
  acr_ = 0;
  sr_ = 0;
  cr_ = kFlashLock;
  key_stage_ = 0;
  key_error_ = false;
  busy_until_ = 0;
}

bool FlashModel::Read(uint32_t offset, uint32_t* value) {
  switch (offset) {
    case 0x00: *value = acr_; return true;
    case 0x0c:
      *value = sr_ | (Busy() ? kFlashBsy : 0);
      // Polling BSY: the wait ends when the modeled operation time has passed.
      if (Busy()) m_.Advance(busy_until_ - m_.cycles());
      return true;
    case 0x10: *value = cr_; return true;
    default: return false;
  }
}

bool FlashModel::Write(uint32_t offset, unsigned /*size*/, uint32_t value) {
  switch (offset) {
    case 0x00: acr_ = value & 0x30f; return true;
    case 0x04:
      if (key_error_) {
        m_.Fault("FLASH_KEYR written after a wrong key: FLASH_CR stays locked until reset");
      } else if (!(cr_ & kFlashLock)) {
        m_.Fault("FLASH_KEYR written while FLASH_CR is already unlocked");
      } else if (key_stage_ == 0 && value == 0x45670123) {
        key_stage_ = 1;
      } else if (key_stage_ == 1 && value == 0xcdef89ab) {
        key_stage_ = 0;
        cr_ &= ~kFlashLock;
      } else {
        key_error_ = true;
        m_.Fault("FLASH_KEYR: wrong unlock sequence (" + Hex(value) + "); RM0410 3.3.3: KEY1 0x45670123 then KEY2 0xcdef89ab");
      }
      return true;
    case 0x0c: sr_ &= ~(value & kFlashErrors); return true;
    case 0x10:
      if (Busy()) {
        m_.Fault("FLASH_CR written while FLASH_SR.BSY is set");
        return true;
      }
      if (cr_ & kFlashLock) {
        m_.Fault("FLASH_CR written while locked (FLASH_KEYR sequence first)");
        return true;
      }
      cr_ = value & 0x8301ffffu;
      if (cr_ & (1u << 16)) Start();
      return true;
    default: return false;
  }
}

void FlashModel::Start() {
  cr_ &= ~(1u << 16);  // STRT reads back 0 once the operation started
  const bool ser = cr_ & 2, mer = cr_ & 4, pg = cr_ & 1;
  if (!ser || mer || pg) {
    m_.Fault("FLASH_CR.STRT with " + std::string(mer ? "MER (mass erase is not modeled)" : pg ? "PG set" : "no SER"));
    return;
  }
  const runtime::Memory& memory = m_.board().board().memories[0];
  const uint32_t snb = (cr_ >> 3) & 0x1f;
  if (snb >= memory.sector_count()) {
    m_.Fault("FLASH_CR.SNB = " + std::to_string(snb) + ": no such sector (" + std::to_string(memory.sector_count()) + " sectors)");
    return;
  }
  // Sector start and size from the geometry.
  uint32_t start = memory.base;
  uint32_t sector_size = 0;
  for (uint32_t index = 0, at = memory.base; at < memory.end();) {
    auto info = runtime::SectorContaining(memory, at);
    if (!info.ok()) break;
    if (index == snb) {
      start = info->start;
      sector_size = info->size;
      break;
    }
    at = info->start + info->size;
    ++index;
  }
  FileFlash& f = m_.board().flash(0);
  const uint64_t before = FlashTimeUs(f);
  const runtime::Status s = f.Erase(start, sector_size);
  ++operations_;
  if (!s.ok()) {
    sr_ |= 2;  // OPERR
    m_.Fault("FLASH sector " + std::to_string(snb) + " erase at " + Hex(start) + " failed in the flash model: " + s.message());
    return;
  }
  m_.MirrorFlash(start, sector_size);
  busy_until_ = m_.cycles() + Machine::UsToCycles(FlashTimeUs(f) - before);
}

bool FlashModel::Store(uint32_t address, unsigned size, uint64_t value) {
  std::string where = std::to_string(size * 8) + "-bit store to flash at " + Hex(address);
  if (Busy()) {
    m_.Fault(where + " while FLASH_SR.BSY is set");
    return false;
  }
  if (cr_ & kFlashLock) {
    m_.Fault(where + " while FLASH_CR is locked");
    return false;
  }
  if (!(cr_ & 1) || (cr_ & 6)) {
    m_.Fault(where + " without FLASH_CR.PG (or with SER/MER): RM0410 3.3.6 sequence error");
    return false;
  }
  const unsigned psize_bytes = 1u << ((cr_ >> 8) & 3);
  if (size != psize_bytes) {
    m_.Fault(where + " with FLASH_CR.PSIZE = x" + std::to_string(psize_bytes * 8) + ": parallelism error (PGPERR)");
    return false;
  }
  if (address % size != 0) {
    m_.Fault(where + ": misaligned (PGAERR)");
    return false;
  }
  uint8_t bytes[8];
  for (unsigned i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
  FileFlash& f = m_.board().flash(0);
  const uint64_t before = FlashTimeUs(f);
  const runtime::Status s = f.Write(address, runtime::ByteSpan(bytes, size));
  ++operations_;
  if (!s.ok()) {
    m_.Fault(where + " refused by the flash model: " + s.message());
    return false;
  }
  // No MirrorFlash: Unicorn completes the store with the same bytes (the word was erased).
  busy_until_ = m_.cycles() + Machine::UsToCycles(FlashTimeUs(f) - before);
  return true;
}

// --- GPIO (RM0410 6.4) -----------------------------------------------------------------------

void GpioModel::Reset() {
  ports_ = {};
  ports_[0].moder = 0xa8000000;
  ports_[0].ospeedr = 0x0c000000;
  ports_[0].pupdr = 0x64000000;
  ports_[1].moder = 0x00000280;
  ports_[1].ospeedr = 0x000000c0;
  ports_[1].pupdr = 0x00000100;
}

std::string GpioModel::NameAt(uint32_t offset) const {
  return std::string("GPIO") + static_cast<char>('A' + offset / 0x400);
}

const char* GpioModel::ClockOff(uint32_t offset) const {
  const unsigned port = offset / 0x400;
  return port < kPorts && !m_.rcc().GpioClock(port) ? "RCC_AHB1ENR" : nullptr;
}

bool GpioModel::Read(uint32_t offset, uint32_t* value) {
  const unsigned port = offset / 0x400, reg = offset % 0x400;
  if (port >= kPorts) return false;
  Port& p = ports_[port];
  switch (reg) {
    case 0x00: *value = p.moder; return true;
    case 0x04: *value = p.otyper; return true;
    case 0x08: *value = p.ospeedr; return true;
    case 0x0c: *value = p.pupdr; return true;
    case 0x10:
      *value = p.odr;
      if (port == 0) {
        if (((p.moder >> 28) & 3) != 0 || ((p.pupdr >> 28) & 3) != 1) {
          m_.Fault("GPIOA_IDR read while PA14 (USR switch) is not an input with pull-up");
          return true;
        }
        *value = (*value & ~(1u << 14)) | (button_ ? 0 : 1u << 14);
      }
      return true;
    case 0x14: *value = p.odr; return true;
    case 0x20: *value = p.afr[0]; return true;
    case 0x24: *value = p.afr[1]; return true;
    default: return false;
  }
}

bool GpioModel::Write(uint32_t offset, unsigned /*size*/, uint32_t value) {
  const unsigned port = offset / 0x400, reg = offset % 0x400;
  if (port >= kPorts) return false;
  Port& p = ports_[port];
  switch (reg) {
    case 0x00: p.moder = value; return true;
    case 0x04: p.otyper = value; return true;
    case 0x08: p.ospeedr = value; return true;
    case 0x0c: p.pupdr = value; return true;
    case 0x14: p.odr = value & 0xffff; return true;
    case 0x18: p.odr = (p.odr | (value & 0xffff)) & ~(value >> 16); return true;
    case 0x20: p.afr[0] = value; return true;
    case 0x24: p.afr[1] = value; return true;
    default: return false;
  }
}

// --- W25Q128JV (datasheet 7.1, 8.2) ----------------------------------------------------------

bool W25qModel::Command(uint8_t instruction, bool has_address, uint32_t address) {
  if (Busy()) {
    m_.Fault("W25Q instruction " + Hex(instruction) + " while its BUSY bit is set (only 05h is allowed)");
    return false;
  }
  if (instruction == 0x06) {
    wel_ = true;
    return true;
  }
  if (instruction == 0x04) {
    wel_ = false;
    return true;
  }
  if (instruction != 0x20 && instruction != 0xd8) {
    m_.Fault("W25Q instruction " + Hex(instruction) + " is not modeled");
    return false;
  }
  const uint32_t size = instruction == 0x20 ? 4096 : 65536;
  const runtime::Memory& memory = m_.board().board().memories[1];
  if (!has_address || address % size != 0 || address + uint64_t{size} > memory.size()) {
    m_.Fault("W25Q " + std::string(instruction == 0x20 ? "4 KiB sector" : "64 KiB block") + " erase at offset " +
             Hex(address) + ": misaligned or outside the device");
    return false;
  }
  if (!wel_) {
    m_.Fault("W25Q erase at offset " + Hex(address) + " without write enable (06h)");
    return false;
  }
  FileFlash& f = m_.board().flash(1);
  const uint64_t before = FlashTimeUs(f);
  const runtime::Status s = f.Erase(memory.base + address, size);
  wel_ = false;
  if (!s.ok()) {
    m_.Fault("W25Q erase at offset " + Hex(address) + " failed in the flash model: " + s.message());
    return false;
  }
  m_.MirrorFlash(memory.base + address, size);
  busy_until_ = m_.cycles() + Machine::UsToCycles(FlashTimeUs(f) - before);
  return true;
}

bool W25qModel::PageProgram(uint32_t address, const uint8_t* data, size_t size) {
  const runtime::Memory& memory = m_.board().board().memories[1];
  if (Busy()) {
    m_.Fault("W25Q page program while its BUSY bit is set");
    return false;
  }
  if (!wel_) {
    m_.Fault("W25Q page program at offset " + Hex(address) + " without write enable (06h)");
    return false;
  }
  if (size == 0 || address % 256 + size > 256 || address + uint64_t{size} > memory.size()) {
    m_.Fault("W25Q page program of " + std::to_string(size) + " bytes at offset " + Hex(address) +
             " crosses a 256-byte page or the device end");
    return false;
  }
  FileFlash& f = m_.board().flash(1);
  const uint64_t before = FlashTimeUs(f);
  const runtime::Status s = f.Write(memory.base + address, runtime::ByteSpan(data, size));
  wel_ = false;
  if (!s.ok()) {
    m_.Fault("W25Q page program at offset " + Hex(address) + " refused by the flash model: " + s.message());
    return false;
  }
  m_.MirrorFlash(memory.base + address, static_cast<uint32_t>(size));
  busy_until_ = m_.cycles() + Machine::UsToCycles(FlashTimeUs(f) - before);
  return true;
}

// --- QUADSPI (RM0410 14.5) -------------------------------------------------------------------

void QspiModel::Reset() {
  cr_ = dcr_ = dlr_ = ccr_ = ar_ = psmkr_ = psmar_ = pir_ = 0;
  tcf_ = smf_ = false;
  received_ = 0;
  fifo_ = 0;
  flash_.Reset();
  SetMode(Mode::kIdle);
}

void QspiModel::SetMode(Mode mode) {
  mode_ = mode;
  m_.SetQspiWindowReadable(mode == Mode::kMapped);
}

void QspiModel::Finish() {
  tcf_ = true;
  SetMode(Mode::kIdle);
}

uint32_t QspiModel::Sr() const {
  const bool busy = mode_ != Mode::kIdle;
  const unsigned threshold = ((cr_ >> 8) & 0x1f) + 1;
  const bool ftf = mode_ == Mode::kWriteData && kFifoBytes - fifo_ >= threshold;
  return (tcf_ ? 2u : 0) | (ftf ? 4u : 0) | (smf_ ? 8u : 0) | (busy ? 32u : 0) | (fifo_ << 8);
}

const char* QspiModel::ClockOff(uint32_t offset) const {
  (void)offset;
  return m_.rcc().QspiClock() ? nullptr : "RCC_AHB3ENR.QSPIEN";
}

bool QspiModel::Accepts(uint32_t offset, unsigned size) const {
  return size == 4 || (offset == 0x20 && (size == 1 || size == 2));  // DR: byte, halfword or word
}

bool QspiModel::Read(uint32_t offset, uint32_t* value) {
  if (offset == 0x20) {
    m_.Fault("QUADSPI_DR read: indirect read mode is not modeled");
    return true;
  }
  switch (offset) {
    case 0x00: *value = cr_; return true;
    case 0x04: *value = dcr_; return true;
    case 0x08:
      if (mode_ == Mode::kPolling) {
        if (flash_.Busy()) m_.Advance(flash_.busy_until() - m_.cycles());
        if ((flash_.Status() & psmkr_ & 0xff) == (psmar_ & psmkr_ & 0xff)) {
          smf_ = true;
          if (cr_ & (1u << 22)) SetMode(Mode::kIdle);  // APMS: stop at the match
        }
      }
      *value = Sr();
      fifo_ = 0;  // the FIFO drains while the CPU polls
      return true;
    case 0x10: *value = dlr_; return true;
    case 0x14: *value = ccr_; return true;
    case 0x18: *value = ar_; return true;
    case 0x24: *value = psmkr_; return true;
    case 0x28: *value = psmar_; return true;
    case 0x2c: *value = pir_; return true;
    default: return false;
  }
}

bool QspiModel::Write(uint32_t offset, unsigned size, uint32_t value) {
  const bool busy = mode_ != Mode::kIdle;
  if (offset == 0x20) {
    if (mode_ != Mode::kWriteData) {
      m_.Fault("QUADSPI_DR written outside the data phase of an indirect write");
      return true;
    }
    fifo_ += size;
    if (fifo_ > kFifoBytes) {
      m_.Fault("QUADSPI FIFO overrun: " + std::to_string(fifo_) + " bytes written to QUADSPI_DR without waiting for SR.FTF");
      return true;
    }
    for (unsigned i = 0; i < size && received_ < sizeof page_; ++i) page_[received_++] = static_cast<uint8_t>(value >> (8 * i));
    if (received_ == dlr_ + 1) {
      if (flash_.PageProgram(ar_, page_, received_)) Finish();
    }
    return true;
  }
  const auto refuse_busy = [&](const char* reg) {
    if (!busy) return false;
    m_.Fault(std::string(reg) + " written while QUADSPI_SR.BUSY is set (RM0410 14.5: abort first)");
    return true;
  };
  switch (offset) {
    case 0x00:
      if (value & 2) {  // ABORT
        SetMode(Mode::kIdle);
        received_ = 0;
        fifo_ = 0;
        cr_ = value & ~2u;
        return true;
      }
      if (busy && (value & ~1u) != (cr_ & ~1u)) {
        m_.Fault("QUADSPI_CR fields changed while QUADSPI_SR.BUSY is set");
        return true;
      }
      cr_ = value;
      return true;
    case 0x04:
      if (!refuse_busy("QUADSPI_DCR")) dcr_ = value;
      return true;
    case 0x0c:
      if (value & 2) tcf_ = false;
      if (value & 8) smf_ = false;
      return true;
    case 0x10:
      if (!refuse_busy("QUADSPI_DLR")) dlr_ = value;
      return true;
    case 0x14:
      if (refuse_busy("QUADSPI_CCR")) return true;
      ccr_ = value;
      StartCcr();
      return true;
    case 0x18:
      if (mode_ == Mode::kWaitAddress) {
        ar_ = value;
        if (((ccr_ >> 24) & 3) == 0) {
          if (flash_.Command(static_cast<uint8_t>(ccr_), true, value)) Finish();
          return true;
        }
        if (dlr_ + 1 > sizeof page_) {
          m_.Fault("QUADSPI page program with QUADSPI_DLR = " + std::to_string(dlr_) + ": more than one 256-byte page");
          return true;
        }
        received_ = 0;
        fifo_ = 0;
        mode_ = Mode::kWriteData;
        return true;
      }
      if (!refuse_busy("QUADSPI_AR")) ar_ = value;
      return true;
    case 0x24:
      if (!refuse_busy("QUADSPI_PSMKR")) psmkr_ = value;
      return true;
    case 0x28:
      if (!refuse_busy("QUADSPI_PSMAR")) psmar_ = value;
      return true;
    case 0x2c:
      if (!refuse_busy("QUADSPI_PIR")) pir_ = value;
      return true;
    default: return false;
  }
}

void QspiModel::StartCcr() {
  if (!(cr_ & 1)) {
    m_.Fault("QUADSPI_CCR written while QUADSPI_CR.EN = 0");
    return;
  }
  const unsigned fmode = (ccr_ >> 26) & 3, imode = (ccr_ >> 8) & 3, admode = (ccr_ >> 10) & 3,
                 adsize = (ccr_ >> 12) & 3, dmode = (ccr_ >> 24) & 3, dcyc = (ccr_ >> 18) & 0x1f;
  const uint8_t instruction = static_cast<uint8_t>(ccr_);
  if (imode != 1 || admode > 1 || dmode > 1 || (ccr_ >> 31) || ((ccr_ >> 14) & 3)) {
    m_.Fault("QUADSPI_CCR " + Hex(ccr_) + ": only single-line instruction/address/data without alternate bytes or DDR is modeled");
    return;
  }
  switch (fmode) {
    case 0:
      if (admode == 0 && dmode == 0) {
        if (flash_.Command(instruction, false, 0)) Finish();
        return;
      }
      if (admode == 0 || adsize != 2) {
        m_.Fault("QUADSPI_CCR " + Hex(ccr_) + ": indirect write needs a 24-bit address for the W25Q");
        return;
      }
      mode_ = Mode::kWaitAddress;
      return;
    case 2:
      if (instruction != 0x05 || dmode != 1 || admode != 0) {
        m_.Fault("QUADSPI_CCR " + Hex(ccr_) + ": auto-polling is modeled for 05h (read status register 1) only");
        return;
      }
      if (dlr_ != 0) {
        m_.Fault("QUADSPI auto-polling with QUADSPI_DLR = " + std::to_string(dlr_) + ": status register 1 is one byte");
        return;
      }
      smf_ = false;
      mode_ = Mode::kPolling;
      return;
    case 3: {
      const runtime::Memory& memory = m_.board().board().memories[1];
      const uint64_t window = uint64_t{1} << (((dcr_ >> 16) & 0x1f) + 1);
      if (instruction != 0x03 || admode != 1 || adsize != 2 || dmode != 1 || dcyc != 0) {
        m_.Fault("QUADSPI_CCR " + Hex(ccr_) + ": memory-mapped mode is modeled for 03h read data, 24-bit address, no dummy cycles");
        return;
      }
      if (window != memory.size()) {
        m_.Fault("QUADSPI memory-mapped with QUADSPI_DCR.FSIZE for " + std::to_string(window) + " bytes; the W25Q has " +
                 std::to_string(memory.size()));
        return;
      }
      SetMode(Mode::kMapped);
      return;
    }
    default:
      m_.Fault("QUADSPI_CCR " + Hex(ccr_) + ": indirect read mode is not modeled");
      return;
  }
}

// --- System control space: SysTick (ARMv7-M B3.3), SCB (B3.2) --------------------------------

void ScsModel::Reset() { csr_ = rvr_ = cvr_ = vtor_ = 0; }

bool ScsModel::Read(uint32_t offset, uint32_t* value) {
  switch (offset) {
    case 0x010:
      // Polling COUNTFLAG: each read while the counter runs waits for its next wrap.
      if (csr_ & 1) {
        m_.Advance(uint64_t{rvr_} + 1);
        *value = csr_ | (1u << 16);
      } else {
        *value = csr_;
      }
      return true;
    case 0x014: *value = rvr_; return true;
    case 0x018: *value = cvr_; return true;
    case 0xd00: *value = 0x411fc272; return true;  // CPUID: Cortex-M7 r1p2
    case 0xd08: *value = vtor_; return true;
    case 0xd0c: *value = 0xfa050000; return true;
    default: return false;
  }
}

bool ScsModel::Write(uint32_t offset, unsigned /*size*/, uint32_t value) {
  switch (offset) {
    case 0x010:
      if ((value & 1) && rvr_ == 0) {
        m_.Fault("SYST_CSR.ENABLE with SYST_RVR = 0");
        return true;
      }
      csr_ = value & 7;
      return true;
    case 0x014:
      if (value > 0xffffff) {
        m_.Fault("SYST_RVR = " + Hex(value) + ": the reload value has 24 bits");
        return true;
      }
      rvr_ = value;
      return true;
    case 0x018: cvr_ = 0; return true;
    case 0xd08:
      if (value & 0x7f) {
        m_.Fault("SCB_VTOR = " + Hex(value) + ": must be 128-byte aligned");
        return true;
      }
      vtor_ = value;
      return true;
    case 0xd0c:
      if ((value >> 16) != 0x05fa) {
        m_.Fault("SCB_AIRCR written without VECTKEY 0x05fa");
        return true;
      }
      if (value & 4) m_.RequestSystemReset();
      return true;
    default: return false;
  }
}

}  // namespace onedfu::sim::emu
