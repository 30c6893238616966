#include "bootloader/guarded_flash.h"

#include <cstring>

#include "runtime/flash_timing.h"
#include "runtime/sha256.h"

namespace onedfu::bootloader {

using runtime::Board;
using runtime::ByteSpan;
using runtime::Diag;
using runtime::FlashMemory;
using runtime::Memory;
using runtime::MutableByteSpan;
using runtime::Region;
using runtime::RegionRole;
using runtime::Status;
using runtime::StatusCode;

namespace {

// Out of line on purpose: inlined at its five call sites it costs 64 more bytes
// of Cortex-M7 text (scripts/size).
[[gnu::noinline]] bool Overlaps(uint64_t a, uint64_t a_size, uint64_t b, uint64_t b_size) {
  return a_size != 0 && b_size != 0 && a < b + b_size && b < a + a_size;
}

bool AllEqual(const uint8_t* p, size_t n, uint8_t value) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != value) return false;
  }
  return true;
}

constexpr size_t kVerifyChunk = 256;  // bytes of stack used for read-back

}  // namespace

GuardedFlash::GuardedFlash(const Board& board, std::span<FlashMemory* const> memories)
    : board_(board), memories_(memories) {
  if (const Region* r = board_.FindRole(RegionRole::kRecord); r != nullptr && r->memory < board_.memory_count) {
    have_record_region_ = true;
    record_address_ = board_.RegionStart(*r);
    record_memory_ = r->memory;
  }
}

Status GuardedFlash::Check(Diag* diag) const {
  runtime::DiagClear(diag);
  if (board_.memory_count == 0 || board_.memory_count > runtime::kMaxMemories ||
      memories_.size() < board_.memory_count) {
    if (diag) diag->Str("need one flash driver per board memory (").Dec(board_.memory_count).Str(")");
    return Status(StatusCode::kInvalidArgument, "flash drivers do not match the board");
  }
  for (uint8_t i = 0; i < board_.memory_count; ++i) {
    const Memory& want = board_.memories[i];
    const FlashMemory* flash = memories_[i];
    if (flash == nullptr || flash->geometry().base != want.base || flash->geometry().size() != want.size()) {
      if (diag) diag->Str("memory ").Str(want.name).Str(": flash driver does not match its base and size");
      return Status(StatusCode::kInvalidArgument, "flash drivers do not match the board");
    }
    const uint32_t align = flash->geometry().write_align;
    if (align == 0 || align > kMaxWriteAlign || (align & (align - 1)) != 0) {
      if (diag) diag->Str("memory ").Str(want.name).Str(": unsupported write unit of ").Dec(align).Str(" bytes");
      return Status(StatusCode::kInvalidArgument, "flash write unit not supported");
    }
  }
  // The revoke programs 0xff to kRevokedByte without an erase: one write unit
  // at most, on flash that erases to 0xff.
  if (have_record_region_ && (memories_[record_memory_]->geometry().write_align > runtime::kRevokeSize ||
                              memories_[record_memory_]->geometry().erased_value != 0xff)) {
    if (diag) diag->Str("record memory: write unit over 32 bytes or erased value not 0xff");
    return Status(StatusCode::kInvalidArgument, "record memory cannot revoke");
  }
  return Status::Ok();
}

int GuardedFlash::MemoryIndex(uint32_t address) const {
  for (uint8_t i = 0; i < board_.memory_count && i < memories_.size(); ++i) {
    if (board_.memories[i].Contains(address) && memories_[i] != nullptr) return i;
  }
  return -1;
}

const Region* GuardedFlash::TouchesRole(RegionRole role, uint64_t start, uint64_t size) const {
  for (uint8_t i = 0; i < board_.region_count && i < runtime::kMaxRegions; ++i) {
    const Region& r = board_.regions[i];
    if (r.role != role || r.memory >= board_.memory_count) continue;
    if (Overlaps(start, size, board_.RegionStart(r), r.size)) return &r;
  }
  return nullptr;
}

