// UmockdevUsb: puts a UsbDeviceModel on a virtual USB bus that the REAL libusb Linux backend
// sees, on a machine without a USB subsystem (DESIGN.md 8, "Virtual USB").
//
// How: a UMockdevTestbed fakes /sys and /dev/bus/usb for processes that run with
// libumockdev-preload (LD_PRELOAD, as set by `umockdev-wrapper`). The testbed holds a root hub
// (bus 001 device 001) and our device (bus 001 device 002, then 003, ... after each re-plug). The
// device node is backed by a umockdev ioctl handler that hands the usbdevfs ioctls libusb uses to
// UsbdevfsDevice (usbdevfs.h). Unmodified dfu-util, pyusb and our own libusb code then
// enumerate, open and talk to the model. Only endpoint 0 exists; other URBs fail ENOENT.
//
// Usage (host code; exceptions never leave this class):
//   MyModel model;
//   UmockdevUsb usb(model);
//   int status = usb.RunCommand({"dfu-util", "-l"});   // serves USB until dfu-util exits
//
// This process itself must run under umockdev-wrapper (call ReexecUnderWrapperIfNeeded() first
// thing in main): the testbed's uevents (re-plug) resolve /sys through the preload.
// One UmockdevUsb per process (the testbed sets UMOCKDEV_DIR in this process's environment).
// Threading: umockdev delivers the ioctls on its own thread, so the model is called from that
// thread, one call at a time, only while RunCommand runs; when RunCommand returns, every model
// call and re-plug the command caused has finished (a mutex hands the state over).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "usb_device.h"
#include "usbdevfs.h"

namespace onedfu::sim {

struct UmockdevUsbOptions {
  bool trace = false;  // log every ioctl and control transfer to stderr ("usb: ...")
  // 0: wait for the command however long it takes. Otherwise RunCommand kills it (SIGKILL)
  // after this many milliseconds and fails: a host tool that loses its device can spin forever.
  unsigned command_timeout_ms = 0;
  // Real time: a request that cost the model modeled time (UsbDeviceModel::ModeledUs grew by
  // D while it ran) is handed back (the reap of its URB, or the synchronous CONTROL ioctl) no
  // earlier than D after the device's previous timed answer. A DFU device does its flash work
  // after answering dfuDNBUSY, while the host comes back for the next GETSTATUS (the simulator
  // charges it on that GETSTATUS), and a transfer's bus time passes while the host sends it:
  // so the host's own time since the previous answer counts, and a device left alone long
  // enough answers at once, as the board would. Each device is busy on its own; other devices on the bus are served meanwhile
  // (the completion is deferred, umockdev's ioctl thread never sleeps). Off: answers at once.
  bool realtime = false;
};

// One device of the bus: its model (not owned, must outlive the UmockdevUsb) and when it is
// plugged in: `plug_delay_ms` after RunCommand starts (0: at once).
struct UmockdevPort {
  UsbDeviceModel* model = nullptr;
  unsigned plug_delay_ms = 0;
};

// Counters over the lifetime of one UmockdevUsb (all RunCommand calls).
using UmockdevUsbStats = UsbdevfsStats;

class UmockdevUsb {
 public:
  // `model` must outlive this object; it is not owned. One device on port 1.
  explicit UmockdevUsb(UsbDeviceModel& model, UmockdevUsbOptions options = {});
  // Several devices, ports[i] on root-hub port i + 1 (at most 15).
  explicit UmockdevUsb(std::vector<UmockdevPort> ports, UmockdevUsbOptions options = {});
  ~UmockdevUsb();
  UmockdevUsb(const UmockdevUsb&) = delete;
  UmockdevUsb& operator=(const UmockdevUsb&) = delete;

  // Plugs the devices without a plug delay in (unless they are already; a model that returned
  // no descriptors is asked again), plugs the others in at their delay while the command runs,
  // then runs argv[0] (looked up in PATH) with arguments argv under the testbed, with
  // stdin/stdout/stderr inherited, and serves USB requests until it exits. The child gets
  // UMOCKDEV_DIR and an LD_PRELOAD with libumockdev-preload.so.0. Device state persists across
  // calls.
  // Returns the child's exit status (0..255), 128 + N if signal N killed it, or -1 if this
  // process is not under umockdev-wrapper, the device could not be plugged in, the command
  // not started or it ran past command_timeout_ms (see LastError()).
  int RunCommand(const std::vector<std::string>& argv);

  // Plugs every device in now if it is not (RunCommand does this itself). Returns false with
  // LastError() set when a model's descriptors are malformed.
  bool Plug();

  // Device node of the plugged device on port index `port` (0 = the first), e.g.
  // "/dev/bus/usb/001/002"; empty while unplugged.
  std::string DeviceNode(size_t port = 0) const;

  // Root of the testbed (UMOCKDEV_DIR), e.g. to inspect the fake sysfs.
  std::string TestbedRoot() const;

  const UmockdevUsbStats& Stats() const;
  const std::string& LastError() const;

  // True when libumockdev-preload is loaded into this process (started via umockdev-wrapper).
  static bool UnderWrapper();

  // Start-up helper for main(): if this process is not running under umockdev-wrapper, re-exec
  // it (/proc/self/exe with the same argv) via `umockdev-wrapper`, so the whole simulator runs
  // with the preload as umockdev expects. Returns only if no re-exec was needed (true) or it
  // failed (false, reason in *error). Guarded against loops by ONEDFU_UMOCKDEV_REEXEC.
  static bool ReexecUnderWrapperIfNeeded(int argc, char** argv, std::string* error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace onedfu::sim
