#include "bootloader/dfu_device.h"

#include <cstring>

namespace onedfu::bootloader {

using runtime::Board;
using runtime::ByteSpan;
using runtime::Diag;
using runtime::FlashMemory;
using runtime::LoadLe32;
using runtime::MutableByteSpan;
using runtime::Status;
using runtime::StatusCode;

namespace {

const char* RequestName(uint8_t request) {
  switch (static_cast<DfuRequest>(request)) {
    case DfuRequest::kDetach: return "DETACH";
    case DfuRequest::kDnload: return "DNLOAD";
    case DfuRequest::kUpload: return "UPLOAD";
    case DfuRequest::kGetStatus: return "GETSTATUS";
    case DfuRequest::kClrStatus: return "CLRSTATUS";
    case DfuRequest::kGetState: return "GETSTATE";
    case DfuRequest::kAbort: return "ABORT";
  }
  return "unknown request";
}

// Copies `n` prepared bytes to the IN buffer, truncated to wLength and to
// the buffer; returns the reply.
ControlReply Reply(const uint8_t* bytes, size_t n, const SetupPacket& setup, MutableByteSpan data_in) {
  size_t len = n < setup.wLength ? n : setup.wLength;
  if (len > data_in.size()) len = data_in.size();
  if (len > 0) std::memcpy(data_in.data(), bytes, len);
  return ControlReply::Ack(static_cast<uint16_t>(len));
}

}  // namespace

const char* DfuStateName(DfuState state) {
  switch (state) {
    case DfuState::kAppIdle: return "appIDLE";
    case DfuState::kAppDetach: return "appDETACH";
    case DfuState::kDfuIdle: return "dfuIDLE";
    case DfuState::kDnloadSync: return "dfuDNLOAD-SYNC";
    case DfuState::kDnbusy: return "dfuDNBUSY";
    case DfuState::kDnloadIdle: return "dfuDNLOAD-IDLE";
    case DfuState::kManifestSync: return "dfuMANIFEST-SYNC";
    case DfuState::kManifest: return "dfuMANIFEST";
    case DfuState::kManifestWaitReset: return "dfuMANIFEST-WAIT-RESET";
    case DfuState::kUploadIdle: return "dfuUPLOAD-IDLE";
    case DfuState::kError: return "dfuERROR";
  }
  return "unknown state";
}

const char* DfuStatusName(DfuStatus status) {
  switch (status) {
    case DfuStatus::kOk: return "OK";
    case DfuStatus::kErrTarget: return "errTARGET";
    case DfuStatus::kErrFile: return "errFILE";
    case DfuStatus::kErrWrite: return "errWRITE";
    case DfuStatus::kErrErase: return "errERASE";
    case DfuStatus::kErrCheckErased: return "errCHECK_ERASED";
    case DfuStatus::kErrProg: return "errPROG";
    case DfuStatus::kErrVerify: return "errVERIFY";
    case DfuStatus::kErrAddress: return "errADDRESS";
    case DfuStatus::kErrNotDone: return "errNOTDONE";
    case DfuStatus::kErrFirmware: return "errFIRMWARE";
    case DfuStatus::kErrVendor: return "errVENDOR";
    case DfuStatus::kErrUsbReset: return "errUSBR";
    case DfuStatus::kErrPowerOnReset: return "errPOR";
    case DfuStatus::kErrUnknown: return "errUNKNOWN";
    case DfuStatus::kErrStalledPacket: return "errSTALLEDPKT";
  }
  return "unknown status";
}

SetupPacket ParseSetup(const uint8_t bytes[8]) {
  SetupPacket s;
  s.bmRequestType = bytes[0];
  s.bRequest = bytes[1];
  s.wValue = runtime::LoadLe16(bytes + 2);
  s.wIndex = runtime::LoadLe16(bytes + 4);
  s.wLength = runtime::LoadLe16(bytes + 6);
  return s;
}

DfuProtocol::DfuProtocol(const Board& board, DfuBackend& backend, const DeviceStrings& strings,
                         const DfuOptions& options)
    : board_(board), backend_(&backend), strings_(strings), options_(options) {}

Status DfuProtocol::Init(Diag* diag) {
  ready_ = false;
  auto layout = BuildLayoutString(board_, layout_, sizeof layout_);
  if (!layout.ok()) {
    if (diag) diag->Str("DfuSe layout string: ").Str(layout.status().message());
    return layout.status();
  }
  ready_ = true;
  return Status::Ok();
}

const char* DfuProtocol::status_text() const {
  return status_ == DfuStatus::kOk ? idle_message_ : message_.c_str();
}

bool DfuProtocol::SetInterface(uint16_t interface, uint16_t alt) { return interface == 0 && alt == 0; }

bool DfuProtocol::BusReset() {
  configuration_ = 0;
  usb_address_ = 0;
  if (state_ == DfuState::kManifestWaitReset) {
    reset_requested_ = true;
    return true;
  }
  length_ = 0;
  state_ = DfuState::kDfuIdle;
  status_ = DfuStatus::kOk;
  message_.Clear();
  return false;
}

ControlReply DfuProtocol::HandleControl(const SetupPacket& setup, ByteSpan data_out, MutableByteSpan data_in) {
  if (!ready_) return ControlReply::Stall();
  if (setup.Type() == 0) return HandleStandard(setup, data_in);
  if (setup.Type() == 1 && setup.Recipient() == 1 && (setup.wIndex & 0xff) == 0) {
    return HandleDfu(setup, data_out, data_in);
  }
  return ControlReply::Stall();
}

ControlReply DfuProtocol::HandleStandard(const SetupPacket& setup, MutableByteSpan data_in) {
  const uint8_t zero[2] = {0, 0};
  if (setup.IsIn()) {
    switch (setup.bRequest) {
      case kGetDescriptor:
        return GetDescriptor(setup, data_in);
      case kGetStatus:
        return Reply(zero, 2, setup, data_in);
      case kGetConfiguration:
        if (setup.Recipient() != 0) return ControlReply::Stall();
        return Reply(&configuration_, 1, setup, data_in);
      case kGetInterface:
        if (setup.Recipient() != 1 || setup.wIndex != 0) return ControlReply::Stall();
        return Reply(zero, 1, setup, data_in);
      default:
        return ControlReply::Stall();
    }
  }
  switch (setup.bRequest) {
    case kSetAddress:
      if (setup.Recipient() != 0 || setup.wValue > 127) return ControlReply::Stall();
      usb_address_ = static_cast<uint8_t>(setup.wValue);
      return ControlReply::Ack();
    case kSetConfiguration:
      if (setup.Recipient() != 0 || setup.wValue > 1) return ControlReply::Stall();
      configuration_ = static_cast<uint8_t>(setup.wValue);
      return ControlReply::Ack();
    case kSetInterface:
      if (setup.Recipient() != 1 || !SetInterface(setup.wIndex, setup.wValue)) return ControlReply::Stall();
      return ControlReply::Ack();
    case kClearFeature:
    case kSetFeature:
      return ControlReply::Ack();
    default:
      return ControlReply::Stall();
  }
}

ControlReply DfuProtocol::GetDescriptor(const SetupPacket& setup, MutableByteSpan data_in) {
  uint8_t scratch[kMaxStringDescriptorSize];
  const uint8_t type = static_cast<uint8_t>(setup.wValue >> 8);
  const uint8_t index = static_cast<uint8_t>(setup.wValue & 0xff);
  size_t n = 0;
  switch (type) {
    case kDescriptorDevice:
      n = BuildDeviceDescriptor(board_, scratch);
      break;
    case kDescriptorConfiguration:
      if (index != 0) return ControlReply::Stall();
      n = BuildConfigDescriptor(scratch);
      break;
    case kDescriptorDfuFunctional:
      n = BuildFunctionalDescriptor(scratch);
      break;
    case kDescriptorString:
      switch (index) {
        case kStringLanguages: n = BuildLanguageDescriptor(scratch); break;
        case kStringManufacturer: n = BuildStringDescriptor(strings_.manufacturer, scratch); break;
        case kStringProduct: n = BuildStringDescriptor(strings_.product, scratch); break;
        case kStringSerial: n = BuildStringDescriptor(strings_.serial, scratch); break;
        case kStringLayout: n = BuildStringDescriptor(layout_, scratch); break;
        case kStringStatus: n = BuildStringDescriptor(status_text(), scratch); break;
        default: return ControlReply::Stall();
      }
      break;
    default:
      return ControlReply::Stall();
  }
  if (n == 0) return ControlReply::Stall();
  return Reply(scratch, n, setup, data_in);
}

void DfuProtocol::SetError(DfuStatus status) {
  status_ = status;
  state_ = DfuState::kError;
  length_ = 0;
}

ControlReply DfuProtocol::StallRequest(const SetupPacket& setup, const char* why) {
  if (state_ == DfuState::kManifestWaitReset) return ControlReply::Stall();
  message_.Clear();
  message_.Str(RequestName(setup.bRequest)).Str(" ").Str(why).Str(" in ").Str(DfuStateName(state_));
  SetError(DfuStatus::kErrStalledPacket);
  return ControlReply::Stall();
}

ControlReply DfuProtocol::HandleDfu(const SetupPacket& setup, ByteSpan data_out, MutableByteSpan data_in) {
  if (setup.bRequest > static_cast<uint8_t>(DfuRequest::kAbort)) return StallRequest(setup, "is not a DFU request");
  const auto request = static_cast<DfuRequest>(setup.bRequest);
  if (setup.IsIn() != DfuRequestIsIn(request)) return StallRequest(setup, "has the wrong direction");
  if (!DfuRequestAllowed(state_, request)) return StallRequest(setup, "is not allowed");

  // Allowed in the current state (kDfuAllowedRequests); each case is the
  // request's effect there.
  switch (request) {
    case DfuRequest::kGetStatus:
      return GetStatus(setup, data_in);
    case DfuRequest::kGetState: {
      const uint8_t state = static_cast<uint8_t>(state_);
      return Reply(&state, 1, setup, data_in);
    }
    case DfuRequest::kDnload:
      return Dnload(setup, data_out);
    case DfuRequest::kUpload:
      return Upload(setup, data_in);
    case DfuRequest::kClrStatus:
      status_ = DfuStatus::kOk;
      message_.Clear();
      [[fallthrough]];
    case DfuRequest::kAbort:
      state_ = DfuState::kDfuIdle;
      [[fallthrough]];
    case DfuRequest::kDetach:
      break;
  }
  return ControlReply::Ack();
}

ControlReply DfuProtocol::Dnload(const SetupPacket& setup, ByteSpan data_out) {
  if (data_out.size() != setup.wLength) return StallRequest(setup, "data stage differs from wLength");
  if (setup.wLength > kTransferSize) return StallRequest(setup, "is longer than wTransferSize");
  if (setup.wLength == 0) {
    // Leave. DFU 1.1 allows it only in dfuDNLOAD-IDLE, but dfu-util 0.11
    // sends it right after ABORT (dfuIDLE) when -s carries no address.
    state_ = DfuState::kManifestSync;
    return ControlReply::Ack();
  }
  if (const char* why = backend_->RefuseBlock(setup.wValue)) return StallRequest(setup, why);
  std::memcpy(buffer_, data_out.data(), data_out.size());
  block_ = setup.wValue;
  length_ = setup.wLength;
  state_ = DfuState::kDnloadSync;
  return ControlReply::Ack();
}

ControlReply DfuProtocol::Upload(const SetupPacket& setup, MutableByteSpan data_in) {
  if (setup.wLength > kTransferSize) return StallRequest(setup, "is longer than wTransferSize");
  if (const char* why = backend_->RefuseBlock(setup.wValue)) return StallRequest(setup, why);
  const size_t want = setup.wLength < data_in.size() ? setup.wLength : data_in.size();
  size_t got = 0;
  message_.Clear();
  const DfuStatus st = backend_->Upload(setup.wValue, data_in.first(want), &got, message_);
  if (st != DfuStatus::kOk) {
    SetError(st);
    return ControlReply::Stall();
  }
  state_ = got < setup.wLength ? DfuState::kDfuIdle : DfuState::kUploadIdle;
  return ControlReply::Ack(static_cast<uint16_t>(got));
}

uint32_t DfuProtocol::PollTimeoutMs() const {
  const uint64_t us = backend_->DownloadEstimateUs(block_, ByteSpan(buffer_, length_));
  // ms = ceil(us / 1000), capped by the option and by bwPollTimeout's 24 bits.
  // Past the cap the quotient does not matter; below it, us + 999 < 2^35, so
  // floor(floor(x / 8) / 125) == floor(x / 1000) is a 32-bit division.
  const uint32_t cap = options_.max_poll_timeout_ms < 0xffffffu ? options_.max_poll_timeout_ms : 0xffffffu;
  if (us > uint64_t{cap} * 1000) return cap;
  return static_cast<uint32_t>((us + 999) >> 3) / 125;
}

void DfuProtocol::RunWork() {
  message_.Clear();
  const DfuStatus st = backend_->Download(block_, ByteSpan(buffer_, length_), message_);
  length_ = 0;
  if (st != DfuStatus::kOk) {
    SetError(st);
    return;
  }
  state_ = DfuState::kDnloadIdle;
}

bool DfuProtocol::Poll() {
  if (state_ != DfuState::kDnbusy) return false;
  RunWork();
  // Done; per DFU 1.1 the device sits in dfuDNLOAD-SYNC until the host polls.
  if (state_ == DfuState::kDnloadIdle) state_ = DfuState::kDnloadSync;
  return true;
}

ControlReply DfuProtocol::GetStatus(const SetupPacket& setup, MutableByteSpan data_in) {
  uint32_t poll_ms = 0;
  DfuState reported = state_;
  bool reset_after = false;
  switch (state_) {
    case DfuState::kDnloadSync:
      // A stored block reports busy first; a block that already ran in Poll() is done.
      if (length_ != 0) {
        poll_ms = PollTimeoutMs();
        state_ = DfuState::kDnbusy;
      } else {
        state_ = DfuState::kDnloadIdle;
      }
      reported = state_;
      break;
    case DfuState::kDnbusy:
      RunWork();
      reported = state_;
      break;
    case DfuState::kManifestSync:
      reported = DfuState::kManifest;
      state_ = DfuState::kManifestWaitReset;
      reset_requested_ = true;
      reset_after = true;
      break;
    case DfuState::kManifestWaitReset:
      reset_after = true;
      break;
    default:
      break;
  }
  uint8_t reply[kStatusLength];
  reply[0] = static_cast<uint8_t>(status_);
  reply[1] = static_cast<uint8_t>(poll_ms);
  reply[2] = static_cast<uint8_t>(poll_ms >> 8);
  reply[3] = static_cast<uint8_t>(poll_ms >> 16);
  reply[4] = static_cast<uint8_t>(reported);
  reply[5] = status_ == DfuStatus::kOk ? 0 : kStringStatus;
  ControlReply r = Reply(reply, kStatusLength, setup, data_in);
  r.reset_after_status = reset_after;
  return r;
}

}  // namespace onedfu::bootloader
