// The board the Cortex-M port is built for: STM32F767 on a PYBD-SF6-like
// board (manifests/boards/pybd-sf6.json holds the memory layout; this holds
// what the layout cannot say: clocks, pins, the DFU entry word).
//
// Pins and the crystal follow the PYBD-SF6 pin map as published for
// MicroPython's board definition (facts, checked against nothing else here):
// they must be confirmed against the board's schematic before the image runs
// on silicon. The emulator (sim/emulator) models whatever is written here.
#pragma once

#include <cstdint>

namespace onedfu::cortexm {

// Clock tree (RM0410 5.2): HSE crystal 25 MHz, PLL: VCO in = HSE / M = 1 MHz,
// VCO = x N = 288 MHz, SYSCLK = VCO / P = 144 MHz, PLL48CK = VCO / Q = 48 MHz
// for the OTG FS core (the USB clock must be 48 MHz +- 0.25 %).
inline constexpr uint32_t kHseHz = 25'000'000;
inline constexpr uint32_t kPllM = 25;
inline constexpr uint32_t kPllN = 288;
inline constexpr uint32_t kPllP = 2;
inline constexpr uint32_t kPllQ = 6;
inline constexpr uint32_t kSysclkHz = kHseHz / kPllM * kPllN / kPllP;
static_assert(kHseHz / kPllM * kPllN / kPllQ == 48'000'000, "OTG FS needs 48 MHz");
static_assert(kSysclkHz == 144'000'000);
// RM0410 table 7 (2.7-3.6 V): 120 < HCLK <= 150 MHz needs 4 wait states.
inline constexpr uint32_t kFlashLatency = 4;

// GPIO port index: A = 0, B = 1, ... (RCC_AHB1ENR bit and GPIO block number).
struct Pin {
  uint8_t port;
  uint8_t pin;
  uint8_t af;  // alternate function number (RM0410 6.4.9/6.4.10; datasheet table 12)
};

// OTG_FS D-/D+ : PA11, PA12, AF10.
inline constexpr Pin kUsbPins[] = {{0, 11, 10}, {0, 12, 10}};
// QUADSPI bank 1 to the W25Q NOR: CLK PB2 (AF9), NCS PB6 (AF10), IO0 PD11,
// IO1 PD12, IO3 PD13 (AF9), IO2 PE2 (AF9).
inline constexpr Pin kQspiPins[] = {{1, 2, 9}, {1, 6, 10}, {3, 11, 9}, {3, 12, 9}, {3, 13, 9}, {4, 2, 9}};
// USR switch: PA14 (from the same pin map), pressed = low (internal pull-up).
inline constexpr uint8_t kButtonPort = 0;
inline constexpr uint8_t kButtonPin = 14;

// DFU entry request: the application writes kDfuEntryMagic to the word at
// _dfu_entry (bootloader.ld: the last word of DTCM RAM, above the stack,
// which a reset does not clear) and resets; the bootloader clears it and stays
// in DFU mode. A random 32-bit value (STYLE 8).
inline constexpr uint32_t kDfuEntryMagic = 0x5d3f9e21;

}  // namespace onedfu::cortexm
