#include "dfu_port.h"

#include <utility>

#include "bootloader/descriptors.h"

namespace onedfu::sim {
namespace {

bootloader::DeviceStrings Strings(const DfuPortStrings& s) {
  bootloader::DeviceStrings strings;
  strings.manufacturer = s.manufacturer.c_str();
  strings.product = s.product.c_str();
  strings.serial = s.serial.c_str();
  return strings;
}

}  // namespace

DfuPort::DfuPort(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories,
                 const DfuPortStrings& strings, const bootloader::DfuOptions& options)
    : board_(&board),
      strings_(std::make_shared<const DfuPortStrings>(strings)),
      dfu_(board, memories, Strings(*strings_), options) {
  if (!strings_->idle_message.empty()) dfu_.SetIdleMessage(strings_->idle_message.c_str());
}

runtime::Status DfuPort::Init(runtime::Diag* diag) { return dfu_.Init(diag); }

std::vector<uint8_t> DfuPort::Descriptors() const {
  std::vector<uint8_t> out(bootloader::kDeviceDescriptorSize + bootloader::kConfigDescriptorSize);
  const size_t device = bootloader::BuildDeviceDescriptor(*board_, out);
  const size_t config = bootloader::BuildConfigDescriptor(runtime::MutableByteSpan(out).subspan(device));
  out.resize(device == 0 || config == 0 ? 0 : device + config);
  return out;
}

ControlReply DfuPort::HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                                    std::span<uint8_t> data_in) {
  const ControlReply reply = dfu_.HandleControl(setup, data_out, data_in);
  // The reply is final; run the work the busy status announced (DESIGN.md 6).
  dfu_.Poll();
  return reply;
}

bool DfuPort::SetInterface(uint8_t iface, uint8_t alt) { return dfu_.SetInterface(iface, alt); }

bool DfuPort::BusReset() { return dfu_.BusReset(); }

DfuModeDevice::DfuModeDevice(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories,
                             const DfuPortStrings& strings, const bootloader::DfuOptions& options)
    : board_(board), memories_(memories), strings_(strings), options_(options) {
  Boot();
}

void DfuModeDevice::Boot() {
  port_.reset();
  port_.emplace(board_, memories_, strings_, options_);
  runtime::Diag diag;
  if (!port_->Init(&diag).ok()) error_ = std::string("bootloader refused the board: ") + diag.c_str();
}

std::vector<uint8_t> DfuModeDevice::DeviceAndConfigDescriptors() {
  if (std::exchange(reset_pending_, false)) {
    // The board reset after leaving; with the boot button held it comes back in DFU mode.
    ++resets_;
    Boot();
  }
  if (!ok()) return {};
  return port_->Descriptors();
}

ControlReply DfuModeDevice::HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                                          std::span<uint8_t> data_in) {
  const ControlReply reply = port_->HandleControl(setup, data_out, data_in);
  if (reply.reset_after_status) reset_pending_ = true;
  return reply;
}

void DfuModeDevice::OnSetInterface(uint8_t iface, uint8_t alt) { (void)port_->SetInterface(iface, alt); }

bool DfuModeDevice::OnReset() {
  if (!port_->BusReset()) return false;
  reset_pending_ = true;
  return true;
}

}  // namespace onedfu::sim
