#include "otg_fs.h"

#include <cstdio>

#include "peripherals.h"

namespace onedfu::sim::emu {
namespace {

constexpr uint32_t kEpena = 1u << 31;
constexpr uint32_t kStall = 1u << 21;
constexpr uint32_t kGintRxflvl = 1u << 4;
constexpr uint32_t kGintUsbrst = 1u << 12;
constexpr uint32_t kGintEnumdne = 1u << 13;
constexpr uint32_t kPktOutData = 2, kPktOutDone = 3, kPktSetupDone = 4, kPktSetupData = 6;
constexpr uint32_t kFifoRamWords = 320;  // 1.25 KiB

}  // namespace

void OtgFsModel::Reset() {
  gotgctl_ = 0x00010000;  // CIDSTS: B device
  gahbcfg_ = 0;
  gusbcfg_ = 0x00001440;
  gintsts_ = 0x04000020;
  gintmsk_ = 0;
  grxfsiz_ = 0x200;
  dieptxf0_ = 0x02000200;
  gccfg_ = 0;
  dcfg_ = 0x02200000;
  dctl_ = 0x00000002;  // SDIS: disconnected
  diepmsk_ = doepmsk_ = daintmsk_ = 0;
  diepctl0_ = diepint0_ = dieptsiz0_ = doepctl0_ = doepint0_ = doeptsiz0_ = 0;
  pcgcctl_ = 0;
  enumerated_ = false;
  rx_.clear();
  popped_.clear();
  popped_at_ = 0;
  tx_.clear();
  idle_reads_ = 0;
}

const char* OtgFsModel::ClockOff(uint32_t offset) const {
  (void)offset;
  return m_.rcc().OtgFsClock() ? nullptr : "RCC_AHB2ENR.OTGFSEN";
}

bool OtgFsModel::connected() const {
  return (gusbcfg_ & (1u << 30)) && (gccfg_ & (1u << 16)) && !(dctl_ & 2);
}

uint32_t OtgFsModel::RxWordsQueued() const {
  uint32_t words = 0;
  for (const RxEntry& e : rx_) words += 1 + static_cast<uint32_t>((e.data.size() + 3) / 4);
  return words;
}

void OtgFsModel::PushRx(uint32_t pktsts, std::span<const uint8_t> data) {
  RxEntry e;
  e.status = (pktsts << 17) | (static_cast<uint32_t>(data.size()) << 4);
  e.data.assign(data.begin(), data.end());
  rx_.push_back(std::move(e));
  if (RxWordsQueued() > (grxfsiz_ & 0xffff)) {
    m_.Fault("OTG_FS receive FIFO overrun: " + std::to_string(RxWordsQueued()) + " words queued, GRXFSIZ " +
             std::to_string(grxfsiz_ & 0xffff) + " (the firmware did not drain it)");
  }
  idle_reads_ = 0;
}

bool OtgFsModel::InReady() const {
  if (!(diepctl0_ & kEpena)) return false;
  const uint32_t size = dieptsiz0_ & 0x7f;
  return tx_.size() >= (size + 3) / 4 * 4;
}

std::vector<uint8_t> OtgFsModel::TakeIn() {
  const uint32_t size = dieptsiz0_ & 0x7f;
  std::vector<uint8_t> packet(tx_.begin(), tx_.begin() + size);
  tx_.clear();
  diepctl0_ &= ~kEpena;
  dieptsiz0_ = 0;
  diepint0_ |= 1;  // XFRC
  idle_reads_ = 0;
  return packet;
}

bool OtgFsModel::Read(uint32_t offset, uint32_t* value) {
  if (offset >= 0x1000) {  // FIFO 0 pop
    if (popped_at_ >= popped_.size()) {
      m_.Fault("OTG_FS receive FIFO read past the packet GRXSTSP announced");
      return true;
    }
    uint32_t word = 0;
    for (unsigned i = 0; i < 4 && popped_at_ < popped_.size(); ++i) word |= uint32_t{popped_[popped_at_++]} << (8 * i);
    *value = word;
    return true;
  }
  switch (offset) {
    case 0x000: *value = gotgctl_; return true;
    case 0x008: *value = gahbcfg_; return true;
    case 0x00c: *value = gusbcfg_; return true;
    case 0x010: *value = 1u << 31; return true;  // AHBIDL; resets and flushes finish at once
    case 0x014: {
      uint32_t v = gintsts_ & ~(kGintRxflvl | (3u << 18) | 1u);
      if (!rx_.empty()) v |= kGintRxflvl;
      if (diepint0_) v |= 1u << 18;
      if (doepint0_) v |= 1u << 19;
      *value = v;
      if ((v & (kGintRxflvl | kGintUsbrst | kGintEnumdne)) == 0 && !(diepint0_ & 1)) {
        ++idle_reads_;
      } else {
        idle_reads_ = 0;
      }
      return true;
    }
    case 0x018: *value = gintmsk_; return true;
    case 0x01c:
    case 0x020: {
      if (rx_.empty()) {
        m_.Fault(std::string(offset == 0x020 ? "OTG_FS_GRXSTSP" : "OTG_FS_GRXSTSR") + " read with the receive FIFO empty");
        return true;
      }
      if (offset == 0x01c) {
        *value = rx_.front().status;
        return true;
      }
      if (popped_at_ < popped_.size()) {
        m_.Fault("OTG_FS_GRXSTSP read before the previous packet's data was read from the FIFO");
        return true;
      }
      *value = rx_.front().status;
      popped_ = std::move(rx_.front().data);
      popped_at_ = 0;
      rx_.pop_front();
      return true;
    }
    case 0x024: *value = grxfsiz_; return true;
    case 0x028: *value = dieptxf0_; return true;
    case 0x038: *value = gccfg_; return true;
    case 0x03c: *value = 0x00002000; return true;  // CID
    case 0x800: *value = dcfg_; return true;
    case 0x804: *value = dctl_; return true;
    case 0x808: *value = enumerated_ ? 3u << 1 : 0; return true;  // DSTS.ENUMSPD full speed
    case 0x810: *value = diepmsk_; return true;
    case 0x814: *value = doepmsk_; return true;
    case 0x818: *value = (diepint0_ ? 1u : 0) | (doepint0_ ? 1u << 16 : 0); return true;
    case 0x81c: *value = daintmsk_; return true;
    case 0x900: *value = diepctl0_ | (1u << 15); return true;  // USBAEP: EP0 is always active
    case 0x908: *value = diepint0_ | (tx_.empty() ? 1u << 7 : 0); return true;
    case 0x910: *value = dieptsiz0_; return true;
    case 0x918: *value = ((dieptxf0_ >> 16) & 0xffff) - static_cast<uint32_t>(tx_.size() / 4); return true;
    case 0xb00: *value = doepctl0_ | (1u << 15); return true;
    case 0xb08: *value = doepint0_; return true;
    case 0xb10: *value = doeptsiz0_; return true;
    case 0xe00: *value = pcgcctl_; return true;
    default: return false;
  }
}

bool OtgFsModel::Write(uint32_t offset, unsigned /*size*/, uint32_t value) {
  if (offset >= 0x1000) {  // FIFO 0 push
    if (!(diepctl0_ & kEpena)) {
      m_.Fault("OTG_FS FIFO 0 written without an enabled IN transfer (DIEPCTL0.EPENA)");
      return true;
    }
    const uint32_t room = (dieptsiz0_ & 0x7f) + 3;
    if (tx_.size() + 4 > room / 4 * 4 || tx_.size() / 4 + 1 > ((dieptxf0_ >> 16) & 0xffff)) {
      m_.Fault("OTG_FS transmit FIFO 0 overrun: more words than DIEPTSIZ0.XFRSIZ = " + std::to_string(dieptsiz0_ & 0x7f) + " bytes");
      return true;
    }
    for (unsigned i = 0; i < 4; ++i) tx_.push_back(static_cast<uint8_t>(value >> (8 * i)));
    return true;
  }
  switch (offset) {
    case 0x000: gotgctl_ = (gotgctl_ & 0xffff0000u) | (value & 0xffff); return true;
    case 0x008: gahbcfg_ = value; return true;
    case 0x00c: gusbcfg_ = value; return true;
    case 0x010:
      if (value & 1) {  // CSRST
        if (m_.rcc().Pll48Hz() != 48'000'000) {
          m_.Fault("OTG_FS core reset with PLL48CK at " + std::to_string(m_.rcc().Pll48Hz()) + " Hz (needs 48 MHz)");
          return true;
        }
        const uint32_t usbcfg = gusbcfg_;
        Reset();
        gusbcfg_ = usbcfg;
      }
      if (value & (1u << 5)) tx_.clear();
      if (value & (1u << 4)) {
        rx_.clear();
        popped_.clear();
        popped_at_ = 0;
      }
      return true;
    case 0x014: gintsts_ &= ~(value & (kGintUsbrst | kGintEnumdne | (1u << 3) | (1u << 11))); return true;
    case 0x018: gintmsk_ = value; return true;
    case 0x024:
    case 0x028: {
      (offset == 0x024 ? grxfsiz_ : dieptxf0_) = value;
      const uint32_t rx = grxfsiz_ & 0xffff, start = dieptxf0_ & 0xffff, depth = dieptxf0_ >> 16;
      if (offset == 0x028 && (rx < 16 || start < rx || depth < 16 || start + depth > kFifoRamWords)) {
        m_.Fault("OTG_FS FIFO layout: GRXFSIZ " + std::to_string(rx) + " words, TX0 at " + std::to_string(start) +
                 " depth " + std::to_string(depth) + ": must not overlap and fit in " + std::to_string(kFifoRamWords) +
                 " words (each at least 16)");
      }
      return true;
    }
    case 0x038: gccfg_ = value; return true;
    case 0x800: dcfg_ = value; return true;
    case 0x804:
      dctl_ = value & 0x3;  // action bits (CGINAK, SGINAK, ...) are not stored
      if (!(dctl_ & 2) && m_.rcc().Pll48Hz() != 48'000'000) {
        m_.Fault("OTG_FS connect (DCTL.SDIS = 0) with PLL48CK at " + std::to_string(m_.rcc().Pll48Hz()) + " Hz");
      }
      return true;
    case 0x810: diepmsk_ = value; return true;
    case 0x814: doepmsk_ = value; return true;
    case 0x81c: daintmsk_ = value; return true;
    case 0x900: {
      if ((value & kEpena) && (diepctl0_ & kEpena)) {
        m_.Fault("OTG_FS DIEPCTL0.EPENA set while the previous IN packet is still pending");
        return true;
      }
      if ((value & kEpena) && (dieptsiz0_ & 0x7f) > 64) {
        m_.Fault("OTG_FS EP0 IN transfer of " + std::to_string(dieptsiz0_ & 0x7f) + " bytes: one 64-byte packet per transfer is modeled");
        return true;
      }
      if ((value & kEpena) && enumerated_ && (value & 3) != 0) {
        m_.Fault("OTG_FS DIEPCTL0.MPSIZ is not 64 bytes");
        return true;
      }
      diepctl0_ = (diepctl0_ & kStall) | (value & (kEpena | kStall | 3u | (0xfu << 22)));
      if (value & kEpena) tx_.clear();
      idle_reads_ = 0;
      return true;
    }
    case 0x908: diepint0_ &= ~value; return true;
    case 0x910:
      if (diepctl0_ & kEpena) {
        m_.Fault("OTG_FS DIEPTSIZ0 written while EP0 IN is enabled");
        return true;
      }
      dieptsiz0_ = value;
      return true;
    case 0xb00:
      doepctl0_ = (doepctl0_ & (kStall | kEpena)) | (value & (kEpena | kStall | 3u));
      idle_reads_ = 0;
      return true;
    case 0xb08: doepint0_ &= ~value; return true;
    case 0xb10: doeptsiz0_ = value; return true;
    case 0xe00: pcgcctl_ = value; return true;
    default: return false;
  }
}

// --- host side ---------------------------------------------------------------------------------

bool OtgFsModel::Wait(const char* what, const std::function<bool()>& until, std::string* error) {
  if (m_.RunUntil(until)) return true;
  if (!m_.fault().empty()) {
    *error = m_.fault();
  } else if (m_.reset_requested()) {
    *error = std::string("the device reset itself while the host waited for ") + what;
  } else {
    *error = std::string("the firmware did not ") + what + " (PC " + Hex(m_.Pc()) + " " + m_.DescribePc(m_.Pc()) + ")";
  }
  return false;
}

bool OtgFsModel::Settle(std::string* error) {
  idle_reads_ = 0;
  if (m_.RunUntil([this] { return idle_reads_ >= 2 || !connected(); })) return true;
  if (m_.reset_requested()) return true;  // the device leaves: the caller sees reset_requested()
  return Wait("settle", [] { return false; }, error);
}

bool OtgFsModel::WaitConnected(unsigned max_wall_ms) {
  return m_.RunUntil([this] { return connected(); }, max_wall_ms);
}

bool OtgFsModel::BusReset(std::string* error) {
  if (!connected()) {
    *error = "bus reset: the device is not connected";
    return false;
  }
  rx_.clear();
  tx_.clear();
  diepctl0_ &= ~kEpena;
  doepctl0_ &= ~kEpena;
  gintsts_ |= kGintUsbrst | kGintEnumdne;
  enumerated_ = true;
  idle_reads_ = 0;
  return Settle(error);
}

ControlResult OtgFsModel::Control(std::span<const uint8_t, 8> setup, std::span<const uint8_t> out) {
  ControlResult r;
  if (!connected()) {
    r.error = "control transfer: the device is not connected";
    return r;
  }
  const bool in = setup[0] & 0x80;
  const uint16_t length = static_cast<uint16_t>(setup[6] | setup[7] << 8);
  // SETUP stage: always accepted; clears both STALL bits.
  diepctl0_ &= ~(kStall | kEpena);
  doepctl0_ &= ~kStall;
  tx_.clear();
  doepint0_ |= 1u << 3;  // STUP
  PushRx(kPktSetupData, setup);
  PushRx(kPktSetupDone, {});
  if (!m_.fault().empty()) {
    r.error = m_.fault();
    return r;
  }
  const auto out_ready = [this] { return (doepctl0_ & kEpena) || Stalled(); };
  const auto in_ready = [this] { return InReady() || Stalled(); };
  const auto send_out = [this](std::span<const uint8_t> packet) {
    PushRx(kPktOutData, packet);
    PushRx(kPktOutDone, {});
    doepctl0_ &= ~kEpena;
    doepint0_ |= 1;
  };
  if (!in) {
    for (size_t sent = 0; sent < length;) {
      if (!Wait("accept OUT data", out_ready, &r.error)) return r;
      if (Stalled()) break;
      const size_t n = std::min<size_t>(64, length - sent);
      send_out(out.subspan(sent, n));
      sent += n;
    }
    if (!Stalled() && !Wait("send the status stage", in_ready, &r.error)) return r;
    if (Stalled()) {
      r.stall = true;
    } else if (!TakeIn().empty()) {
      r.error = "OUT transfer: the status stage IN packet carries data";
      return r;
    }
  } else {
    while (true) {
      if (!Wait("answer the IN token", in_ready, &r.error)) return r;
      if (Stalled()) {
        r.stall = true;
        break;
      }
      const std::vector<uint8_t> packet = TakeIn();
      r.in.insert(r.in.end(), packet.begin(), packet.end());
      if (r.in.size() > length) {
        r.error = "IN reply of " + std::to_string(r.in.size()) + " bytes for wLength " + std::to_string(length);
        return r;
      }
      if (packet.size() < 64 || r.in.size() == length) break;
    }
    if (!r.stall) {  // status stage: a zero-length OUT packet
      if (!Wait("accept the OUT status stage", out_ready, &r.error)) return r;
      if (Stalled()) {
        r.stall = true;
      } else {
        send_out({});
      }
    }
  }
  if (!Settle(&r.error)) return r;
  r.ok = true;
  return r;
}

}  // namespace onedfu::sim::emu
