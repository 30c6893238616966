#include "usbdevfs.h"

#include <linux/usb/ch9.h>
#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <utility>

namespace onedfu::sim {
namespace {

constexpr size_t kSetupSize = 8;
constexpr size_t kDeviceDescriptorSize = 18;
constexpr size_t kConfigHeaderSize = 9;

// Capabilities reported by GET_CAPABILITIES. REAP_AFTER_DISCONNECT matters: it tells libusb
// that completed URBs can still be reaped after the device left. No scatter-gather, mmap or
// streams (not emulated).
constexpr uint32_t kCapabilities = USBDEVFS_CAP_ZERO_PACKET | USBDEVFS_CAP_BULK_CONTINUATION |
                                   USBDEVFS_CAP_NO_PACKET_SIZE_LIM |
                                   USBDEVFS_CAP_REAP_AFTER_DISCONNECT;

UsbdevfsReply Ok(long result = 0) { return UsbdevfsReply{result, 0}; }
UsbdevfsReply Fail(int error) { return UsbdevfsReply{-1, error}; }

uint16_t LoadLe16(const uint8_t* bytes) { return static_cast<uint16_t>(bytes[0] | (bytes[1] << 8)); }

std::string Printf(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* format, ...) {
  char text[256];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof text, format, args);
  va_end(args);
  return text;
}

}  // namespace

std::string CheckDescriptors(std::span<const uint8_t> desc) {
  if (desc.size() < kDeviceDescriptorSize + kConfigHeaderSize) {
    return Printf("descriptors are %zu bytes, need at least %zu (device + configuration)", desc.size(),
                  kDeviceDescriptorSize + kConfigHeaderSize);
  }
  if (desc[0] != kDeviceDescriptorSize || desc[1] != USB_DT_DEVICE) {
    return "descriptors do not start with an 18-byte device descriptor";
  }
  const uint8_t* config = desc.data() + kDeviceDescriptorSize;
  if (config[0] != kConfigHeaderSize || config[1] != USB_DT_CONFIG) {
    return "no 9-byte configuration descriptor at offset 18";
  }
  const size_t total = LoadLe16(config + 2);
  if (kDeviceDescriptorSize + total > desc.size()) {
    return Printf("configuration wTotalLength %zu runs past the %zu descriptor bytes", total,
                  desc.size() - kDeviceDescriptorSize);
  }
  return {};
}

UsbdevfsDevice::UsbdevfsDevice(UsbDeviceModel& model, int devnum, uint8_t num_interfaces, std::string devnode,
                               UsbdevfsStats& stats, Trace trace)
    : model_(model),
      devnum_(devnum),
      num_interfaces_(num_interfaces),
      devnode_(std::move(devnode)),
      stats_(stats),
      trace_(std::move(trace)) {}

UsbdevfsDevice::Client& UsbdevfsDevice::ClientFor(const void* key) {
  auto it = clients_.find(key);
  if (it != clients_.end()) return it->second;
  ++stats_.opens;
  Log("open");
  return clients_.emplace(key, Client{}).first->second;
}

