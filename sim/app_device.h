// AppDevice: the simulated VM firmware (application mode) as a USB device with a DFU RUNTIME
// interface (DFU 1.1 section 4.1), which is how dfu-util finds an application it can switch
// into the bootloader:
//   - device descriptor: board VID:PID (or the application's own, `usb_id`), bcdDevice from the
//     board; strings 1 "onedfu",
//     2 product = Summary(), 3 serial;
//   - one configuration, interface 0 alt 0: class 0xFE, subclass 1, protocol 1 (runtime),
//     iInterface 4 = Summary(); DFU functional descriptor 09 21 0b ff 00 00 08 1a 01
//     (CanDnload, CanUpload, WillDetach; detach timeout 255 ms; wTransferSize 2048; DFU 1.1a).
//   - DFU class requests on interface 0: GETSTATUS (OK, poll 0, appIDLE/appDETACH, iString 0),
//     GETSTATE, DETACH (-> appDETACH; WillDetach: the device leaves the bus after the reply
//     and re-enumerates in the bootloader's DFU mode). Others stall.
//   - standard: GET_DESCRIPTOR (device, configuration, string, functional), GET_STATUS,
//     GET_CONFIGURATION, GET_INTERFACE, CLEAR/SET_FEATURE. Others stall.
//   - a bus reset in appDETACH also enters DFU mode (DFU 1.1 for hosts that reset instead of
//     waiting for WillDetach).
//
// Summary() reports what the firmware sees at boot, read-only (no flash writes): the package
// version from the boot record and the ROMFS region state from runtime::RegionStore::Scan over
// the mapped romfs region, e.g. "onedfu app 1.0.0, romfs: 1 image, 7 files" (files of the
// merged view; "romfs: none" without a romfs region, "romfs: empty" without images).
// Host only; not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sim_board.h"
#include "usb_device.h"

namespace onedfu::sim {

struct RomfsSummary {
  bool has_region = false;
  size_t images = 0;  // live images
  uint32_t files = 0; // files in the merged view
  std::string error;  // when the scan or walk failed
};

// Reads the romfs region of `board` (no writes).
RomfsSummary SummarizeRomfs(SimBoard& board);

class AppDevice {
 public:
  // `will_detach` false: the functional descriptor lacks bitWillDetach, DETACH only enters
  // appDETACH and the host must reset the bus (DFU 1.1 5.1).
  // `usb_id`: the application's VID << 16 | PID when it differs from the board's (0: the board's).
  AppDevice(SimBoard& board, const std::string& serial, bool will_detach = true, uint32_t usb_id = 0);

  std::vector<uint8_t> Descriptors() const;
  // A DETACH reply carries reset_after_status: the device leaves for the bootloader.
  ControlReply HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                             std::span<uint8_t> data_in);
  // USB bus reset; true when it enters DFU mode (it was in appDETACH).
  bool BusReset();

  const std::string& summary() const { return summary_; }
  uint8_t state() const { return state_; }

 private:
  ControlReply Standard(const SetupPacket& setup, std::span<uint8_t> data_in);
  ControlReply Dfu(const SetupPacket& setup, std::span<uint8_t> data_in);

  SimBoard& board_;
  std::string serial_;
  std::string summary_;
  uint32_t usb_id_ = 0;
  bool will_detach_ = true;
  uint8_t state_ = 0;  // bootloader::DfuState::kAppIdle
};

}  // namespace onedfu::sim
