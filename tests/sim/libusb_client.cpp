// onedfu-usb-test-client: a plain libusb-1.0 program that exercises the virtual USB device behind
// UmockdevUsb. It runs as the child of the transport, so it goes through the real libusb Linux
// backend and usbdevfs ioctls, like dfu-util does.
//
//   onedfu-usb-test-client roundtrip [N]   echo OUT/IN, strings, STALL, then N timed echo IN
//                                           transfers (prints per_transfer_us=...)
//   onedfu-usb-test-client replug           leave request; the old handle dies; a re-enumeration
//                                           finds the device at a new address with a new serial
//   onedfu-usb-test-client replug N         N rounds of open, leave request, close
//   onedfu-usb-test-client reset            libusb_reset_device re-enumerates the device
//   onedfu-usb-test-client open-while-leaving DIR
//                                           a second thread opens the node while the leave
//                                           request is handled (handshake files in DIR, see
//                                           TransportTestModel::SetLeaveHandshake); its ioctl
//                                           then fails ENODEV, as on Linux
//   onedfu-usb-test-client manifest         against the DFU bootloader (0483:df11): zero-length
//                                           DNLOAD; the GETSTATUS that triggers the departure
//                                           still gets its reply (dfuMANIFEST); the board comes
//                                           back in dfuIDLE at a new address
//
// All modes but manifest expect TransportTestModel (transport_test_protocol.h).
// Exit status 0 when every check passed; otherwise 1 with the failed check on stderr.
#include <fcntl.h>
#include <libusb.h>
#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "transport_test_protocol.h"

namespace {

namespace tt = onedfu::transport_test;

// The device the mode talks to: TransportTestModel, or the DFU bootloader for manifest.
uint16_t device_vid = tt::kVendorId;
uint16_t device_pid = tt::kProductId;
constexpr uint16_t kDfuVid = 0x0483, kDfuPid = 0xdf11;
constexpr unsigned kTimeoutMs = 1000;
constexpr uint8_t kDfuDnload = 1, kDfuGetStatus = 3;
constexpr uint8_t kOutClassInterface = 0x21, kInClassInterface = 0xa1;
constexpr uint8_t kOutVendorDevice = 0x40, kInVendorDevice = 0xc0;
constexpr uint8_t kStateIdle = 2, kStateManifest = 7;

int failures = 0;

void Check(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "CHECK FAILED: %s\n", what.c_str());
  ++failures;
}

// Finds the device by VID:PID; `not_address` skips a device at that bus address (0: none).
libusb_device_handle* OpenProbe(libusb_context* ctx, uint8_t not_address = 0) {
  libusb_device** list = nullptr;
  const ssize_t n = libusb_get_device_list(ctx, &list);
  libusb_device_handle* handle = nullptr;
  for (ssize_t i = 0; i < n && handle == nullptr; ++i) {
    libusb_device_descriptor desc{};
    if (libusb_get_device_descriptor(list[i], &desc) != 0) continue;
    if (desc.idVendor != device_vid || desc.idProduct != device_pid) continue;
    if (not_address != 0 && libusb_get_device_address(list[i]) == not_address) continue;
    if (libusb_open(list[i], &handle) != 0) handle = nullptr;
  }
  if (list != nullptr) libusb_free_device_list(list, 1);
  return handle;
}

int CountProbes(libusb_context* ctx) {
  libusb_device** list = nullptr;
  const ssize_t n = libusb_get_device_list(ctx, &list);
  int count = 0;
  for (ssize_t i = 0; i < n; ++i) {
    libusb_device_descriptor desc{};
    if (libusb_get_device_descriptor(list[i], &desc) == 0 && desc.idVendor == device_vid &&
        desc.idProduct == device_pid) {
      ++count;
    }
  }
  if (list != nullptr) libusb_free_device_list(list, 1);
  return count;
}

libusb_device_handle* WaitForProbe(libusb_context* ctx, uint8_t not_address) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (libusb_device_handle* h = OpenProbe(ctx, not_address)) return h;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return nullptr;
}

