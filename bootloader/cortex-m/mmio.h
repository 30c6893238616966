// Register access for the Cortex-M port: one volatile 32-bit (or 8-bit) access
// per call, nothing cached. Addresses are constants in each driver, named
// after the reference manual (RM0410, STM32F76x/77x) section they follow.
#pragma once

#include <cstdint>

namespace onedfu::cortexm {

inline volatile uint32_t& Reg(uint32_t address) { return *reinterpret_cast<volatile uint32_t*>(address); }
inline volatile uint8_t& Reg8(uint32_t address) { return *reinterpret_cast<volatile uint8_t*>(address); }

// Waits until (Reg(address) & mask) == want. Returns false after `polls`
// reads without success (a peripheral that never answers is a device error,
// never a hang). The one poll-until loop of the port: clock bring-up, the
// FLASH and QUADSPI drivers, the OTG FS core resets and SysTick delays.
[[nodiscard]] inline bool WaitBits(uint32_t address, uint32_t mask, uint32_t want, uint32_t polls = 0x1000000) {
  while ((Reg(address) & mask) != want) {
    if (polls-- == 0) return false;
  }
  return true;
}

}  // namespace onedfu::cortexm
