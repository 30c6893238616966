// The only file that includes libusb.h (issue 8: Shape).
#include "flasher/libusb_transport.h"

#include <libusb.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>


namespace onedfu::flasher {
namespace {

constexpr unsigned kControlTimeoutMs = 5000;
constexpr uint8_t kDfuClass = 0xfe;
constexpr uint8_t kDfuSubclass = 1;
constexpr uint8_t kDfuModeProtocol = 2;
constexpr uint8_t kFunctionalType = 0x21;
constexpr uint8_t kOutClassInterface = 0x21;
constexpr uint8_t kInClassInterface = 0xa1;

UsbError Kind(int code) {
  switch (code) {
    case LIBUSB_SUCCESS: return UsbError::kNone;
    case LIBUSB_ERROR_NO_DEVICE:
    case LIBUSB_ERROR_NOT_FOUND: return UsbError::kGone;
    case LIBUSB_ERROR_PIPE: return UsbError::kStall;
    case LIBUSB_ERROR_TIMEOUT: return UsbError::kTimeout;
    case LIBUSB_ERROR_ACCESS: return UsbError::kAccess;
    case LIBUSB_ERROR_BUSY: return UsbError::kBusy;
    default: return UsbError::kOther;
  }
}

UsbStatus StatusOf(int code, const std::string& what) {
  if (code >= 0) return {};
  return {Kind(code), what + ": " + libusb_error_name(code) + " (" + libusb_strerror(static_cast<libusb_error>(code)) + ")"};
}

std::string PathOf(libusb_device* device) {
  uint8_t ports[8];
  const int n = libusb_get_port_numbers(device, ports, sizeof ports);
  std::string path = std::to_string(libusb_get_bus_number(device));
  for (int i = 0; i < n; ++i) path += (i == 0 ? "-" : ".") + std::to_string(ports[i]);
  return path;
}

// The first language of the device's string table (string descriptor 0); 0 when unreadable.
// Read once per opened device: libusb_get_string_descriptor_ascii asks for it again before
// every string, one more control transfer each (4 per enumerated device).
uint16_t FirstLanguage(libusb_device_handle* handle) {
  unsigned char buffer[4] = {};
  const int n = libusb_get_string_descriptor(handle, 0, 0, buffer, sizeof buffer);
  if (n < 4 || buffer[1] != LIBUSB_DT_STRING) return 0;
  return static_cast<uint16_t>(buffer[2] | buffer[3] << 8);
}

// String descriptor `index` in `language` as ASCII (a character outside ASCII becomes '?', as
// libusb_get_string_descriptor_ascii does). Returns the libusb error code or the length.
int AsciiString(libusb_device_handle* handle, uint16_t language, uint8_t index, std::string* text) {
  text->clear();
  if (index == 0) return 0;
  unsigned char buffer[255];
  const int n = libusb_get_string_descriptor(handle, index, language, buffer, sizeof buffer);
  if (n < 0) return n;
  if (n < 2 || buffer[1] != LIBUSB_DT_STRING || buffer[0] > n) return LIBUSB_ERROR_IO;
  for (int at = 2; at + 1 < buffer[0]; at += 2) {
    const bool ascii = (buffer[at] & 0x80) == 0 && buffer[at + 1] == 0;
    text->push_back(ascii ? static_cast<char>(buffer[at]) : '?');
  }
  return static_cast<int>(text->size());
}

std::string AsciiString(libusb_device_handle* handle, uint16_t language, uint8_t index) {
  std::string text;
  return AsciiString(handle, language, index, &text) > 0 ? text : std::string();
}

// Fills the DFU interface fields of `out` from the first DFU interface of the active (or first)
// configuration; returns its iInterface string index, or -1 when the device has none.
int FindDfuInterface(libusb_device* device, UsbDevice* out) {
  libusb_config_descriptor* config = nullptr;
  if (libusb_get_active_config_descriptor(device, &config) != 0 &&
      libusb_get_config_descriptor(device, 0, &config) != 0) {
    return -1;
  }
  int string_index = -1;
  for (uint8_t i = 0; i < config->bNumInterfaces && string_index < 0; ++i) {
    const libusb_interface& iface = config->interface[i];
    for (int a = 0; a < iface.num_altsetting && string_index < 0; ++a) {
      const libusb_interface_descriptor& alt = iface.altsetting[a];
      if (alt.bInterfaceClass != kDfuClass || alt.bInterfaceSubClass != kDfuSubclass) continue;
      out->interface = alt.bInterfaceNumber;
      out->alt = alt.bAlternateSetting;
      out->dfu_mode = alt.bInterfaceProtocol == kDfuModeProtocol;
      string_index = alt.iInterface;
      // The functional descriptor follows the interface (libusb keeps it in `extra`).
      const unsigned char* extra = alt.extra;
      for (int at = 0; extra != nullptr && at + 9 <= alt.extra_length && extra[at] >= 2; at += extra[at]) {
        if (extra[at + 1] != kFunctionalType) continue;
        out->attributes = extra[at + 2];
        out->detach_timeout_ms = static_cast<uint16_t>(extra[at + 3] | extra[at + 4] << 8);
        out->transfer_size = static_cast<uint16_t>(extra[at + 5] | extra[at + 6] << 8);
      }
    }
  }
  libusb_free_config_descriptor(config);
  return string_index;
}

// The libusb context of the process, shared by every LibusbTransport alive at a time (the
// station's scanner and its per-board workers; libusb's API is thread-safe on one context).
// Per transport contexts leaked: libusb 1.0.26's libusb_init lists a new context before its
// hotplug is ready, and a device that leaves the bus in that window is dropped from the
// context's list without its reference being released, so a station worker starting while
// another board re-enumerated leaked that device (LeakSanitizer in station_tests under ASan).
// The shared context is made once, by the first transport (the station's scanner, before any
// board is flashed), and ended with the last one.
struct SharedContext {
  libusb_context* context = nullptr;
  libusb_hotplug_callback_handle hotplug = 0;
  bool hotplug_registered = false;
  // Arrivals seen by the hotplug callback, which runs in whichever thread handles the
  // context's events; a transport waits for it to change.
  std::atomic<uint64_t> arrivals{0};

