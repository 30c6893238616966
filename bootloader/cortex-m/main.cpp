// The Cortex-M7 port of the onedfu bootloader (STM32F767, PYBD-SF6-like board:
// manifests/boards/pybd-sf6.json, generated into a constant in flash,
// generated_boards.h). The core decides, the port acts (STYLE 6):
//   1. startup.cpp: vector table, Reset_Handler (.data, .bss, constructors).
//   2. main: clocks (HSE + PLL, 48 MHz USB clock), pins, QUADSPI in
//      memory-mapped mode; Decide(board, drivers, button held or the
//      application's DFU request word). Start -> StartApplication (IRQs off,
//      VTOR, MSP, branch). Otherwise:
//   3. the DFU loop: the OTG FS driver hands every endpoint-0 control transfer
//      to DfuDevice::HandleControl and, once its status stage is done, runs
//      DfuDevice::Poll (the flash work) or resets the board (the leave
//      GETSTATUS went out: soft-disconnect, wait, SYSRESETREQ).
// No interrupts are used: the loop polls the USB core.
//
// ONEDFU_SIZE_WITHOUT_USB (scripts/size only, never flashed): the same image
// with a RAM mailbox in place of the USB driver, so that the size build can
// report the driver's share (text with it minus text without it) and the
// figure without it.
#include <cstdint>

#include "board_config.h"
#include "bootloader/boot.h"
#include "bootloader/dfu_device.h"
#include "generated_boards.h"
#include "runtime/board.h"
#include "stm32_flash.h"
#include "system.h"
#include "usb_otg_fs.h"
#if ONEDFU_TRUST
#include "bootloader/boot_state.h"
#include "trust_keys.h"
#endif

using namespace onedfu;

namespace {

// The board constant; scripts/size cuts the Board capacities
// (ONEDFU_BOARD_MAX_*) to exactly this board.
constexpr const runtime::Board& kBoard = boards::kPybdSf6;
// The boot cost model (stats.json boots[].verify_us) runs at the clock this
// port sets up: a board file and a clock tree that disagree do not build.
static_assert(kBoard.boot_cost.clock_mhz * 1'000'000u == cortexm::kSysclkHz,
              "manifests/boards/pybd-sf6.json boot_cost.clock_mhz must be the port's SYSCLK (board_config.h)");

cortexm::InternalFlash internal_flash(kBoard.memories[0]);
cortexm::QspiFlash qspi_flash(kBoard.memories[1]);
runtime::FlashMemory* const kMemories[] = {&internal_flash, &qspi_flash};
cortexm::UsbOtgFs usb;

[[noreturn]] void ResetBoard() {
#if !ONEDFU_SIZE_WITHOUT_USB
  usb.Disconnect();
#endif
  cortexm::DelayMs(20);  // the host sees the unplug before the device is gone
  cortexm::SystemReset();
}

#if ONEDFU_SIZE_WITHOUT_USB
struct Mailbox {
  volatile uint32_t pending;
  uint8_t setup[8];
  uint8_t data[bootloader::kTransferSize];
  volatile uint32_t reply;
};
Mailbox mailbox;

bool PollMailbox(bootloader::DfuDevice& device) {
  if (!mailbox.pending) return false;
  const bootloader::SetupPacket setup = bootloader::ParseSetup(mailbox.setup);
  const size_t n = setup.wLength < sizeof mailbox.data ? setup.wLength : sizeof mailbox.data;
  const bootloader::ControlReply reply =
      setup.IsIn() ? device.HandleControl(setup, {}, runtime::MutableByteSpan(mailbox.data, n))
                   : device.HandleControl(setup, runtime::ByteSpan(mailbox.data, n), {});
  mailbox.reply = reply.length | (reply.stall ? 1u << 16 : 0);
  mailbox.pending = 0;
  if (reply.reset_after_status) return true;
  device.Poll();
  return false;
}
#endif

[[noreturn]] void DfuLoop(const bootloader::BootDecision& why) {
  static bootloader::DfuDevice device(kBoard, kMemories);
#if ONEDFU_SIZE_WITHOUT_USB
  if (!device.Init(nullptr).ok()) ResetBoard();
  device.SetIdleMessage(why.message.c_str());
  for (;;) {
    if (PollMailbox(device)) ResetBoard();
  }
#else
  if (!device.Init(nullptr).ok() || !usb.Init()) ResetBoard();
  device.SetIdleMessage(why.message.c_str());
  cortexm::UsbFunctionOf<bootloader::DfuDevice> function(device);
  for (;;) {
    if (usb.Poll(function)) ResetBoard();
  }
#endif
}

}  // namespace


int main() {
  // Without the PLL there is no 48 MHz USB clock: try again from reset.
  if (!cortexm::ClockInit()) cortexm::SystemReset();
  cortexm::PinsInit();
  const bool forced = cortexm::TakeDfuEntryRequest() | cortexm::ButtonHeld();
  // A QSPI that does not answer leaves its memory unreadable; Decide then
  // reports the flash error and the board waits in DFU mode.
  (void)qspi_flash.Init();
#if ONEDFU_TRUST
  // Trusting build (scripts/size --signed): the keys come from OUT_DIR/gen/trust_keys.h
  // (kTrustKeys), the counter log and the verified marker from bootloader/boot_state.h.
  const bootloader::BootDecision decision = bootloader::TrustedBoot(kBoard, kMemories, forced, kTrustKeys);
#else
  const bootloader::BootDecision decision = bootloader::Decide(kBoard, kMemories, forced);
#endif
  if (decision.start_application) cortexm::StartApplication(decision.entry);
  DfuLoop(decision);
}
