// UmockdevUsb driven by real host programs run as children: the libusb test client
// (tests/sim/libusb_client.cpp) against TransportTestModel (what the transport must carry that
// the bootloader does not offer: echo, leave on request, re-enumerate at a bus reset) and against
// the real bootloader on ProbeBoard (the DFU leave), and dfu-util against ProbeBoard. Each child checks the
// host side and exits non-zero on a failed check; these tests check the device side (what the
// model saw, the transport's counters). Must run under umockdev-wrapper (see CMakeLists.txt).
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "probe_board.h"
#include "transport_test_model.h"
#include "umockdev_usb.h"

namespace onedfu::sim {
namespace {

const std::string kClient = ONEDFU_USB_TEST_CLIENT;

// A transport bug usually shows as a host tool spinning forever; fail instead.
const UmockdevUsbOptions kOptions = {.trace = false, .command_timeout_ms = 60000};

bool Exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

// A model whose descriptors are too short to hold a device + configuration descriptor.
class BrokenDescriptorModel final : public UsbDeviceModel {
 public:
  std::vector<uint8_t> DeviceAndConfigDescriptors() override { return {0x12, 0x01, 0x00}; }
  ControlReply HandleControl(const SetupPacket&, std::span<const uint8_t>,
                              std::span<uint8_t>) override {
    return ControlReply::Stall();
  }
};

// A model that never enumerates (a board whose firmware has no USB).
class AbsentModel final : public UsbDeviceModel {
 public:
  std::vector<uint8_t> DeviceAndConfigDescriptors() override { return {}; }
  ControlReply HandleControl(const SetupPacket&, std::span<const uint8_t>,
                              std::span<uint8_t>) override {
    return ControlReply::Stall();
  }
};

TEST_CASE("libusb control transfers round-trip through the virtual device") {
  TransportTestModel model;
  UmockdevUsb usb(model, kOptions);
  constexpr int kTimed = 200;
  REQUIRE(usb.RunCommand({kClient, "roundtrip", std::to_string(kTimed)}) == 0);

  // The client's requests, one by one: echo OUT, echo IN, string 0 (language IDs), the
  // iInterface string, a stalled vendor request, echo IN, then kTimed echo IN (200 bytes each).
  const UmockdevUsbStats& stats = usb.Stats();
  CHECK(stats.control_transfers == 6 + kTimed);
  CHECK(stats.stalls == 1);
  CHECK(stats.bytes_out == 200);
  const uint64_t interface_string = 2 + 2 * std::strlen(transport_test::kInterfaceString);  // UTF-16LE
  CHECK(stats.bytes_in == 200 + 4 + interface_string + 200 + 200 * kTimed);
  CHECK(stats.opens == 1);
  CHECK(stats.plugs == 1);
  CHECK(model.set_interface_calls() == 1);
  CHECK(usb.DeviceNode() == "/dev/bus/usb/001/002");
}

TEST_CASE("a device that leaves is re-plugged as a new device the next open sees") {
  TransportTestModel model;
  UmockdevUsb usb(model, kOptions);
  REQUIRE(usb.RunCommand({kClient, "replug"}) == 0);
  CHECK(model.plugs() == 2);
  CHECK(usb.Stats().plugs == 2);
  CHECK(usb.Stats().opens == 2);
  CHECK(usb.DeviceNode() == "/dev/bus/usb/001/003");
  const std::string dev_dir = usb.TestbedRoot() + "/dev/bus/usb/001/";
  CHECK_FALSE(Exists(dev_dir + "002"));
  CHECK(Exists(dev_dir + "003"));
}

// station_tests' flake under ASan ("Error communicating with ioctl socket, errno: 104" and the
// client aborted): a worker enumerating opened another board's node just as that board left;
// its connection waited for umockdev's thread, busy with the leave request, and detaching the
// departed node's listener reset it. The model holds the leave request until the client's
// second thread has opened the node, so the window is hit every time (before the fix: EPIPE,
// the client killed by SIGPIPE).
TEST_CASE("a node opened while its device leaves answers ENODEV, the connection survives") {
  char dir_template[] = "/tmp/onedfu-sim-test-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  TransportTestModel model;
  model.SetLeaveHandshake(dir);
  UmockdevUsb usb(model, kOptions);
  CHECK(usb.RunCommand({kClient, "open-while-leaving", dir}) == 0);
  CHECK(model.handshakes() == 1);  // the open happened while the leave request was handled
  CHECK(usb.Stats().plugs == 2);
  CHECK(usb.Stats().opens == 2);  // the late connection was accepted, on the departed device
  std::remove((dir + "/leaving").c_str());
  std::remove((dir + "/opened").c_str());
  rmdir(dir_template);
}

// A departed device keeps its node's ioctl handler until its address comes round again: after
// 126 plugs the next one takes over /dev/bus/usb/001/002 (umockdev refuses a second handler
// on a path).
TEST_CASE("the addresses wrap around: the 127th plug reuses 002, its handler replaces the old one") {
  TransportTestModel model;
  UmockdevUsb usb(model, kOptions);
  REQUIRE(usb.RunCommand({kClient, "replug", "130"}) == 0);
  CHECK(usb.Stats().plugs == 131);
  CHECK(usb.DeviceNode() == "/dev/bus/usb/001/006");  // 2 + 130, modulo the 126 addresses 2..127
  REQUIRE(usb.RunCommand({kClient, "roundtrip"}) == 0);  // the device at a reused address answers
}

TEST_CASE("the bootloader's leave GETSTATUS still gets its reply, then the board resets") {
  ProbeBoard board;
  REQUIRE_MESSAGE(board.ok(), board.error());
  UmockdevUsb usb(board.device(), kOptions);
  REQUIRE(usb.RunCommand({kClient, "manifest"}) == 0);
  CHECK(board.device().resets() == 1);
  CHECK(usb.Stats().plugs == 2);
  CHECK(usb.DeviceNode() == "/dev/bus/usb/001/003");
}

TEST_CASE("a port reset that re-enumerates reports the device gone, then it is back") {
  TransportTestModel model;
  UmockdevUsb usb(model, kOptions);
  REQUIRE(usb.RunCommand({kClient, "reset"}) == 0);
  CHECK(model.resets() == 1);
  CHECK(model.plugs() == 2);
}

TEST_CASE("device state persists across commands") {
  TransportTestModel model;
  UmockdevUsb usb(model, kOptions);
  REQUIRE(usb.RunCommand({kClient, "replug"}) == 0);
  REQUIRE(usb.RunCommand({kClient, "roundtrip"}) == 0);
  CHECK(model.plugs() == 2);
  CHECK(usb.DeviceNode() == "/dev/bus/usb/001/003");
}

TEST_CASE("RunCommand returns the child's exit status") {
  TransportTestModel model;
  UmockdevUsb usb(model, kOptions);
  CHECK(usb.RunCommand({"sh", "-c", "exit 7"}) == 7);
  CHECK(usb.RunCommand({"sh", "-c", "kill -TERM $$"}) == 128 + 15);
  CHECK(usb.RunCommand({"sh", "-c", "test -n \"$UMOCKDEV_DIR\" && "
                                    "case \"$LD_PRELOAD\" in *libumockdev-preload*) exit 0;; esac; "
                                    "exit 1"}) == 0);
  CHECK(usb.RunCommand({"/nonexistent/onedfu-no-such-command"}) == -1);
  CHECK(usb.LastError().find("cannot run /nonexistent/onedfu-no-such-command") == 0);
  CHECK(usb.RunCommand({}) == -1);
}

TEST_CASE("a command that runs too long is killed") {
  TransportTestModel model;
  UmockdevUsb usb(model, {.trace = false, .command_timeout_ms = 200});
  CHECK(usb.RunCommand({"sleep", "30"}) == -1);
  CHECK(usb.LastError() == "sleep did not finish within 200 ms and was killed");
  CHECK(usb.RunCommand({"true"}) == 0);  // the next command runs normally
}

TEST_CASE("malformed descriptors are refused with a reason") {
  BrokenDescriptorModel model;
  UmockdevUsb usb(model, kOptions);
  CHECK(usb.RunCommand({"true"}) == -1);
  CHECK(usb.LastError().find("descriptors are 3 bytes") != std::string::npos);
  CHECK(usb.DeviceNode().empty());
}

TEST_CASE("a model without descriptors stays unplugged") {
  AbsentModel model;
  UmockdevUsb usb(model, kOptions);
  CHECK(usb.RunCommand({"true"}) == 0);
  CHECK(usb.DeviceNode().empty());
  CHECK(usb.Stats().plugs == 0);
  CHECK(Exists(usb.TestbedRoot() + "/dev/bus/usb/001/001"));  // the root hub is there
  CHECK_FALSE(Exists(usb.TestbedRoot() + "/dev/bus/usb/001/002"));
}

TEST_CASE("dfu-util -l lists the probe board (when dfu-util is installed)") {
  const std::string dfu_util = ONEDFU_DFU_UTIL;
  if (dfu_util.empty() || dfu_util.find("NOTFOUND") != std::string::npos) return;
  ProbeBoard board;
  REQUIRE_MESSAGE(board.ok(), board.error());
  UmockdevUsb usb(board.device(), kOptions);
  const std::string script = dfu_util +
                             " -l | grep -F 'Found DFU: [0483:df11] ver=2200, devnum=2, cfg=1, "
                             "intf=0, path=\"1-1\", alt=0, name=\"@Internal Flash  "
                             "/0x08000000/01*016Ka,03*016Kg\", serial=\"PROBE0001\"'";
  CHECK(usb.RunCommand({"sh", "-c", script}) == 0);
  // The name and serial are string descriptors, read through control transfers (at least the
  // language IDs and the iInterface string).
  CHECK(usb.Stats().control_transfers >= 2);
  CHECK(usb.Stats().stalls == 0);
}

TEST_CASE("dfu-util -U reads the probe board's flash (when dfu-util is installed)") {
  const std::string dfu_util = ONEDFU_DFU_UTIL;
  if (dfu_util.empty() || dfu_util.find("NOTFOUND") != std::string::npos) return;
  char dir_template[] = "/tmp/onedfu-sim-test-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string path = std::string(dir_template) + "/upload.bin";
  constexpr size_t kSize = 3 * bootloader::kTransferSize + 100;  // ends in a short block

  ProbeBoard board;
  REQUIRE_MESSAGE(board.ok(), board.error());
  UmockdevUsb usb(board.device(), kOptions);
  CHECK(usb.RunCommand({dfu_util, "-a", "0", "-s", "0x08000000:" + std::to_string(kSize), "-U",
                        path}) == 0);
  std::vector<uint8_t> data;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    uint8_t buffer[4096];
    size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) data.insert(data.end(), buffer, buffer + n);
    std::fclose(f);
  }
  std::remove(path.c_str());
  rmdir(dir_template);

  REQUIRE(data.size() == kSize);
  size_t mismatches = 0;
  for (size_t o = 0; o < data.size(); ++o) {
    // probe_board.h: low byte of offset * 31 XOR offset >> 8
    const auto expected = static_cast<uint8_t>((o * 31) ^ (o >> 8));
    mismatches += data[o] != expected;
  }
  CHECK(mismatches == 0);
  CHECK(usb.Stats().stalls == 0);
  // DfuSe set-address went through as a DNLOAD block 0 of 5 bytes (21 + address).
  CHECK(usb.Stats().bytes_out == 5);
}

}  // namespace
}  // namespace onedfu::sim
