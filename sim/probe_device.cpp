#include "probe_device.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace onedfu::sim {
namespace {

constexpr uint8_t kTypeMask = 0x60;
constexpr uint8_t kTypeStandard = 0x00;
constexpr uint8_t kTypeClass = 0x20;
constexpr uint8_t kTypeVendor = 0x40;

constexpr uint8_t kGetStatus = 0x00;
constexpr uint8_t kGetDescriptor = 0x06;
constexpr uint8_t kGetConfiguration = 0x08;

constexpr uint8_t kDfuDetach = 0;
constexpr uint8_t kDfuDnload = 1;
constexpr uint8_t kDfuUpload = 2;
constexpr uint8_t kDfuGetStatus = 3;
constexpr uint8_t kDfuClrStatus = 4;
constexpr uint8_t kDfuGetState = 5;
constexpr uint8_t kDfuAbort = 6;

constexpr uint8_t kDeviceDescriptor[] = {
    0x12, 0x01, 0x00, 0x02,  // bLength, DEVICE, bcdUSB 2.00
    0x00, 0x00, 0x00, 0x40,  // class/subclass/protocol per interface, bMaxPacketSize0 64
    0x83, 0x04, 0x11, 0xdf,  // idVendor 0483, idProduct df11
    0x00, 0x22, 0x01, 0x02,  // bcdDevice 0x2200, iManufacturer 1, iProduct 2
    0x03, 0x01,              // iSerialNumber 3, bNumConfigurations 1
};

constexpr uint8_t kConfigDescriptor[] = {
    0x09, 0x02, 0x1b, 0x00, 0x01, 0x01, 0x00, 0xc0, 0x32,  // 27 bytes, 1 interface, self powered
    0x09, 0x04, 0x00, 0x00, 0x00, 0xfe, 0x01, 0x02, 0x04,  // interface 0 alt 0, DFU mode, iInterface 4
    0x09, 0x21, 0x0b, 0xff, 0x00, 0x00, 0x08, 0x1a, 0x01,  // DFU functional
};

constexpr uint8_t kDfuseCommands[] = {0x00, 0x21, 0x41, 0x92};

// Copies `reply` into `data_in` (truncated to what the host asked for) and acknowledges.
ControlReply Reply(std::span<const uint8_t> reply, std::span<uint8_t> data_in) {
  const size_t n = std::min(reply.size(), data_in.size());
  std::copy_n(reply.begin(), n, data_in.begin());
  return ControlReply::Ack(static_cast<uint16_t>(n));
}

// `reply`, after which the device leaves the bus.
ControlReply Leave(ControlReply reply) {
  reply.reset_after_status = true;
  return reply;
}

}  // namespace

std::vector<uint8_t> ProbeDfuDevice::DeviceAndConfigDescriptors() {
  ++plugs_;
  state_ = kStateIdle;
  leave_after_status_ = false;
  std::vector<uint8_t> out(sizeof(kDeviceDescriptor) + sizeof(kConfigDescriptor));
  std::copy(std::begin(kDeviceDescriptor), std::end(kDeviceDescriptor), out.begin());
  std::copy(std::begin(kConfigDescriptor), std::end(kConfigDescriptor),
            out.begin() + sizeof(kDeviceDescriptor));
  return out;
}

std::string ProbeDfuDevice::StringFor(uint8_t index) const {
  switch (index) {
    case 1:
      return "onedfu";
    case 2:
      return "onedfu probe";
    case 3:
      return "PROBE-" + std::to_string(plugs_);
    case 4:
      return kLayout;
    default:
      return {};
  }
}

ControlReply ProbeDfuDevice::HandleControl(const SetupPacket& setup,
                                            std::span<const uint8_t> data_out,
                                            std::span<uint8_t> data_in) {
  switch (setup.bmRequestType & kTypeMask) {
    case kTypeStandard:
      return HandleStandard(setup, data_in);
    case kTypeClass:
      return HandleDfu(setup, data_out, data_in);
    case kTypeVendor:
      return HandleVendor(setup, data_out, data_in);
    default:
      return ControlReply::Stall();
  }
}

