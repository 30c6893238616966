// Test rig for the bootloader core: the shipped PYBD-SF6 board (generated
// from manifests/boards/pybd-sf6.json) over two strict FakeFlash memories, a
// DfuDevice on top, and host-side helpers that speak DFU the way dfu-util does.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bootloader/dfu_device.h"
#include "generated_boards.h"
#include "runtime/board.h"
#include "runtime/boot_record.h"
#include "runtime/fake_flash.h"
#include "runtime/sha256.h"

namespace onedfu::test {

using bootloader::ControlReply;
using bootloader::DfuDevice;
using bootloader::DfuRequest;
using bootloader::DfuState;
using bootloader::DfuStatus;
using bootloader::SetupPacket;
using runtime::Board;
using runtime::FakeFlash;
using runtime::FlashMemory;
using runtime::Memory;
using runtime::Region;
using runtime::RegionRole;

// The shipped board (manifests/boards/pybd-sf6.json), generated into a
// constant at build time; the addresses below come from it.
inline constexpr const Board& kPybd = boards::kPybdSf6;
inline Board PybdBoard() { return kPybd; }

// kPybd's region `name`; an unknown name does not compile.
consteval const Region& PybdRegion(std::string_view name) {
  for (uint8_t i = 0; i < kPybd.region_count; ++i) {
    if (name == kPybd.regions[i].name) return kPybd.regions[i];
  }
  throw "kPybd has no such region";
}
// Absolute start of kPybd's region `name`.
consteval uint32_t RegionAddress(std::string_view name) {
  return kPybd.memories[PybdRegion(name).memory].base + PybdRegion(name).offset;
}
consteval uint32_t MemorySize(const Memory& m) {
  uint32_t size = 0;
  for (uint8_t g = 0; g < m.sector_group_count; ++g) size += m.sectors[g].count * m.sectors[g].size;
  return size;
}

inline constexpr uint32_t kInternalBase = kPybd.memories[0].base;
inline constexpr uint32_t kInternalSize = MemorySize(kPybd.memories[0]);
inline constexpr uint32_t kQspiBase = kPybd.memories[1].base;
inline constexpr uint32_t kQspiSize = MemorySize(kPybd.memories[1]);
inline constexpr uint32_t kBootloaderEnd = RegionAddress("bootloader") + PybdRegion("bootloader").size;
inline constexpr uint32_t kText0 = RegionAddress("text0");
inline constexpr uint32_t kFilesystem = RegionAddress("filesystem");
inline constexpr uint32_t kText1 = RegionAddress("text1");
inline constexpr uint32_t kRomfs = RegionAddress("romfs");
inline constexpr uint32_t kRecord = RegionAddress("record");
static_assert(RegionAddress("bootloader") == kInternalBase && kBootloaderEnd == kInternalBase + 0x8000,
              "the tests expect a 32 KiB bootloader at the start of internal flash");

inline Region MakeRegion(const char* name, uint8_t memory, uint32_t offset, uint32_t size, RegionRole role) {
  Region r;
  std::strncpy(r.name, name, runtime::kMaxNameLength);
  r.memory = memory;
  r.offset = offset;
  r.size = size;
  r.role = role;
  return r;
}

inline std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v[i] = static_cast<uint8_t>(x);
  }
  return v;
}

struct Status6 {
  bool stalled = false;
  DfuStatus status = DfuStatus::kOk;
  uint32_t poll_ms = 0;
  DfuState state = DfuState::kDfuIdle;
  uint8_t istring = 0;
  bool reset_after_status = false;
};

// A board whose flash starts as: bootloader region filled with a pattern,
// everything else erased. `bootloader_image` keeps the expected bytes.
struct Rig {
  explicit Rig(const bootloader::DfuOptions& options = bootloader::DfuOptions{}, Board b = PybdBoard())
      : board(b),
        internal_bytes(board.memories[0].size()),
        qspi_bytes(board.memories[1].size()),
        internal(board.memories[0], internal_bytes),
        qspi(board.memories[1], qspi_bytes),
        memories{&internal, &qspi},
        options_(options) {
    internal.EraseAll();
    qspi.EraseAll();
    bootloader_image = Pattern(kBootloaderEnd - kInternalBase, 7);
    internal.Preload(kInternalBase, bootloader_image);
    Reboot();
  }

