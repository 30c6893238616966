// TransportTestModel: the device model the umockdev transport tests (umockdev_usb_test.cpp with
// libusb_client.cpp) use for what the real DFU bootloader (ProbeBoard) cannot show; see
// transport_test_protocol.h. Test only; not a DFU device (vendor-class interface, no DFU).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "transport_test_protocol.h"
#include "usb_device.h"

namespace onedfu::sim {

class TransportTestModel final : public UsbDeviceModel {
 public:
  std::vector<uint8_t> DeviceAndConfigDescriptors() override {
    ++plugs_;
    const uint8_t vid_lo = transport_test::kVendorId & 0xff, vid_hi = transport_test::kVendorId >> 8;
    const uint8_t pid_lo = transport_test::kProductId & 0xff, pid_hi = transport_test::kProductId >> 8;
    return {
        0x12, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x40,          // device: USB 2.00, ep0 64 bytes
        vid_lo, vid_hi, pid_lo, pid_hi, 0x00, 0x01, 0x01, 0x02,  // VID, PID, bcdDevice 1.00, strings 1, 2
        0x03, 0x01,                                              // serial 3, one configuration
        0x09, 0x02, 0x12, 0x00, 0x01, 0x01, 0x00, 0xc0, 0x32,    // configuration: 18 bytes, 1 interface
        0x09, 0x04, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x04,    // interface 0: vendor class, string 4
    };
  }

  ControlReply HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                             std::span<uint8_t> data_in) override {
    const uint8_t type = setup.bmRequestType & 0x7f;  // type and recipient
    if (type == 0x00 && setup.IsIn() && setup.bRequest == 0x00) return Reply({0x01, 0x00}, data_in);
    if (type == 0x00 && setup.IsIn() && setup.bRequest == 0x06 && (setup.wValue >> 8) == 0x03) {
      return String(static_cast<uint8_t>(setup.wValue & 0xff), data_in);
    }
    if (type != 0x40) return ControlReply::Stall();
    if (setup.bRequest == transport_test::kEchoRequest) {
      if (setup.IsIn()) return Reply(echo_, data_in);
      if (data_out.size() > transport_test::kEchoCapacity) return ControlReply::Stall();
      echo_.assign(data_out.begin(), data_out.end());
      return ControlReply::Ack();
    }
    if (setup.bRequest == transport_test::kLeaveRequest && !setup.IsIn()) {
      if (!handshake_dir_.empty()) Handshake();
      ControlReply reply = ControlReply::Ack();
      reply.reset_after_status = true;
      return reply;
    }
    return ControlReply::Stall();
  }

  // With a directory set, the leave request (handled on umockdev's thread) creates DIR/leaving
  // and waits, up to 10 s, for the client to create DIR/opened before it is acknowledged: the
  // client opens the node while the request that makes the device leave is being handled.
  void SetLeaveHandshake(std::filesystem::path dir) { handshake_dir_ = std::move(dir); }
  // Leave requests during which DIR/opened appeared.
  uint32_t handshakes() const { return handshakes_; }

  void OnSetInterface(uint8_t, uint8_t) override { ++set_interface_calls_; }
  bool OnReset() override {
    ++resets_;
    return true;
  }

  uint32_t plugs() const { return plugs_; }
  uint32_t set_interface_calls() const { return set_interface_calls_; }
  uint32_t resets() const { return resets_; }

 private:
  static ControlReply Reply(std::vector<uint8_t> bytes, std::span<uint8_t> data_in) {
    const size_t n = std::min(bytes.size(), data_in.size());
    std::copy_n(bytes.begin(), n, data_in.begin());
    return ControlReply::Ack(static_cast<uint16_t>(n));
  }

  ControlReply String(uint8_t index, std::span<uint8_t> data_in) const {
    if (index == 0) return Reply({0x04, 0x03, 0x09, 0x04}, data_in);  // en-US
    const std::string text = index == 1   ? "onedfu"
                             : index == 2 ? "onedfu transport test model"
                             : index == 3 ? "PLUG-" + std::to_string(plugs_)
                             : index == 4 ? transport_test::kInterfaceString
                                          : "";
    if (text.empty()) return ControlReply::Stall();
    std::vector<uint8_t> descriptor = {static_cast<uint8_t>(2 + 2 * text.size()), 0x03};
    for (char c : text) descriptor.insert(descriptor.end(), {static_cast<uint8_t>(c), 0});  // UTF-16LE
    return Reply(descriptor, data_in);
  }

  void Handshake() {
    std::ofstream(handshake_dir_ / "leaving") << "1\n";
    for (int i = 0; i < 10000; ++i) {
      if (std::filesystem::exists(handshake_dir_ / "opened")) {
        ++handshakes_;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  std::filesystem::path handshake_dir_;
  uint32_t handshakes_ = 0;
  uint32_t plugs_ = 0;
  uint32_t set_interface_calls_ = 0;
  uint32_t resets_ = 0;
  std::vector<uint8_t> echo_;
};

}  // namespace onedfu::sim