void GuardedFlash::LoadRecord() {
  record_loaded_ = true;
  record_live_ = false;
  if (!have_record_region_) return;
  FlashMemory* flash = memories_[record_memory_];
  ByteSpan bytes;
  const ByteSpan mapped = flash->Mapped();
  const uint64_t offset = record_address_ - flash->geometry().base;
  runtime::Status read = runtime::Status::Ok();
  if (mapped.size() >= offset + runtime::kRecordSize) {
    bytes = mapped.subspan(offset, runtime::kRecordSize);
  } else if ((read = flash->Read(record_address_, record_buffer_)).ok()) {
    bytes = record_buffer_;
  } else if (read.code() == runtime::StatusCode::kDataLoss) {
    // Unreadable data (an ECC fault, e.g. a torn erase): the boot decision can never accept
    // it, so there is nothing to protect, and a revoke write onto it would fail forever.
    return;
  } else {
    // Unreadable: treat the record bytes as live, so a change to them tries
    // to revoke first (and fails with errWRITE while the memory is down).
    record_live_ = true;
    record_ = runtime::BootRecord{};
    return;
  }
  auto decoded = runtime::DecodeBootRecord(bytes, nullptr);
  if (!decoded.ok()) return;  // none, damaged or revoked: nothing to protect
  record_ = decoded.value();
  record_live_ = true;
}

void GuardedFlash::NoteChange(uint64_t start, uint64_t size) {
  if (have_record_region_ && Overlaps(start, size, record_address_, runtime::kRecordSize)) {
    record_loaded_ = false;
  }
}

DfuStatus GuardedFlash::RevokeIfCovered(uint64_t start, uint64_t size) {
  if (!have_record_region_) return DfuStatus::kOk;
  if (!record_loaded_) LoadRecord();
  if (!record_live_) return DfuStatus::kOk;
  bool covered = Overlaps(start, size, record_address_, runtime::kRecordSize);
  for (uint32_t i = 0; i < record_.segment_count && !covered; ++i) {
    covered = Overlaps(start, size, record_.segments[i].address, record_.segments[i].length);
  }
  if (!covered) covered = Overlaps(start, size, record_.romfs.address, record_.romfs.size);
  if (!covered) return DfuStatus::kOk;

  uint8_t revoke[runtime::kRevokeSize];
  std::memset(revoke, runtime::kRevokedByte, sizeof revoke);
  const Status s = memories_[record_memory_]->Write(record_address_ + runtime::kRevokeOffset, revoke);
  if (!s.ok()) {
    message_.Clear();
    message_.Str("could not revoke the boot record at ").Hex(record_address_).Str(": ").Str(s.message());
    // The record may be partly revoked now; re-read it before the next change.
    record_loaded_ = false;
    return DfuStatus::kErrWrite;
  }
  ++revocations_;
  record_live_ = false;
  return DfuStatus::kOk;
}

DfuStatus GuardedFlash::Failed(DfuStatus status, const char* operation, uint64_t length, uint64_t address,
                               const Status& cause) {
  message_.Clear();
  message_.Str(operation).Str(" of ").Dec(length).Str(" bytes at ").Hex(address).Str(" failed: ").Str(cause.message());
  return status;
}

DfuStatus GuardedFlash::ReadOnly(uint64_t address) {
  message_.Clear();
  message_.Str("address ").Hex(address).Str(" is read-only (bootloader, reserved or in no region)");
  return DfuStatus::kErrAddress;
}

DfuStatus GuardedFlash::CheckAddress(uint32_t address) {
  if (MemoryIndex(address) >= 0) return DfuStatus::kOk;
  message_.Clear();
  message_.Str("address ").Hex(address).Str(" is outside every memory");
  return DfuStatus::kErrAddress;
}

DfuStatus GuardedFlash::EraseRange(int memory, uint32_t start, uint32_t size) {
  if (DfuStatus st = RevokeIfCovered(start, size); st != DfuStatus::kOk) return st;
  NoteChange(start, size);
  const Status s = memories_[memory]->Erase(start, size);
  if (!s.ok()) return Failed(DfuStatus::kErrErase, "erase", size, start, s);
  return DfuStatus::kOk;
}

DfuStatus GuardedFlash::ErasePageContaining(uint32_t address) {
  const int m = MemoryIndex(address);
  if (m < 0) return CheckAddress(address);
  auto sector = runtime::SectorContaining(board_.memories[m], address);
  if (!sector.ok()) return CheckAddress(address);
  if (board_.FirstReadOnly(sector->start, sector->size) != uint64_t{sector->start} + sector->size) {
    return ReadOnly(address);
  }
  return EraseRange(m, sector->start, sector->size);
}

