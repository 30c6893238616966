#include "bootloader_device.h"

#include <utility>

#include "bootloader/descriptors.h"

namespace onedfu::sim {
namespace {

bootloader::DeviceStrings Strings(const std::string& serial) {
  bootloader::DeviceStrings strings;
  strings.manufacturer = "onedfu";
  strings.product = "onedfu-sim DFU bootloader";
  strings.serial = serial.c_str();
  return strings;
}

}  // namespace

BootloaderDevice::BootloaderDevice(SimBoard& board, const std::string& idle_message,
                                   const bootloader::DfuOptions& options, const std::string& serial)
    : board_(board),
      idle_message_(idle_message),
      serial_(serial),
      dfu_(board.board(), board.memories(), Strings(serial_), options) {
  dfu_.SetIdleMessage(idle_message_.c_str());
}

runtime::Status BootloaderDevice::Init(runtime::Diag* diag) { return dfu_.Init(diag); }

std::vector<uint8_t> BootloaderDevice::Descriptors() const {
  std::vector<uint8_t> out(bootloader::kDeviceDescriptorSize + bootloader::kConfigDescriptorSize);
  const size_t device = bootloader::BuildDeviceDescriptor(board_.board(), out);
  const size_t config = bootloader::BuildConfigDescriptor(runtime::MutableByteSpan(out).subspan(device));
  out.resize(device == 0 || config == 0 ? 0 : device + config);
  return out;
}

ControlResult BootloaderDevice::HandleControl(const SetupPacket& setup,
                                              std::span<const uint8_t> data_out,
                                              std::span<uint8_t> data_in) {
  bootloader::SetupPacket s;
  s.bmRequestType = setup.bmRequestType;
  s.bRequest = setup.bRequest;
  s.wValue = setup.wValue;
  s.wIndex = setup.wIndex;
  s.wLength = setup.wLength;
  const bootloader::ControlReply reply = dfu_.HandleControl(s, data_out, data_in);
  // The reply is final; run the work the busy status announced (DESIGN.md 6).
  dfu_.Poll();
  if (reply.reset_after_status) reset_pending_ = true;
  if (reply.stall) return ControlResult::Stall();
  return ControlResult::Ack(reply.length);
}

void BootloaderDevice::SetInterface(uint8_t iface, uint8_t alt) { (void)dfu_.SetInterface(iface, alt); }

bool BootloaderDevice::BusReset() {
  const bool reset = dfu_.BusReset();
  if (reset) reset_pending_ = true;
  return reset;
}

bool BootloaderDevice::TakeResetRequest() { return std::exchange(reset_pending_, false); }

}  // namespace onedfu::sim