  // A fresh DfuDevice on the same flash, as after a reset; flash power back on.
  void Reboot() {
    internal.PowerOn();
    qspi.PowerOn();
    device_.reset();
    device_.emplace(board, memories, bootloader::DeviceStrings{}, options_);
    runtime::Diag diag;
    init_ok = device_->Init(&diag).ok();
  }
  DfuDevice& dev() { return *device_; }

  bool BootloaderIntact() const {
    return std::memcmp(internal_bytes.data(), bootloader_image.data(), bootloader_image.size()) == 0;
  }

  // Bytes at an absolute address, straight from the fake's storage.
  std::vector<uint8_t> Peek(uint32_t address, size_t n) const {
    const bool in_internal = address >= kInternalBase && address < kInternalBase + kInternalSize;
    const std::vector<uint8_t>& mem = in_internal ? internal_bytes : qspi_bytes;
    const uint32_t base = in_internal ? kInternalBase : kQspiBase;
    return std::vector<uint8_t>(mem.begin() + (address - base), mem.begin() + (address - base) + n);
  }

  ControlReply Out(uint8_t request, uint16_t value, const std::vector<uint8_t>& data) {
    SetupPacket s;
    s.bmRequestType = 0x21;
    s.bRequest = request;
    s.wValue = value;
    s.wIndex = 0;
    s.wLength = static_cast<uint16_t>(data.size());
    return dev().HandleControl(s, data, {});
  }
  ControlReply Out(DfuRequest request, uint16_t value, const std::vector<uint8_t>& data = {}) {
    return Out(static_cast<uint8_t>(request), value, data);
  }

  ControlReply In(uint8_t request_type, uint8_t request, uint16_t value, uint16_t index, uint16_t length,
                  std::vector<uint8_t>* out) {
    SetupPacket s;
    s.bmRequestType = request_type;
    s.bRequest = request;
    s.wValue = value;
    s.wIndex = index;
    s.wLength = length;
    out->assign(length, 0xee);
    ControlReply r = dev().HandleControl(s, {}, *out);
    out->resize(r.stall ? 0 : r.length);
    return r;
  }
  ControlReply In(DfuRequest request, uint16_t value, uint16_t length, std::vector<uint8_t>* out) {
    return In(0xa1, static_cast<uint8_t>(request), value, 0, length, out);
  }

  Status6 GetStatus() {
    std::vector<uint8_t> b;
    ControlReply r = In(DfuRequest::kGetStatus, 0, 6, &b);
    Status6 st;
    st.stalled = r.stall;
    if (r.stall || b.size() != 6) return st;
    st.status = static_cast<DfuStatus>(b[0]);
    st.poll_ms = b[1] | (b[2] << 8) | (b[3] << 16);
    st.state = static_cast<DfuState>(b[4]);
    st.istring = b[5];
    st.reset_after_status = r.reset_after_status;
    return st;
  }

  DfuState GetState() {
    std::vector<uint8_t> b;
    ControlReply r = In(DfuRequest::kGetState, 0, 1, &b);
    return r.stall || b.size() != 1 ? static_cast<DfuState>(0xff) : static_cast<DfuState>(b[0]);
  }

  // The status string (descriptor index 5) as ASCII.
  std::string StatusString() {
    std::vector<uint8_t> b;
    ControlReply r = In(0x80, 6, (3 << 8) | 5, 0x0409, 255, &b);
    std::string s;
    if (r.stall) return "<stall>";
    for (size_t i = 2; i + 1 < b.size(); i += 2) s.push_back(static_cast<char>(b[i]));
    return s;
  }

  // dfu-util's dfuse_special_command: DNLOAD block 0, then GETSTATUS while
  // dfuDNBUSY. Returns the final status; `first` receives the first reply.
  Status6 Command(const std::vector<uint8_t>& bytes, Status6* first = nullptr) {
    ControlReply r = Out(DfuRequest::kDnload, 0, bytes);
    Status6 st;
    if (r.stall) {
      st.stalled = true;
      return st;
    }
    st = GetStatus();
    if (first) *first = st;
    for (int i = 0; i < 100 && !st.stalled && st.state == DfuState::kDnbusy; ++i) st = GetStatus();
    return st;
  }
  static std::vector<uint8_t> Cmd(uint8_t op, uint32_t address) {
    return {op, static_cast<uint8_t>(address), static_cast<uint8_t>(address >> 8),
            static_cast<uint8_t>(address >> 16), static_cast<uint8_t>(address >> 24)};
  }
  Status6 SetAddress(uint32_t a) { return Command(Cmd(0x21, a)); }
  Status6 ErasePage(uint32_t a) { return Command(Cmd(0x41, a)); }

