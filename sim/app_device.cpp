#include "app_device.h"

#include "bootloader/descriptors.h"

namespace onedfu::sim {

AppDevice::AppDevice(SimBoard& board, const std::string& serial, bool will_detach, uint32_t usb_id)
    : serial_(serial), usb_id_(usb_id), device_(board.board(), summary_.c_str(), serial_.c_str(), will_detach) {
  bootloader::DescribeApplication(board.board(), board.memories(), summary_);
}

std::vector<uint8_t> AppDevice::Descriptors() const {
  std::vector<uint8_t> out(bootloader::kDeviceDescriptorSize + bootloader::kConfigDescriptorSize);
  out.resize(device_.Descriptors(out));
  if (usb_id_ != 0 && out.size() >= 12) {  // idVendor, idProduct (little-endian, bytes 8..11 of the device descriptor)
    out[8] = static_cast<uint8_t>(usb_id_ >> 16);
    out[9] = static_cast<uint8_t>(usb_id_ >> 24);
    out[10] = static_cast<uint8_t>(usb_id_);
    out[11] = static_cast<uint8_t>(usb_id_ >> 8);
  }
  return out;
}

ControlReply AppDevice::HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                                       std::span<uint8_t> data_in) {
  return device_.HandleControl(setup, data_out, data_in);
}

}  // namespace onedfu::sim
