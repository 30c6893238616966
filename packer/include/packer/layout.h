// Placement rules for a package's elements on a board, shared by `pack`
// (checked before anything is written) and `verify`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "host/expected.h"
#include "runtime/board.h"

namespace onedfu::packer {

using namespace host;  // the shared host utilities (Expected, Bytes, boards, files)

// One block of bytes the package puts on the board.
struct Placement {
  uint32_t address = 0;
  uint64_t size = 0;
  std::string origin;  // who asked for it: "fw.elf: PT_LOAD 1", "ROMFS image", "boot record"
  runtime::RegionRole expected_role = runtime::RegionRole::kFirmware;
};

// Checks every rule and reports ALL violations (one per line), each naming
// the origin and address: outside every memory or region, into the bootloader
// region, across a region boundary, into a region of another role than
// expected (firmware into romfs/record/filesystem, ...), overlaps between
// placements, and two placements touching one erase sector (see
// SharesEraseSector; `placements` in file order, so the message names the
// earlier one as the one a loader would wipe).
Outcome CheckPlacements(const runtime::Board& board, const std::vector<Placement>& placements);

// The erase-sector rule. Loaders that erase per element wipe an earlier
// element that shares an erase sector with a later one: MicroPython's
// pydfu.py erases the sector holding each chunk it writes, element by
// element; mboot's file loader erases an element's sectors before writing
// it. So no two elements of a file may touch one erase sector.
// True when [a_address, a_address + a_size) and a block starting at
// b_address (>= the end of a) touch a common erase sector of one memory.
bool SharesEraseSector(const runtime::Board& board, uint32_t a_address, uint64_t a_size, uint32_t b_address);

// "text0" for an address inside a region, "" otherwise.
std::string RegionNameAt(const runtime::Board& board, uint32_t address);

// "0x08008000"
std::string HexAddress(uint64_t address);

}  // namespace onedfu::packer
