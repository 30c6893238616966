#include "usb_otg_fs.h"

#include "mmio.h"

namespace onedfu::cortexm {
namespace {

// RM0410 42.15: OTG_FS core at 0x50000000 (register map table 42.15.5).
constexpr uint32_t kOtg = 0x50000000;
constexpr uint32_t kGotgctl = kOtg + 0x000;
constexpr uint32_t kGusbcfg = kOtg + 0x00c;
constexpr uint32_t kGrstctl = kOtg + 0x010;
constexpr uint32_t kGintsts = kOtg + 0x014;
constexpr uint32_t kGrxstsp = kOtg + 0x020;
constexpr uint32_t kGrxfsiz = kOtg + 0x024;
constexpr uint32_t kDieptxf0 = kOtg + 0x028;
constexpr uint32_t kGccfg = kOtg + 0x038;
constexpr uint32_t kDcfg = kOtg + 0x800;
constexpr uint32_t kDctl = kOtg + 0x804;
constexpr uint32_t kDiepctl0 = kOtg + 0x900;
constexpr uint32_t kDiepint0 = kOtg + 0x908;
constexpr uint32_t kDieptsiz0 = kOtg + 0x910;
constexpr uint32_t kDoepctl0 = kOtg + 0xb00;
constexpr uint32_t kDoeptsiz0 = kOtg + 0xb10;
constexpr uint32_t kFifo0 = kOtg + 0x1000;  // push (IN) / pop (receive FIFO)
constexpr uint32_t kPcgcctl = kOtg + 0xe00;
// RCC_AHB2ENR.OTGFSEN (RM0410 5.3.11).
constexpr uint32_t kRccAhb2enr = 0x40023834;

constexpr uint32_t kGotgctlBvaloen = 1u << 6;  // override the B-session valid signal
constexpr uint32_t kGotgctlBvaloval = 1u << 7;
constexpr uint32_t kGusbcfgPhysel = 1u << 6;
constexpr uint32_t kGusbcfgTrdt6 = 6u << 10;   // turnaround for AHB >= 32 MHz (table 42.1)
constexpr uint32_t kGusbcfgFdmod = 1u << 30;
constexpr uint32_t kGrstctlCsrst = 1u << 0;
constexpr uint32_t kGrstctlRxfflsh = 1u << 4;
constexpr uint32_t kGrstctlTxfflsh = 1u << 5;
constexpr uint32_t kGrstctlTxfnumAll = 0x10u << 6;
constexpr uint32_t kGrstctlAhbidl = 1u << 31;
constexpr uint32_t kGintRxflvl = 1u << 4;
constexpr uint32_t kGintUsbrst = 1u << 12;
constexpr uint32_t kGintEnumdne = 1u << 13;
constexpr uint32_t kGccfgPwrdwn = 1u << 16;  // transceiver on
constexpr uint32_t kDcfgDspdFull = 3u << 0;
constexpr uint32_t kDctlSdis = 1u << 1;
constexpr uint32_t kDctlCginak = 1u << 8;
constexpr uint32_t kEpctlStall = 1u << 21;
constexpr uint32_t kEpctlCnak = 1u << 26;
constexpr uint32_t kEpctlEpena = 1u << 31;
constexpr uint32_t kDiepintXfrc = 1u << 0;
constexpr uint32_t kTsizPktcnt1 = 1u << 19;
constexpr uint32_t kDoeptsizStupcnt3 = 3u << 29;
// GRXSTSP.PKTSTS (bits 20:17), device mode.
constexpr uint32_t kPktOutData = 2;
constexpr uint32_t kPktSetupData = 6;
constexpr uint32_t kPktSetupDone = 4;

constexpr uint16_t kMaxPacket = 64;
constexpr uint32_t kRxFifoWords = 128;
constexpr uint32_t kTx0FifoWords = 64;

// EP0 OUT ready for one packet (data or status stage) and up to three
// back-to-back SETUP packets.
void ArmOut() {
  Reg(kDoeptsiz0) = kDoeptsizStupcnt3 | kTsizPktcnt1 | kMaxPacket;
  Reg(kDoepctl0) |= kEpctlEpena | kEpctlCnak;
}

bool FlushFifos() {
  Reg(kGrstctl) = kGrstctlTxfflsh | kGrstctlTxfnumAll;
  if (!WaitBits(kGrstctl, kGrstctlTxfflsh, 0)) return false;
  Reg(kGrstctl) = kGrstctlRxfflsh;
  return WaitBits(kGrstctl, kGrstctlRxfflsh, 0);
}

}  // namespace

bool UsbOtgFs::Init() {
  Reg(kRccAhb2enr) |= 1u << 7;
  if (!WaitBits(kGrstctl, kGrstctlAhbidl, kGrstctlAhbidl)) return false;
  Reg(kGrstctl) = kGrstctlCsrst;
  if (!WaitBits(kGrstctl, kGrstctlCsrst, 0)) return false;
  Reg(kGusbcfg) = kGusbcfgFdmod | kGusbcfgTrdt6 | kGusbcfgPhysel;
  Reg(kPcgcctl) = 0;
  // Bus-powered board, VBUS not sensed: the B session is always valid.
  Reg(kGccfg) = kGccfgPwrdwn;
  Reg(kGotgctl) = kGotgctlBvaloen | kGotgctlBvaloval;
  Reg(kDcfg) = kDcfgDspdFull;
  Reg(kGrxfsiz) = kRxFifoWords;
  Reg(kDieptxf0) = (kTx0FifoWords << 16) | kRxFifoWords;
  if (!FlushFifos()) return false;
  Reg(kGintsts) = 0xffffffff;  // clear what the reset left
  Reg(kDctl) = 0;              // SDIS off: connect
  return true;
}

void UsbOtgFs::Disconnect() { Reg(kDctl) |= kDctlSdis; }

void UsbOtgFs::BusReset() {
  Reg(kDcfg) = kDcfgDspdFull;  // address 0
  (void)FlushFifos();
  stage_ = Stage::kSetup;
  reset_after_status_ = false;
  ArmOut();
}

bool UsbOtgFs::Poll(UsbFunction& function) {
  const uint32_t status = Reg(kGintsts);
  if (status & kGintUsbrst) {
    Reg(kGintsts) = kGintUsbrst;
    BusReset();
    if (function.BusReset()) reset_now_ = true;
  }
  if (status & kGintEnumdne) {
    Reg(kGintsts) = kGintEnumdne;
    Reg(kDiepctl0) = 0;  // MPSIZ 00: 64-byte packets
    Reg(kDctl) |= kDctlCginak;
  }
  if (status & kGintRxflvl) Receive(function);
  if (Reg(kDiepint0) & kDiepintXfrc) {
    Reg(kDiepint0) = kDiepintXfrc;
    if (stage_ == Stage::kDataIn) {
      SendNextIn();
    } else if (stage_ == Stage::kStatusIn) {
      Delivered(function);
    }
  }
  return reset_now_;
}

void UsbOtgFs::Receive(UsbFunction& function) {
  const uint32_t rx = Reg(kGrxstsp);
  const uint32_t count = (rx >> 4) & 0x7ff;
  const uint32_t kind = (rx >> 17) & 0xf;
  // Pop the packet: into the SETUP buffer, the OUT data stage, or nowhere.
  uint8_t* to = nullptr;
  uint32_t room = 0;
  if (kind == kPktSetupData) {
    to = setup_;
    room = sizeof setup_;
  } else if (kind == kPktOutData && stage_ == Stage::kDataOut) {
    to = buffer_ + out_length_;
    room = sizeof buffer_ - out_length_;
  }
  for (uint32_t i = 0; i < count; i += 4) {
    const uint32_t word = Reg(kFifo0);
    for (uint32_t b = 0; b < 4 && i + b < count; ++b) {
      if (i + b < room) to[i + b] = static_cast<uint8_t>(word >> (8 * b));
    }
  }
  if (kind == kPktSetupDone) {
    const bootloader::SetupPacket setup = bootloader::ParseSetup(setup_);
    out_length_ = 0;
    if (!setup.IsIn() && setup.wLength > 0) {
      // Longer than the buffer: the core stalls it (it never asks for more).
      stage_ = Stage::kDataOut;
      if (setup.wLength <= sizeof buffer_) {
        ArmOut();
        return;
      }
    }
    Dispatch(function);
    return;
  }
  if (kind != kPktOutData) return;
  if (stage_ == Stage::kDataOut) {
    out_length_ = static_cast<uint16_t>(out_length_ + (count < room ? count : room));
    const bootloader::SetupPacket setup = bootloader::ParseSetup(setup_);
    if (out_length_ < setup.wLength && count == kMaxPacket) {
      ArmOut();
      return;
    }
    Dispatch(function);
    return;
  }
  // The host acknowledged the IN reply. Its zero-length status packet may arrive before the
  // last IN packet's XFRC was handled (EP0 OUT stays armed), or end the data stage early.
  if (stage_ == Stage::kStatusOut || (stage_ == Stage::kDataIn && count == 0)) {
    ArmOut();
    Delivered(function);
  }
}

void UsbOtgFs::Dispatch(UsbFunction& function) {
  const bootloader::SetupPacket setup = bootloader::ParseSetup(setup_);
  bootloader::ControlReply reply = bootloader::ControlReply::Stall();
  if (!setup.IsIn() && setup.wLength > sizeof buffer_) {
    // stall, below
  } else if (setup.IsIn()) {
    reply = function.HandleControl(setup, {}, runtime::MutableByteSpan(buffer_, setup.wLength < sizeof buffer_ ? setup.wLength : sizeof buffer_));
  } else {
    reply = function.HandleControl(setup, runtime::ByteSpan(buffer_, out_length_), {});
  }
  if (reply.stall) {
    Reg(kDiepctl0) |= kEpctlStall;
    Reg(kDoepctl0) |= kEpctlStall;
    stage_ = Stage::kSetup;
    ArmOut();
    return;
  }
  if (setup.Type() == 0 && setup.bRequest == bootloader::kSetAddress) {
    Reg(kDcfg) = kDcfgDspdFull | ((setup.wValue & 0x7fu) << 4);  // before the status stage
  }
  reset_after_status_ = reply.reset_after_status;
  in_sent_ = 0;
  if (setup.IsIn()) {
    in_length_ = reply.length;
    zlp_ = reply.length < setup.wLength && reply.length % kMaxPacket == 0;
    stage_ = Stage::kDataIn;
    SendNextIn();
    return;
  }
  in_length_ = 0;
  zlp_ = true;
  stage_ = Stage::kStatusIn;
  SendNextIn();
}

void UsbOtgFs::SendNextIn() {
  uint32_t n = in_length_ - in_sent_;
  if (n == 0 && !zlp_) {  // reply complete: the host's OUT status packet follows
    stage_ = Stage::kStatusOut;
    ArmOut();
    return;
  }
  if (n > kMaxPacket) n = kMaxPacket;
  if (n < kMaxPacket) zlp_ = false;  // a short packet ends the data stage
  Reg(kDieptsiz0) = kTsizPktcnt1 | n;
  Reg(kDiepctl0) |= kEpctlEpena | kEpctlCnak;
  const uint8_t* from = buffer_ + in_sent_;
  for (uint32_t i = 0; i < n; i += 4) {
    uint32_t word = 0;
    for (uint32_t b = 0; b < 4 && i + b < n; ++b) word |= uint32_t{from[i + b]} << (8 * b);
    Reg(kFifo0) = word;
  }
  in_sent_ = static_cast<uint16_t>(in_sent_ + n);
}

void UsbOtgFs::Delivered(UsbFunction& function) {
  stage_ = Stage::kSetup;
  if (reset_after_status_) {
    reset_now_ = true;
    return;
  }
  function.Delivered();
}

}  // namespace onedfu::cortexm