// Echo IN into `buffer` (kEchoCapacity bytes); returns the length or a libusb error.
int EchoIn(libusb_device_handle* h, std::vector<uint8_t>& buffer) {
  buffer.assign(tt::kEchoCapacity, 0xee);
  return libusb_control_transfer(h, kInVendorDevice, tt::kEchoRequest, 0, 0, buffer.data(),
                                 static_cast<uint16_t>(buffer.size()), kTimeoutMs);
}

int Leave(libusb_device_handle* h) {
  return libusb_control_transfer(h, kOutVendorDevice, tt::kLeaveRequest, 0, 0, nullptr, 0, kTimeoutMs);
}

int GetStatus(libusb_device_handle* h, uint8_t* state) {
  uint8_t status[6] = {};
  const int r = libusb_control_transfer(h, kInClassInterface, kDfuGetStatus, 0, 0, status,
                                        sizeof(status), kTimeoutMs);
  if (r == 6 && state != nullptr) *state = status[4];
  return r;
}

std::string Serial(libusb_device_handle* h) {
  libusb_device_descriptor desc{};
  libusb_get_device_descriptor(libusb_get_device(h), &desc);
  unsigned char text[64] = {};
  const int r = libusb_get_string_descriptor_ascii(h, desc.iSerialNumber, text, sizeof(text));
  return r > 0 ? std::string(reinterpret_cast<char*>(text), static_cast<size_t>(r)) : "";
}

int RoundTrip(libusb_context* ctx, int timed) {
  libusb_device_handle* h = OpenProbe(ctx);
  Check(h != nullptr, "transport test device found and opened");
  if (h == nullptr) return 1;
  Check(libusb_claim_interface(h, 0) == 0, "claim interface 0");
  Check(libusb_claim_interface(h, 1) == LIBUSB_ERROR_NOT_FOUND,
        "claiming a nonexistent interface fails NOT_FOUND");
  Check(libusb_set_interface_alt_setting(h, 0, 0) == 0, "SET_INTERFACE 0/0");

  // Echo: OUT then IN returns the same bytes.
  std::vector<uint8_t> sent(200);
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<uint8_t>(i * 7 + 3);
  int r = libusb_control_transfer(h, kOutVendorDevice, tt::kEchoRequest, 0, 0, sent.data(),
                                  static_cast<uint16_t>(sent.size()), kTimeoutMs);
  Check(r == static_cast<int>(sent.size()), "echo OUT transfers 200 bytes, got " + std::to_string(r));
  std::vector<uint8_t> back;
  r = EchoIn(h, back);
  Check(r == static_cast<int>(sent.size()), "echo IN is a 200-byte short transfer, got " + std::to_string(r));
  Check(r > 0 && std::memcmp(back.data(), sent.data(), sent.size()) == 0, "echo IN returns the OUT bytes");
  Check(back[200] == 0xee, "bytes past actual_length untouched");

  // The interface string through GET_DESCRIPTOR(STRING) (language IDs first), as dfu-util reads
  // its DfuSe layout.
  libusb_config_descriptor* config = nullptr;
  Check(libusb_get_active_config_descriptor(libusb_get_device(h), &config) == 0, "config descriptor");
  if (config != nullptr) {
    const uint8_t index = config->interface[0].altsetting[0].iInterface;
    unsigned char text[128] = {};
    r = libusb_get_string_descriptor_ascii(h, index, text, sizeof(text));
    Check(r > 0 && std::string(reinterpret_cast<char*>(text)) == tt::kInterfaceString,
          std::string("iInterface string, got '") + reinterpret_cast<char*>(text) + "'");
    libusb_free_config_descriptor(config);
  }

  // A refused request is a STALL (LIBUSB_ERROR_PIPE); the device keeps working after it.
  uint8_t dummy[4];
  r = libusb_control_transfer(h, kInVendorDevice, 0x7f, 0, 0, dummy, sizeof(dummy), kTimeoutMs);
  Check(r == LIBUSB_ERROR_PIPE, "unknown vendor request stalls, got " + std::to_string(r));
  Check(EchoIn(h, back) == static_cast<int>(sent.size()), "echo IN after a STALL");

  // Cost per control transfer through the whole stack (libusb -> preload -> socket -> model).
  const auto start = std::chrono::steady_clock::now();
  int ok = 0;
  for (int i = 0; i < timed; ++i) ok += EchoIn(h, back) == static_cast<int>(sent.size());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  Check(ok == timed, "every timed echo IN succeeded");
  if (timed > 0) {
    const double us = std::chrono::duration<double, std::micro>(elapsed).count() / timed;
    std::printf("per_transfer_us=%.1f transfers=%d\n", us, timed);
  }

  Check(libusb_release_interface(h, 0) == 0, "release interface 0");
  libusb_close(h);
  return failures == 0 ? 0 : 1;
}