  ~SharedContext() {
    if (context == nullptr) return;  // libusb_init failed (libusb_exit(nullptr) is the default context's)
    if (hotplug_registered) libusb_hotplug_deregister_callback(context, hotplug);
    libusb_exit(context);
  }
};

extern "C" int OnHotplug(libusb_context*, libusb_device*, libusb_hotplug_event, void* user_data) {
  static_cast<SharedContext*>(user_data)->arrivals.fetch_add(1);
  return 0;  // stay registered
}

std::mutex& OpenCloseMutex() {
  static std::mutex mutex;
  return mutex;
}

// The process's context, made when no transport holds one; *rc is libusb_init's error then.
std::shared_ptr<SharedContext> AcquireContext(int* rc) {
  static std::mutex mutex;
  static std::weak_ptr<SharedContext> current;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto shared = current.lock()) return shared;
  auto shared = std::make_shared<SharedContext>();
  *rc = libusb_init(&shared->context);
  if (*rc != 0) {
    shared->context = nullptr;
    return nullptr;
  }
  if (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
    shared->hotplug_registered =
        libusb_hotplug_register_callback(shared->context, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED, LIBUSB_HOTPLUG_NO_FLAGS,
                                         LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
                                         OnHotplug, shared.get(), &shared->hotplug) == LIBUSB_SUCCESS;
  }
  current = shared;
  return shared;
}

// libusb_open / libusb_close of a device, one at a time in the process. Under the simulator
// (umockdev 0.17's preload) an open() or close() of a device node adds or removes an entry of
// the preload's table of emulated descriptors without a lock: two station workers opening at
// once could overwrite each other's entry (LeakSanitizer: the preload's 56-byte descriptor
// record lost, and that handle's ioctls no longer emulated). On real usbfs the lock costs
// nothing measurable (opens are rare) and covers no USB transfer.
int OpenDevice(libusb_device* device, libusb_device_handle** handle) {
  std::lock_guard<std::mutex> lock(OpenCloseMutex());
  return libusb_open(device, handle);
}

void CloseDevice(libusb_device_handle* handle) {
  std::lock_guard<std::mutex> lock(OpenCloseMutex());
  libusb_close(handle);
}

}  // namespace