ControlReply ProbeDfuDevice::HandleStandard(const SetupPacket& setup,
                                             std::span<uint8_t> data_in) {
  if (!setup.IsIn()) return ControlReply::Stall();
  switch (setup.bRequest) {
    case kGetStatus: {
      const uint8_t status[2] = {0x01, 0x00};  // self powered
      return Reply(status, data_in);
    }
    case kGetConfiguration: {
      const uint8_t config = 1;
      return Reply({&config, 1}, data_in);
    }
    case kGetDescriptor:
      break;
    default:
      return ControlReply::Stall();
  }
  const uint8_t type = static_cast<uint8_t>(setup.wValue >> 8);
  const uint8_t index = static_cast<uint8_t>(setup.wValue & 0xff);
  if (type == 0x01) return Reply(kDeviceDescriptor, data_in);
  if (type == 0x02 && index == 0) return Reply(kConfigDescriptor, data_in);
  if (type != 0x03) return ControlReply::Stall();
  if (index == 0) {
    const uint8_t languages[4] = {0x04, 0x03, 0x09, 0x04};  // en-US
    return Reply(languages, data_in);
  }
  const std::string text = StringFor(index);
  if (text.empty()) return ControlReply::Stall();
  std::vector<uint8_t> descriptor = {static_cast<uint8_t>(2 + 2 * text.size()), 0x03};
  for (char c : text) {
    descriptor.push_back(static_cast<uint8_t>(c));  // ASCII -> UTF-16LE
    descriptor.push_back(0);
  }
  return Reply(descriptor, data_in);
}

ControlReply ProbeDfuDevice::HandleDfu(const SetupPacket& setup,
                                        std::span<const uint8_t> data_out,
                                        std::span<uint8_t> data_in) {
  if (setup.wIndex != 0) return ControlReply::Stall();  // interface 0 only
  switch (setup.bRequest) {
    case kDfuDetach:
      return Leave(ControlReply::Ack());
    case kDfuDnload:
      if (setup.wLength == 0) {
        state_ = kStateManifest;
        leave_after_status_ = true;
      } else {
        state_ = kStateDnbusy;  // reported once by the next GETSTATUS, then dfuDNLOAD-IDLE
        dnload_bytes_ += static_cast<uint32_t>(data_out.size());
      }
      return ControlReply::Ack();
    case kDfuUpload: {
      if (setup.wValue == 0) {
        state_ = kStateUploadIdle;
        return Reply(kDfuseCommands, data_in);
      }
      if (setup.wValue == 1) return ControlReply::Stall();
      // DfuSe: block n starts at (n - 2) * wTransferSize, also when the host asks for less.
      const uint64_t start = uint64_t{setup.wValue - 2u} * kTransferSize;
      const uint64_t end = std::min<uint64_t>(start + data_in.size(), kUploadSize);
      const size_t n = end > start ? static_cast<size_t>(end - start) : 0;
      for (size_t i = 0; i < n; ++i) {
        data_in[i] = PatternByte(static_cast<uint32_t>(start + i));
      }
      state_ = n < data_in.size() ? kStateIdle : kStateUploadIdle;
      return ControlReply::Ack(static_cast<uint16_t>(n));
    }
    case kDfuGetStatus: {
      const uint8_t status[6] = {0x00, 0x00, 0x00, 0x00, state_, 0x00};
      if (state_ == kStateDnbusy) state_ = kStateDnloadIdle;
      if (std::exchange(leave_after_status_, false)) return Leave(Reply(status, data_in));
      return Reply(status, data_in);
    }
    case kDfuGetState:
      return Reply({&state_, 1}, data_in);
    case kDfuClrStatus:
    case kDfuAbort:
      state_ = kStateIdle;
      return ControlReply::Ack();
    default:
      return ControlReply::Stall();
  }
}

ControlReply ProbeDfuDevice::HandleVendor(const SetupPacket& setup,
                                           std::span<const uint8_t> data_out,
                                           std::span<uint8_t> data_in) {
  if (setup.bRequest != kEchoRequest || (setup.bmRequestType & 0x1f) != 0) {
    return ControlReply::Stall();
  }
  if (!setup.IsIn()) {
    if (data_out.size() > kEchoCapacity) return ControlReply::Stall();
    echo_.assign(data_out.begin(), data_out.end());
    return ControlReply::Ack();
  }
  return Reply(echo_, data_in);
}

void ProbeDfuDevice::OnSetInterface(uint8_t /*iface*/, uint8_t /*alt*/) {
  ++set_interface_calls_;
  state_ = kStateIdle;
}

bool ProbeDfuDevice::OnReset() {
  ++resets_;
  return true;
}

}  // namespace onedfu::sim
