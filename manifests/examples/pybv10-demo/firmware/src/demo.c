// Tiny stand-in for a VM firmware, linked at the pybv10 TEXT0 region
// (0x08020000). It only has to look like real firmware to the packer: a
// vector table first, code, read-only data, initialised data stored in flash
// and copied to RAM (.data: load address != run address), and .bss (no bytes
// in the file). It is not meant to do anything useful when run.
#include <stdint.h>

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;

static volatile uint32_t g_ticks = 0x1234;    // .data
static volatile uint32_t g_scratch[256];      // .bss
const char g_banner[] = "onedfu pybv10 demo firmware";

static void Step(void) {
  g_scratch[g_ticks & 0xff] += g_ticks;
  g_ticks = g_ticks * 1664525u + 1013904223u;
}

void Reset_Handler(void) {
  uint32_t* src = &_sidata;
  for (uint32_t* dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  for (;;) {
    Step();
    if (g_banner[g_ticks & 15] == 0) break;
  }
  for (;;) {
  }
}

void Default_Handler(void) {
  for (;;) {
  }
}

__attribute__((section(".isr_vector"), used)) void (*const g_vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0,
    Default_Handler, Default_Handler, 0, Default_Handler, Default_Handler,
};
