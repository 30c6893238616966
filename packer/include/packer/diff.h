// `onedfu diff OLD.dfu NEW.dfu`: what an update from OLD to NEW changes,
// before anyone flashes: ROMFS files added/removed/changed (from the file
// indexes), per memory the sectors whose bytes differ (erase + write for a
// flasher that skips unchanged sectors) against the sectors plain dfu-util
// erases and writes (every sector NEW's elements touch), and the modeled
// device time of both from the board's timing.
#pragma once

#include <span>
#include <string>

#include "host/expected.h"
#include "runtime/board.h"

namespace onedfu::packer {

using namespace host;

// The report as text. Bytes of a memory that OLD does not carry count as erased.
Expected<std::string> DiffPackages(std::span<const uint8_t> old_bytes, const std::string& old_name,
                                   std::span<const uint8_t> new_bytes, const std::string& new_name,
                                   const runtime::Board& board);

}  // namespace onedfu::packer
