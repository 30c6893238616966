#include "recording_device.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "bootloader/descriptors.h"
#include "bootloader/dfu.h"
#include "bootloader/usb.h"
#include "runtime/diag.h"

namespace onedfu::sim {
namespace {

using bootloader::DfuRequest;
using bootloader::DfuState;
using bootloader::DfuStatus;

constexpr uint8_t kTypeClass = 1;

bool IsDfuRequest(const SetupPacket& s, DfuRequest request) {
  return ((s.bmRequestType >> 5) & 3) == kTypeClass && s.bRequest == static_cast<uint8_t>(request);
}

std::string Hex(std::span<const uint8_t> bytes) {
  std::string out;
  char b[4];
  for (size_t i = 0; i < bytes.size() && i < 16; ++i) {
    std::snprintf(b, sizeof b, i ? " %02x" : "%02x", bytes[i]);
    out += b;
  }
  if (bytes.size() > 16) out += " ...";
  return out;
}

// "stall", "dfuDNLOAD-IDLE/OK" for a GETSTATUS reply, else the reply bytes in hex.
std::string DescribeReply(const SetupPacket& setup, bool stall, std::span<const uint8_t> in) {
  if (stall) return "STALL";
  if (IsDfuRequest(setup, DfuRequest::kGetStatus) && in.size() == bootloader::kStatusLength) {
    return std::string(bootloader::DfuStateName(static_cast<DfuState>(in[4]))) + "/" +
           bootloader::DfuStatusName(static_cast<DfuStatus>(in[0]));
  }
  if (!setup.IsIn()) return "ACK";
  return "[" + Hex(in) + "]";
}

// One event into the port. For control transfers, fills *stall / *reply with the answer.
// Returns true when the device now leaves to reset.
bool Deliver(DfuPort& port, const UsbEvent& event, bool* stall, std::vector<uint8_t>* reply) {
  *stall = false;
  reply->clear();
  switch (event.kind) {
    case UsbEvent::Kind::kSetInterface:
      *stall = !port.SetInterface(static_cast<uint8_t>(event.setup.wIndex), static_cast<uint8_t>(event.setup.wValue));
      return false;
    case UsbEvent::Kind::kReset:
      return port.BusReset();
    case UsbEvent::Kind::kPlug:  // enumeration reads the descriptors from sysfs: nothing to deliver
      return false;
    case UsbEvent::Kind::kControl:
      break;
  }
  const SetupPacket& s = event.setup;
  if (s.IsIn()) reply->assign(s.wLength, 0);
  const ControlReply r = port.HandleControl(s, s.IsIn() ? std::span<const uint8_t>() : std::span<const uint8_t>(event.data_out),
                                            std::span<uint8_t>(*reply));
  *stall = r.stall;
  reply->resize(r.stall || !s.IsIn() ? 0 : r.length);
  return r.reset_after_status;
}

}  // namespace

std::string DescribeEvent(const UsbEvent& event) {
  const SetupPacket& s = event.setup;
  switch (event.kind) {
    case UsbEvent::Kind::kSetInterface:
      return "SET_INTERFACE " + std::to_string(s.wIndex) + "/" + std::to_string(s.wValue);
    case UsbEvent::Kind::kReset:
      return "bus reset";
    case UsbEvent::Kind::kPlug:
      return PlugsInDfuMode(event) ? "plug-in (DFU mode)" : "plug-in (not DFU mode)";
    case UsbEvent::Kind::kControl:
      break;
  }
  static const char* const kDfuNames[] = {"DETACH", "DNLOAD", "UPLOAD", "GETSTATUS", "CLRSTATUS", "GETSTATE", "ABORT"};
  if (((s.bmRequestType >> 5) & 3) == kTypeClass && s.bRequest < 7) {
    std::string text = kDfuNames[s.bRequest];
    if (IsDfuRequest(s, DfuRequest::kDnload) || IsDfuRequest(s, DfuRequest::kUpload)) {
      text += " block " + std::to_string(s.wValue) + " (" + std::to_string(s.wLength) + " bytes";
      if (IsDfuRequest(s, DfuRequest::kDnload) && s.wValue == 0 && !event.data_out.empty()) {
        text += ": " + Hex(event.data_out);
      }
      text += ")";
    }
    return text;
  }
  if (s.bmRequestType == 0x80 && s.bRequest == bootloader::kGetDescriptor) {
    return "GET_DESCRIPTOR type " + std::to_string(s.wValue >> 8) + " index " + std::to_string(s.wValue & 0xff);
  }
  char b[64];
  std::snprintf(b, sizeof b, "request %02x/%02x value %04x index %04x length %u", s.bmRequestType, s.bRequest,
                s.wValue, s.wIndex, static_cast<unsigned>(s.wLength));
  return b;
}

bool PlugsInDfuMode(const UsbEvent& event) {
  if (event.kind != UsbEvent::Kind::kPlug) return false;
  // Walk the configuration's descriptors (after the 18-byte device descriptor) for an interface.
  const std::vector<uint8_t>& d = event.data_in;
  for (size_t at = bootloader::kDeviceDescriptorSize; at + 1 < d.size() && d[at] >= 2; at += d[at]) {
    if (d[at + 1] != bootloader::kDescriptorInterface || at + 8 > d.size() || d[at] < 9) continue;
    if (d[at + 5] == 0xfe && d[at + 6] == 1 && d[at + 7] == 2) return true;
  }
  return false;
}

UsbStream RecordingDevice::TakeStream() { return std::exchange(stream_, {}); }

std::vector<uint8_t> RecordingDevice::DeviceAndConfigDescriptors() {
  std::vector<uint8_t> descriptors = inner_.DeviceAndConfigDescriptors();
  UsbEvent event;
  event.kind = UsbEvent::Kind::kPlug;
  event.data_in = descriptors;
  stream_.push_back(std::move(event));
  return descriptors;
}

ControlReply RecordingDevice::HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                                            std::span<uint8_t> data_in) {
  const ControlReply reply = inner_.HandleControl(setup, data_out, data_in);
  UsbEvent event;
  event.kind = UsbEvent::Kind::kControl;
  event.setup = setup;
  event.data_out.assign(data_out.begin(), data_out.end());
  event.stall = reply.stall;
  if (!reply.stall && setup.IsIn()) {
    const size_t n = std::min<size_t>(reply.length, data_in.size());
    event.data_in.assign(data_in.begin(), data_in.begin() + static_cast<std::ptrdiff_t>(n));
  }
  stream_.push_back(std::move(event));
  return reply;
}

