// DfuTransport: what the flasher needs from USB, as an interface (STYLE 11), so the protocol
// code above it knows nothing of libusb. LibusbTransport (libusb_transport.h) is the one
// implementation; tests run it through the simulator's virtual USB (umockdev + real libusb).
//
// Every call returns a UsbStatus: kNone on success, else the kind of failure and a message
// ("LIBUSB_ERROR_NO_DEVICE: ..."). A kGone status means the device left the bus.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "host/expected.h"

namespace onedfu::flasher {

enum class UsbError : uint8_t {
  kNone,
  kGone,     // the device is no longer on the bus
  kStall,    // the device stalled the request (DFU: it went to dfuERROR)
  kTimeout,
  kAccess,   // no permission to open the device node
  kBusy,     // another program holds the interface
  kOther,
};

struct UsbStatus {
  UsbError error = UsbError::kNone;
  std::string message;
  bool ok() const { return error == UsbError::kNone; }
};

// One USB device with a DFU interface (class 0xfe, subclass 1), as enumeration sees it.
struct UsbDevice {
  std::string path;  // "BUS-PORT[.PORT...]", e.g. "1-1" (dfu-util's path)
  uint8_t bus = 0;
  uint8_t address = 0;
  uint16_t vid = 0;
  uint16_t pid = 0;
  uint16_t bcd_device = 0;
  std::string manufacturer;  // "" when unreadable
  std::string product;
  std::string serial;
  bool dfu_mode = false;     // interface protocol 2 (DFU mode); false: 1 (application runtime)
  uint8_t interface = 0;
  uint8_t alt = 0;
  std::string interface_name;  // iInterface: the DfuSe layout in DFU mode
  uint8_t attributes = 0;      // functional descriptor bmAttributes
  uint16_t detach_timeout_ms = 0;
  uint16_t transfer_size = 0;  // wTransferSize, bytes
  std::string open_error;      // why the strings could not be read (e.g. no permission)
  bool access_denied = false;  // open_error is a lack of permission (LIBUSB_ERROR_ACCESS)

  bool will_detach() const { return (attributes & 0x08) != 0; }
  // "1-1 0483:df11 serial SIM000000001"
  std::string Describe() const;
  // The usbfs device node libusb opens, "/dev/bus/usb/001/002".
  std::string Node() const;
};

class DfuTransport {
 public:
  virtual ~DfuTransport() = default;

  // Every DFU-capable device on the bus, in bus order. Strings are read by opening each device
  // briefly; a device that cannot be opened is still listed, with open_error set.
  virtual host::Expected<std::vector<UsbDevice>> Enumerate() = 0;
  // Opens `device` (matched by bus and address), claims its DFU interface, selects its alt.
  virtual UsbStatus Open(const UsbDevice& device) = 0;
  // Releases the interface and closes the device; harmless when nothing is open.
  virtual void Close() = 0;
  // Class request to the DFU interface (bmRequestType 0x21) with `data` as the OUT stage.
  virtual UsbStatus ControlOut(uint8_t request, uint16_t value, std::span<const uint8_t> data) = 0;
  // Class request from the DFU interface (0xa1); *length = bytes received.
  virtual UsbStatus ControlIn(uint8_t request, uint16_t value, std::span<uint8_t> data, size_t* length) = 0;
  // String descriptor `index` of the open device, as ASCII.
  virtual UsbStatus ReadString(uint8_t index, std::string* text) = 0;
  // USB bus reset of the open device (it may re-enumerate; kGone then counts as success).
  virtual UsbStatus Reset() = 0;
  // Waits up to `timeout_ms` for a device to arrive on the bus (hotplug where the
  // implementation has it); returns true when one arrived, false after the timeout. Callers
  // Enumerate() either way. Default: no hotplug, sleeps the whole timeout.
  virtual bool WaitForDeviceChange(uint32_t timeout_ms);
};

}  // namespace onedfu::flasher
