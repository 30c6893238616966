#include "system.h"

#include "board_config.h"
#include "mmio.h"

extern "C" uint32_t _dfu_entry;  // bootloader.ld: the word a reset keeps

namespace onedfu::cortexm {
namespace {

// RM0410 5.3: RCC at 0x40023800.
constexpr uint32_t kRcc = 0x40023800;
constexpr uint32_t kRccCr = kRcc + 0x00;
constexpr uint32_t kRccPllcfgr = kRcc + 0x04;
constexpr uint32_t kRccCfgr = kRcc + 0x08;
constexpr uint32_t kRccAhb1enr = kRcc + 0x30;
constexpr uint32_t kRccApb1enr = kRcc + 0x40;
constexpr uint32_t kCrHseon = 1u << 16;
constexpr uint32_t kCrHserdy = 1u << 17;
constexpr uint32_t kCrPllon = 1u << 24;
constexpr uint32_t kCrPllrdy = 1u << 25;
constexpr uint32_t kPllcfgrSrcHse = 1u << 22;
constexpr uint32_t kCfgrSwPll = 2u << 0;
constexpr uint32_t kCfgrSwsMask = 3u << 2;
constexpr uint32_t kCfgrSwsPll = 2u << 2;
constexpr uint32_t kCfgrPpre1Div4 = 5u << 10;  // APB1 <= 54 MHz
constexpr uint32_t kCfgrPpre2Div2 = 4u << 13;  // APB2 <= 108 MHz
constexpr uint32_t kApb1enrPwr = 1u << 28;
// RM0410 3.7.1: FLASH_ACR.LATENCY (bits 3:0).
constexpr uint32_t kFlashAcr = 0x40023c00;
// RM0410 6.4: GPIO ports at 0x40020000 + 0x400 * port.
constexpr uint32_t kGpio = 0x40020000;
constexpr uint32_t kGpioModer = 0x00;
constexpr uint32_t kGpioOspeedr = 0x08;
constexpr uint32_t kGpioPupdr = 0x0c;
constexpr uint32_t kGpioIdr = 0x10;
constexpr uint32_t kGpioAfrl = 0x20;
// ARMv7-M system control space.
constexpr uint32_t kSystCsr = 0xe000e010;
constexpr uint32_t kSystCsrCountflag = 1u << 16;
constexpr uint32_t kSystRvr = 0xe000e014;
constexpr uint32_t kSystCvr = 0xe000e018;
constexpr uint32_t kScbVtor = 0xe000ed08;
constexpr uint32_t kScbAircr = 0xe000ed0c;

void SetField(uint32_t address, uint32_t shift, uint32_t width, uint32_t value) {
  const uint32_t mask = ((1u << width) - 1) << shift;
  Reg(address) = (Reg(address) & ~mask) | (value << shift);
}

void AlternateFunction(const Pin& p) {
  const uint32_t port = kGpio + 0x400u * p.port;
  SetField(port + kGpioModer, 2u * p.pin, 2, 2);    // alternate function
  SetField(port + kGpioOspeedr, 2u * p.pin, 2, 3);  // very high speed
  SetField(port + kGpioAfrl + 4u * (p.pin / 8), 4u * (p.pin % 8), 4, p.af);
}

}  // namespace

bool ClockInit() {
  Reg(kRccApb1enr) |= kApb1enrPwr;  // PWR_CR1.VOS keeps its reset value, scale 1
  Reg(kRccCr) |= kCrHseon;
  if (!WaitBits(kRccCr, kCrHserdy, kCrHserdy)) return false;
  Reg(kRccPllcfgr) = kPllM | (kPllN << 6) | ((kPllP / 2 - 1) << 16) | kPllcfgrSrcHse | (kPllQ << 24);
  Reg(kRccCr) |= kCrPllon;
  if (!WaitBits(kRccCr, kCrPllrdy, kCrPllrdy)) return false;
  // More wait states first, then the faster clock (RM0410 3.3.2).
  Reg(kFlashAcr) = kFlashLatency;
  if (!WaitBits(kFlashAcr, 0xf, kFlashLatency)) return false;
  Reg(kRccCfgr) = kCfgrPpre1Div4 | kCfgrPpre2Div2 | kCfgrSwPll;
  return WaitBits(kRccCfgr, kCfgrSwsMask, kCfgrSwsPll);
}

void PinsInit() {
  Reg(kRccAhb1enr) |= 0x1f;  // GPIOA..GPIOE clocks
  for (const Pin& p : kUsbPins) AlternateFunction(p);
  for (const Pin& p : kQspiPins) AlternateFunction(p);
  const uint32_t button = kGpio + 0x400u * kButtonPort;
  SetField(button + kGpioModer, 2u * kButtonPin, 2, 0);  // input
  SetField(button + kGpioPupdr, 2u * kButtonPin, 2, 1);  // pull-up
}

bool ButtonHeld() { return (Reg(kGpio + 0x400u * kButtonPort + kGpioIdr) & (1u << kButtonPin)) == 0; }

bool TakeDfuEntryRequest() {
  volatile uint32_t& word = _dfu_entry;
  const bool requested = word == kDfuEntryMagic;
  word = 0;
  return requested;
}

void RequestDfuEntry() {
  volatile uint32_t& word = _dfu_entry;
  word = kDfuEntryMagic;
}

void DelayMs(uint32_t ms) {
  Reg(kSystRvr) = kSysclkHz / 1000 - 1;
  Reg(kSystCvr) = 0;
  Reg(kSystCsr) = 5;  // ENABLE | CLKSOURCE (processor clock)
  // COUNTFLAG (read clears it): one reload period passed. A SysTick that never counts ends the
  // wait early instead of hanging.
  for (; ms > 0 && WaitBits(kSystCsr, kSystCsrCountflag, kSystCsrCountflag); --ms) {
  }
  Reg(kSystCsr) = 0;
}

void SystemReset() {
  __asm__ volatile("dsb" ::: "memory");
  Reg(kScbAircr) = 0x05fa0004;  // VECTKEY | SYSRESETREQ
  __asm__ volatile("dsb" ::: "memory");
  for (;;) {
  }
}

void StartApplication(uint32_t vector_table) {
  __asm__ volatile("cpsid i" ::: "memory");
  Reg(kSystCsr) = 0;
  Reg(kScbVtor) = vector_table;
  const uint32_t sp = *reinterpret_cast<const volatile uint32_t*>(vector_table);
  const uint32_t pc = *reinterpret_cast<const volatile uint32_t*>(vector_table + 4);
  __asm__ volatile(
      "dsb\n"
      "isb\n"
      "msr msp, %0\n"
      "bx %1\n" ::"r"(sp),
      "r"(pc)
      : "memory");
  __builtin_unreachable();
}

}  // namespace onedfu::cortexm