// Leave request, then find the device again; `times` rounds. Prints the last address.
int ReplugMany(libusb_context* ctx, int times) {
  uint8_t address = 0;
  for (int i = 0; i < times; ++i) {
    libusb_device_handle* h = WaitForProbe(ctx, address);
    Check(h != nullptr, "device found in round " + std::to_string(i));
    if (h == nullptr) return 1;
    address = libusb_get_device_address(libusb_get_device(h));
    Check(Leave(h) == 0, "leave request in round " + std::to_string(i));
    libusb_close(h);
  }
  libusb_device_handle* h = WaitForProbe(ctx, address);
  Check(h != nullptr, "device back after the last round");
  if (h != nullptr) {
    std::printf("last address %u\n", libusb_get_device_address(libusb_get_device(h)));
    libusb_close(h);
  }
  return failures == 0 ? 0 : 1;
}

int Replug(libusb_context* ctx) {
  libusb_device_handle* h = OpenProbe(ctx);
  Check(h != nullptr, "device found");
  if (h == nullptr) return 1;
  const uint8_t old_address = libusb_get_device_address(libusb_get_device(h));
  const std::string old_serial = Serial(h);
  Check(libusb_claim_interface(h, 0) == 0, "claim interface 0");
  int r = Leave(h);
  Check(r == 0, "leave request acknowledged before the device leaves, got " + std::to_string(r));
  std::vector<uint8_t> back;
  r = EchoIn(h, back);
  Check(r == LIBUSB_ERROR_NO_DEVICE, "old handle: echo IN after leaving fails NO_DEVICE, got " +
                                         std::to_string(r));
  libusb_close(h);

  h = WaitForProbe(ctx, old_address);
  Check(h != nullptr, "device re-enumerated at a new address");
  if (h == nullptr) return 1;
  const uint8_t new_address = libusb_get_device_address(libusb_get_device(h));
  const std::string new_serial = Serial(h);
  std::printf("address %u -> %u, serial %s -> %s\n", old_address, new_address,
              old_serial.c_str(), new_serial.c_str());
  Check(new_serial != old_serial && !new_serial.empty(), "the new device enumerated afresh (serial)");
  Check(CountProbes(ctx) == 1, "the old device left libusb's device list");
  Check(EchoIn(h, back) == 0, "the new device answers (its echo buffer is empty)");
  libusb_close(h);
  return failures == 0 ? 0 : 1;
}

int Manifest(libusb_context* ctx) {
  libusb_device_handle* h = OpenProbe(ctx);
  Check(h != nullptr, "device found");
  if (h == nullptr) return 1;
  const uint8_t old_address = libusb_get_device_address(libusb_get_device(h));
  Check(libusb_claim_interface(h, 0) == 0, "claim interface 0");
  int r = libusb_control_transfer(h, kOutClassInterface, kDfuDnload, 0, 0, nullptr, 0, kTimeoutMs);
  Check(r == 0, "zero-length DNLOAD");
  uint8_t state = 0xff;
  r = GetStatus(h, &state);
  Check(r == 6 && state == kStateManifest, "the leave GETSTATUS is answered (dfuMANIFEST), got " +
                                               std::to_string(r) + " state " + std::to_string(state));
  r = GetStatus(h, nullptr);
  Check(r == LIBUSB_ERROR_NO_DEVICE, "then the device is gone, got " + std::to_string(r));
  libusb_close(h);
  h = WaitForProbe(ctx, old_address);
  Check(h != nullptr, "the board reset and re-enumerated at a new address");
  if (h != nullptr) {
    Check(GetStatus(h, &state) == 6 && state == kStateIdle, "the reset board answers GETSTATUS: dfuIDLE");
    libusb_close(h);
  }
  return failures == 0 ? 0 : 1;
}

