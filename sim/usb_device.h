// The device side of the simulator's virtual USB: what a simulated USB device must answer.
//
// A transport (UmockdevUsb, or an in-process replay) owns the bus and calls a UsbDeviceModel for
// every request the host makes. The model is the firmware's view of USB: it sees the SETUP
// packet and the data stage, exactly as a device controller would hand them over, and nothing of
// the host side (file descriptors, URBs, libusb). One model instance lives across re-plugs: a
// DFU device that detaches into its bootloader is the same model returning other descriptors.
//
// Threading: calls come one at a time, but not necessarily on the thread that created the
// transport (UmockdevUsb calls from umockdev's ioctl thread while RunCommand blocks).
// Host code: may allocate and use the STL; must not throw out of these calls (the transport
// treats an escaping exception as a STALL and logs it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace onedfu::sim {

// The 8-byte SETUP packet of a control transfer, fields in host byte order.
struct SetupPacket {
  uint8_t bmRequestType = 0;  // bit 7: direction (1 = device-to-host, IN); bits 6..5: type; 4..0: recipient
  uint8_t bRequest = 0;
  uint16_t wValue = 0;
  uint16_t wIndex = 0;
  uint16_t wLength = 0;  // length of the data stage in bytes (OUT: bytes sent; IN: bytes asked for)

  // True for device-to-host (IN) requests.
  bool IsIn() const { return (bmRequestType & 0x80) != 0; }
};

// The device's answer to one control transfer.
struct ControlResult {
  bool stall = false;  // true: the request is refused (the host sees a STALL / EPIPE)
  size_t length = 0;   // IN transfers: bytes written into data_in (at most data_in.size());
                       // ignored for OUT transfers (the whole data stage is always accepted)

  static ControlResult Stall() { return ControlResult{true, 0}; }
  static ControlResult Ack(size_t in_length = 0) { return ControlResult{false, in_length}; }
};

// A simulated USB device (full speed, one configuration, control endpoint 0 only).
class UsbDeviceModel {
 public:
  virtual ~UsbDeviceModel() = default;

  // The bytes of the sysfs `descriptors` attribute: the 18-byte device descriptor followed by the
  // full configuration descriptor (wTotalLength bytes: configuration, interfaces, functional and
  // endpoint descriptors). The host reads device and configuration descriptors from here, never
  // through control transfers; string descriptors go through HandleControl.
  // Called each time the device is plugged in (first attach and every re-plug), so a model may
  // return other descriptors after a mode change. An empty vector means "nothing enumerates":
  // the device stays unplugged after it left (e.g. a board that boots into firmware without USB).
  virtual std::vector<uint8_t> DeviceAndConfigDescriptors() = 0;

  // One control transfer on endpoint 0: standard requests (GET_DESCRIPTOR for strings,
  // GET_STATUS, ...) and class requests (DFU). For OUT requests data_out holds the wLength
  // bytes of the data stage and data_in is empty; for IN requests data_out is empty and data_in
  // has room for wLength bytes: write the reply there and return its length (a shorter reply is
  // a short transfer, as on the wire). Return ControlResult::Stall() to refuse.
  // SET_INTERFACE, SET_CONFIGURATION and bus reset do not come here; see below.
  virtual ControlResult HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                                      std::span<uint8_t> data_in) = 0;

  // The host selected alternate setting `alt` of interface `iface` (SET_INTERFACE).
  virtual void OnSetInterface(uint8_t iface, uint8_t alt) {
    (void)iface;
    (void)alt;
  }

  // The host reset the port (USB bus reset). Called before WantsDisconnect() is polled.
  virtual void OnReset() {}

  // Polled once after every request (control transfer, SET_INTERFACE, reset). Return true once
  // per departure, when the device leaves the bus (DFU manifestation/leave, DETACH, reset into
  // another mode); each true the transport sees is one departure, so consume the flag, e.g.
  // `return std::exchange(leave_pending_, false);`. The transport first delivers the reply to
  // the request that triggered it, then removes the device and plugs it in again as a new
  // device (next address) with fresh DeviceAndConfigDescriptors().
  virtual bool WantsDisconnect() { return false; }
};

}  // namespace onedfu::sim
