// The DFU-mode USB device as plain objects (DESIGN.md 6, STYLE 5):
//   - DfuProtocol: USB chapter 9 requests and the DFU 1.1 state machine over
//     any DfuBackend (dfu_backend.h). It knows requests, states and the order
//     of replies; it never touches flash.
//   - DfuDevice: the bootloader's device, DfuProtocol over DfuseFlash
//     (dfuse_flash.h: DfuSe commands and data blocks over GuardedFlash).
// The port hands every control transfer of endpoint 0 to HandleControl and
// sends back the reply; nothing here knows USB hardware.
//
// Protocol (DfuProtocol):
//   - DFU class requests to interface 0 are dispatched from one table,
//     kDfuAllowedRequests (dfu.h: DFU 1.1 table A.1 and its deviations).
//     A request the state does not allow, with the wrong direction or an
//     unknown bRequest stalls and moves to dfuERROR with errSTALLEDPKT (in
//     dfuMANIFEST-WAIT-RESET: stalls and changes nothing). CLRSTATUS leaves
//     dfuERROR; ABORT returns to dfuIDLE; DETACH is acknowledged and ignored.
//   - DNLOAD (wLength 1..kTransferSize; longer, or a data stage that differs
//     from wLength, stalls) stores the block; the first GETSTATUS then reports
//     dfuDNBUSY with bwPollTimeout = the backend's estimate (ms, rounded up,
//     capped by DfuOptions); the backend's Download runs in Poll() (which the
//     port calls once that reply went out) or, at the latest, inside the next
//     GETSTATUS, which reports dfuDNLOAD-IDLE or dfuERROR.
//   - UPLOAD (wLength <= kTransferSize) replies with the backend's bytes; a
//     short reply ends the upload (dfuIDLE), a full one stays in
//     dfuUPLOAD-IDLE. A block the backend refuses stalls (errSTALLEDPKT).
//   - Zero-length DNLOAD in dfuDNLOAD-IDLE or dfuIDLE (dfu-util 0.11 sends it
//     after ABORT when -s has no address) = leave: the next GETSTATUS
//     reports dfuMANIFEST and its reply carries reset_after_status; the state
//     becomes dfuMANIFEST-WAIT-RESET and reset_requested() turns true. The port
//     resets only after that reply went out.
//   - Errors: bStatus from the backend (errADDRESS, errERASE, errWRITE,
//     errVERIFY, errTARGET, errUNKNOWN) or errSTALLEDPKT, and iString =
//     kStringStatus, a string descriptor saying what went wrong, e.g.
//     "address 0x08000000 is in the protected bootloader region". Without an
//     error that string reads the idle message (SetIdleMessage; e.g. why the
//     board is in DFU mode).
// Standard requests: GET_DESCRIPTOR (device, configuration, string, DFU
// functional; built from the Board and the DfuSe layout string), GET/SET_
// CONFIGURATION, GET_STATUS, SET_ADDRESS (recorded for the port),
// GET/SET_INTERFACE (interface 0 alt 0 only), CLEAR/SET_FEATURE
// (acknowledged). Everything else stalls.
//
// Not reentrant: call HandleControl, Poll and BusReset from one context.
// Static storage: about 2.3 KiB for the data block, plus GuardedFlash's
// 2 KiB record buffer. No heap, no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "bootloader/descriptors.h"
#include "bootloader/dfu.h"
#include "bootloader/dfu_backend.h"
#include "bootloader/dfuse_flash.h"
#include "bootloader/guarded_flash.h"
#include "bootloader/usb.h"
#include "runtime/board.h"
#include "runtime/byte_reader.h"
#include "runtime/diag.h"
#include "runtime/flash_memory.h"
#include "runtime/status.h"

namespace onedfu::bootloader {

// ASCII strings of the device; static storage, not copied.
struct DeviceStrings {
  const char* manufacturer = "onedfu";
  const char* product = "onedfu DFU bootloader";
  const char* serial = "000000000001";
};

struct DfuOptions {
  // Cap for bwPollTimeout, ms. The reported value is the modeled duration of
  // the pending work (board timing model); 0 reports 0 always (the host then
  // polls at once and the work runs inside that GETSTATUS, like mboot).
  uint32_t max_poll_timeout_ms = 10000;
};

class DfuProtocol {
 public:
  // `board`: USB identity and the layout string; `backend`: what blocks mean.
  // Neither is owned; both must outlive the protocol.
  DfuProtocol(const runtime::Board& board, DfuBackend& backend, const DeviceStrings& strings = DeviceStrings{},
              const DfuOptions& options = DfuOptions{});

  // Builds the layout string (the backend must be ready by now).
  // kInvalidArgument / kResourceExhausted with `diag` saying why;
  // HandleControl stalls everything until Init succeeded.
  runtime::Status Init(runtime::Diag* diag);

