// DfuBackend: what the DFU protocol (DfuProtocol, dfu_device.h) asks of the
// device behind it. The protocol knows DFU 1.1 requests, states and timing of
// replies only; what a block number and its bytes mean, and every flash
// access, belong to the backend (STYLE 5; TinyUSB's DFU class callbacks are
// the model). The bootloader's backend is DfuseFlash (dfuse_flash.h): DfuSe
// commands and data blocks over the guarded flash policy.
//
// The protocol calls it from HandleControl/Poll only, one call at a time; the
// owner makes sure the backend is ready before the protocol's Init.
// Errors: a DFU bStatus other than kOk, with `message` (cleared by the caller)
// saying what went wrong; it becomes the status string.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bootloader/dfu.h"
#include "runtime/byte_reader.h"
#include "runtime/diag.h"
#include "runtime/status.h"

namespace onedfu::bootloader {

class DfuBackend {
 public:
  // Why DNLOAD/UPLOAD cannot use block number `block` (the request stalls
  // with errSTALLEDPKT, "<request> <why> in <state>"), or null when it can.
  virtual const char* RefuseBlock(uint16_t block) const = 0;

  // Typical duration of Download(block, data), microseconds (the protocol
  // reports it as bwPollTimeout, rounded up to ms and capped). 0 when unknown.
  virtual uint64_t DownloadEstimateUs(uint16_t block, runtime::ByteSpan data) const = 0;

  // Carries out DNLOAD `block` with `data` (1..kTransferSize bytes), once
  // the busy status has been reported.
  virtual DfuStatus Download(uint16_t block, runtime::ByteSpan data, runtime::Diag& message) = 0;

  // Fills the reply to UPLOAD `block` into `out` (already cut to wLength);
  // *length receives the count. A count below wLength ends the upload.
  virtual DfuStatus Upload(uint16_t block, runtime::MutableByteSpan out, size_t* length, runtime::Diag& message) = 0;

 protected:
  ~DfuBackend() = default;
};

}  // namespace onedfu::bootloader
