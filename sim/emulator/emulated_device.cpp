#include "emulated_device.h"

#include <cstdio>

#include "board_config.h"
#include "peripherals.h"

namespace onedfu::sim::emu {
host::Expected<std::unique_ptr<EmulatedDevice>> EmulatedDevice::Create(SimBoard& board,
                                                                        const EmulatedDeviceOptions& options) {
  ONEDFU_PTRY(ElfImage image, LoadElf(options.bootloader_elf));
  const runtime::Board& b = board.board();
  const runtime::Region* boot_region = nullptr;
  for (uint8_t i = 0; i < b.region_count; ++i) {
    if (b.regions[i].role == runtime::RegionRole::kBootloader) boot_region = &b.regions[i];
  }
  if (boot_region == nullptr) return host::Fail("emulator: board '" + std::string(b.id) + "' has no bootloader region");
  const runtime::Memory& memory = b.memories[boot_region->memory];
  const uint64_t start = uint64_t{memory.base} + boot_region->offset, end = start + boot_region->size;
  FileFlash& flash = board.flash(boot_region->memory);
  for (const ElfImage::Segment& s : image.segments) {
    if (s.address < start || s.address + s.bytes.size() > end) {
      return host::Fail(options.bootloader_elf + ": segment at " + Hex(s.address) + " (" + std::to_string(s.bytes.size()) +
                        " bytes) lies outside the bootloader region " + Hex(start) + ".." + Hex(end));
    }
    const runtime::ByteSpan now = flash.contents().subspan(s.address - memory.base, s.bytes.size());
    if (!std::equal(now.begin(), now.end(), s.bytes.begin())) flash.Preload(s.address, s.bytes);
  }
  std::unique_ptr<EmulatedDevice> device(new EmulatedDevice(board, options));
  ONEDFU_PTRY(device->machine_, Machine::Create(board));
  device->machine_->AddSymbols(image);
  return device;
}

std::string EmulatedDevice::HostReason(bool application, bool forced) {
  // The host build of the core decides on the same flash: the reason names match the host
  // simulator's stats, and a disagreement with what the binary did is reported, not hidden.
  const bootloader::BootDecision host = board_.Boot(forced);
  if (host.start_application == application) return bootloader::BootReasonName(host.reason);
  return std::string("emulated binary and host core disagree (host: ") + bootloader::BootReasonName(host.reason) + ")";
}

void EmulatedDevice::Failed(const std::string& what) {
  if (error_.empty()) error_ = what;
  if (options_.trace) std::fprintf(stderr, "onedfu-sim emulate: %s\n", what.c_str());
}

void EmulatedDevice::PowerOn(bool button) {
  machine_->Reset(true);
  machine_->gpio().SetButton(button);
  button_ = button;
  powered_ = true;
  reboot_pending_ = true;
  reboot_cause_ = "power-on";
}

ControlResult EmulatedDevice::Control(uint8_t type, uint8_t request, uint16_t value, uint16_t index, uint16_t length,
                                      std::span<const uint8_t> out) {
  const uint8_t setup[8] = {type,
                            request,
                            static_cast<uint8_t>(value),
                            static_cast<uint8_t>(value >> 8),
                            static_cast<uint8_t>(index),
                            static_cast<uint8_t>(index >> 8),
                            static_cast<uint8_t>(length),
                            static_cast<uint8_t>(length >> 8)};
  return machine_->otg().Control(std::span<const uint8_t, 8>(setup, 8), out);
}

bool EmulatedDevice::Boot(const std::string& cause) {
  Machine& m = *machine_;
  application_ = false;
  BootEvent event;
  event.cause = cause;
  uint32_t entry_word = 0;
  m.ReadMemory(kDfuEntryAddress, &entry_word, 4);
  const bool forced = button_ || entry_word == cortexm::kDfuEntryMagic;
  // Until the USB driver connects, or the bootloader hands over to the application; the
  // instructions of the boot decision are counted on the way.
  m.StartCounting();
  const bool settled = m.RunUntil([&] { return m.otg().connected() || m.scs().vtor() != 0; });
  m.StopCounting();
  event.instructions = m.instructions();
  event.instructions_by_function = m.TopFunctions(8);
  if (!settled) {
    event.reason = "emulation stopped";
    event.message = !m.fault().empty() ? m.fault() : m.reset_requested() ? "reset loop" : "the firmware neither connected nor started the application";
    Failed("boot (" + cause + "): " + event.message);
    boots_.push_back(event);
    return false;
  }
  if (!m.otg().connected()) {
    application_ = true;
    event.application = true;
    event.reason = HostReason(true, forced);
    const uint32_t vtor = m.scs().vtor();
    // The application runs until it drives a GPIO output or connects to USB (or stops, or 1 s).
    const uint32_t odr_before = m.gpio().odr(0) | m.gpio().odr(1) << 16;
    m.RunUntil([&] { return (m.gpio().odr(0) | m.gpio().odr(1) << 16) != odr_before || m.otg().connected(); }, 1000);
    uint32_t words[3] = {0, 0, 0};
    m.ReadMemory(kAppMarkerAddress, words, sizeof words);
    app_marker_ = words[0];
    event.message = "entered the application (SCB_VTOR " + Hex(vtor) + "); RAM at " + Hex(kAppMarkerAddress) + ": " +
                    Hex(words[0]) + " " + Hex(words[1]) + " " + Hex(words[2]);
    if (!m.fault().empty()) event.message += "; the application then stopped: " + m.fault();
    if (!m.fault().empty() || !m.otg().connected()) {
      boots_.push_back(event);
      return false;
    }
  }
  std::string error;
  if (!m.otg().BusReset(&error)) {
    Failed("enumeration: " + error);
    return false;
  }
  const ControlResult device = Control(0x80, 6, 0x0100, 0, 18);
  const ControlResult address = Control(0x00, 5, next_address_, 0, 0);
  const ControlResult head = Control(0x80, 6, 0x0200, 0, 9);
  if (!device.ok || device.stall || device.in.size() != 18 || !address.ok || !head.ok || head.in.size() != 9) {
    Failed("enumeration: " + (!device.error.empty() ? device.error : !head.error.empty() ? head.error : "descriptor requests failed"));
    return false;
  }
  const uint16_t total = static_cast<uint16_t>(head.in[2] | head.in[3] << 8);
  const ControlResult config = Control(0x80, 6, 0x0200, 0, total);
  const ControlResult configure = Control(0x00, 9, 1, 0, 0);
  if (!config.ok || config.in.size() != total || !configure.ok || configure.stall) {
    Failed("enumeration: " + (!config.error.empty() ? config.error : "configuration descriptor / SET_CONFIGURATION failed"));
    return false;
  }
  next_address_ = static_cast<uint8_t>(next_address_ % 126 + 2);
  // DFU mode: why, the status string (index 5) the bootloader reports. An application: what it
  // says it runs, its interface string.
  const uint8_t string_index = config.in.size() > 9 + 8 ? config.in[9 + 8] : 0;
  const ControlResult text = Control(0x80, 6, static_cast<uint16_t>(0x0300 | (application_ ? string_index : 5)), 0x0409, 255);
  if (!application_) event.reason = HostReason(false, forced);
  std::string said;
  if (text.ok && !text.stall && text.in.size() >= 2) {
    for (size_t i = 2; i + 1 < text.in.size(); i += 2) said += static_cast<char>(text.in[i]);
  }
  event.message += application_ ? "; on USB: " + said : said;
  boots_.push_back(event);
  ++usage_.plugs;
  descriptors_.assign(device.in.begin(), device.in.end());
  descriptors_.insert(descriptors_.end(), config.in.begin(), config.in.end());
  return true;
}

std::vector<uint8_t> EmulatedDevice::DeviceAndConfigDescriptors() {
  if (!powered_) PowerOn(false);
  if (reboot_pending_) {
    reboot_pending_ = false;
    if (reboot_cause_ != "power-on") machine_->Reset(false);
    descriptors_.clear();
    const bool booted = Boot(reboot_cause_);
    // The USR switch is held for the first boot only (as --enter-dfu on the host simulator).
    machine_->gpio().SetButton(false);
    button_ = false;
    if (options_.cut_memory >= 0 && reboot_cause_ == "power-on") {
      // After the boot decision (which powers every memory on again).
      board_.flash(static_cast<size_t>(options_.cut_memory)).CutPowerAfter(options_.cut_after, true);
    }
    if (!booted) return {};
  }
  return descriptors_;
}

bool EmulatedDevice::Leaving() {
  Machine& m = *machine_;
  if (m.otg().connected() && !m.reset_requested()) return false;
  // Disconnected: let the firmware reach its reset request.
  if (!m.reset_requested()) m.RunUntil([] { return false; }, 2000);
  reboot_pending_ = true;
  reboot_cause_ = "reset";
  if (!m.reset_requested() && !m.fault().empty()) Failed(m.fault());
  return true;
}

ControlReply EmulatedDevice::HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                                           std::span<uint8_t> data_in) {
  const ControlResult r = Control(setup.bmRequestType, setup.bRequest, setup.wValue, setup.wIndex, setup.wLength, data_out);
  if (!r.ok) {
    Failed("control transfer " + std::to_string(setup.bRequest) + ": " + r.error);
    usage_.CountControl(setup.IsIn(), 0, true);
    ControlReply reply = ControlReply::Stall();
    reply.reset_after_status = Leaving();
    return reply;
  }
  const size_t n = std::min(r.in.size(), data_in.size());
  std::copy_n(r.in.begin(), n, data_in.begin());
  if (options_.max_poll_timeout_ms >= 0 && setup.bmRequestType == 0xa1 && setup.bRequest == 3 && n >= 4) {
    const uint32_t poll = data_in[1] | data_in[2] << 8 | data_in[3] << 16;  // GETSTATUS bwPollTimeout
    const uint32_t capped = std::min<uint32_t>(poll, static_cast<uint32_t>(options_.max_poll_timeout_ms));
    for (int i = 0; i < 3; ++i) data_in[1 + i] = static_cast<uint8_t>(capped >> (8 * i));
  }
  usage_.CountControl(setup.IsIn(), r.stall ? 0 : (setup.IsIn() ? n : data_out.size()), r.stall);
  ControlReply reply = r.stall ? ControlReply::Stall() : ControlReply::Ack(static_cast<uint16_t>(n));
  if (Leaving()) {
    reply.reset_after_status = true;
    reboot_cause_ = application_ ? "detach" : "leave";
  }
  return reply;
}

void EmulatedDevice::OnSetInterface(uint8_t iface, uint8_t alt) {
  usage_.CountSetInterface();
  const ControlResult r = Control(0x01, 11, alt, iface, 0);
  if (!r.ok) Failed("SET_INTERFACE: " + r.error);
}

bool EmulatedDevice::OnReset() {
  ++usage_.resets;
  std::string error;
  if (!machine_->otg().BusReset(&error)) Failed("bus reset: " + error);
  return Leaving();
}

}  // namespace onedfu::sim::emu
