// Fuzz harness: random sequences of USB control requests (DFU, DfuSe
// commands, raw SETUP packets), port actions (Poll, bus reset) and flash
// faults against the DFU state machine over strict fake flash.
//
// Input: a sequence of steps; each starts with an opcode byte, followed by
// that step's arguments (see Step()). Missing bytes read as zero.
//
// Invariants (__builtin_trap on violation):
//   - the bootloader region never changes, and no Erase/Write that touches
//     it is ever issued to a flash driver;
//   - the policy layer only issues in-range, aligned, sector-bounded
//     operations (the strict fake would answer kOutOfRange/kInvalidArgument);
//   - replies never exceed wLength or the IN buffer;
//   - dfuERROR exactly when bStatus is not OK; GETSTATUS reports a valid
//     state and iString 0 or the status string index;
//   - the boot decision never starts the application while the record is
//     revoked.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "bootloader/boot.h"
#include "bootloader/dfu_device.h"
#include "runtime/board.h"
#include "runtime/boot_record.h"
#include "runtime/fake_flash.h"
#include "fuzz_check.h"

using onedfu::fuzz::FuzzCheck;

namespace {

using namespace onedfu;
using bootloader::ControlReply;
using bootloader::DfuDevice;
using bootloader::DfuState;
using bootloader::DfuStatus;
using bootloader::SetupPacket;
using runtime::Board;
using runtime::ByteSpan;
using runtime::FakeFlash;
using runtime::FlashMemory;
using runtime::Memory;
using runtime::MutableByteSpan;
using runtime::Status;
using runtime::StatusCode;

constexpr uint32_t kInternalBase = 0x08000000;
constexpr uint32_t kInternalSize = 2 * 4096 + 2 * 8192 + 16384;  // 40 KiB, mixed sectors
constexpr uint32_t kBootSize = 4096;                              // first sector
constexpr uint32_t kQspiBase = 0x90000000;
constexpr uint32_t kQspiSize = 16 * 4096;
constexpr uint32_t kRecordAddress = kQspiBase + kQspiSize - 4096;

// Forwards to a FakeFlash and traps on anything the policy must never ask.
class CheckedFlash final : public FlashMemory {
 public:
  CheckedFlash(FakeFlash& inner, uint64_t protect_start, uint64_t protect_size)
      : inner_(inner), protect_start_(protect_start), protect_size_(protect_size) {}
  const Memory& geometry() const override { return inner_.geometry(); }
  Status Erase(uint32_t address, uint32_t size) override {
    CheckNotProtected(address, size);
    return Verified(inner_.Erase(address, size));
  }
  Status Read(uint32_t address, MutableByteSpan out) override { return Verified(inner_.Read(address, out)); }
  Status Write(uint32_t address, ByteSpan data) override {
    CheckNotProtected(address, data.size());
    return Verified(inner_.Write(address, data));
  }
  ByteSpan Mapped() const override { return inner_.Mapped(); }

