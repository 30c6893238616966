// `onedfu-sim run`: power the simulated board on from its state directory, attach it to the
// virtual USB bus and run a host command against it (DESIGN.md 8).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli_options.h"
#include "emulated_device.h"
#include "host/board_json.h"
#include "host/signing.h"
#include "sim_board.h"
#include "sim_commands.h"
#include "sim_device.h"
#include "state_lock.h"
#include "stats.h"
#include "umockdev_usb.h"

namespace onedfu::sim {
namespace {

constexpr const char* kRunUsage =
    "usage: onedfu-sim run [--board BOARD] [--state DIR [BOARD OPTIONS]]... [--poll-timeout-cap MS]\n"
    "                      [--timeout MS] [--realtime] [--trace] [--verbose] -- COMMAND ARGS...\n"
    "  BOARD OPTIONS: [--serial TEXT] [--enter-dfu] [--unplug-after N] [--flash-error-at N]\n"
    "                 [--plug-delay MS] [--interrupt-after N] [--app-usb-id VID:PID] [--app-no-will-detach]\n"
    "                 [--no-hash-command] [--foreign-bootloader]  [--trust KEY.pub.pem]...\n"
    "       onedfu-sim run [--board BOARD] [--state DIR] [--enter-dfu] --emulate BOOTLOADER.elf\n"
    "                      [--cut-power-after MEMORY:N] [--timeout MS] [--trace] [--verbose] -- COMMAND...\n"
    "\n"
    "Powers the simulated boards on from the flash images in their state directories (one\n"
    "<memory>.bin per memory, created erased with a bootloader image when missing), attaches\n"
    "them to one virtual USB bus the real libusb sees (umockdev; the board of the k-th --state\n"
    "on port k, bus path 1-k), runs COMMAND, and returns COMMAND's exit status. Writes\n"
    "DIR/stats.json per board: modeled device time, erases per sector, bytes programmed,\n"
    "control transfers, bytes on the wire. The state persists between runs; one run at a time\n"
    "uses a state directory (a second one is refused while the first holds DIR/.lock).\n"
    "\n"
    "  --board BOARD         board file (path or id; default: the default board), every board\n"
    "  --state DIR           a board's state directory (repeat for more boards; default: one\n"
    "                        board in ./onedfu-sim-state)\n"
    "  --emulate ELF         run the real Cortex-M bootloader ELF (scripts/size) on an emulated\n"
    "                        STM32F767 (sim/emulator) instead of the host build of the core;\n"
    "                        (bwPollTimeout is the binary's own unless --poll-timeout-cap is\n"
    "                        given); --serial and --unplug-after do not apply\n"
    "  --cut-power-after MEMORY:N  with --emulate: power fails (torn) in the operation after\n"
    "                        N more flash operations on MEMORY (e.g. internal:3)\n"
    "  --trust KEY.pub.pem   a bootloader built with this Ed25519 key (repeatable: key rotation):\n"
    "                        boots only records signed by one of them, keeps the security\n"
    "                        counter, re-hashes a verified record only after an update\n"
    "  --poll-timeout-cap MS report modeled bwPollTimeout up to MS (default 0: hosts poll at once)\n"
    "  --timeout MS          kill COMMAND after MS milliseconds (exit status 125)\n"
    "  --realtime            each request takes its modeled device time (erase, program, bus):\n"
    "                        the answer comes that long after the request; boards work in\n"
    "                        parallel (default: answers at once)\n"
    "  --trace               log every USB request to stderr\n"
    "  --verbose             print the boots and the modeled totals to stderr\n"
    "Board options apply to the board of the --state they follow; given before the first\n"
    "--state, to every board:\n"
    "  --serial TEXT         USB serial number string, kept in DIR/serial (default: the one kept\n"
    "                        there, else SIM000000001 for the first board, ...02 for the next)\n"
    "  --enter-dfu           hold the boot button: stay in the bootloader's DFU mode\n"
    "  --unplug-after N      pull the cable after N control transfers in DFU mode (it stays off)\n"
    "  --flash-error-at N    in DFU mode, the Nth erase/write of each memory fails (once per boot)\n"
    "  --plug-delay MS       plug the board in MS milliseconds after COMMAND starts\n"
    "  --interrupt-after N   send COMMAND SIGINT (Ctrl-C) after N control transfers in DFU mode\n"
    "  --app-usb-id VID:PID  the application enumerates with these USB ids, not the board's\n"
    "  --app-no-will-detach  the application's DFU functional descriptor lacks WillDetach: after\n"
    "                        DETACH it waits for a USB reset\n"
    "  --no-hash-command     the bootloader neither lists nor accepts onedfu's hash command (0x48)\n"
    "  --foreign-bootloader  a DfuSe bootloader that is not onedfu's (manufacturer\n"
    "                        \"STMicroelectronics\", no hash command), e.g. ST's system bootloader\n"
    "\n"
    "Exit status: COMMAND's; 2 usage error; 125 the boards or the bus could not be set up.\n";

constexpr const char* kSerialFile = "serial";

int Usage(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "onedfu-sim run: %s\n", why.c_str());
  std::fputs(kRunUsage, stderr);
  return kExitUsage;
}

// One board of the run, as the command line describes it.
struct BoardArgs {
  std::string state;
  std::string serial;  // "" = kept in the state directory, else generated
  bool enter_dfu = false;
  SimDeviceOptions device;
  unsigned plug_delay_ms = 0;
};

// Applies one board option to `board`; "" when fine, else what is wrong.
std::string ApplyBoardOption(const std::string& name, const std::string& value, BoardArgs* board) {
  unsigned long long number = 0;
  if (name == "--serial") {
    if (value.empty() || value.size() > 63) return "--serial: 1 to 63 characters";
    board->serial = value;
  } else if (name == "--enter-dfu") {
    board->enter_dfu = true;
  } else if (name == "--unplug-after") {
    if (!ParseNumber(value, 0xffffffffu, &number) || number == 0) return "--unplug-after: bad number";
    board->device.unplug_after_transfers = number;
  } else if (name == "--flash-error-at") {
    if (!ParseNumber(value, 0xffffffffu, &number) || number == 0) return "--flash-error-at: bad number";
    board->device.flash_error_at = static_cast<uint32_t>(number);
  } else if (name == "--interrupt-after") {
    if (!ParseNumber(value, 0xffffffffu, &number) || number == 0) return "--interrupt-after: bad number";
    board->device.interrupt_after_transfers = number;
  } else if (name == "--app-usb-id") {
    unsigned vid = 0, pid = 0;
    char end = 0;
    if (std::sscanf(value.c_str(), "%4x:%4x%c", &vid, &pid, &end) != 2 || vid == 0) {
      return "--app-usb-id: VID:PID in hex, e.g. f055:9800";
    }
    board->device.app_usb_id = vid << 16 | pid;
  } else if (name == "--app-no-will-detach") {
    board->device.app_will_detach = false;
  } else if (name == "--no-hash-command") {
    board->device.hash_command = false;
  } else if (name == "--foreign-bootloader") {
    board->device.hash_command = false;
    board->device.manufacturer = "STMicroelectronics";
  } else if (name == "--plug-delay") {
    if (!ParseNumber(value, 24ull * 3600 * 1000, &number)) return "--plug-delay: bad number";
    board->plug_delay_ms = static_cast<unsigned>(number);
  }
  return {};
}

// The serial a state directory keeps (first line of DIR/serial), "" when none.
std::string StoredSerial(const std::filesystem::path& dir) {
  std::ifstream in(dir / kSerialFile);
  std::string line;
  if (!in || !std::getline(in, line)) return {};
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

// Gives every board its serial (see the usage text) and keeps it in DIR/serial. Errors name
// the file or the boards that share a serial.
host::Outcome AssignSerials(std::vector<BoardArgs>& boards) {
  std::set<std::string> taken;
  for (BoardArgs& b : boards) {
    if (b.serial.empty()) b.serial = StoredSerial(b.state);
    if (!b.serial.empty() && !taken.insert(b.serial).second) {
      return host::Fail("two boards have the serial " + b.serial + " (" + (std::filesystem::path(b.state) / kSerialFile).string() +
                        "); give one --serial or remove its serial file");
    }
  }
  unsigned next = 1;
  for (BoardArgs& b : boards) {
    if (b.serial.empty()) {
      char text[16];
      do {
        std::snprintf(text, sizeof text, "SIM%09u", next++);
      } while (taken.count(text) != 0);
      b.serial = text;
      taken.insert(b.serial);
    }
    b.device.serial = b.serial;
    if (StoredSerial(b.state) == b.serial) continue;
    const std::filesystem::path path = std::filesystem::path(b.state) / kSerialFile;
    std::error_code ec;
    std::filesystem::create_directories(b.state, ec);
    std::ofstream out(path, std::ios::trunc);
    out << b.serial << "\n";
    if (!out.flush()) return host::Fail(path.string() + ": cannot write the board's serial");
  }
  return host::Success();
}

void PrintBoots(const std::vector<BootEvent>& boots) {
  for (const BootEvent& b : boots) {
    std::fprintf(stderr, "onedfu-sim: boot (%s): %s (%s)%s%s\n", b.cause.c_str(), b.application ? "application" : "DFU mode",
                 b.reason.c_str(), b.message.empty() ? "" : ": ", b.message.c_str());
    if (b.instructions > 0) {
      std::fprintf(stderr, "onedfu-sim: boot (%s): %llu Cortex-M7 instructions to the decision;", b.cause.c_str(),
                   static_cast<unsigned long long>(b.instructions));
      for (const auto& [name, n] : b.instructions_by_function) {
        std::fprintf(stderr, " %s %llu,", name.c_str(), static_cast<unsigned long long>(n));
      }
      std::fprintf(stderr, "\n");
    }
  }
}

// run --emulate: the emulated board (sim/emulator/emulated_device.h) on the same bus and stats.
int RunEmulated(SimBoard& simboard, emu::EmulatedDeviceOptions options, bool enter_dfu, bool verbose,
                const UmockdevUsbOptions& usb_options, const std::vector<std::string>& command,
                const std::string& state) {
  options.trace = usb_options.trace || verbose;
  auto created = emu::EmulatedDevice::Create(simboard, options);
  if (!created.ok()) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", created.error().message.c_str());
    return kExitSetup;
  }
  emu::EmulatedDevice& device = *created.value();
  simboard.ResetUsage();  // the factory programming of the bootloader is not part of the run
  device.PowerOn(enter_dfu);
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
  if (!device.error().empty()) std::fprintf(stderr, "onedfu-sim run: emulator: %s\n", device.error().c_str());
  if (verbose) {
    PrintBoots(report.boots);
    std::fprintf(stderr, "onedfu-sim: modeled device time %.3f s, %llu control transfers; %s\n",
                 static_cast<double>(ModeledDeviceUs(simboard, report.usb)) / 1e6,
                 static_cast<unsigned long long>(report.usb.control_transfers), stats_path.c_str());
  }
  if (status < 0) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", usb_error.c_str());
    return kExitSetup;
  }
  return status;
}

}  // namespace

