// LibusbTransport: DfuTransport over libusb-1.0. The ONLY file that includes libusb.h is its
// source (src/libusb_transport.cpp); this header hides the library behind a pointer.
#pragma once

#include <memory>

#include "flasher/dfu_transport.h"

namespace onedfu::flasher {

class LibusbTransport final : public DfuTransport {
 public:
  // Initializes a libusb context; errors say why (e.g. no usbfs).
  static host::Expected<std::unique_ptr<LibusbTransport>> Create();
  ~LibusbTransport() override;
  LibusbTransport(const LibusbTransport&) = delete;
  LibusbTransport& operator=(const LibusbTransport&) = delete;

  host::Expected<std::vector<UsbDevice>> Enumerate() override;
  UsbStatus Open(const UsbDevice& device) override;
  void Close() override;
  UsbStatus ControlOut(uint8_t request, uint16_t value, std::span<const uint8_t> data) override;
  UsbStatus ControlIn(uint8_t request, uint16_t value, std::span<uint8_t> data, size_t* length) override;
  UsbStatus ReadString(uint8_t index, std::string* text) override;
  UsbStatus Reset() override;
  // libusb hotplug (LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED) when libusb has the capability,
  // otherwise the default sleep.
  bool WaitForDeviceChange(uint32_t timeout_ms) override;

 private:
  struct State;
  explicit LibusbTransport(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace onedfu::flasher
