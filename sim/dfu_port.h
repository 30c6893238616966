// DfuPort: the simulator's port of the bootloader core in DFU mode, the ONE place that drives
// bootloader::DfuDevice (`onedfu-sim run`, the power-cut recording and replay, onedfu-usb-probe).
// It is what the MCU's USB driver glue does on a real board: hands every control transfer to
// DfuDevice, sends back its reply, runs the pending flash work (Poll) once the reply is out, and
// resets the board only AFTER the reply that asked for it (ControlReply::reset_after_status,
// the leave GETSTATUS, DESIGN.md 6) or at the bus reset the device waited for.
//
// DfuModeDevice: a board that is always in DFU mode (the boot button held) as a UsbDeviceModel:
// a DfuPort, and after each reset a fresh one, as the MCU would boot.
//
// A DfuPort is a value: a copy is the device at that moment (the power-cut sweep checkpoints
// it), on the same flash objects. The board and the flash must outlive it. Host only; not
// thread-safe (the owner serializes calls).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bootloader/dfu_device.h"
#include "runtime/board.h"
#include "runtime/diag.h"
#include "runtime/flash_memory.h"
#include "runtime/status.h"
#include "usb_device.h"

namespace onedfu::sim {

struct DfuPortStrings {
  std::string manufacturer = "onedfu";
  std::string product = "onedfu-sim DFU bootloader";
  std::string serial = "SIM000000001";
  // The status string while no error is pending (e.g. why the board is in DFU mode); empty:
  // DfuDevice's default.
  std::string idle_message;
};

class DfuPort {
 public:
  // memories[i] serves board.memories[i].
  DfuPort(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories,
          const DfuPortStrings& strings, const bootloader::DfuOptions& options);

  // DfuDevice::Init: checks the flash against the board, builds the layout string.
  runtime::Status Init(runtime::Diag* diag);

  // Device descriptor + configuration descriptor (bootloader/descriptors.h); empty when they
  // cannot be built.
  std::vector<uint8_t> Descriptors() const;

  // One control transfer through DfuDevice, then Poll() (the reply is final at that point; the
  // host sees the same bytes as if the work ran after delivery). The reply's
  // reset_after_status: the board resets once it is out.
  ControlReply HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                             std::span<uint8_t> data_in);
  // SET_INTERFACE; false when the device refuses it.
  bool SetInterface(uint8_t iface, uint8_t alt);
  // USB bus reset; true when the board resets now (it waited for this reset after leave).
  bool BusReset();

  bootloader::DfuDevice& dfu() { return dfu_; }
  const bootloader::DfuDevice& dfu() const { return dfu_; }

 private:
  const runtime::Board* board_;
  // The strings DfuDevice points at; shared by copies, so a copy's DfuDevice stays valid.
  std::shared_ptr<const DfuPortStrings> strings_;
  bootloader::DfuDevice dfu_;
};

class DfuModeDevice final : public UsbDeviceModel {
 public:
  // `board` and `memories` must outlive this object.
  DfuModeDevice(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories,
                const DfuPortStrings& strings, const bootloader::DfuOptions& options);

  // False when the DfuDevice refused the board or the flash (error() says why); such a device
  // plugs in with no descriptors.
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  // Times the board reset after leaving (each one started a fresh DfuPort).
  uint32_t resets() const { return resets_; }
  DfuPort& port() { return *port_; }

  std::vector<uint8_t> DeviceAndConfigDescriptors() override;
  ControlReply HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                             std::span<uint8_t> data_in) override;
  void OnSetInterface(uint8_t iface, uint8_t alt) override;
  bool OnReset() override;

 private:
  void Boot();

  const runtime::Board& board_;
  std::span<runtime::FlashMemory* const> memories_;
  DfuPortStrings strings_;
  bootloader::DfuOptions options_;
  std::optional<DfuPort> port_;
  bool reset_pending_ = false;  // the board left; it boots again when plugged in
  uint32_t resets_ = 0;
  std::string error_;
};

}  // namespace onedfu::sim
