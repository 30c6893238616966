// The application side of DFU (DFU 1.1 section 4.1, run-time mode): what firmware that the
// bootloader started presents on USB, so that hosts (dfu-util, onedfu flash/list) find it, read
// what runs, and can switch it into the bootloader. One implementation for the simulator's
// application model (sim/app_device.h, host) and for firmware on the MCU (the emulator's USB
// test application, tests/emulator/usb_app.cpp, over the port's OTG FS driver).
//
//   - device descriptor: board VID:PID, bcdDevice from the board; strings 1 "onedfu",
//     2 product = the summary, 3 serial;
//   - one configuration, interface 0 alt 0: class 0xFE, subclass 1, protocol 1 (runtime),
//     iInterface 4 = the summary; DFU functional descriptor 09 21 0b ff 00 00 08 1a 01
//     (CanDnload, CanUpload, WillDetach; without WillDetach when asked);
//   - DFU class requests on interface 0: GETSTATUS (OK, poll 0, appIDLE/appDETACH, iString 0),
//     GETSTATE, DETACH (-> appDETACH; with WillDetach the reply carries reset_after_status: the
//     firmware leaves the bus and enters the bootloader's DFU mode). Others stall.
//   - standard: GET_DESCRIPTOR (device, configuration, string, functional), SET_ADDRESS,
//     SET_CONFIGURATION 0/1, SET_INTERFACE 0/0, GET_STATUS, GET_CONFIGURATION, GET_INTERFACE,
//     CLEAR/SET_FEATURE. Others stall.
//   - a bus reset in appDETACH also enters DFU mode (hosts that reset instead of waiting).
//
// The summary (DescribeApplication) is what the firmware sees at boot, read-only: the package
// version from the boot record and the ROMFS region state (runtime::RegionStore::Scan + Walk),
// e.g. "onedfu app 1.0.0, romfs: 1 image, 7 files" ("romfs: none" without a romfs region,
// "romfs: empty" without images, "romfs: scan: WHY" when the region is unreadable). onedfu flash
// reads the version from it to confirm what booted.
// Device code: no heap; the strings are not copied (static storage).
#pragma once

#include <cstdint>
#include <span>

#include "bootloader/usb.h"
#include "runtime/board.h"
#include "runtime/byte_reader.h"
#include "runtime/diag.h"
#include "runtime/flash_memory.h"

namespace onedfu::bootloader {

// Writes the summary of what `memories` (index i serves board.memories[i]) hold into `out`.
void DescribeApplication(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories,
                         runtime::Diag& out);

class DfuRuntime {
 public:
  // `summary`, `serial`: NUL-terminated, must outlive the object.
  DfuRuntime(const runtime::Board& board, const char* summary, const char* serial, bool will_detach = true)
      : board_(board), summary_(summary), serial_(serial), will_detach_(will_detach) {}

  // Device descriptor then configuration descriptor into `out` (at least kDeviceDescriptorSize +
  // kConfigDescriptorSize bytes); bytes written, 0 when it does not fit.
  size_t Descriptors(runtime::MutableByteSpan out) const;
  ControlReply HandleControl(const SetupPacket& setup, runtime::ByteSpan data_out, runtime::MutableByteSpan data_in);
  // Nothing runs after a reply (the OTG FS driver calls it once a reply is delivered).
  bool Poll() { return false; }
  // USB bus reset; true when it enters DFU mode (it was in appDETACH).
  bool BusReset();

  uint8_t state() const { return state_; }
  bool detached() const;

 private:
  ControlReply Standard(const SetupPacket& setup, runtime::MutableByteSpan data_in);
  ControlReply Dfu(const SetupPacket& setup, runtime::MutableByteSpan data_in);

  const runtime::Board& board_;
  const char* summary_;
  const char* serial_;
  bool will_detach_;
  uint8_t state_ = 0;  // DfuState::kAppIdle
  uint8_t configuration_ = 0;
};

}  // namespace onedfu::bootloader
