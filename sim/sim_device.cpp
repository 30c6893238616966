#include "sim_device.h"

#include "bootloader/dfu.h"
#include "child_process.h"
#include "runtime/byte_reader.h"
#include "runtime/flash_timing.h"

#include <algorithm>
#include <csignal>
#include <utility>

namespace onedfu::sim {

SimUsbDevice::SimUsbDevice(SimBoard& board, SimDeviceOptions options)
    : board_(board), options_(std::move(options)) {}

SimUsbDevice::~SimUsbDevice() = default;

bool SimUsbDevice::PowerOn(bool forced_dfu) { return Boot("power-on", forced_dfu); }

bool SimUsbDevice::Boot(const std::string& cause, bool forced_dfu) {
  bootloader_.reset();
  app_.reset();
  const bootloader::BootDecision decision = board_.Boot(forced_dfu);
  BootEvent event;
  event.cause = cause;
  event.application = decision.start_application;
  event.reason = bootloader::BootReasonName(decision.reason);
  event.message = decision.message.c_str();
  event.bytes_hashed = decision.bytes_hashed;
  event.hashes_skipped = decision.hashes_skipped;
  event.verify_us = runtime::VerifyTimeUs(board_.board().boot_cost, decision.bytes_hashed,
                                          decision.signature_checked ? 1 : 0);
  boots_.push_back(event);
  if (decision.start_application) {
    app_.emplace(board_, options_.serial, options_.app_will_detach, options_.app_usb_id);
    return true;
  }
  std::string idle = "DFU mode: " + event.reason;
  if (!event.message.empty()) idle += ": " + event.message;
  bootloader::DfuOptions dfu_options;
  dfu_options.max_poll_timeout_ms = options_.max_poll_timeout_ms;
  DfuPortStrings strings;
  strings.serial = options_.serial;
  strings.manufacturer = options_.manufacturer;
  strings.idle_message = idle;
  bootloader_.emplace(board_.board(), board_.memories(), strings, dfu_options);
  runtime::Diag diag;
  if (runtime::Status s = bootloader_->Init(&diag); !s.ok()) {
    error_ = std::string("bootloader init: ") + diag.c_str();
    return false;
  }
  if (options_.flash_error_at != 0) {
    for (size_t i = 0; i < board_.memory_count(); ++i) board_.flash(i).FailAfter(options_.flash_error_at - 1);
  }
  return true;
}

std::vector<uint8_t> SimUsbDevice::DeviceAndConfigDescriptors() {
  if (unplugged_) return {};  // stays off the bus
  if (!reboot_cause_.empty()) {
    const std::string cause = std::exchange(reboot_cause_, std::string());
    if (!Boot(cause, reboot_forced_)) return {};
  }
  std::vector<uint8_t> descriptors;
  if (app_) {
    descriptors = app_->Descriptors();
  } else if (bootloader_) {
    descriptors = bootloader_->Descriptors();
  }
  if (!descriptors.empty()) ++usage_.plugs;
  return descriptors;
}

ControlReply SimUsbDevice::HandleControl(const SetupPacket& setup, std::span<const uint8_t> data_out,
                                         std::span<uint8_t> data_in) {
  ControlReply result = ControlReply::Stall();
  if (app_) {
    result = app_->HandleControl(setup, data_out, data_in);
    if (result.reset_after_status) {
      reboot_cause_ = "detach";
      reboot_forced_ = true;
    }
  } else if (bootloader_) {
    const bool dnload0 = setup.bmRequestType == 0x21 &&
                         setup.bRequest == static_cast<uint8_t>(bootloader::DfuRequest::kDnload) && setup.wValue == 0;
    const bool hash = dnload0 && !data_out.empty() && data_out[0] == bootloader::kDfuseHash;
    if (hash && !options_.hash_command) {
      result = ControlReply::Stall();  // as a bootloader that does not know the command
    } else {
      result = bootloader_->HandleControl(setup, data_out, data_in);
    }
    if (!options_.hash_command && !result.stall && setup.bmRequestType == 0xa1 &&
        setup.bRequest == static_cast<uint8_t>(bootloader::DfuRequest::kUpload) && setup.wValue == 0) {
      // The command list without 0x48.
      const auto end = std::remove(data_in.begin(), data_in.begin() + result.length, bootloader::kDfuseHash);
      result.length = static_cast<uint16_t>(end - data_in.begin());
    }
    // The hash command's device work (stats.h): DNLOAD block 0 of `48 addr len`, accepted.
    if (hash && !result.stall && data_out.size() == 9) {
      const uint32_t length = runtime::LoadLe32(data_out.data() + 5);
      if (length <= bootloader::kDfuseHashMaxLength) {
        ++usage_.hash_requests;
        usage_.hash_us += runtime::HashTimeUs(board_.board().boot_cost, length);
      }
    }
    if (result.reset_after_status) {
      reboot_cause_ = "leave";
      reboot_forced_ = false;
    }
    ++dfu_transfers_;
    if (options_.interrupt_after_transfers != 0 && dfu_transfers_ == options_.interrupt_after_transfers) {
      SignalRunningChild(SIGINT);
    }
    if (options_.unplug_after_transfers != 0 && dfu_transfers_ == options_.unplug_after_transfers) {
      result.reset_after_status = true;  // the transport takes the device off the bus after this reply
      unplugged_ = true;
    }
  }
  const uint64_t moved = result.stall ? 0 : (setup.IsIn() ? result.length : setup.wLength);
  usage_.CountControl(setup.IsIn(), moved, result.stall);
  return result;
}

void SimUsbDevice::OnSetInterface(uint8_t iface, uint8_t alt) {
  usage_.CountSetInterface();
  if (bootloader_) (void)bootloader_->SetInterface(iface, alt);
}

uint64_t SimUsbDevice::ModeledUs() const { return ModeledDeviceUs(board_, usage_); }

bool SimUsbDevice::OnReset() {
  ++usage_.resets;
  if (app_ && app_->BusReset()) {
    reboot_cause_ = "reset";
    reboot_forced_ = true;
    return true;
  }
  if (bootloader_ && bootloader_->BusReset()) {
    // Waiting for this reset after leave: the board resets and boots again.
    reboot_cause_ = "reset";
    reboot_forced_ = false;
    return true;
  }
  return false;
}

}  // namespace onedfu::sim
