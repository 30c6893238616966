// UmockdevUsb: usbdevfs emulation on a umockdev testbed. See umockdev_usb.h for the contract.
//
// Facts this relies on (DESIGN.md 8, checked against libusb 1.0.26 and umockdev 0.17):
// - libusb skips a device whose udev record lacks DEVNAME=/dev/bus/usb/BBB/DDD.
// - libusb reads device + configuration descriptors from the sysfs `descriptors` attribute.
// - Client memory is only reachable through umockdev_ioctl_data_resolve(): the ioctl argument
//   (a pointer) resolves to the URB, the URB's `buffer` field to the 8 SETUP bytes + data stage.
//   Local changes are written back to the client by umockdev_ioctl_client_complete().
// - A re-plug is a new device (next devnum) announced with an "add" uevent.
// - open() of a node connects a unix socket to the node's ioctl listener (preload); the
//   connection waits in the listener's backlog until umockdev's thread accepts it, and closing
//   the listener (umockdev_testbed_detach_ioctl) resets the waiting ones: the client's next
//   ioctl fails ECONNRESET and the preload aborts the client. So a departed device keeps its
//   listener (see Depart).
// The usbdevfs protocol itself is usbdevfs.h's; this file is the testbed around it.
#include "umockdev_usb.h"

#include <dlfcn.h>
#include <linux/usb/ch9.h>
#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>
#include <umockdev.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <climits>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "child_process.h"

namespace onedfu::sim {
namespace {

constexpr int kBusNumber = 1;
constexpr int kRootHubDevnum = 1;
constexpr size_t kDeviceDescriptorSize = 18;
constexpr char kRootHubSysPath[] = "/devices/pci0000:00/0000:00:14.0/usb1";
constexpr size_t kMaxPorts = 15;  // root-hub ports of the simulated bus
constexpr char kPreloadLibrary[] = "libumockdev-preload.so.0";
constexpr char kReexecGuard[] = "ONEDFU_UMOCKDEV_REEXEC";

// Root hub of a full-speed bus (Linux Foundation 1d6b:0001, USB 1.1 hub class): device
// descriptor, then configuration with one hub interface and its interrupt endpoint.
constexpr uint8_t kRootHubDescriptors[] = {
    0x12, 0x01, 0x10, 0x01, 0x09, 0x00, 0x00, 0x40, 0x6b, 0x1d, 0x01, 0x00, 0x06, 0x06,
    0x03, 0x02, 0x01, 0x01,  // device
    0x09, 0x02, 0x19, 0x00, 0x01, 0x01, 0x00, 0xe0, 0x00,        // configuration
    0x09, 0x04, 0x00, 0x00, 0x01, 0x09, 0x00, 0x00, 0x00,        // interface: hub
    0x07, 0x05, 0x81, 0x03, 0x02, 0x00, 0xff,                    // endpoint 1 IN, interrupt
};

struct GObjectUnref {
  void operator()(gpointer object) const {
    if (object != nullptr) g_object_unref(object);
  }
};
using IoctlDataPtr = std::unique_ptr<UMockdevIoctlData, GObjectUnref>;

// Resolves the client pointer stored at `offset` inside `parent` into a local copy of `size`
// bytes. Returns null for a null client pointer or an unreadable address.
IoctlDataPtr Resolve(UMockdevIoctlData* parent, size_t offset, size_t size) {
  GError* error = nullptr;
  UMockdevIoctlData* data = umockdev_ioctl_data_resolve(parent, offset, size, &error);
  if (error != nullptr) {
    g_error_free(error);
    if (data != nullptr) g_object_unref(data);
    return nullptr;
  }
  if (data != nullptr && data->data_len < static_cast<int>(size)) {
    g_object_unref(data);
    return nullptr;
  }
  return IoctlDataPtr(data);
}

// The client's memory through umockdev (umockdev_ioctl_data_resolve; changes are written back
// when the ioctl completes).
class UmockdevMemory final : public ClientMemory {
 public:
  explicit UmockdevMemory(UMockdevIoctlData* data) : data_(data) {}
  explicit UmockdevMemory(IoctlDataPtr owned) : owned_(std::move(owned)), data_(owned_.get()) {}
  uint8_t* data() override { return data_->data; }
  uint64_t client_address() const override { return data_->client_addr; }
  std::unique_ptr<ClientMemory> Follow(size_t offset, size_t size) override {
    IoctlDataPtr resolved = Resolve(data_, offset, size);
    if (!resolved) return nullptr;
    return std::make_unique<UmockdevMemory>(std::move(resolved));
  }