int RunCommandMain(const std::vector<std::string>& args) {
  const std::set<std::string> board_values = {"--serial", "--unplug-after", "--flash-error-at", "--plug-delay",
                                              "--interrupt-after", "--app-usb-id"};
  const std::set<std::string> board_flags = {"--enter-dfu", "--app-no-will-detach", "--no-hash-command",
                                             "--foreign-bootloader"};
  const SubcommandOptions parsed = ParseSubcommandOptions(
      args, {"--board", "--state", "--poll-timeout-cap", "--timeout", "--serial", "--unplug-after", "--flash-error-at",
             "--plug-delay", "--interrupt-after", "--emulate", "--cut-power-after", "--trust", "--app-usb-id"},
      {"--help", "--enter-dfu", "--realtime", "--trace", "--verbose", "--app-no-will-detach", "--no-hash-command",
       "--foreign-bootloader"});
  if (parsed.Flag("--help")) {
    std::fputs(kRunUsage, stdout);
    return 0;
  }
  if (!parsed.error.empty()) return Usage(parsed.error);
  if (!parsed.positional.empty()) return Usage("unexpected argument '" + parsed.positional[0] + "' before --");
  const std::string board_arg = parsed.Value("--board");
  const bool verbose = parsed.Flag("--verbose");
  UmockdevUsbOptions usb_options;
  usb_options.trace = parsed.Flag("--trace");
  usb_options.realtime = parsed.Flag("--realtime");
  uint32_t poll_cap = 0;
  unsigned long long number = 0;
  if (parsed.Has("--poll-timeout-cap")) {
    if (!ParseNumber(parsed.Value("--poll-timeout-cap"), 0xffffff, &number)) return Usage("--poll-timeout-cap: bad number");
    poll_cap = static_cast<uint32_t>(number);
  }
  if (parsed.Has("--timeout")) {
    if (!ParseNumber(parsed.Value("--timeout"), 24ull * 3600 * 1000, &number) || number == 0) {
      return Usage("--timeout: bad number");
    }
    usb_options.command_timeout_ms = static_cast<unsigned>(number);
  }

  // Board options before the first --state are the defaults of every board.
  BoardArgs defaults;
  std::vector<BoardArgs> boards;
  for (const auto& [name, value] : parsed.sequence) {
    if (name == "--state") {
      boards.push_back(defaults);
      boards.back().state = value;
      continue;
    }
    if (!board_values.count(name) && !board_flags.count(name)) continue;
    if (std::string problem = ApplyBoardOption(name, value, boards.empty() ? &defaults : &boards.back()); !problem.empty()) {
      return Usage(problem);
    }
  }
  if (boards.empty()) {
    boards.push_back(defaults);
    boards.back().state = "onedfu-sim-state";
  }
  if (boards.size() > 1 && !defaults.serial.empty()) return Usage("--serial before the first --state would give every board the same serial");
  for (size_t i = 0; i < boards.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (std::filesystem::absolute(boards[i].state).lexically_normal() == std::filesystem::absolute(boards[j].state).lexically_normal()) {
        return Usage("the state directory " + boards[i].state + " is given twice");
      }
    }
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
  // One run per state directory at a time; then clear what a killed run left there.
  std::vector<std::unique_ptr<StateLock>> locks;
  for (const BoardArgs& b : boards) {
    auto lock = StateLock::Acquire(b.state, board.value().id);
    if (!lock.ok()) {
      std::fprintf(stderr, "onedfu-sim run: %s\n", lock.error().message.c_str());
      return kExitSetup;
    }
    lock.value()->CleanStaleFiles();
    locks.push_back(std::move(lock.value()));
  }
  std::vector<std::unique_ptr<SimBoard>> simboards;
  for (const BoardArgs& b : boards) {
    auto sim = SimBoard::Open(board.value(), b.state);
    if (!sim.ok()) {
      std::fprintf(stderr, "onedfu-sim run: %s\n", sim.error().message.c_str());
      return kExitSetup;
    }
    simboards.push_back(std::move(sim.value()));
  }
  if (auto serials = AssignSerials(boards); !serials.ok()) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", serials.error().message.c_str());
    return kExitSetup;
  }
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
    for (auto& simboard : simboards) simboard->SetTrust(keys);
  }

  if (parsed.Has("--emulate")) {
    if (simboards.size() != 1) return Usage("--emulate runs one board: give at most one --state");
    SimBoard& simboard = *simboards[0];
    emu::EmulatedDeviceOptions options;
    options.bootloader_elf = parsed.Value("--emulate");
    if (parsed.Has("--poll-timeout-cap")) options.max_poll_timeout_ms = static_cast<int64_t>(poll_cap);
    if (parsed.Has("--cut-power-after")) {
      const std::string cut = parsed.Value("--cut-power-after");
      const size_t colon = cut.find(':');
      unsigned long long n = 0;
      if (colon == std::string::npos || !ParseNumber(cut.substr(colon + 1), 0xffffffffu, &n)) {
        return Usage("--cut-power-after: expected MEMORY:N");
      }
      for (size_t i = 0; i < simboard.memory_count(); ++i) {
        if (cut.compare(0, colon, simboard.board().memories[i].name) == 0) options.cut_memory = static_cast<int>(i);
      }
      if (options.cut_memory < 0) return Usage("--cut-power-after: no memory '" + cut.substr(0, colon) + "'");
      options.cut_after = static_cast<uint32_t>(n);
    }
    return RunEmulated(simboard, options, boards[0].enter_dfu, verbose, usb_options, command, boards[0].state);
  }
  if (parsed.Has("--cut-power-after")) return Usage("--cut-power-after needs --emulate");
  std::vector<std::unique_ptr<SimUsbDevice>> devices;
  std::vector<UmockdevPort> ports;
  for (size_t i = 0; i < boards.size(); ++i) {
    boards[i].device.max_poll_timeout_ms = poll_cap;
    devices.push_back(std::make_unique<SimUsbDevice>(*simboards[i], boards[i].device));
    if (!devices.back()->PowerOn(boards[i].enter_dfu)) {
      std::fprintf(stderr, "onedfu-sim run: %s: %s\n", boards[i].state.c_str(), devices.back()->error().c_str());
      return kExitSetup;
    }
    ports.push_back(UmockdevPort{devices.back().get(), boards[i].plug_delay_ms});
  }
  int status = 0;
  std::string usb_error;
  {
    UmockdevUsb usb(ports, usb_options);
    for (const auto& lock : locks) lock->NoteTestbed(usb.TestbedRoot());
    status = usb.RunCommand(command);
    if (status < 0) usb_error = usb.LastError();
  }
  for (const auto& lock : locks) lock->ForgetTestbed();  // the testbed removed its directory

  for (size_t i = 0; i < boards.size(); ++i) {
    SimBoard& simboard = *simboards[i];
    simboard.Sync();
    RunReport report;
    report.command = command;
    report.exit_status = status;
    report.boots = devices[i]->boots();
    report.usb = devices[i]->usage();
    const std::filesystem::path stats_path = std::filesystem::path(boards[i].state) / "stats.json";
    if (auto written = WriteStatsJson(stats_path, simboard, report); !written.ok()) {
      std::fprintf(stderr, "onedfu-sim run: %s\n", written.error().message.c_str());
      if (status == 0) status = kExitSetup;
    }
    if (verbose) {
      const char* who = boards.size() > 1 ? boards[i].serial.c_str() : "";
      for (const BootEvent& b : report.boots) {
        std::fprintf(stderr, "onedfu-sim%s%s: boot (%s): %s (%s)%s%s\n", *who ? " " : "", who, b.cause.c_str(),
                     b.application ? "application" : "DFU mode", b.reason.c_str(),
                     b.message.empty() ? "" : ": ", b.message.c_str());
      }
      std::fprintf(stderr, "onedfu-sim%s%s: modeled device time %.3f s, %llu control transfers, %llu bytes on the wire; %s\n",
                   *who ? " " : "", who, static_cast<double>(ModeledDeviceUs(simboard, report.usb)) / 1e6,
                   static_cast<unsigned long long>(report.usb.control_transfers),
                   static_cast<unsigned long long>(report.usb.bytes_on_wire()), stats_path.c_str());
    }
  }
  if (status < 0) {
    std::fprintf(stderr, "onedfu-sim run: %s\n", usb_error.c_str());
    return kExitSetup;
  }
  return status;
}

}  // namespace onedfu::sim
