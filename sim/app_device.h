// AppDevice: the simulated VM firmware (application mode) as a USB device with a DFU RUNTIME
// interface (DFU 1.1 section 4.1), which is how dfu-util finds an application it can switch
// into the bootloader. The device itself is bootloader::DfuRuntime (bootloader/dfu_runtime.h:
// descriptors, requests, DETACH), the same code the emulator's USB test application runs on the
// emulated MCU; its summary (bootloader::DescribeApplication) is what the firmware sees at boot,
// read-only (no flash writes), e.g. "onedfu app 1.0.0, romfs: 1 image, 7 files". The device
// descriptor carries the board's VID:PID, or the application's own (`usb_id`).
// Host only; not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bootloader/dfu_runtime.h"
#include "runtime/diag.h"
#include "sim_board.h"
#include "usb_device.h"

namespace onedfu::sim {

class AppDevice {
 public:
  // `will_detach` false: the functional descriptor lacks bitWillDetach, DETACH only enters
  // appDETACH and the host must reset the bus (DFU 1.1 5.1).
  // `usb_id`: the application's VID << 16 | PID when it differs from the board's (0: the board's).
  AppDevice(SimBoard& board, const std::string& serial, bool will_detach = true, uint32_t usb_id = 0);
  AppDevice(const AppDevice&) = delete;
  AppDevice& operator=(const AppDevice&) = delete;

  std::vector<uint8_t> Descriptors() const;
  // A DETACH reply carries reset_after_status: the device leaves for the bootloader.
  ControlReply HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                             std::span<uint8_t> data_in);
  // USB bus reset; true when it enters DFU mode (it was in appDETACH).
  bool BusReset() { return device_.BusReset(); }

  std::string summary() const { return summary_.c_str(); }
  uint8_t state() const { return device_.state(); }

 private:
  std::string serial_;
  runtime::Diag summary_;
  uint32_t usb_id_ = 0;
  bootloader::DfuRuntime device_;
};

}  // namespace onedfu::sim
