#include "app_device.h"

#include "bootloader/descriptors.h"

namespace onedfu::sim {

AppDevice::AppDevice(SimBoard& board, const std::string& serial, bool will_detach)
    : serial_(serial), device_(board.board(), summary_.c_str(), serial_.c_str(), will_detach) {
  bootloader::DescribeApplication(board.board(), board.memories(), summary_);
}

std::vector<uint8_t> AppDevice::Descriptors() const {
  std::vector<uint8_t> out(bootloader::kDeviceDescriptorSize + bootloader::kConfigDescriptorSize);
  out.resize(device_.Descriptors(out));
  return out;
}

ControlReply AppDevice::HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                                       std::span<uint8_t> data_in) {
  return device_.HandleControl(setup, data_out, data_in);
}

}  // namespace onedfu::sim
