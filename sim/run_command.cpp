// `onedfu-sim run`: power the simulated board on from its state directory, attach it to the
// virtual USB bus and run a host command against it (DESIGN.md 8).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "host/board_json.h"
#include "sim_board.h"
#include "sim_commands.h"
#include "sim_device.h"
#include "stats.h"
#include "umockdev_usb.h"

namespace onedfu::sim {
namespace {

constexpr int kUsageError = 2;
constexpr int kSetupError = 125;

constexpr const char* kRunUsage =
    "usage: onedfu-sim run [--board BOARD] [--state DIR] [--enter-dfu] [--poll-timeout-cap MS]\n"
    "                      [--timeout MS] [--serial TEXT] [--unplug-after N] [--trace] [--verbose]\n"
    "                      -- COMMAND ARGS...\n"
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
  return kUsageError;
}

bool ParseUnsigned(const std::string& text, unsigned long max, unsigned long* out) {
  char* end = nullptr;
  const unsigned long value = std::strtoul(text.c_str(), &end, 10);
  if (text.empty() || end == text.c_str() || *end != '\0' || value > max) return false;
  *out = value;
  return true;
}

}  // namespace

int RunCommandMain(const std::vector<std::string>& args) {
  std::string board_arg;
  std::string state = "onedfu-sim-state";
  bool enter_dfu = false;
  bool verbose = false;
  SimDeviceOptions device_options;
  UmockdevUsbOptions usb_options;
  std::vector<std::string> command;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    unsigned long number = 0;
    if (a == "--") {
      ++i;
      break;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kRunUsage, stdout);
      return 0;
    } else if (a == "--board" && has_value) {
      board_arg = args[++i];
    } else if (a == "--state" && has_value) {
      state = args[++i];
    } else if (a == "--enter-dfu") {
      enter_dfu = true;
    } else if (a == "--poll-timeout-cap" && has_value) {
      if (!ParseUnsigned(args[++i], 0xffffff, &number)) return Usage("--poll-timeout-cap: bad number");
      device_options.max_poll_timeout_ms = static_cast<uint32_t>(number);
    } else if (a == "--timeout" && has_value) {
      if (!ParseUnsigned(args[++i], 24ul * 3600 * 1000, &number) || number == 0) {
        return Usage("--timeout: bad number");
      }
      usb_options.command_timeout_ms = static_cast<unsigned>(number);
    } else if (a == "--serial" && has_value) {
      device_options.serial = args[++i];
    } else if (a == "--unplug-after" && has_value) {
      if (!ParseUnsigned(args[++i], 0xffffffffu, &number) || number == 0) return Usage("--unplug-after: bad number");
      device_options.unplug_after_transfers = number;
    } else if (a == "--trace") {
      usb_options.trace = true;
    } else if (a == "--verbose" || a == "-v") {
      verbose = true;
    } else {
      return Usage(("unknown or incomplete option '" + a + "'").c_str());
    }
  }
  command.assign(args.begin() + static_cast<std::ptrdiff_t>(std::min(i, args.size())), args.end());
  if (command.empty()) return Usage("no COMMAND after --");

  std::filesystem::path board_path;
  if (board_arg.empty()) {
    board_path = host::DefaultBoardPath();
    if (board_path.empty()) {
      std::fprintf(stderr, "onedfu-sim run: no default board found (set ONEDFU_BOARDS_DIR or --board)\n");
      return kSetupError;
    }
  } else {
    auto found = host::FindBoard(board_arg);
    if (!found.ok()) {
      std::fprintf(stderr, "onedfu-sim run: %s\n", found.error().message.c_str());
      return kSetupError;
    }
    board_path = found.value();
  }
  auto board = host::LoadBoardFile(board_path);
  if (!board.ok()) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", board.error().message.c_str());
    return kSetupError;
  }
  auto sim = SimBoard::Open(board.value(), state);
  if (!sim.ok()) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", sim.error().message.c_str());
    return kSetupError;
  }
  SimBoard& simboard = *sim.value();

  SimUsbDevice device(simboard, device_options);
  if (!device.PowerOn(enter_dfu)) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", device.error().c_str());
    return kSetupError;
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
    if (status == 0) status = kSetupError;
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
    return kSetupError;
  }
  return status;
}

}  // namespace onedfu::sim
