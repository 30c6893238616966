// The usbdevfs protocol of one simulated USB device, without umockdev: what the Linux kernel's
// /dev/bus/usb/BBB/DDD node answers to libusb's ioctls (SUBMITURB / REAPURB[NDELAY] /
// DISCARDURB for control transfers on endpoint 0, CLAIM/RELEASE INTERFACE, SETINTERFACE,
// SETCONFIGURATION, RESET, GET_CAPABILITIES, CONNECTINFO, GETDRIVER, IOCTL,
// DISCONNECT_CLAIM, GET_SPEED, CONTROL), turned into calls of a UsbDeviceModel.
// UmockdevUsb (umockdev_usb.h) puts it behind a umockdev testbed; the tests drive it over
// plain memory.
//
// Facts this relies on (DESIGN.md 8, checked against libusb 1.0.26):
// - The device node is a regular file, so poll() always reports it ready and libusb reaps right
//   away: control URBs therefore complete during SUBMITURB and wait in a per-open queue.
// - REAPURB hands back the CLIENT's address of a completed URB; actual_length excludes the SETUP
//   bytes; a STALL is URB status -EPIPE with the ioctl itself succeeding.
// - After the device leaves, REAPURB still returns completed URBs, then ENODEV; new submits fail
//   ENODEV.
// Host only; exceptions thrown by the model are caught here (a STALL, logged).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "usb_device.h"

namespace onedfu::sim {

// Counters over the lifetime of one bus (every appearance of the device).
struct UsbdevfsStats {
  uint64_t control_transfers = 0;  // control transfers answered by the model (stalls included)
  uint64_t stalls = 0;             // of those, answered with STALL
  uint64_t bytes_out = 0;          // data-stage bytes host -> device (SETUP bytes not counted)
  uint64_t bytes_in = 0;           // data-stage bytes device -> host (actual lengths)
  uint32_t opens = 0;              // connections to the device node (one per open() of it)
  uint32_t plugs = 0;              // times the device was plugged in: 1 + re-plugs
};

// A block of the client's memory, as the ioctl handler reaches it.
class ClientMemory {
 public:
  virtual ~ClientMemory() = default;
  virtual uint8_t* data() = 0;                    // the bytes (changes go back to the client)
  virtual uint64_t client_address() const = 0;    // where the block is in the client
  // The block of `size` bytes that the pointer stored at `offset` inside this block points to;
  // null for a null pointer or memory that cannot be read.
  virtual std::unique_ptr<ClientMemory> Follow(size_t offset, size_t size) = 0;
};

// An ioctl's answer: `result` (>= 0) or -1 with errno `error`.
struct UsbdevfsReply {
  long result = 0;
  int error = 0;
};

// USB device addresses on the bus: 2, 3, ..., 127, then 2 again (7-bit addresses; 1 is the
// root hub). Each plug-in takes the next.
class UsbAddressAllocator {
 public:
  static constexpr int kFirst = 2;
  static constexpr int kLast = 127;
  int Next() {
    const int address = next_;
    next_ = next_ >= kLast ? kFirst : next_ + 1;
    return address;
  }

 private:
  int next_ = kFirst;
};

// Checks that `descriptors` start with a device descriptor followed by one complete
// configuration descriptor. Returns "" when fine, else what is wrong.
std::string CheckDescriptors(std::span<const uint8_t> descriptors);

// One appearance of the device on the bus (one address); a re-plug is a new one.
class UsbdevfsDevice {
 public:
  // The state of one open() of the device node (one libusb device handle).
  struct Client {
    std::deque<uint64_t> completed;  // client addresses of completed URBs, oldest first
    uint32_t claimed = 0;            // bit i: interface i claimed
  };
  using Trace = std::function<void(const std::string&)>;

  // `model`, `stats` and `trace` must outlive this object; `trace` may be empty.
  UsbdevfsDevice(UsbDeviceModel& model, int devnum, uint8_t num_interfaces, std::string devnode,
                 UsbdevfsStats& stats, Trace trace);

  // The state of the open() identified by `key` (e.g. umockdev's client object), created (and
  // counted in stats.opens) on first sight; Close forgets it.
  Client& ClientFor(const void* key);
  void Close(const void* key) { clients_.erase(key); }
  bool Knows(const void* key) const { return clients_.count(key) != 0; }

  // One ioctl from `client`; `arg` is the ioctl's argument (the pointer the client passed).
  // *depart turns true when the device leaves the bus after this answer.
  UsbdevfsReply Ioctl(Client& client, unsigned long request, ClientMemory& arg, bool* depart);

  // The device left the bus: completed URBs can still be reaped, everything new fails ENODEV.
  void MarkGone() { gone_ = true; }
  bool gone() const { return gone_; }
  int devnum() const { return devnum_; }
  const std::string& devnode() const { return devnode_; }

 private:
  UsbdevfsReply Claim(Client& client, unsigned int iface);
  UsbdevfsReply ReleaseInterface(Client& client, ClientMemory& arg);
  UsbdevfsReply SetInterface(Client& client, ClientMemory& arg);
  UsbdevfsReply Reset(bool* depart);
  ControlReply Transfer(const SetupPacket& setup, std::span<uint8_t> stage, bool* depart);
  UsbdevfsReply SubmitUrb(Client& client, ClientMemory& arg, bool* depart);
  UsbdevfsReply ReapUrb(Client& client, ClientMemory& arg);
  UsbdevfsReply SyncControl(ClientMemory& arg, bool* depart);
  void Log(const std::string& text) const {
    if (trace_) trace_(devnode_ + " " + text);
  }

  UsbDeviceModel& model_;
  int devnum_;
  uint8_t num_interfaces_;
  std::string devnode_;
  UsbdevfsStats& stats_;
  Trace trace_;
  bool gone_ = false;
  std::map<const void*, Client> clients_;
};

}  // namespace onedfu::sim
