// ProbeDfuDevice: a tiny fake DFU-class device for exercising the virtual USB transport with
// real host tools (dfu-util -l, pyusb, libusb). Not the bootloader: its DFU state machine only
// knows enough to be listed and probed.
//
// What it answers (all on endpoint 0):
// - Descriptors: 0483:df11, bcdDevice 0x2200, one configuration, one interface (class 0xFE
//   subclass 1 protocol 2, alt 0) with the DFU functional descriptor 09 21 0b ff 00 00 08 1a 01
//   (CanDnload, CanUpload, WillDetach, wTransferSize 2048, DFU 1.1a) and strings:
//   1 "onedfu", 2 "onedfu probe", 3 serial "PROBE-<plug count>", 4 kLayout.
// - Standard: GET_DESCRIPTOR (device, configuration, string), GET_STATUS, GET_CONFIGURATION.
// - DFU: GETSTATUS (bStatus OK, poll 0, current state), GETSTATE, CLRSTATUS, ABORT (-> dfuIDLE),
//   UPLOAD (block 0: DfuSe command list 00 21 41 92; block n >= 2: PatternByte() of offsets
//   (n - 2) * kTransferSize ..., ending with a short block at kUploadSize; the DfuSe address is
//   ignored), DNLOAD (data or DfuSe command accepted and dropped: the next GETSTATUS reports
//   dfuDNBUSY, later ones dfuDNLOAD-IDLE, as dfu-util expects; zero length -> dfuMANIFEST, and
//   the device leaves the bus after the next GETSTATUS has been answered), DETACH (leaves the
//   bus after the reply).
// - Vendor: kEchoRequest OUT stores up to kEchoCapacity bytes, IN returns them.
// - A bus reset also makes it leave; every plug-in starts in dfuIDLE.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "usb_device.h"

namespace onedfu::sim {

class ProbeDfuDevice final : public UsbDeviceModel {
 public:
  static constexpr uint16_t kVendorId = 0x0483;
  static constexpr uint16_t kProductId = 0xdf11;
  static constexpr uint16_t kTransferSize = 2048;
  static constexpr const char* kLayout = "@Internal Flash  /0x08000000/04*016Kg";
  static constexpr uint32_t kUploadSize = 4 * 16 * 1024;  // bytes the UPLOAD stream holds
  static constexpr uint8_t kEchoRequest = 0x01;            // vendor request, device recipient
  static constexpr size_t kEchoCapacity = 256;

  // DFU 1.1 states used here.
  static constexpr uint8_t kStateIdle = 2;
  static constexpr uint8_t kStateDnbusy = 4;
  static constexpr uint8_t kStateDnloadIdle = 5;
  static constexpr uint8_t kStateManifest = 7;
  static constexpr uint8_t kStateUploadIdle = 9;

  // Byte at `offset` of the UPLOAD stream: low byte of offset * 31 XOR offset >> 8.
  static uint8_t PatternByte(uint32_t offset) {
    return static_cast<uint8_t>((offset * 31u) ^ (offset >> 8));
  }

  std::vector<uint8_t> DeviceAndConfigDescriptors() override;
  ControlReply HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                              std::span<uint8_t> data_in) override;
  void OnSetInterface(uint8_t iface, uint8_t alt) override;
  bool OnReset() override;

  // Observations for tests.
  uint32_t plugs() const { return plugs_; }
  uint32_t set_interface_calls() const { return set_interface_calls_; }
  uint32_t resets() const { return resets_; }
  uint32_t dnload_bytes() const { return dnload_bytes_; }

 private:
  ControlReply HandleStandard(const SetupPacket& setup, std::span<uint8_t> data_in);
  ControlReply HandleDfu(const SetupPacket& setup, std::span<const uint8_t> data_out,
                          std::span<uint8_t> data_in);
  ControlReply HandleVendor(const SetupPacket& setup, std::span<const uint8_t> data_out,
                             std::span<uint8_t> data_in);
  std::string StringFor(uint8_t index) const;

  uint8_t state_ = kStateIdle;
  bool leave_after_status_ = false;
  uint32_t plugs_ = 0;
  uint32_t set_interface_calls_ = 0;
  uint32_t resets_ = 0;
  uint32_t dnload_bytes_ = 0;
  std::vector<uint8_t> echo_;
};

}  // namespace onedfu::sim
