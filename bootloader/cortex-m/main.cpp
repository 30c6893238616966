// Cortex-M7 stub port of the onedfu bootloader: the size build (scripts/size)
// links this with the bootloader core and the runtime to prove the core is
// real firmware. The board is PYBD-SF6-like: manifests/boards/pybd-sf6.json,
// generated into a constant in flash (generated_boards.h).
//
// What the port does (STYLE 6: the core decides, the port acts):
//   1. Reset_Handler: copy .data, zero .bss, run constructors, call main.
//   2. main: Decide(board, drivers, button held). Start -> disable IRQs,
//      VTOR = entry, MSP = entry[0], branch to entry[1]. Otherwise:
//   3. the DFU loop: every control transfer the USB peripheral hands over goes
//      to DfuDevice::HandleControl; after the reply (and its status stage) went
//      out, Poll() runs pending flash work; reset_after_status -> system reset.
//
// Stubbed: the USB device controller itself (a mailbox stands in for the
// OTG FIFO handling; mboot's 10-25 KB include its USB driver, this does not),
// clocks, the LED. Register addresses are STM32F7 (RM0410) placeholders.
#include <cstdint>
#include <cstring>

#include "bootloader/boot.h"
#include "bootloader/dfu_device.h"
#include "generated_boards.h"
#include "runtime/board.h"
#include "stm32_flash.h"
#if ONEDFU_TRUST
#include "bootloader/boot_state.h"
#include "trust_keys.h"
#endif

using namespace onedfu;

namespace {

// In flash: manifests/boards/pybd-sf6.json as a constant, generated at build
// time (scripts/size runs onedfu-board-header). scripts/size cuts the Board
// capacities (ONEDFU_BOARD_MAX_*) to exactly this board, so it carries no
// empty slots; the generated header static_asserts that the board fits them.
constexpr const runtime::Board& kBoard = boards::kPybdSf6;

cortexm::InternalFlash internal_flash(kBoard.memories[0]);
cortexm::QspiFlash qspi_flash(kBoard.memories[1]);
runtime::FlashMemory* const kMemories[] = {&internal_flash, &qspi_flash};

// Stand-in for the USB device controller: its interrupt handler would fill
// `setup`/`out` and set `pending`; the reply goes back through `in`.
struct UsbMailbox {
  volatile uint32_t pending;    // 1: a SETUP (+ OUT data) is waiting
  volatile uint32_t delivered;  // 1: the last reply's status stage went out
  uint8_t setup[8];
  uint8_t out[bootloader::kTransferSize];
  uint8_t in[bootloader::kTransferSize];
  volatile uint32_t in_length;
  volatile uint32_t stall;
};
UsbMailbox usb;

inline volatile uint32_t& Reg(uint32_t address) { return *reinterpret_cast<volatile uint32_t*>(address); }

[[noreturn]] void SystemReset() {
  __asm__ volatile("dsb" ::: "memory");
  Reg(0xe000ed0c) = 0x05fa0004;  // SCB->AIRCR: VECTKEY | SYSRESETREQ
  __asm__ volatile("dsb" ::: "memory");
  for (;;) {
  }
}

// Boot button: PC13 on a Nucleo-style board (GPIOC->IDR), active high.
bool ButtonHeld() { return (Reg(0x40020810) & (1u << 13)) != 0; }

[[noreturn]] void StartApplication(uint32_t vector_table) {
  __asm__ volatile("cpsid i" ::: "memory");
  Reg(0xe000ed08) = vector_table;  // SCB->VTOR
  const uint32_t sp = *reinterpret_cast<const volatile uint32_t*>(vector_table);
  const uint32_t pc = *reinterpret_cast<const volatile uint32_t*>(vector_table + 4);
  __asm__ volatile(
      "msr msp, %0\n"
      "bx %1\n" ::"r"(sp),
      "r"(pc)
      : "memory");
  __builtin_unreachable();
}

// LED hook: a real board blinks the reason code. Placeholder.
void ShowReason(bootloader::BootReason reason) { Reg(0x40020414) = static_cast<uint32_t>(reason); }

[[noreturn]] void DfuLoop(const bootloader::BootDecision& why) {
  static bootloader::DfuDevice device(kBoard, kMemories);
  if (!device.Init(nullptr).ok()) SystemReset();
  device.SetIdleMessage(why.message.c_str());
  bool reset_after_status = false;
  for (;;) {
    if (usb.pending) {
      const bootloader::SetupPacket setup = bootloader::ParseSetup(usb.setup);
      const size_t out_len = setup.IsIn() ? 0 : setup.wLength;
      const size_t in_len = setup.IsIn() ? setup.wLength : 0;
      const bootloader::ControlReply reply =
          device.HandleControl(setup, runtime::ByteSpan(usb.out, out_len < sizeof usb.out ? out_len : sizeof usb.out),
                               runtime::MutableByteSpan(usb.in, in_len < sizeof usb.in ? in_len : sizeof usb.in));
      usb.stall = reply.stall;
      usb.in_length = reply.length;
      reset_after_status = reply.reset_after_status;
      usb.delivered = 0;
      usb.pending = 0;
    }
    if (usb.delivered) {
      usb.delivered = 0;
      if (reset_after_status) SystemReset();
      device.Poll();
    }
  }
}

}  // namespace

#if ONEDFU_TRUST
// Trusting build (scripts/size --signed): the keys come from OUT_DIR/gen/trust_keys.h
// (kTrustKeys), the counter log and the verified marker from bootloader/boot_state.h.
bootloader::BootDecision DecideTrusted() {
  bootloader::TrustPolicy policy{kTrustKeys};
  policy.remember_verified = true;
  const bootloader::FlashArea counter = bootloader::CounterArea(kBoard);
  if (counter.memory >= 0) {
    auto value = bootloader::ReadSecurityCounter(*kMemories[counter.memory], counter);
    if (value.ok()) policy.min_security_counter = value.value();
  }
  bootloader::BootDecision d = bootloader::Decide(kBoard, kMemories, ButtonHeld(), &policy);
  if (!d.start_application) return d;
  const bootloader::FlashArea marker = bootloader::MarkerArea(kBoard);
  if (d.mark_verified && marker.memory >= 0) (void)bootloader::MarkVerified(*kMemories[marker.memory], marker, d.record_crc);
  if (counter.memory >= 0 && d.security_counter > policy.min_security_counter) {
    (void)bootloader::AdvanceSecurityCounter(*kMemories[counter.memory], counter, d.security_counter);
  }
  return d;
}
#endif

int main() {
#if ONEDFU_TRUST
  const bootloader::BootDecision decision = DecideTrusted();
#else
  const bootloader::BootDecision decision = bootloader::Decide(kBoard, kMemories, ButtonHeld());
#endif
  if (decision.start_application) StartApplication(decision.entry);
  ShowReason(decision.reason);
  DfuLoop(decision);
}

// --- startup ----------------------------------------------------------------

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
  SystemReset();
}

[[noreturn]] void Default_Handler() {
  for (;;) {
  }
}

// Called if a pure virtual function is ever invoked (it never is); defined
// here so nothing from libstdc++/libsupc++ is linked.
[[noreturn]] void __cxa_pure_virtual() { Default_Handler(); }

// The core exception vectors; the DFU loop polls, so no peripheral IRQs.
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
