// EmulatedDevice: the emulated STM32F767 board (machine.h) as a UsbDeviceModel, the counterpart
// of SimUsbDevice / DfuModeDevice (sim_device.h, dfu_port.h) behind the same interface: the
// transport (UmockdevUsb) hands it the host's control transfers, and it sends them over the
// modeled OTG FS wire to the REAL bootloader binary, which runs its own USB driver, DfuDevice
// and flash drivers on the emulated CPU. Nothing of the host build of the core is involved.
//
// Plug (DeviceAndConfigDescriptors): the board boots (power-on, or the reset the firmware
// asked for) and runs until its USB driver connects (DFU mode) or it starts the application
// (SCB_VTOR set to the firmware region). DFU mode: the model enumerates it as a host does (bus
// reset, GET_DESCRIPTOR device, SET_ADDRESS, GET_DESCRIPTOR configuration, SET_CONFIGURATION)
// and returns the descriptors the firmware sent. Application: it runs the application until it
// drives a GPIO output (test_app.c's "I am alive"), connects to USB (usb_app.cpp: a DFU runtime
// interface), a fault, or 1 s, and records the RAM words at kAppMarkerAddress; an application
// on USB is enumerated the same way (its interface string goes into the boot's message), one
// without USB returns no descriptors.
// A control transfer after which the firmware disconnected or requested a system reset makes
// the device leave (reset_after_status: the bootloader's leave, an application's DETACH); the
// next plug reboots it.
//
// Host only; the transport serializes calls.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "host/expected.h"
#include "machine.h"
#include "otg_fs.h"
#include "sim_board.h"
#include "stats.h"
#include "usb_device.h"

namespace onedfu::sim::emu {

// Where the test application (tests/emulator/test_app) leaves its mark.
inline constexpr uint32_t kAppMarkerAddress = 0x20020000;
// The DFU request word (bootloader/cortex-m/bootloader.ld: _dfu_entry, the last word of DTCM);
// its value is cortexm::kDfuEntryMagic (bootloader/cortex-m/board_config.h).
inline constexpr uint32_t kDfuEntryAddress = 0x2001fffc;

struct EmulatedDeviceOptions {
  std::string bootloader_elf;  // the image scripts/size builds (onedfu-bootloader.elf)
  bool trace = false;          // log boots and failures to stderr
  // >= 0: power fails during the flash operation after `cut_after` more operations on memory
  // `cut_memory` (torn: part of it happens), counted from the first boot; the board is dead for
  // the rest of the run (the models stop the CPU when the flash fails).
  int cut_memory = -1;
  uint32_t cut_after = 0;
  // >= 0: a DFU GETSTATUS reply's bwPollTimeout above this many ms reaches the host as this
  // value (the binary reports its modeled busy time; the emulated board has done the work in
  // virtual time before the host's next request, so the host's wait is idle wall time).
  // -1: the binary's own values.
  int64_t max_poll_timeout_ms = -1;
};

class EmulatedDevice final : public UsbDeviceModel {
 public:
  // Loads the ELF, programs it into the bootloader region when the board's flash holds other
  // bytes (as a factory would; not counted in the stats), builds the machine. Errors name the
  // file or the segment at fault.
  static host::Expected<std::unique_ptr<EmulatedDevice>> Create(SimBoard& board, const EmulatedDeviceOptions& options);

  // First power-on with the USR switch held (`button`) or not.
  void PowerOn(bool button);

  std::vector<uint8_t> DeviceAndConfigDescriptors() override;
  ControlReply HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                             std::span<uint8_t> data_in) override;
  void OnSetInterface(uint8_t iface, uint8_t alt) override;
  bool OnReset() override;

  const std::vector<BootEvent>& boots() const { return boots_; }
  const UsbUsage& usage() const { return usage_; }
  // The first failure (a model fault, a firmware timeout), empty when none.
  const std::string& error() const { return error_; }
  Machine& machine() { return *machine_; }
  // After an application boot: the marker word and whether the application ran.
  bool application_running() const { return application_; }
  uint32_t app_marker() const { return app_marker_; }

 private:
  EmulatedDevice(SimBoard& board, EmulatedDeviceOptions options) : board_(board), options_(std::move(options)) {}
  // Runs the boot; fills boots_. False: nothing enumerates.
  bool Boot(const std::string& cause);
  ControlResult Control(uint8_t type, uint8_t request, uint16_t value, uint16_t index, uint16_t length,
                        std::span<const uint8_t> out = {});
  void Failed(const std::string& what);
  std::string HostReason(bool application, bool forced);
  // After a request: did the firmware leave the bus (disconnect / system reset)?
  bool Leaving();

  SimBoard& board_;
  EmulatedDeviceOptions options_;
  std::unique_ptr<Machine> machine_;
  bool powered_ = false;
  bool button_ = false;
  bool reboot_pending_ = false;
  std::string reboot_cause_ = "power-on";
  bool application_ = false;
  uint32_t app_marker_ = 0;
  std::vector<BootEvent> boots_;
  UsbUsage usage_;
  std::string error_;
  uint8_t next_address_ = 2;
  std::vector<uint8_t> descriptors_;
};

}  // namespace onedfu::sim::emu
