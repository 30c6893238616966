// `onedfu-sim run`: power the simulated board on from its state directory, attach it to the
// virtual USB bus and run a host command against it (DESIGN.md 8).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli_options.h"
#include "host/board_json.h"
#include "host/signing.h"
#include "sim_board.h"
#include "sim_commands.h"
#include "sim_device.h"
#include "stats.h"
#include "umockdev_usb.h"

namespace onedfu::sim {
namespace {

constexpr const char* kRunUsage =
    "usage: onedfu-sim run [--board BOARD] [--state DIR] [--enter-dfu] [--poll-timeout-cap MS]\n"
    "                      [--timeout MS] [--serial TEXT] [--unplug-after N] [--trace] [--verbose]\n"
    "                      [--trust KEY.pub.pem]... -- COMMAND ARGS...\n"
    "\n"
    "Powers the simulated board on from the flash images in DIR (one <memory>.bin per memory,\n"
    "created erased with a bootloader image when missing), attaches it as a USB device the real\n"
    "libusb sees (umockdev), runs COMMAND, and returns COMMAND's exit status. Writes\n"
    "DIR/stats.json: modeled device time, erases per sector, bytes programmed, control\n"
    "transfers, bytes on the wire. The state persists between runs.\n"
    "\n"
    "  --board BOARD         board file (path or id; default: the default board)\n"
    "  --state DIR           state directory (default: ./onedfu-sim-state)\n"
    "  --enter-dfu           hold the boot button: stay in the bootloader's DFU mode\n"
    "  --trust KEY.pub.pem   a bootloader built with this Ed25519 key (repeatable: key rotation):\n"
    "                        boots only records signed by one of them, keeps the security\n"
    "                        counter, re-hashes a verified record only after an update\n"
    "  --poll-timeout-cap MS report modeled bwPollTimeout up to MS (default 0: hosts poll at once)\n"
    "  --timeout MS          kill COMMAND after MS milliseconds (exit status 125)\n"
    "  --serial TEXT         USB serial number string (default SIM000000001)\n"
    "  --unplug-after N      pull the cable after N control transfers in DFU mode (it stays off)\n"
    "  --trace               log every USB request to stderr\n"
    "  --verbose             print the boots and the modeled totals to stderr\n"
    "\n"
    "Exit status: COMMAND's; 2 usage error; 125 the board or the bus could not be set up.\n";

int Usage(const char* why) {
  if (why != nullptr) std::fprintf(stderr, "onedfu-sim run: %s\n", why);
  std::fputs(kRunUsage, stderr);
  return kExitUsage;
}

}  // namespace

int RunCommandMain(const std::vector<std::string>& args) {
  std::string board_arg;
  const SubcommandOptions parsed = ParseSubcommandOptions(
      args, {"--board", "--state", "--poll-timeout-cap", "--timeout", "--serial", "--unplug-after", "--trust"},
      {"--help", "--enter-dfu", "--trace", "--verbose"});
  if (parsed.Flag("--help")) {
    std::fputs(kRunUsage, stdout);
    return 0;
  }
  if (!parsed.error.empty()) return Usage(parsed.error.c_str());
  if (!parsed.positional.empty()) return Usage(("unexpected argument '" + parsed.positional[0] + "' before --").c_str());
  board_arg = parsed.Value("--board");
  const std::string state = parsed.Value("--state", "onedfu-sim-state");
  const bool enter_dfu = parsed.Flag("--enter-dfu");
  const bool verbose = parsed.Flag("--verbose");
  SimDeviceOptions device_options;
  UmockdevUsbOptions usb_options;
  usb_options.trace = parsed.Flag("--trace");
  if (parsed.Has("--serial")) device_options.serial = parsed.Value("--serial");
  unsigned long long number = 0;
  if (parsed.Has("--poll-timeout-cap")) {
    if (!ParseNumber(parsed.Value("--poll-timeout-cap"), 0xffffff, &number)) return Usage("--poll-timeout-cap: bad number");
    device_options.max_poll_timeout_ms = static_cast<uint32_t>(number);
  }
  if (parsed.Has("--timeout")) {
    if (!ParseNumber(parsed.Value("--timeout"), 24ull * 3600 * 1000, &number) || number == 0) {
      return Usage("--timeout: bad number");
    }
    usb_options.command_timeout_ms = static_cast<unsigned>(number);
  }
  if (parsed.Has("--unplug-after")) {
    if (!ParseNumber(parsed.Value("--unplug-after"), 0xffffffffu, &number) || number == 0) {
      return Usage("--unplug-after: bad number");
    }
    device_options.unplug_after_transfers = number;
  }
  const std::vector<std::string>& command = parsed.after_dashes;
  if (command.empty()) return Usage("no COMMAND after --");

  std::filesystem::path board_path;
  if (board_arg.empty()) {
    board_path = host::DefaultBoardPath();
    if (board_path.empty()) {
      std::fprintf(stderr, "onedfu-sim run: no default board found (set ONEDFU_BOARDS_DIR or --board)\n");
      return kExitSetup;
    }
  } else {
    auto found = host::FindBoard(board_arg);
    if (!found.ok()) {
      std::fprintf(stderr, "onedfu-sim run: %s\n", found.error().message.c_str());
      return kExitSetup;
    }
    board_path = found.value();
  }
  auto board = host::LoadBoardFile(board_path);
  if (!board.ok()) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", board.error().message.c_str());
    return kExitSetup;
  }
  auto sim = SimBoard::Open(board.value(), state);
  if (!sim.ok()) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", sim.error().message.c_str());
    return kExitSetup;
  }
  SimBoard& simboard = *sim.value();
  if (parsed.Has("--trust")) {
    std::vector<runtime::Ed25519PublicKey> keys;
    for (const std::string& path : parsed.All("--trust")) {
      auto key = host::LoadPublicKey(path);
      if (!key.ok()) {
        std::fprintf(stderr, "onedfu-sim run: --trust: %s\n", key.error().message.c_str());
        return kExitSetup;
      }
      keys.push_back(key.value());
    }
    simboard.SetTrust(std::move(keys));
  }

  SimUsbDevice device(simboard, device_options);
  if (!device.PowerOn(enter_dfu)) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", device.error().c_str());
    return kExitSetup;
  }
  int status = 0;
  std::string usb_error;
  {
    UmockdevUsb usb(device, usb_options);
    status = usb.RunCommand(command);
    if (status < 0) usb_error = usb.LastError();
  }
  simboard.Sync();

  RunReport report;
  report.command = command;
  report.exit_status = status;
  report.boots = device.boots();
  report.usb = device.usage();
  const std::filesystem::path stats_path = std::filesystem::path(state) / "stats.json";
  if (auto written = WriteStatsJson(stats_path, simboard, report); !written.ok()) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", written.error().message.c_str());
    if (status == 0) status = kExitSetup;
  }
  if (verbose) {
    for (const BootEvent& b : report.boots) {
      std::fprintf(stderr, "onedfu-sim: boot (%s): %s (%s)%s%s\n", b.cause.c_str(),
                   b.application ? "application" : "DFU mode", b.reason.c_str(),
                   b.message.empty() ? "" : ": ", b.message.c_str());
    }
    std::fprintf(stderr, "onedfu-sim: modeled device time %.3f s, %llu control transfers, %llu bytes on the wire; %s\n",
                 static_cast<double>(ModeledDeviceUs(simboard, report.usb)) / 1e6,
                 static_cast<unsigned long long>(report.usb.control_transfers),
                 static_cast<unsigned long long>(report.usb.bytes_on_wire()), stats_path.c_str());
  }
  if (status < 0) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", usb_error.c_str());
    return kExitSetup;
  }
  return status;
}

}  // namespace onedfu::sim