struct LibusbTransport::State {
  std::shared_ptr<SharedContext> shared;
  libusb_context* context = nullptr;  // shared->context
  libusb_device_handle* handle = nullptr;
  uint8_t interface = 0;
  bool claimed = false;
  uint16_t language = 0;  // of the open handle's strings; 0 = not read yet
  bool waited = false;          // WaitForDeviceChange ran before
  uint64_t arrivals_seen = 0;   // shared->arrivals when it last returned
  // Strings read at enumeration, per appearance of a device (bus, address, path: a re-plug
  // gets a new address), so enumerating again does not open a device that another program
  // (or another station worker) is busy flashing: a bootloader that holds the bus while it
  // erases would stall the string reads for seconds.
  std::map<std::tuple<uint8_t, uint8_t, std::string>, UsbDevice> seen;
};

LibusbTransport::LibusbTransport(std::unique_ptr<State> state) : state_(std::move(state)) {}

LibusbTransport::~LibusbTransport() { Close(); }

host::Expected<std::unique_ptr<LibusbTransport>> LibusbTransport::Create() {
  auto state = std::make_unique<State>();
  int rc = 0;
  state->shared = AcquireContext(&rc);
  if (state->shared == nullptr) return host::Fail(StatusOf(rc, "cannot initialize libusb").message);
  state->context = state->shared->context;
  return std::unique_ptr<LibusbTransport>(new LibusbTransport(std::move(state)));
}

host::Expected<std::vector<UsbDevice>> LibusbTransport::Enumerate() {
  libusb_device** list = nullptr;
  const ssize_t n = libusb_get_device_list(state_->context, &list);
  if (n < 0) return host::Fail(StatusOf(static_cast<int>(n), "cannot list USB devices").message);
  std::vector<UsbDevice> out;
  std::map<std::tuple<uint8_t, uint8_t, std::string>, UsbDevice> present;
  for (ssize_t i = 0; i < n; ++i) {
    libusb_device_descriptor desc{};
    if (libusb_get_device_descriptor(list[i], &desc) != 0) continue;
    UsbDevice device;
    const int interface_string = FindDfuInterface(list[i], &device);
    if (interface_string < 0) continue;
    device.bus = libusb_get_bus_number(list[i]);
    device.address = libusb_get_device_address(list[i]);
    device.path = PathOf(list[i]);
    device.vid = desc.idVendor;
    device.pid = desc.idProduct;
    device.bcd_device = desc.bcdDevice;
    const auto key = std::make_tuple(device.bus, device.address, device.path);
    if (auto it = state_->seen.find(key); it != state_->seen.end() && it->second.vid == device.vid &&
                                          it->second.pid == device.pid && it->second.open_error.empty()) {
      present[key] = it->second;
      out.push_back(it->second);
      continue;
    }
    libusb_device_handle* handle = nullptr;
    const int rc = OpenDevice(list[i], &handle);
    if (rc != 0) {
      device.open_error = StatusOf(rc, "cannot open " + device.path).message;
      device.access_denied = rc == LIBUSB_ERROR_ACCESS;
    } else {
      const uint16_t language = FirstLanguage(handle);
      device.manufacturer = AsciiString(handle, language, desc.iManufacturer);
      device.product = AsciiString(handle, language, desc.iProduct);
      device.serial = AsciiString(handle, language, desc.iSerialNumber);
      device.interface_name = AsciiString(handle, language, static_cast<uint8_t>(interface_string));
      CloseDevice(handle);
    }
    present[key] = device;
    out.push_back(std::move(device));
  }
  libusb_free_device_list(list, 1);
  state_->seen = std::move(present);  // forget the devices that left
  return out;
}

