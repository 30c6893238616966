// USB DFU 1.1 and ST DfuSe (UM0424) protocol constants, declared once.
// Values are the numbers on the wire (DFU 1.1 spec tables 3.2, 6.1, A.1;
// DESIGN.md 6).
#pragma once

#include <cstddef>
#include <cstdint>

namespace onedfu::bootloader {

// DFU class requests (bRequest, with bmRequestType 0x21 OUT / 0xa1 IN).
enum class DfuRequest : uint8_t {
  kDetach = 0,
  kDnload = 1,
  kUpload = 2,
  kGetStatus = 3,
  kClrStatus = 4,
  kGetState = 5,
  kAbort = 6,
};

// bState.
enum class DfuState : uint8_t {
  kAppIdle = 0,
  kAppDetach = 1,
  kDfuIdle = 2,
  kDnloadSync = 3,
  kDnbusy = 4,
  kDnloadIdle = 5,
  kManifestSync = 6,
  kManifest = 7,
  kManifestWaitReset = 8,
  kUploadIdle = 9,
  kError = 10,
};

// bStatus.
enum class DfuStatus : uint8_t {
  kOk = 0x00,
  kErrTarget = 0x01,      // file is not targeted for this device / target not usable
  kErrFile = 0x02,        // file fails a vendor-specific check
  kErrWrite = 0x03,       // device cannot write memory
  kErrErase = 0x04,       // memory erase failed
  kErrCheckErased = 0x05, // memory erase check failed
  kErrProg = 0x06,        // program memory function failed
  kErrVerify = 0x07,      // programmed memory failed verification
  kErrAddress = 0x08,     // address outside the valid range / protected
  kErrNotDone = 0x09,     // DNLOAD of length 0 before all data arrived
  kErrFirmware = 0x0a,    // firmware corrupt: cannot return to run-time
  kErrVendor = 0x0b,
  kErrUsbReset = 0x0c,
  kErrPowerOnReset = 0x0d,
  kErrUnknown = 0x0e,
  kErrStalledPacket = 0x0f,  // device stalled an unexpected request
};

// Which request each state accepts (bRequest bit r of kDfuAllowedRequests[state]):
// DFU 1.1 table A.1 for a DFU-mode device that is not manifestation tolerant,
// where every other request stalls and enters dfuERROR (errSTALLEDPKT); here
// dfuMANIFEST-WAIT-RESET is the exception: it stalls them and changes nothing.
// Three deviations, each for a real host:
//   - GETSTATUS in dfuDNBUSY is answered and runs the pending work (mboot's
//     way; a host told bwPollTimeout 0 polls at once);
//   - GETSTATUS and GETSTATE in dfuMANIFEST-WAIT-RESET are answered (the
//     leave GETSTATUS reply must reach dfu-util, which may poll again);
//   - DETACH in dfuIDLE is acknowledged and ignored (as mboot does).
// DNLOAD of wLength 0 in dfuIDLE (dfu-util 0.11's leave after ABORT) is a
// DNLOAD in dfuIDLE here; the request's handler treats it as leave.
// The run-time states and dfuMANIFEST allow nothing: a DFU-mode device never
// rests in them (dfuMANIFEST is only reported, once, on the way from
// dfuMANIFEST-SYNC to dfuMANIFEST-WAIT-RESET).
constexpr uint8_t DfuRequestBit(DfuRequest request) { return static_cast<uint8_t>(1u << static_cast<uint8_t>(request)); }
inline constexpr uint8_t kDfuAllowedRequests[] = {
    /* appIDLE */ 0,
    /* appDETACH */ 0,
    /* dfuIDLE */
    DfuRequestBit(DfuRequest::kDetach) | DfuRequestBit(DfuRequest::kDnload) | DfuRequestBit(DfuRequest::kUpload) |
        DfuRequestBit(DfuRequest::kGetStatus) | DfuRequestBit(DfuRequest::kGetState) | DfuRequestBit(DfuRequest::kAbort),
    /* dfuDNLOAD-SYNC */ DfuRequestBit(DfuRequest::kGetStatus) | DfuRequestBit(DfuRequest::kGetState),
    /* dfuDNBUSY */ DfuRequestBit(DfuRequest::kGetStatus),
    /* dfuDNLOAD-IDLE */
    DfuRequestBit(DfuRequest::kDnload) | DfuRequestBit(DfuRequest::kGetStatus) | DfuRequestBit(DfuRequest::kGetState) |
        DfuRequestBit(DfuRequest::kAbort),
    /* dfuMANIFEST-SYNC */ DfuRequestBit(DfuRequest::kGetStatus) | DfuRequestBit(DfuRequest::kGetState),
    /* dfuMANIFEST */ 0,
    /* dfuMANIFEST-WAIT-RESET */ DfuRequestBit(DfuRequest::kGetStatus) | DfuRequestBit(DfuRequest::kGetState),
    /* dfuUPLOAD-IDLE */
    DfuRequestBit(DfuRequest::kUpload) | DfuRequestBit(DfuRequest::kGetStatus) | DfuRequestBit(DfuRequest::kGetState) |
        DfuRequestBit(DfuRequest::kAbort),
    /* dfuERROR */
    DfuRequestBit(DfuRequest::kGetStatus) | DfuRequestBit(DfuRequest::kClrStatus) | DfuRequestBit(DfuRequest::kGetState),
};
static_assert(sizeof kDfuAllowedRequests == static_cast<size_t>(DfuState::kError) + 1, "one entry per state");

constexpr bool DfuRequestAllowed(DfuState state, DfuRequest request) {
  return static_cast<uint8_t>(state) < sizeof kDfuAllowedRequests && static_cast<uint8_t>(request) < 8 &&
         (kDfuAllowedRequests[static_cast<uint8_t>(state)] & DfuRequestBit(request)) != 0;
}

// The requests with an IN data stage (bmRequestType 0xa1).
constexpr bool DfuRequestIsIn(DfuRequest request) {
  return request == DfuRequest::kUpload || request == DfuRequest::kGetStatus || request == DfuRequest::kGetState;
}

// DfuSe commands: the first byte of a DNLOAD with wBlockNum 0.
inline constexpr uint8_t kDfuseGetCommands = 0x00;   // only listed by UPLOAD block 0
inline constexpr uint8_t kDfuseSetAddress = 0x21;    // + u32 LE address
inline constexpr uint8_t kDfuseErase = 0x41;         // + u32 LE address: page erase; alone: mass erase
inline constexpr uint8_t kDfuseReadUnprotect = 0x92; // accepted, no effect
// onedfu vendor command: + u32 LE address + u32 LE length (at most
// kDfuseHashMaxLength, inside one memory). The UPLOAD of block 0 that follows
// it (once, unless another DNLOAD comes first) returns kDfuseHashReplySize
// bytes: kDfuseHash, then the SHA-256 of the range (instead of the command
// list, which always starts with kDfuseGetCommands). Listed in that command
// list; hosts that do not know it (dfu-util, pydfu) never send it.
inline constexpr uint8_t kDfuseHash = 0x48;
inline constexpr uint32_t kDfuseHashMaxLength = 64 * 1024;  // bytes per request: bounded work
inline constexpr uint16_t kDfuseHashReplySize = 33;

// Fixed transfer size (wTransferSize of the functional descriptor), bytes.
// DfuSe data block n >= 2 is at address_pointer + (n - 2) * kTransferSize.
inline constexpr uint16_t kTransferSize = 2048;

// bmAttributes of the functional descriptor: bitCanDnload | bitCanUpload |
// bitWillDetach; NOT manifestation tolerant (after leave the device resets).
inline constexpr uint8_t kDfuAttributes = 0x0b;
inline constexpr uint16_t kDfuVersion = 0x011a;  // bcdDFUVersion: DfuSe

// GETSTATUS payload size, bytes.
inline constexpr uint16_t kStatusLength = 6;

// Short names for logs and tests, e.g. "dfuDNBUSY", "errADDRESS".
const char* DfuStateName(DfuState state);
const char* DfuStatusName(DfuStatus status);

}  // namespace onedfu::bootloader
