// What TransportTestModel (transport_test_model.h) answers, shared with the libusb test client.
// It is a transport test model, NOT a DFU device: a vendor-class device whose requests exercise
// what the umockdev transport must carry and the DFU bootloader does not offer (an arbitrary
// OUT data stage echoed back IN, leaving the bus on request, re-enumerating at a bus reset, a
// fresh serial per plug-in so a client can tell a new device from the old one).
#pragma once

#include <cstddef>
#include <cstdint>

namespace onedfu::transport_test {

inline constexpr uint16_t kVendorId = 0x1209;   // pid.codes
inline constexpr uint16_t kProductId = 0x0001;  // pid.codes test PID
// Vendor requests to the device (bmRequestType 0x40 OUT / 0xc0 IN).
inline constexpr uint8_t kEchoRequest = 0x01;   // OUT: store up to kEchoCapacity bytes; IN: return them
inline constexpr uint8_t kLeaveRequest = 0x02;  // OUT, no data: acknowledged, then the device leaves
inline constexpr size_t kEchoCapacity = 256;
// String descriptors: 1 manufacturer, 2 product, 3 serial "PLUG-<plug count>", 4 the interface.
inline constexpr const char* kInterfaceString = "onedfu transport test interface";

}  // namespace onedfu::transport_test
