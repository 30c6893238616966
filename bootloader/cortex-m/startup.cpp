// Startup for the Cortex-M7 port (ARMv7-M ARM B1.5.3: the vector table's
// first word is the initial MSP, the second the reset handler): copy .data,
// zero .bss, run constructors, call main. The bootloader polls, so only the
// 16 core exception vectors exist; every fault parks the CPU.
#include <cstdint>

#include "system.h"

int main();

extern "C" {
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();

[[noreturn]] void Reset_Handler() {
  uint32_t* src = &_sidata;
  for (uint32_t* dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  for (void (**f)() = __init_array_start; f < __init_array_end; ++f) (*f)();
  main();
  onedfu::cortexm::SystemReset();
}

[[noreturn]] void Default_Handler() {
  for (;;) {
  }
}

// Called if a pure virtual function is ever invoked (it never is); defined
// here so nothing from libstdc++/libsupc++ is linked.
[[noreturn]] void __cxa_pure_virtual() { Default_Handler(); }

__attribute__((section(".isr_vector"), used)) void (*const kVectors[16])() = {
    reinterpret_cast<void (*)()>(&_estack),
    Reset_Handler,
    Default_Handler,  // NMI
    Default_Handler,  // HardFault
    Default_Handler,  // MemManage
    Default_Handler,  // BusFault
    Default_Handler,  // UsageFault
    nullptr, nullptr, nullptr, nullptr,
    Default_Handler,  // SVCall
    Default_Handler,  // DebugMonitor
    nullptr,
    Default_Handler,  // PendSV
    Default_Handler,  // SysTick
};
}