 private:
  IoctlDataPtr owned_;  // null when borrowed
  UMockdevIoctlData* data_;
};

uint16_t LoadLe16(const uint8_t* bytes) {
  return static_cast<uint16_t>(bytes[0] | (bytes[1] << 8));
}

std::string HexUpper(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

std::string Format(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* format, ...) {
  va_list args;
  va_start(args, format);
  char* text = g_strdup_vprintf(format, args);
  va_end(args);
  std::string out(text);
  g_free(text);
  return out;
}

}  // namespace

struct UmockdevUsb::Impl {
  using Clock = std::chrono::steady_clock;
  struct PluggedDevice;

  // One root-hub port and the model on it.
  struct Slot {
    UsbDeviceModel* model = nullptr;
    unsigned plug_delay_ms = 0;
    int port = 1;                     // 1-based
    bool due = true;                  // its plug delay has passed
    PluggedDevice* current = nullptr;
    Clock::time_point last_due{};     // real time: when the device's last timed answer was due
    std::string SysPath() const { return Format("/devices/pci0000:00/0000:00:14.0/usb1/1-%d", port); }
  };

  // An answer held back in real-time mode until `due`.
  struct Deferred {
    Clock::time_point due;
    UMockdevIoctlClient* client = nullptr;  // a reference is held until completion
    long result = 0;
    int error = 0;
  };

  // One appearance of the device on the bus; a re-plug creates a new one. Kept until the end
  // so that handles opened before a departure still get their answers (ENODEV, late reaps).
  struct PluggedDevice {
    Impl* owner = nullptr;
    Slot* slot = nullptr;
    std::string syspath;  // "/sys/devices/.../1-N"
    std::unique_ptr<UsbdevfsDevice> usb;
    UMockdevIoctlBase* handler = nullptr;  // owned reference
    bool attached = false;                 // handler attached to the node's path in the testbed
    std::vector<UMockdevIoctlClient*> clients;  // a reference on each client usb knows
  };

  Impl(const std::vector<UmockdevPort>& ports, UmockdevUsbOptions options_in)
      : options(options_in), testbed(umockdev_testbed_new()) {
    for (size_t i = 0; i < ports.size() && i < kMaxPorts; ++i) {
      auto slot = std::make_unique<Slot>();
      slot->model = ports[i].model;
      slot->plug_delay_ms = ports[i].plug_delay_ms;
      slot->port = static_cast<int>(i + 1);
      slot->due = ports[i].plug_delay_ms == 0;
      slots.push_back(std::move(slot));
    }
    if (ports.size() > kMaxPorts) too_many_ports = true;
    if (options.realtime) scheduler = std::thread([this] { RunScheduler(); });
  }

  ~Impl() {
    StopThread(scheduler, stop_scheduler);
    for (Deferred& d : deferred) {
      umockdev_ioctl_client_complete(d.client, d.result, d.error);
      g_object_unref(d.client);
    }
    for (auto& device : devices) {
      for (UMockdevIoctlClient* client : device->clients) {
        g_signal_handlers_disconnect_by_data(client, device.get());
        g_object_unref(client);
      }
      if (device->handler != nullptr) {
        g_signal_handlers_disconnect_by_data(device->handler, device.get());
        g_object_unref(device->handler);
      }
    }
    g_object_unref(testbed);
  }

