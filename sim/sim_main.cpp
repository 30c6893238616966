// onedfu-sim: the simulated board (DESIGN.md 8). Subcommands: run, powercut, romfs.
#include <cstdio>
#include <string>
#include <vector>

#include "cli_options.h"
#include "sim_commands.h"
#include "umockdev_usb.h"

namespace {

constexpr const char* kUsage =
    "usage: onedfu-sim COMMAND [ARGS...]\n"
    "\n"
    "The onedfu bootloader core on a simulated board: file-backed flash with a timing model,\n"
    "visible to unmodified host tools (dfu-util, pyusb, libusb programs) as a USB device.\n"
    "\n"
    "Commands:\n"
    "  run       power the board on and run a host command against it:\n"
    "            onedfu-sim run --board BOARD.json --state DIR [--enter-dfu] -- COMMAND ARGS...\n"
    "  powercut  prove an update cannot brick the board: cut power at every flash operation:\n"
    "            onedfu-sim powercut --board BOARD.json --from OLD.dfu --to NEW.dfu\n"
    "  romfs     inspect or change the board's in-place ROMFS region\n"
    "\n"
    "`onedfu-sim COMMAND --help` describes each command.\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? onedfu::sim::kExitUsage : 0;
  }
  const std::string command = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  const bool wants_help = !rest.empty() && (rest[0] == "-h" || rest[0] == "--help");
  if ((command == "run" || command == "powercut") && !wants_help) {
    // The virtual USB bus needs this process under umockdev-wrapper (re-plug uevents).
    std::string error;
    if (!onedfu::sim::UmockdevUsb::ReexecUnderWrapperIfNeeded(argc, argv, &error)) {
      std::fprintf(stderr, "onedfu-sim: %s\n", error.c_str());
      return onedfu::sim::kExitSetup;
    }
  }
  if (command == "run") return onedfu::sim::RunCommandMain(rest);
  if (command == "powercut") return onedfu::sim::PowercutCommand(rest);
  if (command == "romfs") return onedfu::sim::RomfsCommand(rest);
  std::fprintf(stderr, "onedfu-sim: unknown command '%s'\n\n%s", command.c_str(), kUsage);
  return onedfu::sim::kExitUsage;
}