  // One control transfer. data_out: the OUT data stage (wLength bytes, empty
  // for IN requests). data_in: room for the IN reply (the port provides at
  // least wLength bytes; a smaller span truncates the reply).
  ControlReply HandleControl(const SetupPacket& setup, runtime::ByteSpan data_out, runtime::MutableByteSpan data_in);

  // Runs the pending download if the busy status has been reported;
  // returns true when work ran. Call after each delivered reply.
  bool Poll();

  // USB bus reset. Returns true when the device should now reset itself
  // (it was waiting for the reset after leave); otherwise pending work is
  // dropped and the DFU state returns to dfuIDLE.
  bool BusReset();

  // SET_INTERFACE: only interface 0, alt 0 exists. Returns false otherwise.
  bool SetInterface(uint16_t interface, uint16_t alt);

  // Text of string kStringStatus while no error is pending; static storage.
  void SetIdleMessage(const char* text) { idle_message_ = text ? text : ""; }

  DfuState state() const { return state_; }
  DfuStatus status() const { return status_; }
  // Current status string: the error text, or the idle message.
  const char* status_text() const;
  bool reset_requested() const { return reset_requested_; }
  bool work_pending() const { return length_ != 0; }
  uint8_t configuration() const { return configuration_; }
  uint8_t usb_address() const { return usb_address_; }
  const char* layout() const { return layout_; }

 protected:
  // A copy of a device (the power-cut sweep checkpoints one) must drive its own backend.
  void RebindBackend(DfuBackend& backend) { backend_ = &backend; }

 private:
  ControlReply HandleStandard(const SetupPacket& setup, runtime::MutableByteSpan data_in);
  ControlReply GetDescriptor(const SetupPacket& setup, runtime::MutableByteSpan data_in);
  ControlReply HandleDfu(const SetupPacket& setup, runtime::ByteSpan data_out, runtime::MutableByteSpan data_in);
  ControlReply Dnload(const SetupPacket& setup, runtime::ByteSpan data_out);
  ControlReply Upload(const SetupPacket& setup, runtime::MutableByteSpan data_in);
  ControlReply GetStatus(const SetupPacket& setup, runtime::MutableByteSpan data_in);
  // Stall a request: dfuERROR / errSTALLEDPKT, "<request> <why> in <state>".
  ControlReply StallRequest(const SetupPacket& setup, const char* why);
  void SetError(DfuStatus status);
  void RunWork();
  uint32_t PollTimeoutMs() const;

  const runtime::Board& board_;
  DfuBackend* backend_;  // never null
  DeviceStrings strings_;
  DfuOptions options_;
  bool ready_ = false;

  DfuState state_ = DfuState::kDfuIdle;
  DfuStatus status_ = DfuStatus::kOk;
  runtime::Diag message_;
  const char* idle_message_ = "OK";
  bool reset_requested_ = false;

  // The stored DNLOAD block; length_ != 0 while its work is pending (from the
  // request until it ran or was dropped).
  uint16_t block_ = 0;
  uint16_t length_ = 0;
  uint8_t buffer_[kTransferSize] = {};

  uint8_t configuration_ = 0;
  uint8_t usb_address_ = 0;
  char layout_[kMaxStringChars + 1] = {};
};

namespace internal {
// Owns a DfuDevice's DfuseFlash: a base, so that it is built before the
// protocol that uses it (and DfuDevice itself is no polymorphic class).
struct DfuseFlashOwner {
  DfuseFlashOwner(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories)
      : dfuse(board, memories) {}
  DfuseFlash dfuse;
};
}  // namespace internal

// The bootloader's DFU device: DfuProtocol over DfuseFlash on `memories`
// (index i serves board.memories[i]).
class DfuDevice : private internal::DfuseFlashOwner, public DfuProtocol {
 public:
  DfuDevice(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories,
            const DeviceStrings& strings = DeviceStrings{}, const DfuOptions& options = DfuOptions{})
      : DfuseFlashOwner(board, memories), DfuProtocol(board, dfuse, strings, options) {}
  // A copy is a device in the same state on the same flash: its protocol drives the copy's own
  // DfuSe/flash-policy state (the record it revokes), not the original's.
  DfuDevice(const DfuDevice& other) : DfuseFlashOwner(other), DfuProtocol(other) { RebindBackend(dfuse); }
  DfuDevice& operator=(const DfuDevice&) = delete;

  // Checks the flash drivers against the board, then DfuProtocol::Init.
  runtime::Status Init(runtime::Diag* diag) {
    ONEDFU_TRY(dfuse.Check(diag));
    return DfuProtocol::Init(diag);
  }

  uint32_t address_pointer() const { return dfuse.address_pointer(); }
  const GuardedFlash& flash() const { return dfuse.flash(); }
};

}  // namespace onedfu::bootloader
