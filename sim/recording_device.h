// RecordingDevice and ReplayStream: record what a real host tool asks of the bootloader over
// the virtual USB once, then replay those requests in-process as often as needed (the power-cut
// sweep of `onedfu-sim powercut`, DESIGN.md 7 rule 5).
//
// RecordingDevice is a decorator over a UsbDeviceModel (usb_device.h; for powercut a
// DfuModeDevice, the bootloader core in DFU mode over caller-owned flash): it passes every request
// on and appends it to a UsbStream: control transfers (SETUP packet, OUT data stage, and the
// reply the device gave), SET_INTERFACE, bus resets, and every plug-in (the descriptors the
// device enumerated with: a board that changes mode between application and DFU shows where).
//
// ReplayStream feeds a recorded stream to a DfuPort (dfu_port.h, the port that drives the
// bootloader core) and compares every reply with the recorded one, so a replay that drifts
// from what the host saw is reported, never silently accepted.
//
// Host only (STL); never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dfu_port.h"
#include "usb_device.h"

namespace onedfu::sim {

// One request the device saw, in arrival order.
struct UsbEvent {
  enum class Kind : uint8_t {
    kControl,       // a control transfer on endpoint 0
    kSetInterface,  // SET_INTERFACE: setup.wIndex = interface, setup.wValue = alternate setting
    kReset,         // USB bus reset
    kPlug,          // the device plugged in (first attach or re-plug): data_in = its descriptors
  };
  Kind kind = Kind::kControl;
  SetupPacket setup;
  std::vector<uint8_t> data_out;  // kControl OUT: the data stage (wLength bytes)
  bool stall = false;             // kControl: the device answered STALL
  std::vector<uint8_t> data_in;   // kControl IN: the reply bytes (actual length)
};

using UsbStream = std::vector<UsbEvent>;

// A kPlug event whose descriptors hold a DFU-mode interface (class 0xfe, subclass 1, protocol 2),
// not the application's DFU runtime one (protocol 1).
bool PlugsInDfuMode(const UsbEvent& event);

// "GETSTATUS", "DNLOAD block 2 (2048 bytes)", "GET_DESCRIPTOR string 4", "SET_INTERFACE 0/0", ...
std::string DescribeEvent(const UsbEvent& event);

class RecordingDevice final : public UsbDeviceModel {
 public:
  // `inner` (e.g. a DfuModeDevice) must outlive this object.
  explicit RecordingDevice(UsbDeviceModel& inner) : inner_(inner) {}

  // The events recorded since the last call (or construction); clears the recording.
  UsbStream TakeStream();

  std::vector<uint8_t> DeviceAndConfigDescriptors() override;
  ControlReply HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                             std::span<uint8_t> data_in) override;
  void OnSetInterface(uint8_t iface, uint8_t alt) override;
  bool OnReset() override;

 private:
  UsbDeviceModel& inner_;
  UsbStream stream_;
};

// How a replay ended.
enum class ReplayEnd : uint8_t {
  kLeft,         // the device left to reset (leave GETSTATUS answered, or reset after leave)
  kEndOfStream,  // every event replayed without the device leaving
  kStopped,      // ReplayOptions::stop returned true (e.g. the power went out)
};

struct ReplayOptions {
  // Compare each reply (stall flag; reply bytes of DFU class requests) with the recording.
  bool compare = true;
  // Checked after every event (and its Poll); true ends the replay with kStopped.
  std::function<bool()> stop;
  // The events delivered: stream[first, last) (a replay resumed from a checkpoint starts
  // later; one that must stop before an event ends earlier, with kEndOfStream).
  size_t first = 0;
  size_t last = SIZE_MAX;
};

struct ReplayResult {
  ReplayEnd end = ReplayEnd::kEndOfStream;
  size_t events = 0;  // index after the last event delivered (the one that ended the replay included)
  // The first reply that differed from the recording (compare only).
  bool diverged = false;
  size_t diverged_at = 0;   // event index
  std::string divergence;   // e.g. "event 57 GETSTATUS: replied dfuERROR/errERASE, recorded ..."
};

// Delivers `stream` to `port` (see the file comment). Events after the device left are not
// delivered (that is another boot).
ReplayResult ReplayStream(DfuPort& port, const UsbStream& stream, const ReplayOptions& options);

}  // namespace onedfu::sim
