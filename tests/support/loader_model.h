// A model of the DfuSe loaders that erase per element: MicroPython's
// pydfu.py (for each element, for each piece of it that runs to the end of an
// erase sector, it erases the sector holding the piece's address, then
// writes the piece) and mboot's file loader (erases an element's sectors,
// then writes it). Both wipe an earlier element that shares an erase sector
// with a later one; dfu-util does not (it remembers the last page erased), so
// it cannot show the problem. The flash is the strict FakeFlash.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "host/dfuse_file.h"
#include "runtime/board.h"
#include "runtime/fake_flash.h"

namespace onedfu::testing {

// Flashes every element of `image` (targets and elements in file order) onto
// a blank `board` the way pydfu.py does; returns each memory's bytes.
inline std::vector<host::Bytes> FlashErasingPerElement(const runtime::Board& board, const host::DfuseImage& image) {
  std::vector<host::Bytes> storage;
  std::vector<runtime::FakeFlash> flashes;
  storage.reserve(board.memory_count);
  flashes.reserve(board.memory_count);
  for (uint8_t m = 0; m < board.memory_count; ++m) {
    storage.emplace_back(board.memories[m].size(), board.memories[m].erased_value);
    flashes.emplace_back(board.memories[m], storage.back());
  }
  for (const host::DfuseTarget& target : image.targets) {
    for (const host::DfuseElement& element : target.elements) {
      const runtime::Memory* memory = board.MemoryAt(element.address);
      REQUIRE_MESSAGE(memory != nullptr, "element outside every memory");
      runtime::FakeFlash& flash = flashes[static_cast<size_t>(memory - board.memories)];
      uint64_t done = 0;
      while (done < element.data.size()) {
        const auto address = static_cast<uint32_t>(element.address + done);
        const auto sector = runtime::SectorContaining(*memory, address);
        REQUIRE(sector.ok());
        const uint64_t piece = std::min<uint64_t>(element.data.size() - done,
                                                  uint64_t{sector->start} + sector->size - address);
        REQUIRE(flash.Erase(sector->start, sector->size).ok());
        REQUIRE(flash.Write(address, runtime::ByteSpan(element.data).subspan(done, piece)).ok());
        done += piece;
      }
    }
  }
  return storage;
}

// "element N at 0x...", file order, for every element whose bytes are not on
// the flash after FlashErasingPerElement.
inline std::vector<std::string> DamagedElements(const runtime::Board& board, const host::DfuseImage& image,
                                                const std::vector<host::Bytes>& memories) {
  std::vector<std::string> damaged;
  size_t index = 0;
  for (const host::DfuseTarget& target : image.targets) {
    for (const host::DfuseElement& element : target.elements) {
      const runtime::Memory* memory = board.MemoryAt(element.address);
      const host::Bytes& bytes = memories[static_cast<size_t>(memory - board.memories)];
      const size_t offset = element.address - memory->base;
      if (!std::equal(element.data.begin(), element.data.end(), bytes.begin() + static_cast<std::ptrdiff_t>(offset))) {
        char where[16];
        std::snprintf(where, sizeof where, "0x%08x", element.address);
        damaged.push_back("element " + std::to_string(index) + " at " + where);
      }
      ++index;
    }
  }
  return damaged;
}

}  // namespace onedfu::testing