  void Trace(const char* format, ...) const __attribute__((format(printf, 2, 3))) {
    if (!options.trace) return;
    va_list args;
    va_start(args, format);
    std::fputs("usb: ", stderr);
    std::vfprintf(stderr, format, args);
    std::fputc('\n', stderr);
    va_end(args);
  }

  bool AddRootHub() {
    if (root_hub_added) return true;
    const std::string text = Format(
        "P: %s\n"
        "N: bus/usb/%03d/%03d\n"
        "E: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\nE: DRIVER=usb\n"
        "E: BUSNUM=%03d\nE: DEVNUM=%03d\nE: DEVNAME=/dev/bus/usb/%03d/%03d\n"
        "A: busnum=%d\\n\nA: devnum=%d\\n\nA: speed=12\\n\nA: bConfigurationValue=1\\n\n"
        "A: idVendor=1d6b\\n\nA: idProduct=0001\\n\nA: bDeviceClass=09\\n\n"
        "A: bNumConfigurations=1\\n\nA: maxchild=1\\n\nA: version= 1.10\\n\n"
        "H: descriptors=%s\n",
        kRootHubSysPath, kBusNumber, kRootHubDevnum, kBusNumber, kRootHubDevnum, kBusNumber,
        kRootHubDevnum, kBusNumber, kRootHubDevnum, HexUpper(kRootHubDescriptors).c_str());
    GError* error = nullptr;
    if (!umockdev_testbed_add_from_string(testbed, text.c_str(), &error)) {
      last_error = Format("umockdev: cannot add the root hub: %s",
                          error != nullptr ? error->message : "unknown error");
      if (error != nullptr) g_error_free(error);
      return false;
    }
    root_hub_added = true;
    return true;
  }