UsbStatus LibusbTransport::Open(const UsbDevice& device) {
  Close();
  libusb_device** list = nullptr;
  const ssize_t n = libusb_get_device_list(state_->context, &list);
  if (n < 0) return StatusOf(static_cast<int>(n), "cannot list USB devices");
  UsbStatus status{UsbError::kGone, "device " + device.path + " is no longer on the bus"};
  for (ssize_t i = 0; i < n; ++i) {
    if (libusb_get_bus_number(list[i]) != device.bus || libusb_get_device_address(list[i]) != device.address) continue;
    status = StatusOf(OpenDevice(list[i], &state_->handle), "cannot open " + device.path);
    break;
  }
  libusb_free_device_list(list, 1);
  if (!status.ok()) {
    state_->handle = nullptr;
    return status;
  }
  state_->interface = device.interface;
  status = StatusOf(libusb_claim_interface(state_->handle, device.interface), "cannot claim the DFU interface of " + device.path);
  if (status.ok()) {
    state_->claimed = true;
    status = StatusOf(libusb_set_interface_alt_setting(state_->handle, device.interface, device.alt),
                      "cannot select alt setting of " + device.path);
  }
  if (!status.ok()) Close();
  return status;
}

void LibusbTransport::Close() {
  if (state_->handle == nullptr) return;
  if (state_->claimed) (void)libusb_release_interface(state_->handle, state_->interface);
  state_->claimed = false;
  CloseDevice(state_->handle);
  state_->handle = nullptr;
  state_->language = 0;
}

UsbStatus LibusbTransport::ControlOut(uint8_t request, uint16_t value, std::span<const uint8_t> data) {
  if (state_->handle == nullptr) return {UsbError::kOther, "no device open"};
  const int rc = libusb_control_transfer(state_->handle, kOutClassInterface, request, value, state_->interface,
                                         const_cast<unsigned char*>(data.data()), static_cast<uint16_t>(data.size()),
                                         kControlTimeoutMs);
  return StatusOf(rc, "control OUT request " + std::to_string(request));
}

UsbStatus LibusbTransport::ControlIn(uint8_t request, uint16_t value, std::span<uint8_t> data, size_t* length) {
  *length = 0;
  if (state_->handle == nullptr) return {UsbError::kOther, "no device open"};
  const int rc = libusb_control_transfer(state_->handle, kInClassInterface, request, value, state_->interface,
                                         data.data(), static_cast<uint16_t>(data.size()), kControlTimeoutMs);
  if (rc >= 0) *length = static_cast<size_t>(rc);
  return StatusOf(rc, "control IN request " + std::to_string(request));
}

UsbStatus LibusbTransport::ReadString(uint8_t index, std::string* text) {
  if (state_->handle == nullptr) return {UsbError::kOther, "no device open"};
  if (state_->language == 0) state_->language = FirstLanguage(state_->handle);
  const int n = AsciiString(state_->handle, state_->language, index, text);
  if (n < 0) return StatusOf(n, "string descriptor " + std::to_string(index));
  return {};
}

UsbStatus LibusbTransport::Reset() {
  if (state_->handle == nullptr) return {UsbError::kOther, "no device open"};
  const int rc = libusb_reset_device(state_->handle);
  if (rc == LIBUSB_ERROR_NOT_FOUND || rc == LIBUSB_ERROR_NO_DEVICE) return {};  // re-enumerated
  return StatusOf(rc, "USB reset");
}

bool LibusbTransport::WaitForDeviceChange(uint32_t timeout_ms) {
  SharedContext& shared = *state_->shared;
  if (!shared.hotplug_registered) return DfuTransport::WaitForDeviceChange(timeout_ms);
  // Arrivals count from the first call on, as the callback registered then used to.
  if (!std::exchange(state_->waited, true)) state_->arrivals_seen = shared.arrivals.load();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (shared.arrivals.load() == state_->arrivals_seen) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    timeval tv{static_cast<time_t>(left.count() / 1000000), static_cast<suseconds_t>(left.count() % 1000000)};
    if (libusb_handle_events_timeout_completed(state_->context, &tv, nullptr) != 0) break;
  }
  const uint64_t now = shared.arrivals.load();
  return std::exchange(state_->arrivals_seen, now) != now;
}

}  // namespace onedfu::flasher
