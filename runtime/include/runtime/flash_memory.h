// FlashMemory: the one interface through which everything writes flash.
//
// Addresses are absolute bus addresses inside geometry(). Contracts:
//   Erase(address, size): address and size cover whole sectors of the
//     geometry; afterwards every byte reads geometry().erased_value. A driver
//     may use larger erase instructions (QSPI 64 KiB block) when aligned.
//     kOutOfRange outside the memory, kInvalidArgument when not on sector
//     boundaries, kUnavailable on device failure or power loss.
//   Read(address, out): fills `out`; kOutOfRange when it runs past the end.
//   Write(address, data): programs bytes; address and data.size() are
//     multiples of geometry().write_align; NOR rules apply (bits only go from
//     the erased value towards the programmed value; a real fake refuses
//     writes to bytes that are not erased). kInvalidArgument when misaligned,
//     kFailedPrecondition when the target is not erased.
//   Mapped(): the memory's bytes as the CPU sees them when geometry().mapped,
//     otherwise an empty span. Valid while the object lives.
//
// Not owning, not copyable through the base; no virtual destructor on purpose
// (a deleting destructor would pull in operator delete on the device).
#pragma once

#include <cstdint>

#include "runtime/board.h"
#include "runtime/byte_reader.h"
#include "runtime/status.h"

namespace onedfu::runtime {

class FlashMemory {
 public:
  virtual const Memory& geometry() const = 0;
  virtual Status Erase(uint32_t address, uint32_t size) = 0;
  virtual Status Read(uint32_t address, MutableByteSpan out) = 0;
  virtual Status Write(uint32_t address, ByteSpan data) = 0;
  virtual ByteSpan Mapped() const { return {}; }

 protected:
  FlashMemory() = default;
  FlashMemory(const FlashMemory&) = default;
  FlashMemory& operator=(const FlashMemory&) = default;
  ~FlashMemory() = default;
};

}  // namespace onedfu::runtime