int Reset(libusb_context* ctx) {
  libusb_device_handle* h = OpenProbe(ctx);
  Check(h != nullptr, "device found");
  if (h == nullptr) return 1;
  const uint8_t old_address = libusb_get_device_address(libusb_get_device(h));
  const int r = libusb_reset_device(h);
  Check(r == LIBUSB_ERROR_NOT_FOUND, "reset of a re-enumerating device reports NOT_FOUND, got " +
                                         std::to_string(r));
  libusb_close(h);
  h = WaitForProbe(ctx, old_address);
  Check(h != nullptr, "device back at a new address after reset");
  if (h != nullptr) {
    std::vector<uint8_t> back;
    Check(EchoIn(h, back) >= 0, "echo IN on the new device");
    libusb_close(h);
  }
  return failures == 0 ? 0 : 1;
}

// Leave request on one handle while another thread opens the device node (as a second program
// enumerating would): the open's connection to the device waits until the request that makes the
// device leave has been handled; an ioctl on it must then fail ENODEV, as the kernel answers for
// a device that left, and must not lose the connection (the preload aborts the program then).
int OpenWhileLeaving(libusb_context* ctx, const std::string& dir) {
  libusb_device_handle* h = OpenProbe(ctx);
  Check(h != nullptr, "device found");
  if (h == nullptr) return 1;
  libusb_device* device = libusb_get_device(h);
  char node[32];
  std::snprintf(node, sizeof node, "/dev/bus/usb/%03u/%03u", libusb_get_bus_number(device),
                libusb_get_device_address(device));
  int fd = -1;
  std::thread opener([&] {
    struct stat st {};
    const std::string leaving = dir + "/leaving";
    for (int i = 0; i < 10000 && stat(leaving.c_str(), &st) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    fd = open(node, O_RDWR | O_CLOEXEC);
    if (FILE* f = std::fopen((dir + "/opened").c_str(), "w")) std::fclose(f);
  });
  const int r = Leave(h);
  opener.join();
  Check(r == 0, "leave request acknowledged, got " + std::to_string(r));
  Check(fd >= 0, std::string("opened ") + node + " while the device was leaving");
  if (fd >= 0) {
    usbdevfs_connectinfo info{};
    errno = 0;
    const int rc = ioctl(fd, USBDEVFS_CONNECTINFO, &info);
    Check(rc == -1 && errno == ENODEV, "CONNECTINFO on the node opened as the device left fails ENODEV, got " +
                                           std::to_string(rc) + " (" + std::strerror(errno) + ")");
    close(fd);
  }
  libusb_close(h);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("usage: onedfu-usb-test-client roundtrip [N] | replug [N] | manifest | reset | open-while-leaving DIR\n",
               stderr);
    return 2;
  }
  libusb_context* ctx = nullptr;
  if (libusb_init(&ctx) != 0) {
    std::fputs("libusb_init failed\n", stderr);
    return 1;
  }
  const std::string mode = argv[1];
  int status = 2;
  if (mode == "roundtrip") {
    status = RoundTrip(ctx, argc > 2 ? std::atoi(argv[2]) : 0);
  } else if (mode == "replug") {
    status = argc > 2 ? ReplugMany(ctx, std::atoi(argv[2])) : Replug(ctx);
  } else if (mode == "manifest") {
    device_vid = kDfuVid;
    device_pid = kDfuPid;
    status = Manifest(ctx);
  } else if (mode == "reset") {
    status = Reset(ctx);
  } else if (mode == "open-while-leaving" && argc > 2) {
    status = OpenWhileLeaving(ctx, argv[2]);
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  }
  libusb_exit(ctx);
  return status;
}
