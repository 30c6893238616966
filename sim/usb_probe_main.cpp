// onedfu-usb-probe: runs a host command against a fake DFU device on the virtual USB bus.
//
//   onedfu-usb-probe [--trace] [--stats] [--timeout MS] -- COMMAND ARGS...
//
// Exit status: COMMAND's, or 2 for a usage error, 125 when the bus or command could not be set up.
// --trace logs every usbdevfs request to stderr; --stats prints the transport counters to stderr;
// --timeout kills COMMAND after MS milliseconds (then the exit status is 125).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "probe_device.h"
#include "umockdev_usb.h"

namespace {

constexpr int kUsageError = 2;
constexpr int kSetupError = 125;

int Usage() {
  std::fputs("usage: onedfu-usb-probe [--trace] [--stats] [--timeout MS] -- COMMAND ARGS...\n", stderr);
  return kUsageError;
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  if (!onedfu::sim::UmockdevUsb::ReexecUnderWrapperIfNeeded(argc, argv, &error)) {
    std::fprintf(stderr, "onedfu-usb-probe: %s\n", error.c_str());
    return kSetupError;
  }

  onedfu::sim::UmockdevUsbOptions options;
  bool print_stats = false;
  std::vector<std::string> command;
  int i = 1;
  for (; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    }
    if (std::strcmp(argv[i], "--trace") == 0) {
      options.trace = true;
    } else if (std::strcmp(argv[i], "--stats") == 0) {
      print_stats = true;
    } else if (std::strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      char* end = nullptr;
      const unsigned long ms = std::strtoul(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0' || ms == 0 || ms > 24ul * 3600 * 1000) return Usage();
      options.command_timeout_ms = static_cast<unsigned>(ms);
    } else {
      return Usage();
    }
  }
  for (; i < argc; ++i) command.emplace_back(argv[i]);
  if (command.empty()) return Usage();

  onedfu::sim::ProbeDfuDevice device;
  onedfu::sim::UmockdevUsb usb(device, options);
  const int status = usb.RunCommand(command);
  if (status < 0) {
    std::fprintf(stderr, "onedfu-usb-probe: %s\n", usb.LastError().c_str());
    return kSetupError;
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