  // dfu-util's dfuse_dnload_chunk: DNLOAD block `block`, GETSTATUS until idle/error.
  Status6 Chunk(uint16_t block, const std::vector<uint8_t>& data) {
    ControlReply r = Out(DfuRequest::kDnload, block, data);
    Status6 st;
    if (r.stall) {
      st.stalled = true;
      return st;
    }
    do {
      st = GetStatus();
    } while (!st.stalled && st.state != DfuState::kDnloadIdle && st.state != DfuState::kError &&
             st.state != DfuState::kManifest);
    return st;
  }

  // dfu-util's dfu_abort_to_idle.
  Status6 AbortToIdle() {
    Out(DfuRequest::kAbort, 0);
    return GetStatus();
  }

  Board board;
  std::vector<uint8_t> internal_bytes;
  std::vector<uint8_t> qspi_bytes;
  FakeFlash internal;
  FakeFlash qspi;
  FlashMemory* memories[2];
  bootloader::DfuOptions options_;
  std::optional<DfuDevice> device_;
  std::vector<uint8_t> bootloader_image;
  bool init_ok = false;
};

struct Element {
  uint32_t address;
  std::vector<uint8_t> data;
};

// dfu-util 0.11 dfuse_dnload_element for one element: erase pass over every
// 2048-byte chunk (page of each chunk address, stepping by page size, plus the
// page of the chunk's last byte; consecutive repeats skipped), then write pass
// (set address + block 2 per chunk). `page_size` is what the layout string
// says for the element's memory. Returns false on the first failure.
inline bool DfuUtilElement(Rig& rig, const Element& e, uint32_t page_size, uint32_t* last_erased_page) {
  const uint32_t xfer = bootloader::kTransferSize;
  const uint32_t size = static_cast<uint32_t>(e.data.size());
  for (uint32_t p = 0; p < size; p += xfer) {
    const uint32_t address = e.address + p;
    const uint32_t chunk = p + xfer > size ? size - p : xfer;
    for (uint32_t erase = address; erase < address + chunk; erase += page_size) {
      if ((erase & ~(page_size - 1)) != *last_erased_page) {
        *last_erased_page = erase & ~(page_size - 1);
        if (rig.ErasePage(erase).status != DfuStatus::kOk) return false;
      }
    }
    if (((address + chunk - 1) & ~(page_size - 1)) != *last_erased_page) {
      *last_erased_page = (address + chunk - 1) & ~(page_size - 1);
      if (rig.ErasePage(address + chunk - 1).status != DfuStatus::kOk) return false;
    }
  }
  for (uint32_t p = 0; p < size; p += xfer) {
    const uint32_t chunk = p + xfer > size ? size - p : xfer;
    Status6 st = rig.SetAddress(e.address + p);
    if (st.stalled || st.status != DfuStatus::kOk || st.state != DfuState::kDnloadIdle) return false;
    std::vector<uint8_t> data(e.data.begin() + p, e.data.begin() + p + chunk);
    st = rig.Chunk(2, data);
    if (st.stalled || st.status != DfuStatus::kOk) return false;
  }
  return true;
}

// A boot record for `segments` (content taken from the given bytes), plus
// manifest; returns the record element bytes (record + manifest).
inline std::vector<uint8_t> MakeRecordElement(const std::vector<Element>& segments, const char* version,
                                              const std::string& manifest, const char* board_id = "pybd-sf6") {
  runtime::BootRecord r;
  (void)runtime::SetBootText(r.board_id, board_id);
  (void)runtime::SetBootText(r.package_version, version);
  r.segment_count = static_cast<uint32_t>(segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    r.segments[i].address = segments[i].address;
    r.segments[i].length = static_cast<uint32_t>(segments[i].data.size());
    r.segments[i].sha256 = runtime::Sha256Digest(segments[i].data);
  }
  std::vector<uint8_t> m(manifest.begin(), manifest.end());
  r.manifest_length = static_cast<uint32_t>(m.size());
  r.manifest_sha256 = runtime::Sha256Digest(m);
  std::vector<uint8_t> out(runtime::kRecordSize);
  (void)runtime::EncodeBootRecord(r, out);
  out.insert(out.end(), m.begin(), m.end());
  while (out.size() % 4 != 0) out.push_back(0xff);
  return out;
}

}  // namespace onedfu::test
