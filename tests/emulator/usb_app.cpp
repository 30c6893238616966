// The USB test application for the emulated board (its own Cortex-M7 build: scripts/size
// --usb-app links it from the same objects as the bootloader image, at the pybd-sf6 firmware
// region start 0x08008000). It is what a VM firmware does on USB, on the real drivers:
//   - marks RAM like test_app.c (0x20020000: 0x05b0a991, SCB_VTOR, MSP at entry), so the
//     emulator's stats show how it was entered;
//   - describes what it booted (bootloader::DescribeApplication: the record's package version
//     and the ROMFS region, read in place through the port's memory-mapped flash drivers);
//   - enumerates with a DFU runtime interface (bootloader::DfuRuntime) over the port's OTG FS
//     driver (bootloader/cortex-m/usb_otg_fs.cpp), so dfu-util and onedfu flash/list see
//     "onedfu app VERSION, romfs: ...";
//   - on DETACH (or a bus reset after it): disconnects, leaves the DFU request word
//     (cortexm::RequestDfuEntry) and resets: the bootloader then stays in DFU mode.
// It relies on the clocks the bootloader set up (PLL48CK for the OTG FS core, QUADSPI in
// memory-mapped mode); a VM firmware would configure its own.
#include <cstdint>

#include "bootloader/dfu_device.h"
#include "bootloader/dfu_runtime.h"
#include "generated_boards.h"
#include "stm32_flash.h"
#include "system.h"
#include "usb_otg_fs.h"

using namespace onedfu;

extern "C" {
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _app_stack;
void AppReset();
// Called if a pure virtual function is ever invoked (it never is); nothing from libsupc++.
[[noreturn]] void __cxa_pure_virtual() {
  for (;;) {
  }
}
__attribute__((section(".vectors"), used)) void (*const kAppVectors[2])() = {
    reinterpret_cast<void (*)()>(&_app_stack), AppReset};
}

namespace {

constexpr uint32_t kMarker = 0x20020000;  // sim/emulator/emulated_device.h kAppMarkerAddress
constexpr uint32_t kMarkerUsbApp = 0x05b0a991;

[[noreturn]] void Run() {
  const runtime::Board& board = boards::kPybdSf6;
  cortexm::InternalFlash internal(board.memories[0]);
  cortexm::QspiFlash qspi(board.memories[1]);
  runtime::FlashMemory* const memories[] = {&internal, &qspi};
  static runtime::Diag summary;
  bootloader::DescribeApplication(board, memories, summary);
  // The bootloader's serial: on silicon both would read the MCU's unique ID.
  static bootloader::DfuRuntime runtime(board, summary.c_str(), bootloader::DeviceStrings{}.serial);
  static cortexm::UsbOtgFs usb;
  cortexm::UsbFunctionOf<bootloader::DfuRuntime> function(runtime);
  if (usb.Init()) {
    while (!usb.Poll(function)) {
    }
    usb.Disconnect();  // DETACH: the host sees the unplug, then the bootloader
    cortexm::DelayMs(20);
    cortexm::RequestDfuEntry();
  }
  cortexm::SystemReset();
}

}  // namespace

// The entry: MSP as the bootloader set it, before anything is pushed.
extern "C" __attribute__((naked)) void AppReset() { __asm__ volatile("mrs r0, msp\n b AppStart"); }

extern "C" [[noreturn]] __attribute__((used)) void AppStart(uint32_t sp) {
  volatile uint32_t* mark = reinterpret_cast<volatile uint32_t*>(kMarker);
  mark[1] = *reinterpret_cast<volatile uint32_t*>(0xe000ed08);  // SCB_VTOR
  mark[2] = sp;
  uint32_t* src = &_sidata;
  for (uint32_t* dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  mark[0] = kMarkerUsbApp;
  Run();
}
