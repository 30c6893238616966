// FileFlash: the simulated board's persistent flash (DESIGN.md 8) = a file mapping (MappedFile)
// + runtime::FakeFlash over the mapped bytes + a timing decorator (TimedFlash). Host only (mmap,
// STL); the bootloader core sees only the FlashMemory interface.
//
// Storage: the file `path` holds exactly geometry().size() bytes, byte i = bus address
// geometry().base + i. A missing file is created full of geometry().erased_value (created()
// then reports true); an existing file of another size is an error. The file is mmap'ed
// MAP_SHARED, so every change is in the file as soon as the call returns (msync on Sync() and
// on destruction) and the state persists between runs: that is the board.
//
// Strictness, fault injection and the operation counters are runtime::FakeFlash's, unchanged
// (runtime/fake_flash.h: refused writes to bytes that are not erased, misaligned writes, erases
// off sector boundaries, ranges outside the memory; FailAfter / CutPowerAfter with torn
// writes and erases; counters()). The simulator stays as strict as the fake's default: no
// allow_bit_clear, the bootloader never needs it.
//
// Timing (TimedFlash): each call that completed costs the board's modeled time
// (runtime/flash_timing.h, the model the bootloader reports as bwPollTimeout): an erase its
// erase steps (QSPI block erase where aligned), a write the program units it touches. Refused
// and torn calls cost nothing (a torn one ends with the power). Reads are free. Erases per
// sector count every sector a call left wholly erased (a torn erase's too, as
// counters().sectors_erased does).
//
// Not thread-safe. Not copyable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "host/expected.h"
#include "runtime/board.h"
#include "runtime/byte_reader.h"
#include "runtime/fake_flash.h"
#include "runtime/flash_memory.h"
#include "runtime/status.h"

namespace onedfu::sim {

// A file of a fixed size mapped read-write and shared: writes to bytes() are writes to the file.
class MappedFile {
 public:
  // Maps `path`, creating it full of `fill` when missing (under a temporary name, then
  // renamed, so a half-created file never appears; parent directories must exist). Errors
  // name the path: cannot create/open/map, or a file size other than `size`.
  static host::Expected<MappedFile> Open(const std::filesystem::path& path, size_t size, uint8_t fill);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();  // msync, munmap

  runtime::MutableByteSpan bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }
  // True when Open() created the file.
  bool created() const { return created_; }
  // Flushes the mapping to the file (msync). False on error.
  bool Sync();

 private:
  MappedFile(std::filesystem::path path, uint8_t* data, size_t size, bool created);

  std::filesystem::path path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool created_ = false;
};

// The modeled cost of what one memory did since Open() or ResetUsage() (completed calls; see
// the file comment). What it did is FileFlash::counters().
struct FlashUsage {
  uint32_t block_erases = 0;     // erase steps larger than a sector (QSPI 64 KiB)
  uint64_t program_units = 0;    // program units (program_bytes) touched by the writes
  uint64_t erase_us = 0;         // modeled erase time, microseconds
  uint64_t program_us = 0;       // modeled program time, microseconds
  // Erases per sector, index = sector index in the memory (geometry().sector_count() entries).
  std::vector<uint32_t> sector_erases;
};

// FlashMemory decorator over a FakeFlash: forwards every call and adds the modeled cost of
// what the fake did (file comment). ResetUsage() also resets the fake's counters.
class TimedFlash final : public runtime::FlashMemory {
 public:
  explicit TimedFlash(runtime::FakeFlash& fake);

  const runtime::Memory& geometry() const override { return fake_.geometry(); }
  runtime::Status Erase(uint32_t address, uint32_t size) override;
  runtime::Status Read(uint32_t address, runtime::MutableByteSpan out) override { return fake_.Read(address, out); }
  runtime::Status Write(uint32_t address, runtime::ByteSpan data) override;
  runtime::ByteSpan Mapped() const override { return fake_.Mapped(); }

  const FlashUsage& usage() const { return usage_; }
  void ResetUsage();

 private:
  runtime::FakeFlash& fake_;
  FlashUsage usage_;
};

class FileFlash final : public runtime::FlashMemory {
 public:
  // Maps `path` (see MappedFile::Open) for a memory of `geometry`. Errors name the path: as
  // MappedFile, or a memory without sectors or with write_align 0.
  static host::Expected<std::unique_ptr<FileFlash>> Open(const runtime::Memory& geometry,
                                                           const std::filesystem::path& path);
  FileFlash(const FileFlash&) = delete;
  FileFlash& operator=(const FileFlash&) = delete;

  const runtime::Memory& geometry() const override { return fake_.geometry(); }
  runtime::Status Erase(uint32_t address, uint32_t size) override { return timed_.Erase(address, size); }
  runtime::Status Read(uint32_t address, runtime::MutableByteSpan out) override { return timed_.Read(address, out); }
  runtime::Status Write(uint32_t address, runtime::ByteSpan data) override { return timed_.Write(address, data); }
  // The mapping when geometry().mapped and powered; empty otherwise.
  runtime::ByteSpan Mapped() const override { return timed_.Mapped(); }

  // True when Open() created the file (a blank memory).
  bool created() const { return file_.created(); }
  const std::filesystem::path& path() const { return file_.path(); }

  // Direct view of the whole mapping for assertions and set-up, bypassing every check, counter
  // and fault (valid while the object lives, powered or not).
  runtime::ByteSpan contents() const { return fake_.contents(); }
  // Set-up: places `data` at `address` without checks or modeled time (e.g. the bootloader
  // image of a blank board). False when out of range.
  bool Preload(uint32_t address, runtime::ByteSpan data) { return fake_.Preload(address, data); }

  // Flushes the mapping to the file (msync). False on error.
  bool Sync() { return file_.Sync(); }

  // What the memory did (FakeFlash counters) and what it cost (TimedFlash), since Open() or
  // ResetUsage(), which resets both.
  const runtime::FlashCounters& counters() const { return fake_.counters(); }
  const FlashUsage& usage() const { return timed_.usage(); }
  void ResetUsage() { timed_.ResetUsage(); }

  // Fault injection: runtime::FakeFlash's (FailAfter, CutPowerAfter, SetTornModel, ClearFaults,
  // PowerOn).
  void FailAfter(uint32_t operations) { fake_.FailAfter(operations); }
  void CutPowerAfter(uint32_t operations, bool torn) { fake_.CutPowerAfter(operations, torn); }
  void SetTornModel(runtime::TornModel model, uint32_t seed) { fake_.SetTornModel(model, seed); }
  void ClearFaults() { fake_.ClearFaults(); }
  void PowerOn() { fake_.PowerOn(); }
  bool powered() const { return fake_.powered(); }
  // Flash-changing operations done since Open() or ResetUsage() (torn ones included).
  uint32_t operations() const { return fake_.operations(); }

 private:
  FileFlash(const runtime::Memory& geometry, MappedFile file);

  MappedFile file_;
  runtime::FakeFlash fake_;  // over file_.bytes()
  TimedFlash timed_;         // over fake_
};

}  // namespace onedfu::sim
