// SimUsbDevice: the whole simulated board as ONE UsbDeviceModel (the transport keeps one model
// across re-plugs). It is in either mode:
//   - DFU mode: DfuPort (the bootloader core, bootloader::DfuDevice);
//   - application mode: AppDevice (the VM firmware with a DFU runtime interface).
// Power-on and every reset run the boot decision (SimBoard::Boot) and pick the mode:
//   - PowerOn(forced): the first boot (forced = --enter-dfu, the held boot button);
//   - the leave GETSTATUS reply in DFU mode (ControlReply::reset_after_status), or a bus reset
//     while the bootloader waits for it: the device leaves AFTER that reply, then reboots
//     (boot decision, not forced): application when the record is valid, DFU otherwise;
//   - DETACH in application mode (WillDetach), or a bus reset in appDETACH: the device leaves,
//     then reboots forced into DFU mode (the application asked for the bootloader).
// The device leaves through the reply's reset_after_status (or OnReset returning true); the
// reboot runs when the transport re-plugs it (DeviceAndConfigDescriptors).
//
// Every control transfer is counted in usage() (stats.h timing model) and every boot is logged
// in boots(). Host only; the transport serializes calls.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "app_device.h"
#include "dfu_port.h"
#include "sim_board.h"
#include "stats.h"
#include "usb_device.h"

namespace onedfu::sim {

struct SimDeviceOptions {
  // Cap of the bwPollTimeout the bootloader reports (ms). The simulator does the work at once,
  // so 0 (what mboot reports: the host polls at once) keeps host tools from sleeping through
  // modeled time; a value > 0 reports the modeled duration up to this cap, as a real board
  // would (dfu-util then really sleeps that long).
  uint32_t max_poll_timeout_ms = 0;
  std::string serial = "SIM000000001";
  // > 0: the board leaves the bus for good (cable pulled) after this many control transfers
  // in DFU mode; the reply to the last one is delivered. The flash keeps what was done.
  uint64_t unplug_after_transfers = 0;
  // > 0: each time the board boots into DFU mode, the Nth flash-changing operation (erase or
  // write) of each of its memories fails (runtime::FakeFlash::FailAfter(N - 1): a transient
  // device error; the bootloader reports it, the board stays in DFU mode).
  uint32_t flash_error_at = 0;
  // > 0: after this many control transfers in DFU mode the host command gets SIGINT (Ctrl-C),
  // once; the board stays on the bus.
  uint64_t interrupt_after_transfers = 0;
  // false: the application's DFU functional descriptor lacks WillDetach (the host must reset
  // the bus after DETACH).
  bool app_will_detach = true;
  // != 0: the application enumerates with these USB ids (VID << 16 | PID), not the board's
  // (MicroPython's runtime, e.g., is f055:9800 while its bootloader is 0483:df11).
  uint32_t app_usb_id = 0;
  // false: the bootloader does not list or accept onedfu's hash command (an older onedfu or
  // another DfuSe bootloader): its DNLOAD stalls and UPLOAD block 0 omits 0x48.
  bool hash_command = true;
  // The bootloader's manufacturer string; another one than "onedfu" is a foreign bootloader
  // (mboot, ST's system bootloader) to the flasher.
  std::string manufacturer = "onedfu";
};

class SimUsbDevice final : public UsbDeviceModel {
 public:
  explicit SimUsbDevice(SimBoard& board, SimDeviceOptions options = {});
  ~SimUsbDevice() override;

  // First power-on (before plugging in). Returns false when the bootloader core refused the
  // board (error()).
  bool PowerOn(bool forced_dfu);

  std::vector<uint8_t> DeviceAndConfigDescriptors() override;
  ControlReply HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                             std::span<uint8_t> data_in) override;
  void OnSetInterface(uint8_t iface, uint8_t alt) override;
  bool OnReset() override;
  // ModeledDeviceUs of the board and this device's bus usage (stats.h).
  uint64_t ModeledUs() const override;

  bool application_mode() const { return app_.has_value(); }
  const std::vector<BootEvent>& boots() const { return boots_; }
  const UsbUsage& usage() const { return usage_; }
  const std::string& error() const { return error_; }
  DfuPort* bootloader() { return bootloader_ ? &*bootloader_ : nullptr; }
  AppDevice* app() { return app_ ? &*app_ : nullptr; }

 private:
  // Runs the boot decision and builds the mode's device. False on a bootloader init error.
  bool Boot(const std::string& cause, bool forced_dfu);

  SimBoard& board_;
  SimDeviceOptions options_;
  std::optional<DfuPort> bootloader_;
  std::optional<AppDevice> app_;
  uint64_t dfu_transfers_ = 0;        // control transfers in DFU mode (unplug_after_transfers)
  bool unplugged_ = false;            // gone for good: no more plugs
  std::string reboot_cause_;          // non-empty: the device left; reboot at the next plug
  bool reboot_forced_ = false;
  std::vector<BootEvent> boots_;
  UsbUsage usage_;
  std::string error_;
};

}  // namespace onedfu::sim
