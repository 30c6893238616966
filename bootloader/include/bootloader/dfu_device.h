// DfuDevice: the DFU-mode USB device as a plain object (DESIGN.md 6, STYLE 5).
// The port hands every control transfer of endpoint 0 to HandleControl and
// sends back the reply; the object knows nothing of USB hardware, and
// touches flash only through GuardedFlash (one FlashMemory per board memory).
//
// Protocol: USB DFU 1.1 with ST DfuSe extensions, as dfu-util, pydfu and
// mboot use them:
//   - DNLOAD wBlockNum 0 is a DfuSe command: `21 a0..a3` set address,
//     `41 a0..a3` erase the sector containing the address, `41` mass erase
//     (bootloader and filesystem regions skipped), `92` read-unprotect
//     (accepted, no effect). Anything else: errUNKNOWN on the next status.
//   - DNLOAD wBlockNum >= 2 writes its data at
//     address_pointer + (wBlockNum - 2) * kTransferSize; UPLOAD likewise
//     reads. UPLOAD wBlockNum 0 returns the command list 00 21 41 92.
//     wBlockNum 1 and wLength > kTransferSize stall.
//   - After a DNLOAD (command or data) the first GETSTATUS reports dfuDNBUSY
//     with bwPollTimeout = the modeled duration of the work (ms, rounded up,
//     capped by DfuOptions); the work then runs in Poll() (which the port
//     calls once that reply went out) or, at the latest, inside the next
//     GETSTATUS, which reports dfuDNLOAD-IDLE or dfuERROR.
//   - Zero-length DNLOAD in dfuDNLOAD-IDLE or dfuIDLE (dfu-util 0.11 sends it
//     after ABORT when -s has no address) = leave: the next GETSTATUS
//     reports dfuMANIFEST and its reply carries reset_after_status; the state
//     becomes dfuMANIFEST-WAIT-RESET and reset_requested() turns true. The port
//     resets only after that reply went out.
//   - Requests not allowed in the current state (DFU 1.1 table A.1) stall and
//     move to dfuERROR with errSTALLEDPKT, except in dfuMANIFEST-WAIT-RESET
//     where they stall and change nothing. CLRSTATUS leaves dfuERROR. DETACH
//     in DFU mode is acknowledged and ignored (as mboot does).
//   - Errors: bStatus (errADDRESS, errERASE, errWRITE, errVERIFY, errTARGET,
//     errUNKNOWN, errSTALLEDPKT) and iString = kStringStatus, a string
//     descriptor saying what went wrong, e.g. "address 0x08000000 is in the
//     protected bootloader region". Without an error that string reads the
//     idle message (SetIdleMessage; e.g. why the board is in DFU mode).
// Standard requests: GET_DESCRIPTOR (device, configuration, string, DFU
// functional), GET/SET_CONFIGURATION, GET_STATUS, SET_ADDRESS (recorded for
// the port), GET/SET_INTERFACE (interface 0 alt 0 only), CLEAR/SET_FEATURE
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

class DfuDevice {
 public:
  DfuDevice(const runtime::Board& board, std::span<runtime::FlashMemory* const> memories,
            const DeviceStrings& strings = DeviceStrings{}, const DfuOptions& options = DfuOptions{});

  // Checks the flash drivers against the board and builds the layout
  // string. kInvalidArgument / kResourceExhausted with `diag` saying why;
  // HandleControl stalls everything until Init succeeded.
  runtime::Status Init(runtime::Diag* diag);

  // One control transfer. data_out: the OUT data stage (wLength bytes, empty
  // for IN requests). data_in: room for the IN reply (the port provides at
  // least wLength bytes; a smaller span truncates the reply).
  ControlReply HandleControl(const SetupPacket& setup, runtime::ByteSpan data_out, runtime::MutableByteSpan data_in);

  // Runs the pending flash work if the busy status has been reported;
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
  bool work_pending() const { return work_ != Work::kNone; }
  uint32_t address_pointer() const { return address_pointer_; }
  uint8_t configuration() const { return configuration_; }
  uint8_t usb_address() const { return usb_address_; }
  const char* layout() const { return layout_; }
  const GuardedFlash& flash() const { return flash_; }

 private:
  enum class Work : uint8_t { kNone, kCommand, kData };

  ControlReply HandleStandard(const SetupPacket& setup, runtime::MutableByteSpan data_in);
  ControlReply GetDescriptor(const SetupPacket& setup, runtime::MutableByteSpan data_in);
  ControlReply HandleDfu(const SetupPacket& setup, runtime::ByteSpan data_out, runtime::MutableByteSpan data_in);
  ControlReply Dnload(const SetupPacket& setup, runtime::ByteSpan data_out);
  ControlReply Upload(const SetupPacket& setup, runtime::MutableByteSpan data_in);
  ControlReply GetStatus(const SetupPacket& setup, runtime::MutableByteSpan data_in);
  // Stall a request the state does not allow: dfuERROR / errSTALLEDPKT.
  ControlReply StallRequest(const SetupPacket& setup, const char* why);
  void SetError(DfuStatus status);
  void RunWork();
  DfuStatus RunCommand();
  uint32_t WorkEstimateMs() const;

  const runtime::Board& board_;
  GuardedFlash flash_;
  DeviceStrings strings_;
  DfuOptions options_;
  bool ready_ = false;

  DfuState state_ = DfuState::kDfuIdle;
  DfuStatus status_ = DfuStatus::kOk;
  runtime::Diag message_;
  const char* idle_message_ = "OK";
  bool reset_requested_ = false;

  uint32_t address_pointer_ = 0;
  Work work_ = Work::kNone;
  bool busy_reported_ = false;  // the dfuDNBUSY reply went out
  bool work_done_ = false;      // ran in Poll(); next GETSTATUS reports dfuDNLOAD-IDLE
  uint16_t block_ = 0;
  uint16_t length_ = 0;
  uint8_t buffer_[kTransferSize] = {};

  uint8_t configuration_ = 0;
  uint8_t usb_address_ = 0;
  char layout_[kMaxStringChars + 1] = {};
};

}  // namespace onedfu::bootloader
