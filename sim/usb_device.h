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

#include "bootloader/usb.h"

namespace onedfu::sim {

// The control-transfer vocabulary is the bootloader core's (bootloader/usb.h): the SETUP packet
// and the reply, whose reset_after_status says the device leaves the bus once the reply is out.
using bootloader::ControlReply;
using bootloader::SetupPacket;

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
  // a short transfer, as on the wire). Return ControlReply::Stall() to refuse. A reply with
  // reset_after_status makes the device leave the bus once the reply is out (DFU leave,
  // DETACH with WillDetach): the transport delivers the reply, then removes the device and
  // plugs it in again as a new device (next address) with fresh DeviceAndConfigDescriptors().
  // SET_INTERFACE, SET_CONFIGURATION and bus reset do not come here; see below.
  virtual ControlReply HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                                     std::span<uint8_t> data_in) = 0;

  // The host selected alternate setting `alt` of interface `iface` (SET_INTERFACE).
  virtual void OnSetInterface(uint8_t iface, uint8_t alt) {
    (void)iface;
    (void)alt;
  }

  // The host reset the port (USB bus reset). Return true when the device leaves the bus now
  // (it re-enumerates, e.g. into another mode); the transport then re-plugs it as above.
  virtual bool OnReset() { return false; }

  // Modeled device time spent so far, microseconds (the board's cost model: erases, programs,
  // bus time). The transport's real-time mode holds each answer back by how much this grew
  // while the request ran. 0 for a model without timing.
  virtual uint64_t ModeledUs() const { return 0; }
};

}  // namespace onedfu::sim