UsbdevfsReply UsbdevfsDevice::Ioctl(Client& client, unsigned long request, ClientMemory& arg, bool* depart) {
  switch (request) {
    case USBDEVFS_REAPURB:
    case USBDEVFS_REAPURBNDELAY:
      return ReapUrb(client, arg);
    case USBDEVFS_DISCARDURB:
      // Every URB completes during SUBMITURB, so nothing is ever in flight to discard.
      return Fail(EINVAL);
    case USBDEVFS_RELEASEINTERFACE:
      return ReleaseInterface(client, arg);
    case USBDEVFS_GET_CAPABILITIES: {
      std::unique_ptr<ClientMemory> caps = arg.Follow(0, sizeof(uint32_t));
      if (!caps) return Fail(EFAULT);
      std::memcpy(caps->data(), &kCapabilities, sizeof(kCapabilities));
      return Ok();
    }
    default:
      break;
  }
  if (gone_) return Fail(ENODEV);
  switch (request) {
    case USBDEVFS_SUBMITURB:
      return SubmitUrb(client, arg, depart);
    case USBDEVFS_CONTROL:
      return SyncControl(arg, depart);
    case USBDEVFS_CLAIMINTERFACE: {
      std::unique_ptr<ClientMemory> iface = arg.Follow(0, sizeof(unsigned int));
      if (!iface) return Fail(EFAULT);
      unsigned int value = 0;
      std::memcpy(&value, iface->data(), sizeof value);
      return Claim(client, value);
    }
    case USBDEVFS_DISCONNECT_CLAIM: {
      std::unique_ptr<ClientMemory> claim = arg.Follow(0, sizeof(usbdevfs_disconnect_claim));
      if (!claim) return Fail(EFAULT);
      return Claim(client, reinterpret_cast<usbdevfs_disconnect_claim*>(claim->data())->interface);
    }
    case USBDEVFS_SETINTERFACE:
      return SetInterface(client, arg);
    case USBDEVFS_SETCONFIGURATION: {
      std::unique_ptr<ClientMemory> value = arg.Follow(0, sizeof(int));
      if (!value) return Fail(EFAULT);
      int config = 0;
      std::memcpy(&config, value->data(), sizeof config);
      Log(Printf("SET_CONFIGURATION %d", config));
      return (config == 1 || config == 0 || config == -1) ? Ok() : Fail(EINVAL);
    }
    case USBDEVFS_RESET:
      return Reset(depart);
    case USBDEVFS_CONNECTINFO: {
      std::unique_ptr<ClientMemory> info = arg.Follow(0, sizeof(usbdevfs_connectinfo));
      if (!info) return Fail(EFAULT);
      auto* connect_info = reinterpret_cast<usbdevfs_connectinfo*>(info->data());
      connect_info->devnum = static_cast<unsigned int>(devnum_);
      connect_info->slow = 0;
      return Ok();
    }
    case USBDEVFS_GETDRIVER:
      return Fail(ENODATA);  // no kernel driver is bound to any interface
    case USBDEVFS_IOCTL: {
      std::unique_ptr<ClientMemory> command = arg.Follow(0, sizeof(usbdevfs_ioctl));
      if (!command) return Fail(EFAULT);
      const int code = reinterpret_cast<usbdevfs_ioctl*>(command->data())->ioctl_code;
      if (code == static_cast<int>(USBDEVFS_DISCONNECT)) return Fail(ENODATA);
      if (code == static_cast<int>(USBDEVFS_CONNECT)) return Ok();
      return Fail(ENOTTY);
    }
    case USBDEVFS_GET_SPEED:
      return Ok(USB_SPEED_FULL);
    case USBDEVFS_CLEAR_HALT:
    case USBDEVFS_RESETEP:
      return Ok();
    default:
      Log(Printf("unsupported ioctl 0x%lx", request));
      return Fail(ENOTTY);
  }
}

UsbdevfsReply UsbdevfsDevice::Claim(Client& client, unsigned int iface) {
  if (iface >= num_interfaces_ || iface >= 32) return Fail(ENOENT);
  client.claimed |= 1u << iface;
  Log(Printf("claim interface %u", iface));
  return Ok();
}

UsbdevfsReply UsbdevfsDevice::ReleaseInterface(Client& client, ClientMemory& arg) {
  std::unique_ptr<ClientMemory> value = arg.Follow(0, sizeof(unsigned int));
  if (!value) return Fail(EFAULT);
  unsigned int iface = 0;
  std::memcpy(&iface, value->data(), sizeof iface);
  if (iface >= 32 || (client.claimed & (1u << iface)) == 0) return Fail(EINVAL);
  client.claimed &= ~(1u << iface);
  if (gone_) return Fail(ENODEV);
  return Ok();
}

UsbdevfsReply UsbdevfsDevice::SetInterface(Client& client, ClientMemory& arg) {
  std::unique_ptr<ClientMemory> value = arg.Follow(0, sizeof(usbdevfs_setinterface));
  if (!value) return Fail(EFAULT);
  const auto* request = reinterpret_cast<usbdevfs_setinterface*>(value->data());
  if (request->interface >= num_interfaces_ || request->altsetting > 255) return Fail(EINVAL);
  client.claimed |= 1u << request->interface;  // the kernel claims it implicitly, too
  Log(Printf("SET_INTERFACE %u alt %u", request->interface, request->altsetting));
  try {
    model_.OnSetInterface(static_cast<uint8_t>(request->interface), static_cast<uint8_t>(request->altsetting));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "usb: device model OnSetInterface threw: %s\n", e.what());
    return Fail(EPIPE);
  }
  return Ok();
}

UsbdevfsReply UsbdevfsDevice::Reset(bool* depart) {
  Log("RESET");
  try {
    *depart = model_.OnReset();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "usb: device model OnReset threw: %s\n", e.what());
  }
  for (auto& [key, client] : clients_) client.claimed = 0;
  // The kernel reports a device that re-enumerates as another device with ENODEV.
  return *depart ? Fail(ENODEV) : Ok();
}

