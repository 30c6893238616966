// Provision record: the per-board factory data (device id, calibration values, keys) that the
// station writes into the board's `provision` region (`onedfu flash --all --provision FILE.csv`)
// and the application reads in place from memory-mapped flash (no copy, no heap). Device code.
//
// Layout (little-endian), at the start of the provision region:
//   offset size field
//   0      4    magic kProvisionMagic (random)
//   4      2    version kProvisionVersion
//   6      2    entry count (at most kMaxProvisionEntries)
//   8      4    payload length in bytes (the entries; at most the region size - header)
//   12     4    CRC-32 (zlib, runtime/crc32.h Crc32) over bytes 0..11 then the payload
//   16     ...  payload: entries, each: u8 key length (1..kMaxProvisionKey), key bytes,
//               u16 value length, value bytes; keys unique, in the order written
// The rest of the region stays erased. Keys and values are bytes (the station writes the CSV
// column names and cells, UTF-8).
//
// Status codes: kNotFound (no record: erased or wrong magic; or no such key), kDataLoss (CRC
// mismatch, entries that run past the payload, a payload past the region), kUnimplemented
// (another version), kInvalidArgument (bad entry to encode), kResourceExhausted (does not fit).
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/byte_reader.h"
#include "runtime/status.h"

namespace onedfu::runtime {

inline constexpr uint32_t kProvisionMagic = 0x7c3e91d5u;
inline constexpr uint16_t kProvisionVersion = 1;
inline constexpr size_t kProvisionHeaderSize = 16;
inline constexpr size_t kMaxProvisionEntries = 64;
inline constexpr size_t kMaxProvisionKey = 63;
inline constexpr size_t kMaxProvisionValue = 0xffff;

struct ProvisionEntry {
  ByteSpan key;
  ByteSpan value;
};

// Bytes the record of `entries` takes (header + payload); 0 when an entry is invalid.
size_t ProvisionRecordSize(std::span<const ProvisionEntry> entries);

// Writes the record of `entries` into `out`; returns its size. kInvalidArgument for an empty
// or too long key, a duplicate key, a too long value or too many entries; kResourceExhausted
// when `out` is too small.
[[nodiscard]] Result<size_t> EncodeProvisionRecord(std::span<const ProvisionEntry> entries, MutableByteSpan out);

// A checked record over `region` (the provision region's bytes, e.g. its memory-mapped view).
// The value spans point into `region`.
class ProvisionReader {
 public:
  // Checks magic, version, lengths and CRC.
  [[nodiscard]] static Result<ProvisionReader> Open(ByteSpan region);
  ProvisionReader() = default;

  uint16_t count() const { return count_; }
  // The value of `key` (bytes, no terminator); kNotFound when absent.
  [[nodiscard]] Result<ByteSpan> Find(ByteSpan key) const;
  [[nodiscard]] Result<ByteSpan> Find(const char* key) const;
  // Entry `index` (< count()).
  [[nodiscard]] Result<ProvisionEntry> At(size_t index) const;

 private:
  ByteSpan payload_;
  uint16_t count_ = 0;
};

}  // namespace onedfu::runtime
