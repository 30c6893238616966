// USB descriptors of the DFU-mode device, built from the Board (DESIGN.md 6):
// one configuration, one interface (class 0xfe, subclass 1 DFU, protocol 2
// DFU mode), alt 0 covering every memory, the DFU functional descriptor
// `09 21 0b ff 00 00 08 1a 01`, and string descriptors, the interface string
// being the DfuSe layout that dfu-util and pydfu parse.
//
// Every builder writes into a caller buffer and returns the number of bytes
// written, or 0 when the buffer is too small (nothing useful written).
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/board.h"
#include "runtime/byte_reader.h"
#include "runtime/status.h"

namespace onedfu::bootloader {

// String descriptor indices.
inline constexpr uint8_t kStringLanguages = 0;     // LANGID list: 0x0409
inline constexpr uint8_t kStringManufacturer = 1;
inline constexpr uint8_t kStringProduct = 2;
inline constexpr uint8_t kStringSerial = 3;
inline constexpr uint8_t kStringLayout = 4;        // iInterface of alt 0: the DfuSe layout
inline constexpr uint8_t kStringStatus = 5;        // iString of GETSTATUS: what went wrong
inline constexpr uint8_t kStringCount = 6;

inline constexpr size_t kDeviceDescriptorSize = 18;
inline constexpr size_t kConfigDescriptorSize = 9 + 9 + 9;  // config + interface + functional
inline constexpr size_t kFunctionalDescriptorSize = 9;
// A string descriptor holds at most 126 UTF-16 units (bLength is one byte).
inline constexpr size_t kMaxStringChars = 126;
inline constexpr size_t kMaxStringDescriptorSize = 2 + 2 * kMaxStringChars;

// Device descriptor: USB 2.0 (0x0200), class 0 (per interface), EP0 64 bytes,
// idVendor/idProduct/bcdDevice from the board, strings 1/2/3, one configuration.
size_t BuildDeviceDescriptor(const runtime::Board& board, runtime::MutableByteSpan out);

// Configuration descriptor (27 bytes): bus powered 100 mA, interface 0 alt 0
// with 0 endpoints, iInterface = kStringLayout, then the functional descriptor.
size_t BuildConfigDescriptor(runtime::MutableByteSpan out);

// The 9-byte DFU functional descriptor alone (GET_DESCRIPTOR type 0x21).
size_t BuildFunctionalDescriptor(runtime::MutableByteSpan out);

// The DfuSe layout string, NUL-terminated ASCII, e.g. for PYBD-SF6:
//   "@Internal Flash  /0x08000000/01*032Ka,03*032Kg,01*128Kg,07*256Kg/0x90000000/512*04Kg"
// Rules: "@" + label of memory 0 + two spaces, then per memory
// "/0x%08X/" and its sectors as "count*size<unit><letter>" runs joined by
// ','. Consecutive sectors of equal size and letter merge into one run.
// Letter 'a' (readable only) for a sector that Board::FirstReadOnly says USB
// may not change (bootloader, reserved or unlisted flash), 'g' (read, erase,
// write) otherwise. Size unit 'M' when a multiple of 1 MiB,
// 'K' when a multiple of 1 KiB, else ' ' (bytes). Numbers are zero-padded to
// ST's fixed-width look: count at least 2 digits; size at least
// max(2, 5 - digits of the memory's largest sector count) digits
// ("04*032K" beside "07*256K"; "512*04K"; "08*04K" beside "248*04K").
// Returns the string length (NUL excluded), kResourceExhausted when `out`
// is too small or the layout exceeds kMaxStringChars, kInvalidArgument for
// a board without memories.
runtime::Result<size_t> BuildLayoutString(const runtime::Board& board, char* out, size_t capacity);

// String descriptor from ASCII text: bLength, 3, UTF-16LE units. Text longer
// than kMaxStringChars or than fits `out` is truncated.
size_t BuildStringDescriptor(const char* text, runtime::MutableByteSpan out);

// The LANGID list descriptor (index 0): 04 03 09 04.
size_t BuildLanguageDescriptor(runtime::MutableByteSpan out);

}  // namespace onedfu::bootloader
