#include "flasher/dfuse_client.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "bootloader/descriptors.h"

namespace onedfu::flasher {

using bootloader::DfuRequest;
using bootloader::DfuState;
using bootloader::DfuStatus;

namespace {

constexpr int kMaxBusyPolls = 100000;  // a device that stays busy this long is broken

uint8_t Req(DfuRequest r) { return static_cast<uint8_t>(r); }

}  // namespace

std::string Hex32(uint32_t value) {
  char text[12];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

std::string UsbDevice::Describe() const {
  char ids[16];
  std::snprintf(ids, sizeof ids, "%04x:%04x", vid, pid);
  return path + " " + ids + " serial " + (serial.empty() ? "?" : serial) + (dfu_mode ? " (DFU mode)" : " (application)");
}

std::string UsbDevice::Node() const {
  char node[32];
  std::snprintf(node, sizeof node, "/dev/bus/usb/%03u/%03u", bus, address);
  return node;
}

DfuseClient::DfuseClient(DfuTransport& transport, uint16_t transfer_size, const std::atomic<bool>* cancel,
                         uint32_t busy_limit_ms)
    : transport_(transport),
      transfer_size_(transfer_size == 0 ? bootloader::kTransferSize : transfer_size),
      cancel_(cancel),
      busy_limit_ms_(busy_limit_ms) {}

host::Error DfuseClient::Failed(const std::string& what, const UsbStatus& status) {
  known_.reset();
  if (status.error == UsbError::kGone) {
    gone_ = true;
    return host::Fail("the board disconnected during " + what + " (" + status.message + ")");
  }
  if (status.error == UsbError::kTimeout) return host::Fail("the board did not answer " + what + " in time (" + status.message + ")");
  return host::Fail(what + ": " + status.message);
}

bool DfuseClient::Cancelled(const std::string& what, host::Error* error) {
  if (cancel_ == nullptr || !cancel_->load()) return false;
  interrupted_ = true;
  *error = host::Fail("interrupted before " + what);
  return true;
}

std::string DfuseClient::StatusText(uint8_t index) {
  if (index == 0) index = bootloader::kStringStatus;
  std::string text;
  if (!transport_.ReadString(index, &text).ok()) return {};
  return text;
}

host::Error DfuseClient::DeviceError(const std::string& what, const DfuStatusReply& reply) {
  std::string message = what + ": the device reports " + bootloader::DfuStatusName(reply.status) + " in " +
                        bootloader::DfuStateName(reply.state);
  if (reply.string_index != 0) {
    const std::string text = StatusText(reply.string_index);
    if (!text.empty()) message += ": " + text;
  }
  return host::Fail(message);
}

host::Expected<DfuStatusReply> DfuseClient::GetStatus() {
  uint8_t bytes[bootloader::kStatusLength] = {};
  size_t length = 0;
  ++counters_.requests;
  const UsbStatus s = transport_.ControlIn(Req(DfuRequest::kGetStatus), 0, bytes, &length);
  if (!s.ok()) return Failed("GETSTATUS", s);
  if (length != sizeof bytes) return host::Fail("GETSTATUS: the device answered " + std::to_string(length) + " bytes, not 6");
  DfuStatusReply reply;
  reply.status = static_cast<DfuStatus>(bytes[0]);
  reply.poll_ms = bytes[1] | bytes[2] << 8 | bytes[3] << 16;
  reply.state = static_cast<DfuState>(bytes[4]);
  reply.string_index = bytes[5];
  known_ = reply.state;
  return reply;
}

host::Outcome DfuseClient::EnsureIdle() {
  if (known_ == DfuState::kDfuIdle) return host::Success();
  if (known_ == DfuState::kDnloadIdle || known_ == DfuState::kUploadIdle) {
    ++counters_.requests;
    if (UsbStatus s = transport_.ControlOut(Req(DfuRequest::kAbort), 0, {}); !s.ok()) return Failed("ABORT", s);
    known_ = DfuState::kDfuIdle;
    return host::Success();
  }
  ONEDFU_PTRY(DfuStatusReply reply, GetStatus());
  if (reply.state == DfuState::kError) {
    ++counters_.requests;
    if (UsbStatus s = transport_.ControlOut(Req(DfuRequest::kClrStatus), 0, {}); !s.ok()) return Failed("CLRSTATUS", s);
    ONEDFU_PTRY(reply, GetStatus());
  }
  if (reply.state == DfuState::kDnloadIdle || reply.state == DfuState::kUploadIdle) {
    ++counters_.requests;
    if (UsbStatus s = transport_.ControlOut(Req(DfuRequest::kAbort), 0, {}); !s.ok()) return Failed("ABORT", s);
    ONEDFU_PTRY(reply, GetStatus());
  }
  if (reply.state != DfuState::kDfuIdle) {
    return host::Fail(std::string("the device does not return to dfuIDLE (it reports ") +
                      bootloader::DfuStateName(reply.state) + ")");
  }
  return host::Success();
}

host::Outcome DfuseClient::WaitDone(const std::string& what) {
  uint64_t busy_ms = 0;  // bwPollTimeouts honoured for this operation
  for (int polls = 0; polls < kMaxBusyPolls; ++polls) {
    host::Error error;
    if (Cancelled(what, &error)) return error;
    ONEDFU_PTRY(DfuStatusReply reply, GetStatus());
    if (reply.status != DfuStatus::kOk || reply.state == DfuState::kError) return DeviceError(what, reply);
    if (reply.state == DfuState::kDnloadIdle) return host::Success();
    if (reply.state != DfuState::kDnbusy && reply.state != DfuState::kDnloadSync) {
      return host::Fail(what + ": unexpected state " + bootloader::DfuStateName(reply.state));
    }
    if (busy_ms + reply.poll_ms > busy_limit_ms_) {
      return host::Fail(what + ": the device asks to wait " + std::to_string(reply.poll_ms) + " ms (bwPollTimeout" +
                        (busy_ms != 0 ? ", after " + std::to_string(busy_ms) + " ms busy" : std::string()) +
                        "), over the " + std::to_string(busy_limit_ms_) +
                        " ms one operation may take (--timeout); the board stays in DFU mode");
    }
    // Honest poll: wait as long as the device asked before asking again, in slices, so that
    // Ctrl-C is seen within one slice.
    constexpr uint32_t kSliceMs = 50;
    for (uint32_t left = reply.poll_ms; left != 0;) {
      if (Cancelled(what, &error)) return error;
      const uint32_t slice = std::min(left, kSliceMs);
      std::this_thread::sleep_for(std::chrono::milliseconds(slice));
      left -= slice;
    }
    busy_ms += reply.poll_ms;
    counters_.poll_ms_slept += reply.poll_ms;
  }
  return host::Fail(what + ": the device stayed busy");
}

host::Outcome DfuseClient::Command(std::span<const uint8_t> bytes, const std::string& what) {
  host::Error error;
  if (Cancelled(what, &error)) return error;
  ++counters_.requests;
  known_.reset();
  if (UsbStatus s = transport_.ControlOut(Req(DfuRequest::kDnload), 0, bytes); !s.ok()) {
    if (s.error == UsbError::kStall) {
      auto reply = GetStatus();
      if (reply.ok()) return DeviceError(what, *reply);
    }
    return Failed(what, s);
  }
  return WaitDone(what);
}

host::Outcome DfuseClient::SetAddress(uint32_t address) {
  const uint8_t bytes[5] = {bootloader::kDfuseSetAddress, static_cast<uint8_t>(address), static_cast<uint8_t>(address >> 8),
                            static_cast<uint8_t>(address >> 16), static_cast<uint8_t>(address >> 24)};
  ++counters_.set_addresses;
  return Command(bytes, "set-address " + Hex32(address));
}

host::Outcome DfuseClient::EraseSector(uint32_t address) {
  const uint8_t bytes[5] = {bootloader::kDfuseErase, static_cast<uint8_t>(address), static_cast<uint8_t>(address >> 8),
                            static_cast<uint8_t>(address >> 16), static_cast<uint8_t>(address >> 24)};
  ++counters_.erases;
  return Command(bytes, "erase of the sector at " + Hex32(address));
}

host::Outcome DfuseClient::WriteBlock(uint16_t block, std::span<const uint8_t> data, uint32_t address) {
  const std::string what = "write of " + std::to_string(data.size()) + " bytes at " + Hex32(address);
  host::Error error;
  if (Cancelled(what, &error)) return error;
  ++counters_.requests;
  ++counters_.blocks_out;
  counters_.bytes_out += data.size();
  known_.reset();
  if (UsbStatus s = transport_.ControlOut(Req(DfuRequest::kDnload), block, data); !s.ok()) {
    if (s.error == UsbError::kStall) {
      auto reply = GetStatus();
      if (reply.ok()) return DeviceError(what, *reply);
    }
    return Failed(what, s);
  }
  return WaitDone(what);
}

host::Outcome DfuseClient::ReadBlock(uint16_t block, std::span<uint8_t> out, uint32_t address) {
  const std::string what = "read of " + std::to_string(out.size()) + " bytes at " + Hex32(address);
  host::Error error;
  if (Cancelled(what, &error)) return error;
  size_t length = 0;
  ++counters_.requests;
  known_.reset();
  if (UsbStatus s = transport_.ControlIn(Req(DfuRequest::kUpload), block, out, &length); !s.ok()) {
    if (s.error == UsbError::kStall) {
      auto reply = GetStatus();
      if (reply.ok()) return DeviceError(what, *reply);
    }
    return Failed(what, s);
  }
  counters_.bytes_in += length;
  // A full block leaves the device in dfuUPLOAD-IDLE, a short one in dfuIDLE (DfuSe).
  known_ = length == out.size() ? DfuState::kUploadIdle : DfuState::kDfuIdle;
  if (length != out.size()) {
    return host::Fail(what + ": the device returned " + std::to_string(length) + " bytes (past the end of its memory?)");
  }
  return host::Success();
}

host::Expected<std::vector<uint8_t>> DfuseClient::Commands() {
  std::vector<uint8_t> list(transfer_size_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (auto idle = EnsureIdle(); !idle.ok()) return idle.error();
    host::Error error;
    if (Cancelled("UPLOAD of the command list", &error)) return error;
    size_t length = 0;
    ++counters_.requests;
    known_.reset();
    list.assign(transfer_size_, 0);
    if (UsbStatus s = transport_.ControlIn(Req(DfuRequest::kUpload), 0, list, &length); !s.ok()) {
      return Failed("UPLOAD of the command list", s);
    }
    counters_.bytes_in += length;
    known_ = length == list.size() ? DfuState::kUploadIdle : DfuState::kDfuIdle;
    list.resize(length);
    if (list.empty() || list[0] != bootloader::kDfuseHash) return list;
  }
  return host::Fail("UPLOAD of the command list: the device keeps answering with a hash result");
}

host::Expected<runtime::Sha256Hash> DfuseClient::Hash(uint32_t address, uint32_t length) {
  const std::string what = "hash of " + std::to_string(length) + " bytes at " + Hex32(address);
  uint8_t bytes[9] = {bootloader::kDfuseHash};
  for (int i = 0; i < 4; ++i) {
    bytes[1 + i] = static_cast<uint8_t>(address >> (8 * i));
    bytes[5 + i] = static_cast<uint8_t>(length >> (8 * i));
  }
  ++counters_.hashes;
  counters_.bytes_hashed += length;
  if (auto c = Command(bytes, what); !c.ok()) return c.error();
  if (auto idle = EnsureIdle(); !idle.ok()) return idle.error();
  std::vector<uint8_t> reply(transfer_size_);
  size_t got = 0;
  ++counters_.requests;
  known_.reset();
  if (UsbStatus s = transport_.ControlIn(Req(DfuRequest::kUpload), 0, reply, &got); !s.ok()) return Failed(what, s);
  counters_.bytes_in += got;
  known_ = got == reply.size() ? DfuState::kUploadIdle : DfuState::kDfuIdle;
  if (got != bootloader::kDfuseHashReplySize || reply[0] != bootloader::kDfuseHash) {
    return host::Fail(what + ": the device answered " + std::to_string(got) + " bytes, not the hash reply");
  }
  runtime::Sha256Hash hash;
  std::copy(reply.begin() + 1, reply.begin() + 1 + hash.size(), hash.begin());
  return hash;
}

host::Outcome DfuseClient::Leave(uint32_t address) {
  if (auto idle = EnsureIdle(); !idle.ok()) return idle.error();
  if (auto set = SetAddress(address); !set.ok()) return set.error();
  ++counters_.requests;
  known_.reset();
  if (UsbStatus s = transport_.ControlOut(Req(DfuRequest::kDnload), 0, {}); !s.ok()) return Failed("leave", s);
  auto reply = GetStatus();
  if (!reply.ok()) {
    // A device may reset before answering; the caller's wait for re-enumeration decides.
    if (gone_) return host::Success();
    return reply.error();
  }
  if (reply->state != DfuState::kManifest && reply->state != DfuState::kManifestWaitReset &&
      reply->state != DfuState::kManifestSync) {
    if (reply->status != DfuStatus::kOk) return DeviceError("leave", *reply);
    return host::Fail(std::string("leave: the device reports ") + bootloader::DfuStateName(reply->state) +
                      ", not dfuMANIFEST");
  }
  return host::Success();
}

}  // namespace onedfu::flasher