bool GuardedFlash::MassEraseRun(uint8_t m, uint64_t from, uint64_t* start, uint64_t* size) const {
  const Memory& memory = board_.memories[m];
  *size = 0;
  while (from < memory.end()) {
    auto sector = runtime::SectorContaining(memory, static_cast<uint32_t>(from));
    if (!sector.ok()) break;
    const uint64_t end = uint64_t{sector->start} + sector->size;
    const bool keep = board_.FirstReadOnly(sector->start, sector->size) != end ||
                      TouchesRole(RegionRole::kFilesystem, sector->start, sector->size) ||
                      TouchesRole(RegionRole::kProvision, sector->start, sector->size);
    if (keep && *size != 0) break;
    if (!keep) {
      if (*size == 0) *start = sector->start;
      *size += sector->size;
    }
    from = end;
  }
  return *size != 0;
}

DfuStatus GuardedFlash::MassErase() {
  for (uint8_t m = 0; m < board_.memory_count && m < memories_.size(); ++m) {
    uint64_t start = 0;
    uint64_t size = 0;
    for (uint64_t at = board_.memories[m].base; MassEraseRun(m, at, &start, &size); at = start + size) {
      const DfuStatus st = EraseRange(m, static_cast<uint32_t>(start), static_cast<uint32_t>(size));
      if (st != DfuStatus::kOk) return st;
    }
  }
  return DfuStatus::kOk;
}

DfuStatus GuardedFlash::Write(uint32_t address, ByteSpan data) {
  if (data.empty()) return DfuStatus::kOk;
  const int m = MemoryIndex(address);
  if (m < 0) return CheckAddress(address);
  const Memory& memory = board_.memories[m];
  FlashMemory* flash = memories_[m];
  const uint64_t end = static_cast<uint64_t>(address) + data.size();
  if (end > memory.end()) {
    message_.Clear();
    message_.Str("write of ").Dec(data.size()).Str(" bytes at ").Hex(address).Str(" runs past the end of ")
        .Str(memory.name).Str(" at ").Hex(memory.end());
    return DfuStatus::kErrAddress;
  }
  if (const uint64_t first = board_.FirstReadOnly(address, data.size()); first != end) return ReadOnly(first);
  // Check() (DfuDevice::Init) made sure it is a power of two in 1..kMaxWriteAlign.
  const uint32_t align = flash->geometry().write_align;
  if ((address - memory.base) % align != 0) {
    message_.Clear();
    message_.Str("address ").Hex(address).Str(" is not aligned to the ").Dec(align).Str("-byte write unit");
    return DfuStatus::kErrAddress;
  }
  const uint32_t padded = static_cast<uint32_t>((data.size() + align - 1) / align * align);
  if (DfuStatus st = RevokeIfCovered(address, padded); st != DfuStatus::kOk) return st;
  NoteChange(address, padded);

  const uint8_t erased = memory.erased_value;
  const size_t whole = data.size() / align * align;
  // Program runs of whole units that are not entirely erased value. On ECC flash a programmed
  // unit (even one of erased value) cannot be programmed again, so erased units are always
  // skipped. Without ECC, an erased gap that lies inside one program unit (a QSPI page) is
  // programmed with the runs around it: the erased value changes no bit, and two calls would
  // each pay that program unit's time (runtime/flash_timing.h).
  const uint32_t page = memory.ecc || memory.program_bytes <= align ? 0 : memory.program_bytes;
  const uint32_t offset = address - memory.base;
  size_t pos = 0;
  while (pos < whole) {
    while (pos < whole && AllEqual(data.data() + pos, align, erased)) pos += align;
    size_t run_end = pos;
    while (run_end < whole) {
      if (!AllEqual(data.data() + run_end, align, erased)) {
        run_end += align;
        continue;
      }
      size_t gap_end = run_end;
      while (gap_end < whole && AllEqual(data.data() + gap_end, align, erased)) gap_end += align;
      if (page == 0 || gap_end == whole ||
          (offset + static_cast<uint32_t>(run_end) - 1) / page != (offset + static_cast<uint32_t>(gap_end)) / page) {
        break;
      }
      run_end = gap_end;
    }
    if (run_end > pos) {
      const Status s = flash->Write(address + static_cast<uint32_t>(pos), data.subspan(pos, run_end - pos));
      if (!s.ok()) return Failed(DfuStatus::kErrWrite, "write", run_end - pos, address + pos, s);
    }
    pos = run_end;
  }
  // A short tail, padded with the erased value.
  if (whole < data.size()) {
    uint8_t tail[kMaxWriteAlign];
    std::memset(tail, erased, align);
    std::memcpy(tail, data.data() + whole, data.size() - whole);
    if (!AllEqual(tail, align, erased)) {
      const Status s = flash->Write(address + static_cast<uint32_t>(whole), ByteSpan(tail, align));
      if (!s.ok()) return Failed(DfuStatus::kErrWrite, "write", align, address + whole, s);
    }
  }
  // Read back and compare everything, skipped units included.
  uint8_t chunk[kVerifyChunk];
  for (size_t done = 0; done < data.size();) {
    const size_t n = data.size() - done < kVerifyChunk ? data.size() - done : kVerifyChunk;
    const Status s = flash->Read(address + static_cast<uint32_t>(done), MutableByteSpan(chunk, n));
    if (!s.ok()) return Failed(DfuStatus::kErrVerify, "read-back", n, address + done, s);
    for (size_t i = 0; i < n; ++i) {
      if (chunk[i] != data[done + i]) {
        message_.Clear();
        message_.Str("verify failed at ").Hex(address + done + i).Str(": flash holds ").Hex(chunk[i], 2)
            .Str(", expected ").Hex(data[done + i], 2);
        return DfuStatus::kErrVerify;
      }
    }
    done += n;
  }
  return DfuStatus::kOk;
}

