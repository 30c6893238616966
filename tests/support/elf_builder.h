// Hand-made ELF32 little-endian files for firmware-input and packing tests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

#include "host/file_io.h"
#include "runtime/byte_reader.h"

namespace onedfu::testing {

struct ProgramHeader {
  uint32_t type = 1;  // PT_LOAD
  uint32_t offset = 0;
  uint32_t vaddr = 0;
  uint32_t paddr = 0;
  uint32_t filesz = 0;
  uint32_t memsz = 0;
};

// ELF32 LE EXEC for ARM: header, program headers at 52, then `payload`
// (program header offsets are absolute file offsets chosen by the caller).
inline host::Bytes MakeElf(const std::vector<ProgramHeader>& phdrs, const host::Bytes& payload) {
  host::Bytes out(52 + 32 * phdrs.size(), 0);
  const uint8_t ident[] = {0x7f, 'E', 'L', 'F', 1, 1, 1};
  std::copy(std::begin(ident), std::end(ident), out.begin());
  runtime::StoreLe16(&out[16], 2);    // ET_EXEC
  runtime::StoreLe16(&out[18], 40);   // EM_ARM
  runtime::StoreLe32(&out[20], 1);    // EV_CURRENT
  runtime::StoreLe32(&out[28], 52);   // e_phoff
  runtime::StoreLe16(&out[40], 52);   // e_ehsize
  runtime::StoreLe16(&out[42], 32);   // e_phentsize
  runtime::StoreLe16(&out[44], static_cast<uint16_t>(phdrs.size()));
  for (size_t i = 0; i < phdrs.size(); ++i) {
    uint8_t* p = &out[52 + 32 * i];
    runtime::StoreLe32(p + 0, phdrs[i].type);
    runtime::StoreLe32(p + 4, phdrs[i].offset);
    runtime::StoreLe32(p + 8, phdrs[i].vaddr);
    runtime::StoreLe32(p + 12, phdrs[i].paddr);
    runtime::StoreLe32(p + 16, phdrs[i].filesz);
    runtime::StoreLe32(p + 20, phdrs[i].memsz);
  }
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// An ELF whose PT_LOAD segments hold `segments` (load address, bytes) in that
// order, laid out one after the other after the program headers.
inline host::Bytes MakeElfOfSegments(const std::vector<std::pair<uint32_t, host::Bytes>>& segments) {
  std::vector<ProgramHeader> phdrs;
  host::Bytes payload;
  const uint32_t base = static_cast<uint32_t>(52 + 32 * segments.size());
  for (const auto& [address, bytes] : segments) {
    const auto offset = static_cast<uint32_t>(base + payload.size());
    const auto size = static_cast<uint32_t>(bytes.size());
    phdrs.push_back({1, offset, address, address, size, size});
    payload.insert(payload.end(), bytes.begin(), bytes.end());
  }
  return MakeElf(phdrs, payload);
}

}  // namespace onedfu::testing
