// The USB control-transfer vocabulary the bootloader core speaks with its
// port (the real USB driver on the MCU, the simulator's virtual USB on a host).
// The core never touches hardware: the port hands over a SETUP packet and the
// OUT data stage, and sends back what the core returns.
#pragma once

#include <cstdint>

#include "runtime/byte_reader.h"

namespace onedfu::bootloader {

// The 8-byte SETUP packet, fields in host byte order.
struct SetupPacket {
  uint8_t bmRequestType = 0;  // bit 7: 1 = IN (device to host); bits 6..5 type; 4..0 recipient
  uint8_t bRequest = 0;
  uint16_t wValue = 0;
  uint16_t wIndex = 0;
  uint16_t wLength = 0;  // data stage length, bytes

  bool IsIn() const { return (bmRequestType & 0x80) != 0; }
  uint8_t Type() const { return (bmRequestType >> 5) & 3; }       // 0 standard, 1 class, 2 vendor
  uint8_t Recipient() const { return bmRequestType & 0x1f; }      // 0 device, 1 interface, 2 endpoint
};

// Decodes 8 wire bytes (little-endian fields).
SetupPacket ParseSetup(const uint8_t bytes[8]);

// The core's answer to one control transfer.
struct ControlReply {
  bool stall = false;    // refuse: the port STALLs the data or status stage
  uint16_t length = 0;   // IN: bytes placed at the start of data_in (<= wLength)
  // The port must reset the device (run the boot decision again) once the
  // status stage of THIS transfer has gone out to the host, never before:
  // dfu-util reads the leave GETSTATUS reply and fails if it is lost.
  bool reset_after_status = false;

  static constexpr ControlReply Stall() { return ControlReply{true, 0, false}; }
  static constexpr ControlReply Ack(uint16_t in_length = 0) { return ControlReply{false, in_length, false}; }
};

// Standard request codes (USB 2.0 table 9-4) and descriptor types.
inline constexpr uint8_t kGetStatus = 0;
inline constexpr uint8_t kClearFeature = 1;
inline constexpr uint8_t kSetFeature = 3;
inline constexpr uint8_t kSetAddress = 5;
inline constexpr uint8_t kGetDescriptor = 6;
inline constexpr uint8_t kGetConfiguration = 8;
inline constexpr uint8_t kSetConfiguration = 9;
inline constexpr uint8_t kGetInterface = 10;
inline constexpr uint8_t kSetInterface = 11;

inline constexpr uint8_t kDescriptorDevice = 1;
inline constexpr uint8_t kDescriptorConfiguration = 2;
inline constexpr uint8_t kDescriptorString = 3;
inline constexpr uint8_t kDescriptorInterface = 4;
inline constexpr uint8_t kDescriptorDfuFunctional = 0x21;

}  // namespace onedfu::bootloader
