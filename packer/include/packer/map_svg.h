// `onedfu map`: a picture of each memory of a board, its regions, and what a
// package puts where. People look at memory maps; they do not read them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/board.h"

namespace onedfu::packer {


struct MapElement {
  uint32_t address = 0;
  uint64_t size = 0;
  std::string label;  // "text0 firmware", "ROMFS (12 files)", "boot record"
};

// A standalone SVG 1.1 document (UTF-8, well-formed XML, all text escaped):
// one band per memory with its regions (coloured by role, bootloader hatched),
// sector ticks, the package's elements drawn under the regions they land in,
// and a table per memory of region name, role, range, size and use.
std::string RenderMapSvg(const runtime::Board& board, const std::vector<MapElement>& elements,
                         const std::string& title);

}  // namespace onedfu::packer
