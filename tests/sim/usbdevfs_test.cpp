// The usbdevfs protocol (sim/usbdevfs.h) without umockdev: ioctls on plain memory of this
// process, the way libusb's Linux backend issues them, against a small test model.
#include <doctest/doctest.h>
#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "usbdevfs.h"

namespace onedfu::sim {
namespace {

// Memory of this process: a client pointer is a real pointer.
class LocalMemory final : public ClientMemory {
 public:
  LocalMemory(void* data, size_t size) : data_(static_cast<uint8_t*>(data)), size_(size) {}
  uint8_t* data() override { return data_; }
  uint64_t client_address() const override { return reinterpret_cast<uint64_t>(data_); }
  std::unique_ptr<ClientMemory> Follow(size_t offset, size_t size) override {
    if (offset + sizeof(void*) > size_) return nullptr;
    void* target = nullptr;
    std::memcpy(&target, data_ + offset, sizeof target);
    if (target == nullptr) return nullptr;
    return std::make_unique<LocalMemory>(target, size);
  }

 private:
  uint8_t* data_;
  size_t size_;
};

// The ioctl argument: the pointer the client passes.
struct Arg {
  explicit Arg(void* pointer) : pointer(pointer), memory(&this->pointer, sizeof this->pointer) {}
  void* pointer;
  LocalMemory memory;
};

// IN vendor request 1: 4 bytes 'a' 'b' 'c' 'd' (short when more are asked); OUT request 2 is
// accepted; OUT request 3 is accepted and makes the device leave; everything else stalls. A
// bus reset makes it leave when `leave_on_reset`.
class TestModel final : public UsbDeviceModel {
 public:
  std::vector<uint8_t> DeviceAndConfigDescriptors() override { return {}; }
  ControlReply HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                             std::span<uint8_t> data_in) override {
    last_out.assign(data_out.begin(), data_out.end());
    if (setup.IsIn() && setup.bRequest == 1) {
      const uint8_t reply[4] = {'a', 'b', 'c', 'd'};
      const size_t n = std::min(data_in.size(), sizeof reply);
      std::memcpy(data_in.data(), reply, n);
      return ControlReply::Ack(static_cast<uint16_t>(n));
    }
    if (!setup.IsIn() && setup.bRequest == 2) return ControlReply::Ack();
    if (!setup.IsIn() && setup.bRequest == 3) {
      ControlReply r = ControlReply::Ack();
      r.reset_after_status = true;
      return r;
    }
    return ControlReply::Stall();
  }
  void OnSetInterface(uint8_t iface, uint8_t alt) override {
    set_interface = iface * 256 + alt;
  }
  bool OnReset() override { return leave_on_reset; }

  std::vector<uint8_t> last_out;
  int set_interface = -1;
  bool leave_on_reset = false;
};

// A control URB with its buffer: 8 SETUP bytes + `length` data bytes.
struct ControlUrb {
  ControlUrb(uint8_t request_type, uint8_t request, uint16_t length, unsigned flags = 0)
      : buffer(8 + length) {
    buffer[0] = request_type;
    buffer[1] = request;
    buffer[6] = static_cast<uint8_t>(length);
    buffer[7] = static_cast<uint8_t>(length >> 8);
    std::memset(&urb, 0, sizeof urb);
    urb.type = USBDEVFS_URB_TYPE_CONTROL;
    urb.endpoint = 0;
    urb.flags = flags;
    urb.buffer = buffer.data();
    urb.buffer_length = static_cast<int>(buffer.size());
  }
  std::vector<uint8_t> buffer;
  usbdevfs_urb urb;  // last: it ends in a flexible array member
};

struct Bus {
  TestModel model;
  UsbdevfsStats stats;
  UsbdevfsDevice device{model, 5, 1, "/dev/bus/usb/001/005", stats, {}};
  int key = 0;
  UsbdevfsDevice::Client& client = device.ClientFor(&key);

