// onedfu-usb-probe: runs a host command against the bootloader in DFU mode on a small board in
// RAM (ProbeBoard, probe_board.h) on the virtual USB bus.
//
//   onedfu-usb-probe [--trace] [--stats] [--timeout MS] -- COMMAND ARGS...
//
// Exit status: COMMAND's, or 2 for a usage error, 125 when the bus or command could not be set up.
// --trace logs every usbdevfs request to stderr; --stats prints the transport counters to stderr;
// --timeout kills COMMAND after MS milliseconds (then the exit status is 125).
#include <cstdio>
#include <string>
#include <vector>

#include "cli_options.h"
#include "probe_board.h"
#include "umockdev_usb.h"

namespace {

using onedfu::sim::kExitSetup;

int Usage() {
  std::fputs("usage: onedfu-usb-probe [--trace] [--stats] [--timeout MS] -- COMMAND ARGS...\n", stderr);
  return onedfu::sim::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  if (!onedfu::sim::UmockdevUsb::ReexecUnderWrapperIfNeeded(argc, argv, &error)) {
    std::fprintf(stderr, "onedfu-usb-probe: %s\n", error.c_str());
    return kExitSetup;
  }

  const std::vector<std::string> args(argv + 1, argv + argc);
  const onedfu::sim::SubcommandOptions parsed =
      onedfu::sim::ParseSubcommandOptions(args, {"--timeout"}, {"--trace", "--stats"});
  if (!parsed.error.empty() || !parsed.positional.empty() || parsed.after_dashes.empty()) return Usage();
  onedfu::sim::UmockdevUsbOptions options;
  options.trace = parsed.Flag("--trace");
  const bool print_stats = parsed.Flag("--stats");
  if (parsed.Has("--timeout")) {
    unsigned long long ms = 0;
    if (!onedfu::sim::ParseNumber(parsed.Value("--timeout"), 24ull * 3600 * 1000, &ms) || ms == 0) return Usage();
    options.command_timeout_ms = static_cast<unsigned>(ms);
  }
  const std::vector<std::string>& command = parsed.after_dashes;

  onedfu::sim::ProbeBoard board;
  if (!board.ok()) {
    std::fprintf(stderr, "onedfu-usb-probe: %s\n", board.error().c_str());
    return kExitSetup;
  }
  onedfu::sim::UmockdevUsb usb(board.device(), options);
  const int status = usb.RunCommand(command);
  if (status < 0) {
    std::fprintf(stderr, "onedfu-usb-probe: %s\n", usb.LastError().c_str());
    return kExitSetup;
  }
  if (print_stats) {
    const onedfu::sim::UmockdevUsbStats& s = usb.Stats();
    std::fprintf(stderr,
                 "usb stats: control_transfers=%llu stalls=%llu bytes_out=%llu bytes_in=%llu "
                 "opens=%u plugs=%u\n",
                 static_cast<unsigned long long>(s.control_transfers),
                 static_cast<unsigned long long>(s.stalls),
                 static_cast<unsigned long long>(s.bytes_out),
                 static_cast<unsigned long long>(s.bytes_in), s.opens, s.plugs);
  }
  return status;
}
