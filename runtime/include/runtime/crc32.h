// CRC-32 (reflected, polynomial 0xEDB88320) in the three flavours the project
// needs. Table-driven, slicing-by-8; the tables are constexpr (flash on the
// device), no heap, no state outside the arguments. x86-64 host builds fold
// long inputs with PCLMULQDQ when the CPU has it (same results). Flash-tight
// device builds shrink the table: -DONEDFU_CRC32_SLICES=1 (1 KiB) or
// -DONEDFU_CRC32_NIBBLE=1 (64 bytes); see crc32.cpp.
#pragma once

#include <cstdint>

#include "runtime/byte_reader.h"

namespace onedfu::runtime {

// Raw reflected CRC-32 register update over `data`: no pre- or post-inversion.
// Chain calls to process data in pieces: Crc32Update(Crc32Update(s, a), b)
// equals Crc32Update(s, a ++ b).
uint32_t Crc32Update(uint32_t state, ByteSpan data);

// zlib / IEEE 802.3 CRC-32: init 0xFFFFFFFF, final XOR 0xFFFFFFFF.
// Crc32("123456789") == 0xCBF43926.
inline uint32_t Crc32(ByteSpan data) { return ~Crc32Update(0xFFFFFFFFu, data); }

// DfuSe / DFU 1.1 suffix dwCRC: init 0xFFFFFFFF, NO final XOR (= ~Crc32(data)).
// `data` is every byte of the file except the last 4 (the dwCRC field).
inline uint32_t DfuSuffixCrc(ByteSpan data) { return Crc32Update(0xFFFFFFFFu, data); }

// True when Crc32Update uses carry-less multiply (x86-64 host with PCLMULQDQ).
bool Crc32HardwareAccelerated();

namespace internal {
// The table-only (slicing-by-8) update, what a device runs; for cross-checks.
uint32_t Crc32UpdatePortable(uint32_t state, ByteSpan data);
// The 16-entry (64-byte) table update that Crc32UpdatePortable becomes in a
// build with ONEDFU_CRC32_NIBBLE=1 (flash-tight bootloaders); same results.
uint32_t Crc32UpdateNibble(uint32_t state, ByteSpan data);
}  // namespace internal

}  // namespace onedfu::runtime
