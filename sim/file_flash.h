// FileFlash: a runtime::FlashMemory over a raw file, the simulated board's persistent flash
// (DESIGN.md 8). Host only (mmap, STL); the bootloader core sees only the FlashMemory interface.
//
// Storage: the file `path` holds exactly geometry().size() bytes, byte i = bus address
// geometry().base + i. A missing file is created full of geometry().erased_value (created()
// then reports true); an existing file of another size is an error. The file is mmap'ed
// MAP_SHARED, so every change is in the file as soon as the call returns (msync on Sync() and
// on destruction) and the state persists between runs: that is the board.
//
// Strict like runtime::FakeFlash (stricter than silicon):
//   - Write: kInvalidArgument when address or size is not a multiple of write_align;
//     kFailedPrecondition when a target byte is not erased (nothing is written then);
//     an empty write is OK and does nothing.
//   - Erase: kInvalidArgument unless [address, address + size) starts and ends on sector
//     boundaries (and size > 0). A run covering an aligned erase unit larger than the sector
//     that the board's timing lists (QSPI 64 KiB block) is modeled as that block erase.
//   - kOutOfRange outside [base, base + size) (checked in 64 bits).
//   A refused call changes nothing and costs no modeled time; it is counted in usage().refused.
//
// Timing model (board file, DESIGN.md 8): an erase costs the listed time of each erase unit it
// uses (runtime::EraseMicroseconds; the largest listed unit that is aligned and fits, the
// sector otherwise); a write costs program_us for every program unit (program_bytes,
// aligned to the memory base) it touches. Reads are free. Totals accumulate in usage().
//
// Fault injection, as FakeFlash (for power-cut sweeps): counts flash-changing calls that
// passed the checks. FailAfter(n): the (n+1)-th fails with kUnavailable without touching the
// flash (transient). CutPowerAfter(n, torn): the (n+1)-th is hit by a power cut: not torn = it
// does not happen; torn = a write programs the first half of its data (rounded down to
// write_align), an erase erases the first half of its range (rounded down to write_align);
// then every call fails with kUnavailable (Mapped() is empty) until PowerOn().
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
#include "runtime/flash_memory.h"
#include "runtime/status.h"

namespace onedfu::sim {

// What one memory has been asked to do since Open() or ResetUsage(). Successful (and torn)
// operations only, except `refused`.
struct FlashUsage {
  uint32_t erase_calls = 0;      // Erase calls
  uint32_t sectors_erased = 0;   // sectors covered by them
  uint64_t bytes_erased = 0;
  uint32_t block_erases = 0;     // erase units larger than a sector used (QSPI 64 KiB)
  uint32_t write_calls = 0;      // Write calls
  uint64_t bytes_programmed = 0; // bytes passed to Write
  uint64_t program_units = 0;    // program units (program_bytes) touched by the writes
  uint32_t refused = 0;          // calls refused by a check or a fault
  uint64_t erase_us = 0;         // modeled erase time, microseconds
  uint64_t program_us = 0;       // modeled program time, microseconds
  // Erases per sector, index = sector index in the memory (geometry().sector_count() entries).
  std::vector<uint32_t> sector_erases;
};

class FileFlash final : public runtime::FlashMemory {
 public:
  // Maps `path` (creating it erased when missing; parent directories must exist). Errors name
  // the path: cannot open/create/map, or a size other than geometry.size().
  static host::Expected<std::unique_ptr<FileFlash>> Open(const runtime::Memory& geometry,
                                                           const std::filesystem::path& path);
  ~FileFlash();
  FileFlash(const FileFlash&) = delete;
  FileFlash& operator=(const FileFlash&) = delete;

  const runtime::Memory& geometry() const override { return geometry_; }
  runtime::Status Erase(uint32_t address, uint32_t size) override;
  runtime::Status Read(uint32_t address, runtime::MutableByteSpan out) override;
  runtime::Status Write(uint32_t address, runtime::ByteSpan data) override;
  // The mapping when geometry().mapped and powered; empty otherwise.
  runtime::ByteSpan Mapped() const override;

  // True when Open() created the file (a blank memory).
  bool created() const { return created_; }
  const std::filesystem::path& path() const { return path_; }

  // Direct view of the whole mapping for assertions and set-up, bypassing every check, counter
  // and fault (valid while the object lives, powered or not).
  runtime::ByteSpan contents() const { return {data_, size_}; }
  // Set-up: places `data` at `address` without checks or modeled time (e.g. the bootloader
  // image of a blank board). False when out of range.
  bool Preload(uint32_t address, runtime::ByteSpan data);

  // Flushes the mapping to the file (msync). False on error.
  bool Sync();

  const FlashUsage& usage() const { return usage_; }
  void ResetUsage();

  // Fault injection; see the file comment. ClearFaults cancels pending faults (it does not
  // restore power).
  void FailAfter(uint32_t operations);
  void CutPowerAfter(uint32_t operations, bool torn);
  void ClearFaults();
  void PowerOn() { powered_ = true; }
  bool powered() const { return powered_; }
  // Flash-changing operations done since Open() or ResetUsage() (torn ones included).
  uint32_t operations() const { return usage_.erase_calls + usage_.write_calls; }

  // Modeled time of erasing [address, address + size) (sector aligned) and of programming
  // `size` bytes at `address`, microseconds; the same model the counters use. 0 outside.
  uint64_t EraseCostUs(uint32_t address, uint32_t size) const;
  uint64_t ProgramCostUs(uint32_t address, uint32_t size) const;

 private:
  enum class Fault : uint8_t { kNone, kFail, kCut, kCutTorn };

  FileFlash(const runtime::Memory& geometry, std::filesystem::path path, uint8_t* data, size_t size,
            bool created);
  runtime::Status CheckRange(uint32_t address, uint64_t size) const;
  Fault TakeFault();
  runtime::Status Refuse(runtime::Status status);
  // Adds modeled time and per-sector counts of an erase of [start, start + size).
  void CountErase(uint32_t start, uint32_t size);
  void CountWrite(uint32_t address, uint32_t size);

  runtime::Memory geometry_;
  std::filesystem::path path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool created_ = false;
  bool powered_ = true;
  Fault fault_ = Fault::kNone;
  uint32_t fault_countdown_ = 0;
  FlashUsage usage_;
};

}  // namespace onedfu::sim
