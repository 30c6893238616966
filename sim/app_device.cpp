#include "app_device.h"

#include <algorithm>
#include <utility>

#include "bootloader/descriptors.h"
#include "bootloader/dfu.h"
#include "bootloader/usb.h"
#include "runtime/region_store.h"

namespace onedfu::sim {
namespace {

using bootloader::DfuRequest;
using bootloader::DfuState;

constexpr uint8_t kRuntimeProtocol = 1;
constexpr uint8_t kStringSummary = 2;  // product
constexpr uint8_t kStringInterface = 4;

class FileCounter final : public runtime::RegionWalkVisitor {
 public:
  runtime::Status OnEntry(const char* path, const runtime::RomfsEntry& entry, size_t image_index) override {
    (void)path;
    (void)image_index;
    if (!entry.is_dir) ++files;
    return runtime::Status::Ok();
  }
  uint32_t files = 0;
};

ControlReply Reply(std::span<const uint8_t> bytes, std::span<uint8_t> data_in) {
  const size_t n = std::min(bytes.size(), data_in.size());
  std::copy_n(bytes.begin(), n, data_in.begin());
  return ControlReply::Ack(static_cast<uint16_t>(n));
}

std::string Plural(size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

RomfsSummary SummarizeRomfs(SimBoard& board) {
  RomfsSummary summary;
  const runtime::Region* region = board.board().FindRole(runtime::RegionRole::kRomfs);
  if (region == nullptr || region->memory >= board.memory_count()) return summary;
  summary.has_region = true;
  runtime::RegionStore store(board.flash(region->memory), board.board().RegionStart(*region), region->size);
  runtime::Diag diag;
  if (runtime::Status s = store.Scan(&diag); !s.ok()) {
    summary.error = std::string("scan: ") + s.message();
    return summary;
  }
  summary.images = store.live_count();
  FileCounter counter;
  if (runtime::Status s = store.Walk(counter, &diag); !s.ok()) {
    summary.error = std::string("walk: ") + s.message();
  }
  summary.files = counter.files;
  return summary;
}

constexpr uint8_t kWillDetach = 0x08;  // bmAttributes bitWillDetach

AppDevice::AppDevice(SimBoard& board, const std::string& serial, bool will_detach, uint32_t usb_id)
    : board_(board), serial_(serial), usb_id_(usb_id), will_detach_(will_detach) {
  state_ = static_cast<uint8_t>(DfuState::kAppIdle);
  auto record = board.ReadRecord();
  summary_ = std::string("onedfu app ") + (record.ok() ? record.value().package_version : "?");
  const RomfsSummary romfs = SummarizeRomfs(board);
  if (!romfs.has_region) {
    summary_ += ", romfs: none";
  } else if (!romfs.error.empty()) {
    summary_ += ", romfs: " + romfs.error;
  } else if (romfs.images == 0) {
    summary_ += ", romfs: empty";
  } else {
    summary_ += ", romfs: " + Plural(romfs.images, "image") + ", " + Plural(romfs.files, "file");
  }
}

std::vector<uint8_t> AppDevice::Descriptors() const {
  std::vector<uint8_t> out(bootloader::kDeviceDescriptorSize + bootloader::kConfigDescriptorSize);
  const size_t device = bootloader::BuildDeviceDescriptor(board_.board(), out);
  const size_t config = bootloader::BuildConfigDescriptor(runtime::MutableByteSpan(out).subspan(device));
  if (device == 0 || config != bootloader::kConfigDescriptorSize) return {};
  if (usb_id_ != 0) {  // idVendor, idProduct (little-endian, bytes 8..11 of the device descriptor)
    out[8] = static_cast<uint8_t>(usb_id_ >> 16);
    out[9] = static_cast<uint8_t>(usb_id_ >> 24);
    out[10] = static_cast<uint8_t>(usb_id_);
    out[11] = static_cast<uint8_t>(usb_id_ >> 8);
  }
  // Same shape as the DFU-mode configuration; the interface is the RUNTIME one.
  uint8_t* interface = out.data() + device + 9;
  if (interface[1] != bootloader::kDescriptorInterface) return {};
  interface[7] = kRuntimeProtocol;
  interface[8] = kStringInterface;
  if (!will_detach_) interface[9 + 2] &= static_cast<uint8_t>(~kWillDetach);  // functional bmAttributes
  out.resize(device + config);
  return out;
}

ControlReply AppDevice::HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                                       std::span<uint8_t> data_in) {
  (void)data_out;
  const uint8_t type = (setup.bmRequestType >> 5) & 3;
  if (type == 0) return Standard(setup, data_in);
  if (type == 1 && (setup.bmRequestType & 0x1f) == 1 && setup.wIndex == 0) return Dfu(setup, data_in);
  return ControlReply::Stall();
}

ControlReply AppDevice::Standard(const SetupPacket& setup, std::span<uint8_t> data_in) {
  switch (setup.bRequest) {
    case bootloader::kGetStatus: {
      const uint8_t status[2] = {0, 0};
      return setup.IsIn() ? Reply(status, data_in) : ControlReply::Stall();
    }
    case bootloader::kGetConfiguration: {
      const uint8_t config = 1;
      return Reply({&config, 1}, data_in);
    }
    case bootloader::kGetInterface: {
      const uint8_t alt = 0;
      return setup.wIndex == 0 ? Reply({&alt, 1}, data_in) : ControlReply::Stall();
    }
    case bootloader::kClearFeature:
    case bootloader::kSetFeature:
      return ControlReply::Ack();
    case bootloader::kGetDescriptor:
      break;
    default:
      return ControlReply::Stall();
  }
  const uint8_t kind = static_cast<uint8_t>(setup.wValue >> 8);
  const uint8_t index = static_cast<uint8_t>(setup.wValue & 0xff);
  if (kind == bootloader::kDescriptorDevice || kind == bootloader::kDescriptorConfiguration) {
    const std::vector<uint8_t> all = Descriptors();
    if (all.size() < bootloader::kDeviceDescriptorSize) return ControlReply::Stall();
    const auto device = std::span<const uint8_t>(all).first(bootloader::kDeviceDescriptorSize);
    const auto config = std::span<const uint8_t>(all).subspan(bootloader::kDeviceDescriptorSize);
    return Reply(kind == bootloader::kDescriptorDevice ? device : config, data_in);
  }
  if (kind == bootloader::kDescriptorDfuFunctional) {
    uint8_t functional[bootloader::kFunctionalDescriptorSize];
    const size_t n = bootloader::BuildFunctionalDescriptor(functional);
    if (!will_detach_ && n > 2) functional[2] &= static_cast<uint8_t>(~kWillDetach);
    return Reply({functional, n}, data_in);
  }
  if (kind != bootloader::kDescriptorString) return ControlReply::Stall();
  uint8_t descriptor[bootloader::kMaxStringDescriptorSize];
  size_t n = 0;
  switch (index) {
    case bootloader::kStringLanguages:
      n = bootloader::BuildLanguageDescriptor(descriptor);
      break;
    case bootloader::kStringManufacturer:
      n = bootloader::BuildStringDescriptor("onedfu", descriptor);
      break;
    case kStringSummary:
    case kStringInterface:
      n = bootloader::BuildStringDescriptor(summary_.c_str(), descriptor);
      break;
    case bootloader::kStringSerial:
      n = bootloader::BuildStringDescriptor(serial_.c_str(), descriptor);
      break;
    default:
      return ControlReply::Stall();
  }
  return Reply({descriptor, n}, data_in);
}

ControlReply AppDevice::Dfu(const SetupPacket& setup, std::span<uint8_t> data_in) {
  switch (static_cast<DfuRequest>(setup.bRequest)) {
    case DfuRequest::kGetStatus: {
      if (!setup.IsIn()) return ControlReply::Stall();
      const uint8_t status[6] = {static_cast<uint8_t>(bootloader::DfuStatus::kOk), 0, 0, 0, state_, 0};
      return Reply(status, data_in);
    }
    case DfuRequest::kGetState:
      if (!setup.IsIn()) return ControlReply::Stall();
      return Reply({&state_, 1}, data_in);
    case DfuRequest::kDetach:
      if (setup.IsIn()) return ControlReply::Stall();
      state_ = static_cast<uint8_t>(DfuState::kAppDetach);
      {
        ControlReply reply = ControlReply::Ack();
        reply.reset_after_status = will_detach_;  // bitWillDetach: leave once this reply is out
        return reply;
      }
    default:
      return ControlReply::Stall();
  }
}

bool AppDevice::BusReset() {
  if (state_ == static_cast<uint8_t>(DfuState::kAppDetach)) return true;
  state_ = static_cast<uint8_t>(DfuState::kAppIdle);
  return false;
}

}  // namespace onedfu::sim
