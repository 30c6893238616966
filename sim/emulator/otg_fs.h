// Register-level model of the STM32F7 OTG FS core in device mode (a Synopsys DWC2; RM0410
// section 42), endpoint 0 only, plus the host side of the wire: control transfers as a USB host
// sends them (SETUP, OUT data packets, IN tokens, the status stage) and bus resets.
//
// Device side (what firmware sees): GOTGCTL, GAHBCFG, GUSBCFG, GRSTCTL (core soft reset, FIFO
// flushes; AHBIDL always set), GINTSTS (RXFLVL from the receive FIFO, USBRST, ENUMDNE,
// IEPINT/OEPINT), GINTMSK, GRXSTSR/GRXSTSP + FIFO pops (packet status entries: SETUP data,
// SETUP done, OUT data, OUT transfer done), GRXFSIZ, DIEPTXF0, GCCFG, CID, DCFG, DCTL (SDIS:
// connect), DSTS, DIEPMSK/DOEPMSK/DAINTMSK, DIEPCTL0/DIEPINT0/DIEPTSIZ0/DTXFSTS0, DOEPCTL0/
// DOEPINT0/DOEPTSIZ0, PCGCCTL, FIFO 0 pushes. Strict: the core needs RCC_AHB2ENR.OTGFSEN and a
// 48 MHz PLL48CK; FIFO sizes must fit the 1.25 KiB FIFO RAM; GRXSTSP is popped only after the
// previous packet's data was read, and never from an empty FIFO; FIFO 0 is written only for
// an enabled IN transfer and never with more words than DIEPTSIZ0.XFRSIZ holds; EPENA is not
// set again while a packet is pending; one packet per IN transfer (XFRSIZ <= 64).
//
// Host side: the core accepts a SETUP at any time (clearing both STALL bits), OUT data only
// while DOEPCTL0.EPENA is set, and answers an IN token with the packet once EPENA is set and
// XFRSIZ bytes are in FIFO 0, or with STALL when DIEPCTL0.STALL is set. After the status stage
// the host lets the firmware run until it is quiescent (two passes of its loop reading
// GINTSTS with nothing pending), so the work a request started (flash erase/program) is done
// before the next request, as when the bootloader holds the bus.
// Host code.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "machine.h"

namespace onedfu::sim::emu {

struct ControlResult {
  bool ok = false;     // false: error says why (fault, timeout, the device left)
  bool stall = false;  // the device stalled the request
  std::vector<uint8_t> in;  // IN data stage
  std::string error;
};

class OtgFsModel final : public Peripheral {
 public:
  using Peripheral::Peripheral;
  const char* name() const override { return "OTG_FS"; }
  bool Read(uint32_t offset, uint32_t* value) override;
  bool Write(uint32_t offset, unsigned size, uint32_t value) override;
  void Reset() override;
  const char* ClockOff(uint32_t offset) const override;

  // The D+ pull-up is on: core in device mode, transceiver powered, DCTL.SDIS clear.
  bool connected() const;
  // Runs the firmware until it connects (or `max_wall_ms`); false when it did not.
  bool WaitConnected(unsigned max_wall_ms);
  // One control transfer. `setup` 8 bytes; OUT: `out` is the data stage (wLength bytes).
  ControlResult Control(std::span<const uint8_t, 8> setup, std::span<const uint8_t> out);
  // USB bus reset + enumeration at full speed; false (error) when the firmware did not settle.
  bool BusReset(std::string* error);
  // The device address the firmware set (DCFG.DAD).
  uint8_t address() const { return static_cast<uint8_t>((dcfg_ >> 4) & 0x7f); }

 private:
  struct RxEntry {
    uint32_t status = 0;
    std::vector<uint8_t> data;
  };
  bool InReady() const;
  bool Stalled() const { return (diepctl0_ | doepctl0_) & (1u << 21); }
  void PushRx(uint32_t pktsts, std::span<const uint8_t> data);
  uint32_t RxWordsQueued() const;
  bool Wait(const char* what, const std::function<bool()>& until, std::string* error);
  bool Settle(std::string* error);
  std::vector<uint8_t> TakeIn();

  uint32_t gotgctl_ = 0, gahbcfg_ = 0, gusbcfg_ = 0, gintsts_ = 0, gintmsk_ = 0, grxfsiz_ = 0, dieptxf0_ = 0,
           gccfg_ = 0, dcfg_ = 0, dctl_ = 0, diepmsk_ = 0, doepmsk_ = 0, daintmsk_ = 0, diepctl0_ = 0,
           diepint0_ = 0, dieptsiz0_ = 0, doepctl0_ = 0, doepint0_ = 0, doeptsiz0_ = 0, pcgcctl_ = 0;
  bool enumerated_ = false;
  std::deque<RxEntry> rx_;
  std::vector<uint8_t> popped_;  // data of the entry GRXSTSP returned, not yet read
  size_t popped_at_ = 0;
  std::vector<uint8_t> tx_;      // FIFO 0 contents of the pending IN packet
  unsigned idle_reads_ = 0;
};

}  // namespace onedfu::sim::emu