DfuStatus GuardedFlash::Read(uint32_t address, MutableByteSpan out, size_t* length) {
  *length = 0;
  const int m = MemoryIndex(address);
  if (out.empty() || m < 0) return DfuStatus::kOk;
  const uint64_t left = board_.memories[m].end() - address;
  const size_t n = out.size() < left ? out.size() : static_cast<size_t>(left);
  const Status s = memories_[m]->Read(address, out.first(n));
  if (!s.ok()) return Failed(DfuStatus::kErrTarget, "read", n, address, s);
  *length = n;
  return DfuStatus::kOk;
}

DfuStatus GuardedFlash::Hash(uint32_t address, uint32_t length, uint8_t* out) {
  const int m = MemoryIndex(address);
  DfuStatus st = DfuStatus::kErrAddress;
  Status s(StatusCode::kOutOfRange, "range not in one memory or over 64 KiB");
  if (m >= 0 && length <= kDfuseHashMaxLength && length <= board_.memories[m].end() - address) {
    runtime::Sha256 sha;
    s = runtime::Sha256UpdateFlash(sha, *memories_[m], address, length);
    if (s.ok()) {
      sha.Final(out);
      return DfuStatus::kOk;
    }
    st = DfuStatus::kErrTarget;  // the read failed
  }
  return Failed(st, "hash", length, address, s);
}

uint64_t GuardedFlash::EraseEstimateUs(uint32_t address) const {
  const int m = MemoryIndex(address);
  if (m < 0) return 0;
  auto sector = runtime::SectorContaining(board_.memories[m], address);
  if (!sector.ok()) return 0;
  return runtime::EraseTimeUs(board_.memories[m], sector->start, sector->size);
}

uint64_t GuardedFlash::MassEraseEstimateUs() const {
  uint64_t total = 0;
  for (uint8_t m = 0; m < board_.memory_count; ++m) {
    uint64_t start = 0;
    uint64_t size = 0;
    for (uint64_t at = board_.memories[m].base; MassEraseRun(m, at, &start, &size); at = start + size) {
      total += runtime::EraseTimeUs(board_.memories[m], static_cast<uint32_t>(start), static_cast<uint32_t>(size));
    }
  }
  return total;
}

uint64_t GuardedFlash::WriteEstimateUs(uint32_t address, size_t length) const {
  const int m = MemoryIndex(address);
  if (m < 0 || length > board_.memories[m].end() - address) return 0;
  // The Write calls Write() makes for data with no all-erased unit: the
  // whole units in one call, then a short tail padded to one unit.
  const Memory& memory = board_.memories[m];
  const uint32_t align = memories_[m]->geometry().write_align;
  const uint32_t n = static_cast<uint32_t>(length);
  const uint32_t whole = align == 0 ? n : n / align * align;
  uint64_t us = runtime::ProgramTimeUs(memory, address, whole);
  if (whole < n) us += runtime::ProgramTimeUs(memory, address + whole, align);
  return us;
}

}  // namespace onedfu::bootloader