void RecordingDevice::OnSetInterface(uint8_t iface, uint8_t alt) {
  inner_.OnSetInterface(iface, alt);
  UsbEvent event;
  event.kind = UsbEvent::Kind::kSetInterface;
  event.setup.bmRequestType = 0x01;
  event.setup.bRequest = bootloader::kSetInterface;
  event.setup.wValue = alt;
  event.setup.wIndex = iface;
  stream_.push_back(std::move(event));
}

bool RecordingDevice::OnReset() {
  const bool left = inner_.OnReset();
  UsbEvent event;
  event.kind = UsbEvent::Kind::kReset;
  stream_.push_back(std::move(event));
  return left;
}

ReplayResult ReplayStream(DfuPort& port, const UsbStream& stream, const ReplayOptions& options) {
  ReplayResult result;
  bool stall = false;
  std::vector<uint8_t> reply;
  for (size_t i = options.first; i < stream.size() && i < options.last; ++i) {
    const UsbEvent& event = stream[i];
    const bool left = Deliver(port, event, &stall, &reply);
    result.events = i + 1;
    if (options.compare && !result.diverged && event.kind == UsbEvent::Kind::kControl) {
      const bool class_request = ((event.setup.bmRequestType >> 5) & 3) == kTypeClass;
      if (stall != event.stall || (class_request && reply != event.data_in)) {
        result.diverged = true;
        result.diverged_at = i;
        result.divergence = "event " + std::to_string(i) + " " + DescribeEvent(event) + ": replied " +
                            DescribeReply(event.setup, stall, reply) + ", recorded " +
                            DescribeReply(event.setup, event.stall, event.data_in) + " (device status: \"" +
                            port.dfu().status_text() + "\")";
      }
    }
    if (options.stop && options.stop()) {
      result.end = ReplayEnd::kStopped;
      return result;
    }
    if (left) {
      result.end = ReplayEnd::kLeft;
      return result;
    }
  }
  result.end = ReplayEnd::kEndOfStream;
  return result;
}

}  // namespace onedfu::sim
