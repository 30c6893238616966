#include "bootloader/dfu_runtime.h"

#include "bootloader/descriptors.h"
#include "bootloader/dfu.h"
#include "runtime/boot_record.h"
#include "runtime/region_store.h"

namespace onedfu::bootloader {
namespace {

using runtime::ByteSpan;
using runtime::MutableByteSpan;

constexpr uint8_t kRuntimeProtocol = 1;
constexpr uint8_t kStringSummary = 2;  // product
constexpr uint8_t kStringInterface = 4;
constexpr uint8_t kWillDetach = 0x08;  // functional bmAttributes bitWillDetach

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

ControlReply Reply(ByteSpan bytes, MutableByteSpan data_in) {
  const size_t n = bytes.size() < data_in.size() ? bytes.size() : data_in.size();
  for (size_t i = 0; i < n; ++i) data_in[i] = bytes[i];
  return ControlReply::Ack(static_cast<uint16_t>(n));
}

void Count(runtime::Diag& out, size_t n, const char* word) {
  out.Dec(n).Str(" ").Str(word).Str(n == 1 ? "" : "s");
}

void DescribeRomfs(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories, runtime::Diag& out) {
  out.Str(", romfs: ");
  const runtime::Region* region = board.FindRole(runtime::RegionRole::kRomfs);
  if (region == nullptr || region->memory >= memories.size() || memories[region->memory] == nullptr) {
    out.Str("none");
    return;
  }
  runtime::RegionStore store(*memories[region->memory], board.RegionStart(*region), region->size);
  runtime::Diag diag;
  if (runtime::Status s = store.Scan(&diag); !s.ok()) {
    out.Str("scan: ").Str(s.message());
    return;
  }
  if (store.live_count() == 0) {
    out.Str("empty");
    return;
  }
  FileCounter counter;
  if (runtime::Status s = store.Walk(counter, &diag); !s.ok()) {
    out.Str("walk: ").Str(s.message());
    return;
  }
  Count(out, store.live_count(), "image");
  out.Str(", ");
  Count(out, counter.files, "file");
}

}  // namespace

void DescribeApplication(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories,
                         runtime::Diag& out) {
  out.Clear();
  out.Str("onedfu app ");
  const runtime::Region* record = board.FindRole(runtime::RegionRole::kRecord);
  const char* version = "?";
  runtime::BootRecord decoded;
  if (record != nullptr && record->memory < memories.size() && memories[record->memory] != nullptr) {
    const ByteSpan mapped = memories[record->memory]->Mapped();
    const uint32_t at = board.RegionStart(*record) - board.memories[record->memory].base;
    if (mapped.size() >= uint64_t{at} + runtime::kRecordSize) {
      auto r = runtime::DecodeBootRecord(mapped.subspan(at, runtime::kRecordSize), nullptr);
      if (r.ok()) {
        decoded = r.value();
        version = decoded.package_version;
      }
    }
  }
  out.Str(version);
  DescribeRomfs(board, memories, out);
}

size_t DfuRuntime::Descriptors(MutableByteSpan out) const {
  if (out.size() < kDeviceDescriptorSize + kConfigDescriptorSize) return 0;
  const size_t device = BuildDeviceDescriptor(board_, out);
  const size_t config = BuildConfigDescriptor(out.subspan(device));
  if (device != kDeviceDescriptorSize || config != kConfigDescriptorSize) return 0;
  // Same shape as the DFU-mode configuration; the interface is the RUNTIME one.
  uint8_t* interface = out.data() + device + 9;
  if (interface[1] != kDescriptorInterface) return 0;
  interface[7] = kRuntimeProtocol;
  interface[8] = kStringInterface;
  if (!will_detach_) interface[9 + 2] &= static_cast<uint8_t>(~kWillDetach);  // functional bmAttributes
  return device + config;
}

ControlReply DfuRuntime::HandleControl(const SetupPacket& setup, ByteSpan data_out, MutableByteSpan data_in) {
  (void)data_out;
  if (setup.Type() == 0) return Standard(setup, data_in);
  if (setup.Type() == 1 && setup.Recipient() == 1 && setup.wIndex == 0) return Dfu(setup, data_in);
  return ControlReply::Stall();
}

ControlReply DfuRuntime::Standard(const SetupPacket& setup, MutableByteSpan data_in) {
  switch (setup.bRequest) {
    case kGetStatus: {
      const uint8_t status[2] = {0, 0};
      return setup.IsIn() ? Reply(status, data_in) : ControlReply::Stall();
    }
    case kSetAddress:
      return setup.IsIn() || setup.wValue > 127 ? ControlReply::Stall() : ControlReply::Ack();
    case kSetConfiguration:
      if (setup.IsIn() || setup.wValue > 1) return ControlReply::Stall();
      configuration_ = static_cast<uint8_t>(setup.wValue);
      return ControlReply::Ack();
    case kSetInterface:
      return setup.IsIn() || setup.wIndex != 0 || setup.wValue != 0 ? ControlReply::Stall() : ControlReply::Ack();
    case kGetConfiguration: {
      const uint8_t config = 1;
      return Reply({&config, 1}, data_in);
    }
    case kGetInterface: {
      const uint8_t alt = 0;
      return setup.wIndex == 0 ? Reply({&alt, 1}, data_in) : ControlReply::Stall();
    }
    case kClearFeature:
    case kSetFeature:
      return ControlReply::Ack();
    case kGetDescriptor:
      break;
    default:
      return ControlReply::Stall();
  }
  const uint8_t kind = static_cast<uint8_t>(setup.wValue >> 8);
  const uint8_t index = static_cast<uint8_t>(setup.wValue & 0xff);
  if (kind == kDescriptorDevice || kind == kDescriptorConfiguration) {
    uint8_t all[kDeviceDescriptorSize + kConfigDescriptorSize];
    if (Descriptors(all) == 0) return ControlReply::Stall();
    const ByteSpan whole(all, sizeof all);
    return Reply(kind == kDescriptorDevice ? whole.first(kDeviceDescriptorSize) : whole.subspan(kDeviceDescriptorSize),
                 data_in);
  }
  if (kind == kDescriptorDfuFunctional) {
    uint8_t functional[kFunctionalDescriptorSize];
    const size_t n = BuildFunctionalDescriptor(functional);
    if (!will_detach_ && n > 2) functional[2] &= static_cast<uint8_t>(~kWillDetach);
    return Reply({functional, n}, data_in);
  }
  if (kind != kDescriptorString) return ControlReply::Stall();
  uint8_t descriptor[kMaxStringDescriptorSize];
  size_t n = 0;
  switch (index) {
    case kStringLanguages:
      n = BuildLanguageDescriptor(descriptor);
      break;
    case kStringManufacturer:
      n = BuildStringDescriptor("onedfu", descriptor);
      break;
    case kStringSummary:
    case kStringInterface:
      n = BuildStringDescriptor(summary_, descriptor);
      break;
    case kStringSerial:
      n = BuildStringDescriptor(serial_, descriptor);
      break;
    default:
      return ControlReply::Stall();
  }
  return Reply({descriptor, n}, data_in);
}

ControlReply DfuRuntime::Dfu(const SetupPacket& setup, MutableByteSpan data_in) {
  switch (static_cast<DfuRequest>(setup.bRequest)) {
    case DfuRequest::kGetStatus: {
      if (!setup.IsIn()) return ControlReply::Stall();
      const uint8_t status[6] = {static_cast<uint8_t>(DfuStatus::kOk), 0, 0, 0, state_, 0};
      return Reply(status, data_in);
    }
    case DfuRequest::kGetState:
      if (!setup.IsIn()) return ControlReply::Stall();
      return Reply({&state_, 1}, data_in);
    case DfuRequest::kDetach: {
      if (setup.IsIn()) return ControlReply::Stall();
      state_ = static_cast<uint8_t>(DfuState::kAppDetach);
      ControlReply reply = ControlReply::Ack();
      reply.reset_after_status = will_detach_;  // bitWillDetach: leave once this reply is out
      return reply;
    }
    default:
      return ControlReply::Stall();
  }
}

bool DfuRuntime::BusReset() {
  if (detached()) return true;
  state_ = static_cast<uint8_t>(DfuState::kAppIdle);
  return false;
}

bool DfuRuntime::detached() const { return state_ == static_cast<uint8_t>(DfuState::kAppDetach); }

}  // namespace onedfu::bootloader
