/* The test application for the emulated board (its own Cortex-M7 build, linked at the
 * pybd-sf6 firmware region start 0x08008000). It shows that the bootloader started it
 * correctly: it records SCB_VTOR and the MSP it was entered with next to a marker word, then
 * drives GPIOB pin 0 high (the emulator's "the application is alive" signal, an LED on a real
 * board) and parks. Layout at 0x20020000 (SRAM1, sim/emulator/emulated_device.h):
 *   [0] 0x600df00d  [1] SCB_VTOR  [2] MSP at entry */
#include <stdint.h>

#define REG(address) (*(volatile uint32_t*)(address))

extern uint32_t _app_stack;

__attribute__((noreturn)) void AppReset(void) {
  uint32_t sp;
  __asm__ volatile("mrs %0, msp" : "=r"(sp));
  volatile uint32_t* mark = (volatile uint32_t*)0x20020000;
  mark[1] = REG(0xe000ed08);
  mark[2] = sp;
  mark[0] = 0x600df00d;
  REG(0x40023830) |= 1u << 1;  /* RCC_AHB1ENR.GPIOBEN */
  REG(0x40020400) = (REG(0x40020400) & ~3u) | 1u;  /* PB0 output */
  REG(0x40020418) = 1u;  /* GPIOB_BSRR: PB0 high */
  for (;;) {
  }
}

__attribute__((section(".vectors"), used)) const uintptr_t kAppVectors[2] = {(uintptr_t)&_app_stack,
                                                                          (uintptr_t)AppReset};