 private:
  void CheckNotProtected(uint64_t address, uint64_t size) const {
    FuzzCheck(!(size != 0 && address < protect_start_ + protect_size_ && protect_start_ < address + size));
  }
  static Status Verified(Status s) {
    FuzzCheck(s.code() != StatusCode::kOutOfRange && s.code() != StatusCode::kInvalidArgument &&
          s.code() != StatusCode::kInternal);
    return s;
  }
  FakeFlash& inner_;
  uint64_t protect_start_;
  uint64_t protect_size_;
};

runtime::Region MakeRegion(const char* name, uint8_t memory, uint32_t offset, uint32_t size,
                           runtime::RegionRole role) {
  runtime::Region r;
  std::strncpy(r.name, name, runtime::kMaxNameLength);
  r.memory = memory;
  r.offset = offset;
  r.size = size;
  r.role = role;
  return r;
}

Board MakeBoard() {
  Board b;
  std::strcpy(b.id, "fuzz");
  Memory& in = b.memories[0];
  std::strcpy(in.name, "internal");
  std::strcpy(in.label, "Internal Flash");
  in.base = kInternalBase;
  in.sectors[0] = {2, 4096};
  in.sectors[1] = {2, 8192};
  in.sectors[2] = {1, 16384};
  in.sector_group_count = 3;
  in.write_align = 4;
  in.mapped = true;
  Memory& q = b.memories[1];
  std::strcpy(q.name, "qspi");
  std::strcpy(q.label, "QSPI Flash");
  q.base = kQspiBase;
  q.sectors[0] = {16, 4096};
  q.sector_group_count = 1;
  q.write_align = 8;
  q.mapped = false;  // exercise the chunked read paths
  b.memory_count = 2;
  b.regions[0] = MakeRegion("bootloader", 0, 0, kBootSize, runtime::RegionRole::kBootloader);
  b.regions[1] = MakeRegion("text0", 0, kBootSize, kInternalSize - kBootSize - 16384, runtime::RegionRole::kFirmware);
  b.regions[2] = MakeRegion("filesystem", 0, kInternalSize - 16384, 16384, runtime::RegionRole::kFilesystem);
  b.regions[3] = MakeRegion("romfs", 1, 0, kQspiSize - 4096, runtime::RegionRole::kRomfs);
  b.regions[4] = MakeRegion("record", 1, kQspiSize - 4096, 4096, runtime::RegionRole::kRecord);
  b.region_count = 5;
  return b;
}

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | (U8() << 8)); }
  uint32_t U32() { return U16() | (static_cast<uint32_t>(U16()) << 16); }
  // Up to n bytes of input (fewer at the end).
  ByteSpan Bytes(size_t n) {
    const size_t take = size_ - pos_ < n ? size_ - pos_ : n;
    ByteSpan out(data_ + pos_, take);
    pos_ += take;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct World {
  Board board = MakeBoard();
  uint8_t internal_bytes[kInternalSize];
  uint8_t qspi_bytes[kQspiSize];
  uint8_t boot_image[kBootSize];
  FakeFlash internal{board.memories[0], internal_bytes};
  FakeFlash qspi{board.memories[1], qspi_bytes};
  CheckedFlash checked_internal{internal, kInternalBase, kBootSize};
  CheckedFlash checked_qspi{qspi, 0, 0};
  FlashMemory* memories[2] = {&checked_internal, &checked_qspi};
  std::optional<DfuDevice> device;

  void Reset(bool with_record) {
    internal.EraseAll();
    qspi.EraseAll();
    internal.ClearFaults();
    qspi.ClearFaults();
    internal.PowerOn();
    qspi.PowerOn();
    for (uint32_t i = 0; i < kBootSize; ++i) boot_image[i] = static_cast<uint8_t>(i * 7 + 3);
    internal.Preload(kInternalBase, ByteSpan(boot_image, kBootSize));
    if (with_record) InstallRecord();
    Reboot();
  }

  // A valid image: one segment at text0 and its record, so revocation runs.
  void InstallRecord() {
    uint8_t firmware[1024];
    for (uint32_t i = 0; i < sizeof firmware; ++i) firmware[i] = static_cast<uint8_t>(i ^ 0x5a);
    internal.Preload(kInternalBase + kBootSize, ByteSpan(firmware, sizeof firmware));
    runtime::BootRecord r;
    (void)runtime::SetBootText(r.board_id, "fuzz");
    (void)runtime::SetBootText(r.package_version, "1");
    r.segment_count = 1;
    r.segments[0].address = kInternalBase + kBootSize;
    r.segments[0].length = sizeof firmware;
    r.segments[0].sha256 = runtime::Sha256Digest(ByteSpan(firmware, sizeof firmware));
    static uint8_t record[runtime::kRecordSize];
    if (runtime::EncodeBootRecord(r, record).ok()) qspi.Preload(kRecordAddress, record);
  }

  void Reboot() {
    internal.PowerOn();
    qspi.PowerOn();
    device.reset();
    device.emplace(board, memories);
    runtime::Diag diag;
    FuzzCheck(device->Init(&diag).ok());
  }

  void CheckInvariants() {
    FuzzCheck(std::memcmp(internal_bytes, boot_image, kBootSize) == 0);
    const bool error = device->state() == DfuState::kError;
    FuzzCheck(error == (device->status() != DfuStatus::kOk));
  }
};

World& TheWorld() {
  static World world;
  return world;
}

uint32_t PickAddress(Input& in) {
  const uint8_t kind = in.U8();
  switch (kind % 6) {
    case 0: return kInternalBase + in.U16() % kInternalSize;
    case 1: return kQspiBase + (in.U16() * 4u) % kQspiSize;
    case 2: return kInternalBase + in.U16() % (2 * kBootSize);  // around the bootloader
    case 3: return kRecordAddress + in.U16() % 4096;
    case 4: return kQspiBase + kQspiSize - 64 + in.U8() % 128;  // around the end
    default: return in.U32();
  }
}

ControlReply Send(World& w, const SetupPacket& setup, ByteSpan out) {
  uint8_t in_buffer[4096];
  const size_t room = setup.IsIn() ? (setup.wLength < sizeof in_buffer ? setup.wLength : sizeof in_buffer) : 0;
  ControlReply r = w.device->HandleControl(setup, out, MutableByteSpan(in_buffer, room));
  FuzzCheck(!r.stall || r.length == 0);
  FuzzCheck(r.length <= setup.wLength && r.length <= room);
  if (setup.IsIn() && !r.stall && setup.Type() == 1 && setup.bRequest == 3 && r.length == 6) {
    FuzzCheck(in_buffer[4] <= 10);
    FuzzCheck(in_buffer[5] == 0 || in_buffer[5] == bootloader::kStringStatus);
    FuzzCheck((in_buffer[0] == 0) == (in_buffer[5] == 0));
  }
  return r;
}

void Dnload(World& w, uint16_t block, ByteSpan data) {
  SetupPacket s{0x21, 1, block, 0, static_cast<uint16_t>(data.size())};
  Send(w, s, data);
}

void Step(World& w, Input& in) {
  const uint8_t op = in.U8();
  switch (op % 14) {
    case 0: {  // set address
      const uint32_t a = PickAddress(in);
      const uint8_t cmd[5] = {0x21, uint8_t(a), uint8_t(a >> 8), uint8_t(a >> 16), uint8_t(a >> 24)};
      Dnload(w, 0, ByteSpan(cmd, 5));
      break;
    }
    case 1: {  // page erase
      const uint32_t a = PickAddress(in);
      const uint8_t cmd[5] = {0x41, uint8_t(a), uint8_t(a >> 8), uint8_t(a >> 16), uint8_t(a >> 24)};
      Dnload(w, 0, ByteSpan(cmd, 5));
      break;
    }
    case 2: {  // mass erase / read unprotect / arbitrary short command
      const uint8_t which = in.U8();
      uint8_t cmd[6] = {static_cast<uint8_t>(which & 1 ? 0x41 : 0x92), in.U8(), in.U8(), in.U8(), in.U8(), in.U8()};
      if (which & 2) cmd[0] = in.U8();
      Dnload(w, 0, ByteSpan(cmd, 1 + (which >> 2) % 6));
      break;
    }
    case 3: {  // data block
      const uint8_t b = in.U8();
      const uint16_t block = b < 240 ? static_cast<uint16_t>(2 + b % 24) : in.U16();
      const uint16_t length = in.U16() % 2100;
      uint8_t data[2100];
      ByteSpan src = in.Bytes(length < 32 ? length : 32);
      for (uint16_t i = 0; i < length; ++i) {
        data[i] = src.empty() ? static_cast<uint8_t>(i) : src[i % src.size()];
      }
      Dnload(w, block, ByteSpan(data, length));
      break;
    }
    case 4:
    case 5: {  // GETSTATUS (most common host request)
      SetupPacket s{0xa1, 3, 0, 0, 6};
      Send(w, s, {});
      break;
    }
    case 6: {  // UPLOAD
      const uint8_t b = in.U8();
      SetupPacket s{0xa1, 2, static_cast<uint16_t>(b % 8), 0, static_cast<uint16_t>(in.U16() % 2200)};
      Send(w, s, {});
      break;
    }
    case 7: {  // CLRSTATUS, ABORT, GETSTATE, DETACH
      static constexpr uint8_t kRequests[] = {4, 6, 5, 0};
      const uint8_t r = kRequests[in.U8() % 4];
      SetupPacket s{static_cast<uint8_t>(r == 5 ? 0xa1 : 0x21), r, 0, 0, static_cast<uint16_t>(r == 5 ? 1 : 0)};
      Send(w, s, {});
      break;
    }
    case 8: {  // raw SETUP + OUT data
      SetupPacket s;
      s.bmRequestType = in.U8();
      s.bRequest = in.U8();
      s.wValue = in.U16();
      s.wIndex = in.U16();
      s.wLength = in.U16() % 2200;
      if (s.IsIn()) {
        Send(w, s, {});
      } else {
        uint8_t data[2200] = {};
        Send(w, s, ByteSpan(data, in.U8() & 1 ? s.wLength : s.wLength / 2));
      }
      break;
    }
    case 9:
      w.device->Poll();
      break;
    case 10:
      if (w.device->BusReset()) w.Reboot();
      break;
    case 11: {  // flash faults
      const uint8_t f = in.U8();
      FakeFlash& flash = f & 1 ? w.qspi : w.internal;
      if (f & 2) {
        flash.FailAfter(in.U8() % 8);
      } else {
        flash.CutPowerAfter(in.U8() % 8, (f & 4) != 0);
      }
      break;
    }
    case 12: {  // power back on / reboot after a reset request
      w.internal.PowerOn();
      w.qspi.PowerOn();
      if (w.device->reset_requested()) w.Reboot();
      break;
    }
    default: {  // boot decision: read-only, never starts a revoked image
      const bool power = w.internal.powered() && w.qspi.powered();
      auto d = bootloader::Decide(w.board, w.memories, false);
      if (power && d.start_application) {
        uint8_t record[runtime::kRecordSize];
        FuzzCheck(w.qspi.Read(kRecordAddress, record).ok());
        FuzzCheck(!runtime::IsRevoked(record));
      }
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  Input in(data, size);
  w.Reset(size > 0 && (data[0] & 1));
  in.U8();
  for (int steps = 0; steps < 512 && !in.empty(); ++steps) {
    Step(w, in);
    w.CheckInvariants();
  }
  return 0;
}
