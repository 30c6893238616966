// `onedfu-sim romfs push IMG|DIR | pop | ls | cat PATH --board BOARD.json --state DIR`
// (issue 4, host side): the simulated board's in-place ROMFS region, changed and read through
// runtime::RegionStore exactly as the device does it (no USB involved).
//
// The board is the state directory of `onedfu-sim run` (SimBoard: `DIR/<memory name>.bin`, a
// missing memory file is created erased, with the bootloader image in its region); only the
// romfs region's memory is written, through FileFlash (every change is in the file when the
// call returns).
//   push IMG|DIR  Mount (as at start-up: erases popped / unfinished images above the top),
//                 then push the image: a ROMFS image file as is, or a directory built with
//                 the packer's ROMFS builder for the board's arch (native .mpy variants
//                 chosen as by `onedfu pack`). Prints the new image's index, address, size.
//   pop           Mount, then mark the newest pushed image removed (the base image written by
//                 a firmware package is never popped; it is erased at the next start-up).
//   ls            The stack (each image: index, kind, address, bytes, state, files) and the
//                 merged view newest first (each path once: type, size, image index).
//                 Read-only (Scan, no recovery).
//   cat PATH      The file's bytes, exactly, on stdout. Read-only.
// Host only.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace onedfu::sim {

// Arguments after "romfs". Output (listing, file bytes) goes to `out`, messages to `err`.
// Returns 0 on success, 1 on failure (message on `err`), 2 on a usage error.
int RunRomfs(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace onedfu::sim