  void StopThread(std::thread& thread, bool& stop) {
    if (!thread.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    wake.notify_all();
    thread.join();
    stop = false;
  }

  // Plugs in every slot whose delay has passed.
  bool PlugDue() {
    if (too_many_ports) {
      last_error = Format("umockdev: at most %zu devices on the bus", kMaxPorts);
      return false;
    }
    for (auto& slot : slots) {
      if (slot->due && !Plug(*slot)) return false;
    }
    return true;
  }

  // Marks the delayed slots due as their time comes (while RunCommand runs).
  void RunPlugger(Clock::time_point start) {
    std::unique_lock<std::mutex> lock(mutex);
    while (!stop_plugger) {
      Clock::time_point next = Clock::time_point::max();
      for (auto& slot : slots) {
        if (slot->due) continue;
        const Clock::time_point at = start + std::chrono::milliseconds(slot->plug_delay_ms);
        if (at <= Clock::now()) {
          slot->due = true;
          Trace("port %d: plug delay of %u ms over", slot->port, slot->plug_delay_ms);
          if (!Plug(*slot)) std::fprintf(stderr, "usb: plug failed: %s\n", last_error.c_str());
        } else {
          next = std::min(next, at);
        }
      }
      if (next == Clock::time_point::max()) return;
      wake.wait_until(lock, next);
    }
  }

  // Completes the deferred answers as they fall due (real-time mode).
  void RunScheduler() {
    std::unique_lock<std::mutex> lock(mutex);
    while (!stop_scheduler) {
      const Clock::time_point now = Clock::now();
      Clock::time_point next = Clock::time_point::max();
      for (auto it = deferred.begin(); it != deferred.end();) {
        if (it->due <= now) {
          umockdev_ioctl_client_complete(it->client, it->result, it->error);
          g_object_unref(it->client);
          it = deferred.erase(it);
        } else {
          next = std::min(next, it->due);
          ++it;
        }
      }
      if (next == Clock::time_point::max()) {
        wake.wait(lock);
      } else {
        wake.wait_until(lock, next);
      }
    }
  }

  bool Plug(Slot& slot) {
    if (slot.current != nullptr) return true;
    if (!AddRootHub()) return false;
    UsbDeviceModel& model = *slot.model;
    std::vector<uint8_t> descriptors;
    try {
      descriptors = model.DeviceAndConfigDescriptors();
    } catch (const std::exception& e) {
      last_error = Format("device model: DeviceAndConfigDescriptors failed: %s", e.what());
      return false;
    }
    if (descriptors.empty()) {
      Trace("device stays unplugged (model has no descriptors)");
      return true;
    }
    if (std::string problem = CheckDescriptors(descriptors); !problem.empty()) {
      last_error = "device model: " + problem;
      return false;
    }

    auto device = std::make_unique<PluggedDevice>();
    device->owner = this;
    device->slot = &slot;
    const int devnum = addresses.Next();
    const std::string sysfs_path = slot.SysPath();
    device->syspath = "/sys" + sysfs_path;
    const std::string devnode = Format("/dev/bus/usb/%03d/%03d", kBusNumber, devnum);
    const uint8_t num_interfaces = descriptors[kDeviceDescriptorSize + 4];
    UsbdevfsDevice::Trace trace;
    if (options.trace) trace = [this](const std::string& text) { Trace("%s", text.c_str()); };
    device->usb = std::make_unique<UsbdevfsDevice>(model, devnum, num_interfaces, devnode, stats, trace);
    device->handler = umockdev_ioctl_base_new();
    g_signal_connect(device->handler, "handle-ioctl", G_CALLBACK(&Impl::OnHandleIoctl),
                     device.get());
    g_signal_connect(device->handler, "client-connected", G_CALLBACK(&Impl::OnClientConnected),
                     device.get());

    // The handler goes on first, so an open() right after the "add" uevent finds it. A departed
    // device keeps its handler (Depart); once the addresses wrap around (126 plugs later), the
    // new device takes the path over.
    GError* error = nullptr;
    for (auto& old : devices) {
      if (!old->attached || old->usb->devnode() != devnode) continue;
      if (!umockdev_testbed_detach_ioctl(testbed, devnode.c_str(), &error)) {
        Trace("detach_ioctl(%s): %s", devnode.c_str(), error != nullptr ? error->message : "failed");
      }
      if (error != nullptr) g_clear_error(&error);
      old->attached = false;
    }
    if (!umockdev_testbed_attach_ioctl(testbed, devnode.c_str(), device->handler,
                                       &error)) {
      last_error = Format("umockdev: cannot attach the ioctl handler to %s: %s",
                          devnode.c_str(),
                          error != nullptr ? error->message : "unknown error");
      if (error != nullptr) g_error_free(error);
      devices.push_back(std::move(device));  // the destructor releases the handler
      return false;
    }
    device->attached = true;

    const uint16_t vid = LoadLe16(&descriptors[8]);
    const uint16_t pid = LoadLe16(&descriptors[10]);
    const uint16_t bcd_device = LoadLe16(&descriptors[12]);
    const std::string text = Format(
        "P: %s\n"
        "N: bus/usb/%03d/%03d\n"
        "E: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\nE: DRIVER=usb\n"
        "E: BUSNUM=%03d\nE: DEVNUM=%03d\nE: DEVNAME=%s\n"
        "E: PRODUCT=%x/%x/%x\nE: TYPE=%d/%d/%d\n"
        "A: busnum=%d\\n\nA: devnum=%d\\n\nA: devpath=%d\\n\nA: speed=12\\n\n"
        "A: bConfigurationValue=1\\n\nA: bNumConfigurations=1\\n\nA: bNumInterfaces=%2d\\n\n"
        "A: idVendor=%04x\\n\nA: idProduct=%04x\\n\nA: bcdDevice=%04x\\n\n"
        "A: bDeviceClass=%02x\\n\nA: bMaxPacketSize0=%d\\n\nA: maxchild=0\\n\n"
        "A: version=%2x.%02x\\n\n"
        "H: descriptors=%s\n",
        sysfs_path.c_str(), kBusNumber, devnum, kBusNumber, devnum,
        devnode.c_str(), vid, pid, bcd_device, descriptors[4], descriptors[5],
        descriptors[6], kBusNumber, devnum, slot.port, num_interfaces, vid, pid,
        bcd_device, descriptors[4], descriptors[7], descriptors[3], descriptors[2],
        HexUpper(descriptors).c_str());
    if (!umockdev_testbed_add_from_string(testbed, text.c_str(), &error)) {
      last_error = Format("umockdev: cannot add device %s: %s", devnode.c_str(),
                          error != nullptr ? error->message : "unknown error");
      if (error != nullptr) g_error_free(error);
      devices.push_back(std::move(device));
      return false;
    }
    umockdev_testbed_uevent(testbed, device->syspath.c_str(), "add");
    Trace("plugged in %04x:%04x as %s", vid, pid, devnode.c_str());
    slot.current = device.get();
    devices.push_back(std::move(device));
    ++stats.plugs;
    return true;
  }

  // The device leaves the bus: handles opened on it keep their completed URBs, everything new
  // fails ENODEV. Then the model is plugged in again as a new device (if it has descriptors).
  // Runs on umockdev's thread, which also accepts the connections of new opens: an open() of
  // the node while this request was handled (another program or thread enumerating) waits in
  // the listener's backlog, so the listener stays (detaching it would reset that connection
  // and abort the client); the node goes, so later opens fail ENOENT as on Linux, and an open
  // that came first gets ENODEV answers.
  void Depart(PluggedDevice& device) {
    if (device.usb->gone()) return;
    device.usb->MarkGone();
    const std::string& devnode = device.usb->devnode();
    Trace("%s leaves the bus", devnode.c_str());
    // The remove uevent is built from the device's sysfs record, so send it before removal.
    umockdev_testbed_uevent(testbed, device.syspath.c_str(), "remove");
    umockdev_testbed_remove_device(testbed, device.syspath.c_str());
    // remove_device leaves the node file behind; a departed device has no node.
    gchar* root = umockdev_testbed_get_root_dir(testbed);
    unlink((std::string(root) + devnode).c_str());
    g_free(root);
    if (device.slot->current == &device) device.slot->current = nullptr;
    if (!Plug(*device.slot)) {
      std::fprintf(stderr, "usb: re-plug failed: %s\n", last_error.c_str());
    }
  }

  // The state of `client` on `device`, registered on first sight. Holds a reference on the
  // client so its address cannot be reused by a later open while we keep its state; released
  // when the connection reports closed (umockdev 0.17 does not report that for usbdevfs nodes,
  // so in practice at destruction: a few dozen bytes per open).
  static UsbdevfsDevice::Client& StateFor(PluggedDevice& device, UMockdevIoctlClient* client) {
    if (!device.usb->Knows(client)) {
      g_object_ref(client);
      g_signal_connect(client, "notify::connected", G_CALLBACK(&Impl::OnClientNotify), &device);
      device.clients.push_back(client);
    }
    return device.usb->ClientFor(client);
  }

  static void OnClientConnected(UMockdevIoctlBase* /*handler*/, UMockdevIoctlClient* client,
                                gpointer user_data) {
    auto* device = static_cast<PluggedDevice*>(user_data);
    std::lock_guard<std::mutex> lock(device->owner->mutex);
    StateFor(*device, client);
  }

  static void OnClientNotify(GObject* object, GParamSpec* /*pspec*/, gpointer user_data) {
    auto* device = static_cast<PluggedDevice*>(user_data);
    auto* client = reinterpret_cast<UMockdevIoctlClient*>(object);
    if (umockdev_ioctl_client_get_connected(client)) return;
    std::lock_guard<std::mutex> lock(device->owner->mutex);
    auto it = std::find(device->clients.begin(), device->clients.end(), client);
    if (it == device->clients.end()) return;
    device->owner->Trace("close %s", device->usb->devnode().c_str());
    g_signal_handlers_disconnect_by_data(client, device);
    device->usb->Close(client);
    device->clients.erase(it);
    g_object_unref(client);
  }

  static gboolean OnHandleIoctl(UMockdevIoctlBase* /*handler*/, UMockdevIoctlClient* client,
                                gpointer user_data) {
    auto* device = static_cast<PluggedDevice*>(user_data);
    return device->owner->HandleIoctl(*device, client);
  }

  // Runs on umockdev's ioctl thread, not on the caller of RunCommand.
  gboolean HandleIoctl(PluggedDevice& device, UMockdevIoctlClient* client) {
    std::lock_guard<std::mutex> lock(mutex);
    const unsigned long request = umockdev_ioctl_client_get_request(client);
    UMockdevIoctlData* arg = umockdev_ioctl_client_get_arg(client);
    UsbdevfsDevice::Client& state = StateFor(device, client);
    bool depart = false;
    UmockdevMemory memory(arg);
    const uint64_t modeled_before = options.realtime ? device.slot->model->ModeledUs() : 0;
    const UsbdevfsReply reply = device.usb->Ioctl(state, request, memory, &depart);
    if (reply.result < 0 && reply.error != EAGAIN) {
      Trace("%s ioctl U%lu -> %s", device.usb->devnode().c_str(), _IOC_NR(request), std::strerror(reply.error));
    }
    if (options.realtime) {
      const uint64_t modeled_after = device.slot->model->ModeledUs();
      Defer(*device.slot, client, request, reply, modeled_after > modeled_before ? modeled_after - modeled_before : 0);
    } else {
      umockdev_ioctl_client_complete(client, reply.result, reply.error);
    }
    if (depart) Depart(device);
    return TRUE;
  }

  // Real-time mode: a submit that cost `spent_us` makes its client busy until the device's
  // previous timed answer + spent (not before now); the reap that hands the URB back (or a
  // synchronous CONTROL) completes no earlier. Called locked.
  void Defer(Slot& slot, UMockdevIoctlClient* client, unsigned long request, const UsbdevfsReply& reply,
             uint64_t spent_us) {
    const Clock::time_point now = Clock::now();
    Clock::time_point& busy = busy_until[client];
    if (busy < now) busy = now;
    if (spent_us > 0) {
      busy = std::max(busy, slot.last_due + std::chrono::microseconds(spent_us));
      slot.last_due = busy;
    }
    const bool hands_back = (request == USBDEVFS_REAPURB || request == USBDEVFS_REAPURBNDELAY ||
                             request == USBDEVFS_CONTROL) && reply.result >= 0;
    if (!hands_back || busy <= now) {
      umockdev_ioctl_client_complete(client, reply.result, reply.error);
      return;
    }
    g_object_ref(client);
    deferred.push_back(Deferred{busy, client, reply.result, reply.error});
    wake.notify_all();
  }

  // Serializes everything below between umockdev's ioctl thread (requests, re-plugs) and the
  // caller's thread (Plug, and the hand-over when RunCommand returns).
  std::mutex mutex;
  std::condition_variable wake;  // the plugger and the scheduler wait on it
  UmockdevUsbOptions options;
  UMockdevTestbed* testbed = nullptr;
  bool root_hub_added = false;
  bool too_many_ports = false;
  UsbAddressAllocator addresses;  // one address space for the whole bus
  std::vector<std::unique_ptr<Slot>> slots;
  std::vector<std::unique_ptr<PluggedDevice>> devices;
  std::map<const UMockdevIoctlClient*, Clock::time_point> busy_until;  // real time
  std::deque<Deferred> deferred;
  std::thread plugger;
  bool stop_plugger = false;
  std::thread scheduler;
  bool stop_scheduler = false;
  UmockdevUsbStats stats;
  std::string last_error;
};

UmockdevUsb::UmockdevUsb(UsbDeviceModel& model, UmockdevUsbOptions options)
    : UmockdevUsb(std::vector<UmockdevPort>{UmockdevPort{&model, 0}}, options) {}

UmockdevUsb::UmockdevUsb(std::vector<UmockdevPort> ports, UmockdevUsbOptions options)
    : impl_(std::make_unique<Impl>(ports, options)) {}

UmockdevUsb::~UmockdevUsb() = default;

bool UmockdevUsb::Plug() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (auto& slot : impl_->slots) slot->due = true;
  return impl_->PlugDue();
}

std::string UmockdevUsb::DeviceNode(size_t port) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (port >= impl_->slots.size() || impl_->slots[port]->current == nullptr) return {};
  return impl_->slots[port]->current->usb->devnode();
}

std::string UmockdevUsb::TestbedRoot() const {
  gchar* root = umockdev_testbed_get_root_dir(impl_->testbed);
  std::string out(root != nullptr ? root : "");
  g_free(root);
  return out;
}

const UmockdevUsbStats& UmockdevUsb::Stats() const { return impl_->stats; }

const std::string& UmockdevUsb::LastError() const { return impl_->last_error; }

int UmockdevUsb::RunCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) {
    impl_->last_error = "RunCommand: empty command";
    return -1;
  }
  if (!UnderWrapper()) {
    // umockdev_testbed_uevent() resolves /sys through the preload: without it no re-plug
    // reaches libusb ("uevent_sender_send: No such device").
    impl_->last_error =
        "not running under umockdev-wrapper (call ReexecUnderWrapperIfNeeded() in main)";
    return -1;
  }
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (!impl_->PlugDue()) return -1;
  }
  const auto start = Impl::Clock::now();
  impl_->plugger = std::thread([this, start] { impl_->RunPlugger(start); });

  gchar** envp = g_get_environ();
  const gchar* preload = g_environ_getenv(envp, "LD_PRELOAD");
  if (preload == nullptr || std::strstr(preload, "libumockdev-preload") == nullptr) {
    std::string value = kPreloadLibrary;
    if (preload != nullptr && *preload != '\0') value += std::string(":") + preload;
    envp = g_environ_setenv(envp, "LD_PRELOAD", value.c_str(), TRUE);
  }
  envp = g_environ_unsetenv(envp, kReexecGuard);
  const std::vector<std::string> env(envp, envp + g_strv_length(envp));
  g_strfreev(envp);

  const int status = RunChildProcess(argv, env, impl_->options.command_timeout_ms, &impl_->last_error);
  impl_->StopThread(impl_->plugger, impl_->stop_plugger);
  // The child may exit while the ioctl thread still finishes a departure and re-plug it
  // triggered; wait for that, so the model and Stats() are settled when we return.
  { std::lock_guard<std::mutex> settle(impl_->mutex); }
  return status;
}

