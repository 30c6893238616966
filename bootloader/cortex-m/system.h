// Clocks, pins, SysTick, reset and the jump to the application: the parts of
// the port that are not a driver of their own.
//   ClockInit     RM0410 5.3 (RCC_CR, RCC_PLLCFGR, RCC_CFGR) and 3.3.2/3.7.1
//                 (FLASH_ACR wait states before the switch to the faster clock)
//   PinsInit      RM0410 6.4 (GPIOx_MODER, OSPEEDR, PUPDR, AFRL/AFRH)
//   DelayMs       ARMv7-M ARM B3.3 (SysTick: SYST_CSR, SYST_RVR, SYST_CVR)
//   SystemReset   ARMv7-M ARM B3.2.6 (AIRCR.SYSRESETREQ)
//   StartApplication  ARMv7-M ARM B3.2.5 (VTOR), B1.4.1 (MSP)
#pragma once

#include <cstdint>

namespace onedfu::cortexm {

// HSE + PLL: SYSCLK 144 MHz, PLL48CK 48 MHz (board_config.h). False when the
// crystal or the PLL does not start (the port then stays on the 16 MHz HSI;
// USB cannot work without the 48 MHz clock).
[[nodiscard]] bool ClockInit();

// GPIO clocks, the USB and QUADSPI alternate functions, the button input.
void PinsInit();

// True while the USR switch is pressed.
bool ButtonHeld();

// True when the application asked for DFU mode (the magic word); clears it.
bool TakeDfuEntryRequest();

// What an application calls before SystemReset to enter the bootloader's DFU
// mode: writes the magic word at _dfu_entry (its linker script must place the
// symbol where bootloader.ld does).
void RequestDfuEntry();

// Busy-waits `ms` milliseconds on SysTick (processor clock), then stops it.
void DelayMs(uint32_t ms);

[[noreturn]] void SystemReset();

// Interrupts off, SysTick off, VTOR = vector_table, MSP = vector_table[0],
// branch to vector_table[1]. Never returns.
[[noreturn]] void StartApplication(uint32_t vector_table);

}  // namespace onedfu::cortexm
