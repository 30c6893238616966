// USB device driver for the STM32F7 OTG FS core (a Synopsys DWC2 core),
// endpoint 0 only, polled (a bootloader has nothing else to do). Follows
// RM0410 section 42 (USB on-the-go full-speed/high-speed): 42.15.2 core
// initialization and device-mode initialization (GUSBCFG.FDMOD, DCFG.DSPD,
// GCCFG.PWRDWN, B-session override in GOTGCTL), 42.11 FIFO sizes (GRXFSIZ,
// DIEPTXF0), 42.16.6 device programming model: bus reset (GINTSTS.USBRST),
// enumeration done (ENUMDNE), reading the receive FIFO (GRXSTSP packet
// status: SETUP data / SETUP done / OUT data / OUT done), endpoint 0 IN
// packets written to FIFO 0 (DIEPTSIZ0, DIEPCTL0.EPENA/CNAK, DIEPINT0.XFRC),
// STALL on both directions, SET_ADDRESS applied to DCFG.DAD at once.
//
// Control transfers go to the USB function whole (UsbFunction: the
// bootloader's DfuDevice, or an application's bootloader::DfuRuntime): the
// SETUP packet plus the complete OUT data stage (up to kTransferSize bytes,
// 64-byte packets) to HandleControl; the IN reply goes out in 64-byte packets
// (a zero-length packet ends a reply shorter than wLength that is a multiple
// of 64). Once the status stage has completed the reply is "delivered": the
// driver runs the function's Poll (the pending flash work), or reports that
// the board must reset (ControlReply::reset_after_status: the leave
// GETSTATUS, an application's DETACH).
// No heap; the buffers are members (about 2.1 KiB).
#pragma once

#include <cstdint>

#include "bootloader/dfu.h"
#include "bootloader/usb.h"
#include "runtime/byte_reader.h"

namespace onedfu::cortexm {

// What the driver hands control transfers to (the calls of bootloader::DfuProtocol).
class UsbFunction {
 public:
  virtual bootloader::ControlReply HandleControl(const bootloader::SetupPacket& setup, runtime::ByteSpan data_out,
                                                 runtime::MutableByteSpan data_in) = 0;
  // The reply was delivered: run what it started.
  virtual void Delivered() = 0;
  // USB bus reset; true when the board must now reset.
  virtual bool BusReset() = 0;

 protected:
  ~UsbFunction() = default;
};

// UsbFunction over any object with HandleControl, Poll and BusReset (DfuDevice, DfuRuntime).
template <class Device>
class UsbFunctionOf final : public UsbFunction {
 public:
  explicit UsbFunctionOf(Device& device) : device_(device) {}
  bootloader::ControlReply HandleControl(const bootloader::SetupPacket& setup, runtime::ByteSpan data_out,
                                         runtime::MutableByteSpan data_in) override {
    return device_.HandleControl(setup, data_out, data_in);
  }
  void Delivered() override { (void)device_.Poll(); }
  bool BusReset() override { return device_.BusReset(); }

 private:
  Device& device_;
};

class UsbOtgFs {
 public:
  // Clocks the core (PLL48CK must run), soft-resets it, forces device mode
  // at full speed with the internal PHY, sizes the FIFOs and connects
  // (pull-up on D+). False when the core does not come out of reset.
  [[nodiscard]] bool Init();

  // Handles what the core has pending (bus reset, received packets, a
  // finished IN packet) against `function`. Returns true when the board must
  // now reset (after the status stage of the transfer that asked for it, or
  // a bus reset the function waited for).
  bool Poll(UsbFunction& function);

  // Pulls the D+ pull-up off (the host sees an unplug).
  void Disconnect();

 private:
  enum class Stage : uint8_t { kSetup, kDataOut, kDataIn, kStatusIn, kStatusOut };

  void BusReset();
  void Receive(UsbFunction& function);
  void Dispatch(UsbFunction& function);
  void SendNextIn();
  void Delivered(UsbFunction& function);

  Stage stage_ = Stage::kSetup;
  bool reset_after_status_ = false;
  bool reset_now_ = false;
  bool zlp_ = false;       // a zero-length packet still ends the IN reply
  uint16_t in_sent_ = 0;
  uint16_t in_length_ = 0;
  uint16_t out_length_ = 0;
  uint8_t setup_[8] = {};
  alignas(4) uint8_t buffer_[bootloader::kTransferSize] = {};  // OUT data stage or IN reply
};

}  // namespace onedfu::cortexm
