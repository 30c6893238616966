// CRC-32 (reflected, polynomial 0xEDB88320) in the three flavours the project
// needs. Table-driven, slicing-by-8; the tables are constexpr (flash on the
// device), no heap, no state outside the arguments.
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

}  // namespace onedfu::runtime