  UsbdevfsReply Ioctl(unsigned long request, void* pointer, bool* depart = nullptr) {
    bool ignored = false;
    Arg arg(pointer);
    return device.Ioctl(client, request, arg.memory, depart ? depart : &ignored);
  }
  // REAPURB: the client address of the next completed URB, or null.
  void* Reap(UsbdevfsReply* reply) {
    void* reaped = nullptr;
    *reply = Ioctl(USBDEVFS_REAPURBNDELAY, &reaped);
    return reaped;
  }
};

TEST_CASE("a control URB completes at submit; REAPURB hands back its client address, then EAGAIN") {
  Bus bus;
  CHECK(bus.stats.opens == 1);
  ControlUrb in(0xc0, 1, 16);
  REQUIRE(bus.Ioctl(USBDEVFS_SUBMITURB, &in.urb).result == 0);
  CHECK(in.urb.status == 0);
  CHECK(in.urb.actual_length == 4);  // the SETUP bytes are not counted; a short IN reply
  CHECK(std::memcmp(in.buffer.data() + 8, "abcd", 4) == 0);
  UsbdevfsReply reply;
  CHECK(bus.Reap(&reply) == &in.urb);
  CHECK(reply.result == 0);
  CHECK(bus.Reap(&reply) == nullptr);
  CHECK(reply.result == -1);
  CHECK(reply.error == EAGAIN);
  CHECK(bus.stats.control_transfers == 1);
  CHECK(bus.stats.bytes_in == 4);
}

TEST_CASE("OUT data reaches the model; a STALL is status -EPIPE with the ioctl succeeding") {
  Bus bus;
  ControlUrb out(0x40, 2, 3);
  out.buffer[8] = 7;
  out.buffer[9] = 8;
  out.buffer[10] = 9;
  REQUIRE(bus.Ioctl(USBDEVFS_SUBMITURB, &out.urb).result == 0);
  CHECK(out.urb.status == 0);
  CHECK(out.urb.actual_length == 3);
  CHECK(bus.model.last_out == std::vector<uint8_t>{7, 8, 9});
  ControlUrb refused(0xc0, 9, 4);
  REQUIRE(bus.Ioctl(USBDEVFS_SUBMITURB, &refused.urb).result == 0);
  CHECK(refused.urb.status == -EPIPE);
  CHECK(refused.urb.actual_length == 0);
  CHECK(bus.stats.stalls == 1);
  CHECK(bus.stats.bytes_out == 3);
  UsbdevfsReply reply;
  CHECK(bus.Reap(&reply) == &out.urb);
  CHECK(bus.Reap(&reply) == &refused.urb);
}

TEST_CASE("a short IN reply with USBDEVFS_URB_SHORT_NOT_OK is -EREMOTEIO") {
  Bus bus;
  ControlUrb in(0xc0, 1, 16, USBDEVFS_URB_SHORT_NOT_OK);
  REQUIRE(bus.Ioctl(USBDEVFS_SUBMITURB, &in.urb).result == 0);
  CHECK(in.urb.status == -EREMOTEIO);
  CHECK(in.urb.actual_length == 4);
}

TEST_CASE("malformed URBs are refused: other endpoints, no SETUP, wLength past the buffer, bad pointers") {
  Bus bus;
  ControlUrb bulk(0xc0, 1, 4);
  bulk.urb.type = USBDEVFS_URB_TYPE_BULK;
  CHECK(bus.Ioctl(USBDEVFS_SUBMITURB, &bulk.urb).error == ENOENT);
  ControlUrb ep1(0xc0, 1, 4);
  ep1.urb.endpoint = 0x81;
  CHECK(bus.Ioctl(USBDEVFS_SUBMITURB, &ep1.urb).error == ENOENT);
  ControlUrb tiny(0xc0, 1, 0);
  tiny.urb.buffer_length = 7;
  CHECK(bus.Ioctl(USBDEVFS_SUBMITURB, &tiny.urb).error == EINVAL);
  ControlUrb lying(0xc0, 1, 4);
  lying.buffer[6] = 200;  // wLength 200 in a 12-byte buffer
  CHECK(bus.Ioctl(USBDEVFS_SUBMITURB, &lying.urb).error == EINVAL);
  ControlUrb no_buffer(0xc0, 1, 4);
  no_buffer.urb.buffer = nullptr;
  CHECK(bus.Ioctl(USBDEVFS_SUBMITURB, &no_buffer.urb).error == EFAULT);
  CHECK(bus.Ioctl(USBDEVFS_SUBMITURB, nullptr).error == EFAULT);
  CHECK(bus.stats.control_transfers == 0);
}

TEST_CASE("the reply that makes the device leave is delivered; after that completed URBs reap, new ones fail ENODEV") {
  Bus bus;
  ControlUrb leave(0x40, 3, 0);
  bool depart = false;
  REQUIRE(bus.Ioctl(USBDEVFS_SUBMITURB, &leave.urb, &depart).result == 0);
  CHECK(depart);
  CHECK(leave.urb.status == 0);
  bus.device.MarkGone();
  ControlUrb late(0xc0, 1, 4);
  CHECK(bus.Ioctl(USBDEVFS_SUBMITURB, &late.urb).error == ENODEV);
  UsbdevfsReply reply;
  CHECK(bus.Reap(&reply) == &leave.urb);
  CHECK(bus.Reap(&reply) == nullptr);
  CHECK(reply.error == ENODEV);
}

TEST_CASE("synchronous USBDEVFS_CONTROL returns the length, or EPIPE for a STALL") {
  Bus bus;
  uint8_t data[8] = {};
  usbdevfs_ctrltransfer transfer{};
  transfer.bRequestType = 0xc0;
  transfer.bRequest = 1;
  transfer.wLength = sizeof data;
  transfer.data = data;
  CHECK(bus.Ioctl(USBDEVFS_CONTROL, &transfer).result == 4);
  CHECK(std::memcmp(data, "abcd", 4) == 0);
  transfer.bRequest = 9;
  CHECK(bus.Ioctl(USBDEVFS_CONTROL, &transfer).error == EPIPE);
}

TEST_CASE("interfaces: claim/release, SET_INTERFACE reaches the model, a reset clears claims") {
  Bus bus;
  unsigned int iface = 0;
  CHECK(bus.Ioctl(USBDEVFS_CLAIMINTERFACE, &iface).result == 0);
  CHECK(bus.client.claimed == 1);
  unsigned int missing = 1;
  CHECK(bus.Ioctl(USBDEVFS_CLAIMINTERFACE, &missing).error == ENOENT);
  CHECK(bus.Ioctl(USBDEVFS_RELEASEINTERFACE, &iface).result == 0);
  CHECK(bus.Ioctl(USBDEVFS_RELEASEINTERFACE, &iface).error == EINVAL);  // not claimed
  usbdevfs_setinterface set{0, 0};
  CHECK(bus.Ioctl(USBDEVFS_SETINTERFACE, &set).result == 0);
  CHECK(bus.model.set_interface == 0);
  CHECK(bus.client.claimed == 1);  // claimed implicitly
  bool depart = true;
  CHECK(bus.Ioctl(USBDEVFS_RESET, nullptr, &depart).result == 0);
  CHECK_FALSE(depart);
  CHECK(bus.client.claimed == 0);
  bus.model.leave_on_reset = true;
  CHECK(bus.Ioctl(USBDEVFS_RESET, nullptr, &depart).error == ENODEV);  // it re-enumerates
  CHECK(depart);
}

TEST_CASE("capabilities, connect info and speed") {
  Bus bus;
  uint32_t caps = 0;
  CHECK(bus.Ioctl(USBDEVFS_GET_CAPABILITIES, &caps).result == 0);
  CHECK((caps & USBDEVFS_CAP_REAP_AFTER_DISCONNECT) != 0);
  usbdevfs_connectinfo info{};
  CHECK(bus.Ioctl(USBDEVFS_CONNECTINFO, &info).result == 0);
  CHECK(info.devnum == 5);
  CHECK(bus.Ioctl(USBDEVFS_GET_SPEED, nullptr).result > 0);
  CHECK(bus.Ioctl(USBDEVFS_GETDRIVER, nullptr).error == ENODATA);
}

TEST_CASE("device addresses: 2, 3, ..., 127, then 2 again") {
  UsbAddressAllocator addresses;
  CHECK(addresses.Next() == 2);
  CHECK(addresses.Next() == 3);
  for (int a = 4; a < 127; ++a) REQUIRE(addresses.Next() == a);
  CHECK(addresses.Next() == 127);
  CHECK(addresses.Next() == 2);
  CHECK(addresses.Next() == 3);
}

TEST_CASE("descriptors are checked: device descriptor, then a complete configuration") {
  std::vector<uint8_t> d(18 + 9, 0);
  d[0] = 18;
  d[1] = 1;
  d[18] = 9;
  d[19] = 2;
  d[20] = 9;  // wTotalLength 9
  CHECK(CheckDescriptors(d).empty());
  d[20] = 27;
  CHECK(CheckDescriptors(d).find("wTotalLength 27 runs past") != std::string::npos);
  CHECK(CheckDescriptors(std::span<const uint8_t>(d).first(3)).find("descriptors are 3 bytes") == 0);
  d[1] = 2;
  CHECK(CheckDescriptors(d).find("device descriptor") != std::string::npos);
}

}  // namespace
}  // namespace onedfu::sim