bool UmockdevUsb::UnderWrapper() {
  // Not umockdev_in_mock_environment(): it decides by stat("/sys"), which is only redirected
  // once UMOCKDEV_DIR exists, and caches its first answer. Ask the dynamic loader instead.
  void* preload = dlopen(kPreloadLibrary, RTLD_LAZY | RTLD_NOLOAD);
  if (preload == nullptr) return false;
  dlclose(preload);
  return true;
}

bool UmockdevUsb::ReexecUnderWrapperIfNeeded(int argc, char** argv, std::string* error) {
  if (UnderWrapper()) return true;
  if (std::getenv(kReexecGuard) != nullptr) {
    if (error != nullptr) {
      *error = std::string("still not under umockdev-wrapper after re-exec; is ") +
               kPreloadLibrary + " installed (Debian: libumockdev0)?";
    }
    return false;
  }
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    if (error != nullptr) *error = std::string("readlink /proc/self/exe: ") + std::strerror(errno);
    return false;
  }
  self[n] = '\0';
  setenv(kReexecGuard, "1", 1);
  std::vector<char*> args;
  args.push_back(const_cast<char*>("umockdev-wrapper"));
  args.push_back(self);
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  execvp("umockdev-wrapper", args.data());
  if (error != nullptr) {
    *error = std::string("cannot run umockdev-wrapper: ") + std::strerror(errno) +
             " (Debian package: umockdev)";
  }
  unsetenv(kReexecGuard);
  return false;
}

}  // namespace onedfu::sim
