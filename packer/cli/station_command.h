// `onedfu flash PKG --all | --wait`: the factory station's flags, per-board status lines and
// summary over onedfu_flasher's RunStation (flasher/station.h).
#pragma once

#include <boost/program_options.hpp>

#include "flasher/flash.h"

namespace onedfu::cli {

// The station options of `onedfu flash` (added to its options_description).
void AddStationOptions(boost::program_options::options_description& options);
// True when the command line has a station option (--all, --wait, or one that needs them).
bool WantsStation(const boost::program_options::variables_map& vm);
// Runs the station for `package` with the single-board `flash` options (full, plain_dfuse,
// timeout). Exit status: 0 when every board succeeded and, with --expect N, exactly N were
// flashed; 1 otherwise; 2 bad usage.
int FlashStation(const boost::program_options::variables_map& vm, const flasher::FlashPackage& package,
                 flasher::FlashOptions flash);

}  // namespace onedfu::cli
