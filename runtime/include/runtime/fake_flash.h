// FakeFlash: a FlashMemory over caller-owned RAM, stricter than silicon, with
// operation counters and fault injection. Used by unit tests, fuzzers, the
// simulator and the power-cut sweep (DESIGN.md 7, 8).
//
// Stricter than silicon:
//   - Write refuses (kFailedPrecondition) a byte that is not erased. With
//     set_allow_bit_clear(true) a non-erased byte may be programmed again when
//     the new value only moves further away from the erased value (NOR: with
//     erased 0xff, bits only go 1 -> 0), as silicon allows.
//   - Write refuses (kInvalidArgument) an address or length that is not a
//     multiple of geometry().write_align.
//   - Erase refuses (kInvalidArgument) a range that does not start and end on
//     sector boundaries (runtime::IsSectorBoundary), and a zero-length range.
//   - Anything outside [base, base + size) is kOutOfRange, checked in 64 bits
//     (a range ending exactly at the last byte is fine, one byte more is not).
//   A refused operation changes nothing and is not counted as done.
//   An empty Write that passes the checks is OK and changes nothing: it is no
//   operation (not counted, takes no pending fault).
//
// Fault injection counts only flash-changing operations (Erase and non-empty
// Write calls that passed the checks above; one Erase call of several sectors
// is one operation):
//   - FailAfter(n): the next n operations succeed, the one after fails with
//     kUnavailable without touching the flash; later ones succeed again
//     (a transient device error).
//   - CutPowerAfter(n, torn): the next n operations succeed; the one after is
//     hit by a power cut. Not torn: it does not happen at all. Torn, by the
//     torn model (SetTornModel):
//       kHalf (default): a write programs the first half of its data (rounded
//       down to write_align) and an erase erases the first half of its range
//       (rounded down to write_align); the rest is untouched.
//       kRandom (seeded, reproducible): a write programs its write units up to
//       a random one, which gets a random subset of the bits it programs; an
//       erase erases its sectors up to a random one, which gets a random
//       subset of its bits moved to the erased value (neither erased nor
//       intact); the rest is untouched.
//     From then on every call (reads too) fails with kUnavailable until
//     PowerOn().
//   ECC (geometry().ecc, STM32H7-class flash): the unit a kRandom torn write
//   left half-programmed, and every write unit of the sector a kRandom torn
//   erase left half-erased, is "torn": a Read that touches one fails with
//   kDataLoss, Mapped() is empty while one exists (a CPU read of it would
//   fault; the fake makes every read a checked one), and a Write to it is
//   refused (kFailedPrecondition). Erasing its sector clears it. At most
//   kMaxTornRanges are remembered; past that every Read fails with kDataLoss
//   until EraseAll().
//
// Storage is not owned: storage.size() must equal geometry.size(), otherwise
// every call fails with kInternal (valid() is false). The geometry is copied.
#pragma once

#include <cstdint>

#include "runtime/board.h"
#include "runtime/byte_reader.h"
#include "runtime/flash_memory.h"
#include "runtime/status.h"

namespace onedfu::runtime {

// What a FakeFlash has done since construction or ResetCounters(). Only
// successful or torn operations are counted; a torn one counts as a call and
// with what it changed: the bytes it erased or programmed, and the sectors its
// erased part covers wholly (the sector it stopped in is not counted).
struct FlashCounters {
  uint32_t erases = 0;           // Erase calls
  uint32_t sectors_erased = 0;   // sectors those calls left wholly erased
  uint64_t bytes_erased = 0;
  uint32_t writes = 0;           // Write calls (non-empty)
  uint64_t bytes_written = 0;    // bytes programmed
  uint32_t reads = 0;            // Read calls
  uint64_t bytes_read = 0;
  uint32_t refused = 0;          // calls refused by a check or a fault
};

enum class TornModel : uint8_t { kHalf, kRandom };

class FakeFlash final : public FlashMemory {
 public:
  static constexpr uint8_t kMaxTornRanges = 8;

  FakeFlash(const Memory& geometry, MutableByteSpan storage);

  const Memory& geometry() const override { return geometry_; }
  Status Erase(uint32_t address, uint32_t size) override;
  Status Read(uint32_t address, MutableByteSpan out) override;
  Status Write(uint32_t address, ByteSpan data) override;
  // The storage when geometry().mapped (and powered), else empty.
  ByteSpan Mapped() const override;

  bool valid() const { return valid_; }

  // Test set-up, bypassing every check and counter: fill all storage with the
  // erased value, or place bytes anywhere (returns false when out of range).
  // Both leave the bytes they set sound (no torn ECC unit there).
  void EraseAll();
  bool Preload(uint32_t address, ByteSpan data);
  // Direct view of the storage for assertions (even while powered off).
  ByteSpan contents() const { return storage_; }

  void set_allow_bit_clear(bool allow) { allow_bit_clear_ = allow; }

  // Fault injection; see the file comment. ClearFaults cancels pending faults
  // (it does not restore power).
  void FailAfter(uint32_t operations);
  void CutPowerAfter(uint32_t operations, bool torn);
  // How a torn operation leaves the flash (file comment); `seed` drives kRandom.
  void SetTornModel(TornModel model, uint32_t seed) {
    torn_model_ = model;
    random_ = seed * 2654435761u + 0x6d2b79f5u;
  }
  // ECC memories: write units left torn (file comment) and not erased since.
  uint8_t torn_units() const { return torn_count_; }
  void ClearFaults();
  void PowerOn() { powered_ = true; }
  bool powered() const { return powered_; }

  // Flash-changing operations done (successful Erase and Write calls, plus a
  // torn one), since construction or ResetCounters().
  uint32_t operations() const { return counters_.erases + counters_.writes; }
  const FlashCounters& counters() const { return counters_; }
  void ResetCounters() { counters_ = FlashCounters{}; }

 private:
  enum class Fault : uint8_t { kNone, kFail, kCut, kCutTorn };

  // Range check in 64 bits; OK when [address, address + size) lies inside.
  Status CheckRange(uint32_t address, uint64_t size) const;
  // Decrements the pending fault countdown; returns the fault that hits this
  // operation (kNone when it proceeds normally).
  Fault TakeFault();
  Status Refuse(Status status);
  uint32_t Random();
  // True when [offset, offset + size) touches a torn ECC range.
  bool TouchesTorn(uint64_t offset, uint64_t size) const;
  void AddTorn(uint32_t offset, uint32_t size);
  // Drops the torn ranges inside [offset, offset + size).
  void ClearTorn(uint64_t offset, uint64_t size);

  struct TornRange {
    uint32_t offset = 0;  // from the memory's base
    uint32_t size = 0;
  };

  Memory geometry_;
  MutableByteSpan storage_;
  bool valid_ = false;
  bool powered_ = true;
  bool allow_bit_clear_ = false;
  Fault fault_ = Fault::kNone;
  uint32_t fault_countdown_ = 0;
  FlashCounters counters_;
  TornModel torn_model_ = TornModel::kHalf;
  uint32_t random_ = 0x6d2b79f5u;
  TornRange torn_[kMaxTornRanges] = {};
  uint8_t torn_count_ = 0;
  bool torn_overflow_ = false;
};

}  // namespace onedfu::runtime