// One control transfer through the model. `stage` is the data stage (wLength bytes): input for
// OUT, output for IN. Returns the model's answer with `length` clamped and 0 for OUT.
ControlReply UsbdevfsDevice::Transfer(const SetupPacket& setup, std::span<uint8_t> stage, bool* depart) {
  ControlReply result;
  try {
    result = setup.IsIn() ? model_.HandleControl(setup, {}, stage) : model_.HandleControl(setup, stage, {});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "usb: device model HandleControl threw: %s\n", e.what());
    result = ControlReply::Stall();
  }
  if (!setup.IsIn() || result.stall) result.length = 0;
  if (result.length > stage.size()) result.length = static_cast<uint16_t>(stage.size());

  ++stats_.control_transfers;
  if (result.stall) {
    ++stats_.stalls;
  } else if (setup.IsIn()) {
    stats_.bytes_in += result.length;
  } else {
    stats_.bytes_out += setup.wLength;
  }
  Log(Printf("ctrl %02x %02x %04x %04x %04x -> %s %u", setup.bmRequestType, setup.bRequest, setup.wValue,
             setup.wIndex, setup.wLength, result.stall ? "STALL" : "ok", static_cast<unsigned>(result.length)));
  *depart = result.reset_after_status;
  return result;
}

UsbdevfsReply UsbdevfsDevice::SubmitUrb(Client& client, ClientMemory& arg, bool* depart) {
  std::unique_ptr<ClientMemory> urb_memory = arg.Follow(0, sizeof(usbdevfs_urb));
  if (!urb_memory) return Fail(EFAULT);
  auto* urb = reinterpret_cast<usbdevfs_urb*>(urb_memory->data());
  if (urb->type != USBDEVFS_URB_TYPE_CONTROL || (urb->endpoint & 0x7f) != 0) {
    return Fail(ENOENT);  // only endpoint 0 exists
  }
  if (urb->buffer_length < static_cast<int>(kSetupSize)) return Fail(EINVAL);
  std::unique_ptr<ClientMemory> buffer =
      urb_memory->Follow(offsetof(usbdevfs_urb, buffer), static_cast<size_t>(urb->buffer_length));
  if (!buffer) return Fail(EFAULT);
  uint8_t* bytes = buffer->data();
  const SetupPacket setup = bootloader::ParseSetup(bytes);
  if (setup.wLength > static_cast<size_t>(urb->buffer_length) - kSetupSize) return Fail(EINVAL);

  const ControlReply result = Transfer(setup, std::span<uint8_t>(bytes + kSetupSize, setup.wLength), depart);
  urb->error_count = 0;
  if (result.stall) {
    urb->status = -EPIPE;
    urb->actual_length = 0;
  } else {
    urb->actual_length = static_cast<int>(setup.IsIn() ? result.length : setup.wLength);
    const bool short_in = setup.IsIn() && result.length < setup.wLength;
    urb->status = (short_in && (urb->flags & USBDEVFS_URB_SHORT_NOT_OK) != 0) ? -EREMOTEIO : 0;
  }
  client.completed.push_back(urb_memory->client_address());
  return Ok();
}

UsbdevfsReply UsbdevfsDevice::ReapUrb(Client& client, ClientMemory& arg) {
  if (client.completed.empty()) return Fail(gone_ ? ENODEV : EAGAIN);
  std::unique_ptr<ClientMemory> slot = arg.Follow(0, sizeof(void*));
  if (!slot) return Fail(EFAULT);
  const uint64_t address = client.completed.front();
  static_assert(sizeof(void*) == sizeof(uint64_t));
  std::memcpy(slot->data(), &address, sizeof(address));
  client.completed.pop_front();
  return Ok();
}

UsbdevfsReply UsbdevfsDevice::SyncControl(ClientMemory& arg, bool* depart) {
  std::unique_ptr<ClientMemory> transfer_memory = arg.Follow(0, sizeof(usbdevfs_ctrltransfer));
  if (!transfer_memory) return Fail(EFAULT);
  auto* transfer = reinterpret_cast<usbdevfs_ctrltransfer*>(transfer_memory->data());
  SetupPacket setup;
  setup.bmRequestType = transfer->bRequestType;
  setup.bRequest = transfer->bRequest;
  setup.wValue = transfer->wValue;
  setup.wIndex = transfer->wIndex;
  setup.wLength = transfer->wLength;
  std::unique_ptr<ClientMemory> stage_memory;
  std::span<uint8_t> stage;
  if (setup.wLength > 0) {
    stage_memory = transfer_memory->Follow(offsetof(usbdevfs_ctrltransfer, data), setup.wLength);
    if (!stage_memory) return Fail(EFAULT);
    stage = std::span<uint8_t>(stage_memory->data(), setup.wLength);
  }
  const ControlReply result = Transfer(setup, stage, depart);
  if (result.stall) return Fail(EPIPE);
  return Ok(static_cast<long>(setup.IsIn() ? result.length : setup.wLength));
}

}  // namespace onedfu::sim
