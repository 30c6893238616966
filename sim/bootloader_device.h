// BootloaderDevice: the simulator port of the bootloader core in DFU mode. It is what the MCU's
// USB driver glue does on a real board: hands every control transfer to bootloader::DfuDevice,
// sends back its reply, runs the pending flash work (Poll) once the reply is out, and resets
// the board only AFTER the reply that asked for it (the leave GETSTATUS, DESIGN.md 6).
//
// One object per DFU-mode boot (a reset starts a fresh DfuDevice, as the MCU would). The board
// must outlive it. Host only; not thread-safe (the owner serializes calls).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bootloader/dfu_device.h"
#include "runtime/diag.h"
#include "runtime/status.h"
#include "sim_board.h"
#include "usb_device.h"

namespace onedfu::sim {

class BootloaderDevice {
 public:
  // `idle_message`: the status string while no error is pending (why the board is in DFU
  // mode), copied.
  BootloaderDevice(SimBoard& board, const std::string& idle_message,
                   const bootloader::DfuOptions& options, const std::string& serial);
  BootloaderDevice(const BootloaderDevice&) = delete;
  BootloaderDevice& operator=(const BootloaderDevice&) = delete;

  // DfuDevice::Init: checks the flash against the board, builds the layout string.
  runtime::Status Init(runtime::Diag* diag);

  // Device descriptor + configuration descriptor (bootloader/descriptors.h).
  std::vector<uint8_t> Descriptors() const;

  // One control transfer through DfuDevice, then Poll() (the reply is final at that point; the
  // host sees the same bytes as if the work ran after delivery). Remembers a reply that
  // carries reset_after_status.
  ControlResult HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                              std::span<uint8_t> data_in);
  void SetInterface(uint8_t iface, uint8_t alt);
  // USB bus reset; true when the device now resets itself (it waited for it after leave).
  bool BusReset();
  // True once per reply that asked for a reset (consumes it).
  bool TakeResetRequest();

  bootloader::DfuDevice& dfu() { return dfu_; }
  const char* layout() const { return dfu_.layout(); }

 private:
  SimBoard& board_;
  std::string idle_message_;
  std::string serial_;
  bootloader::DfuDevice dfu_;
  bool reset_pending_ = false;
};

}  // namespace onedfu::sim
