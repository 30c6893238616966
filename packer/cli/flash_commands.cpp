// `onedfu flash` and `onedfu list`: flags, progress display and exit status over
// onedfu_flasher (flasher/flash.h), which does the work.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "flasher/flash.h"
#include "flasher/libusb_transport.h"
#include "station_command.h"

namespace onedfu::cli {

namespace po = boost::program_options;

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void OnSigint(int) { g_interrupted.store(true); }

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Amount(const std::string& phase, uint64_t n) {
  if (phase.ends_with("erase")) return std::to_string(n) + " sectors";
  char text[32];
  if (n >= 1024 * 1024) {
    std::snprintf(text, sizeof text, "%.2f MiB", static_cast<double>(n) / (1024.0 * 1024.0));
  } else if (n >= 1024) {
    std::snprintf(text, sizeof text, "%.1f KiB", static_cast<double>(n) / 1024.0);
  } else {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(n));
  }
  return text;
}

// A bar per phase on a terminal (stderr), plain lines otherwise, JSON lines with --json (stdout).
class CliProgress final : public flasher::FlashProgress {
 public:
  enum class Style { kTerminal, kPlain, kJson };
  explicit CliProgress(Style style) : style_(style) {}

  void Begin(const std::string& phase, uint64_t total) override {
    Finish();
    phase_ = phase;
    total_ = total;
    done_ = 0;
    start_ = Clock::now();
    last_draw_ = Clock::time_point{};
    open_ = true;
    if (style_ == Style::kJson) Json({{"phase", phase_}, {"done", 0}, {"total", total_}});
    if (style_ == Style::kPlain && total_ > 0) std::fprintf(stderr, "%s: %s ...\n", phase_.c_str(), Amount(phase_, total_).c_str());
  }
  void Advance(uint64_t done) override {
    done_ = done;
    if (done_ > total_) total_ = done_;  // a read that had to cover a whole sector
    const auto now = Clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ != total_) return;
    last_draw_ = now;
    if (style_ == Style::kJson) Json({{"phase", phase_}, {"done", done_}, {"total", total_}});
    if (style_ == Style::kTerminal) Draw();
  }
  void End(const std::string& result) override {
    if (!open_) return;
    open_ = false;
    const double s = Seconds(Clock::now() - start_);
    if (style_ == Style::kJson) {
      Json({{"phase", phase_}, {"done", done_}, {"total", total_}, {"result", result}});
      return;
    }
    if (style_ == Style::kTerminal && total_ > 0) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "%-7s %s (%.1f s)\n", (phase_ + ":").c_str(), result.c_str(), s);
  }
  void Note(const std::string& text) override {
    if (style_ == Style::kJson) {
      Json({{"note", text}});
      return;
    }
    if (style_ == Style::kTerminal && open_ && total_ > 0) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  void Finish() {
    if (open_ && total_ > 0) End(Amount(phase_, done_));
    open_ = false;
  }
  void Json(const nlohmann::json& j) { std::cout << j.dump() << std::endl; }

 private:
  void Draw() {
    const double elapsed = Seconds(Clock::now() - start_);
    const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0;
    const double eta = rate > 0 && total_ > done_ ? static_cast<double>(total_ - done_) / rate : 0;
    constexpr int kWidth = 30;
    const int filled = total_ ? static_cast<int>(kWidth * done_ / total_) : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r\033[K%-7s [%s] %s / %s  %s/s  ETA %.0f s", phase_.c_str(), bar.c_str(),
                 Amount(phase_, done_).c_str(), Amount(phase_, total_).c_str(),
                 Amount(phase_, static_cast<uint64_t>(rate)).c_str(), eta);
    std::fflush(stderr);
  }

  Style style_;
  std::string phase_;
  uint64_t total_ = 0;
  uint64_t done_ = 0;
  bool open_ = false;
  Clock::time_point start_;
  Clock::time_point last_draw_;
};

std::string Ids(const flasher::UsbDevice& d) {
  char text[16];
  std::snprintf(text, sizeof text, "%04x:%04x", d.vid, d.pid);
  return text;
}

}  // namespace

int Flash(const Args& args) {
  po::options_description options("flash options");
  options.add_options()
      ("file", po::value<std::string>()->required(), "the .dfu to flash")
      ("board", po::value<std::string>(), "board JSON (default: the board the package's record names)")
      ("serial", po::value<std::string>(), "the board with this USB serial number")
      ("path", po::value<std::string>(), "the board at this USB path (BUS-PORT, as `onedfu list` shows)")
      ("app-id", po::value<std::string>(), "VID:PID (hex) of the board's application when it differs from the "
                                            "bootloader's (the board file's), e.g. f055:9800")
      ("full", "rewrite every sector the package touches")
      ("dry-run", "print the plan (sectors, bytes, modeled device time); change nothing")
      ("plain-dfuse", "treat the bootloader as a plain DfuSe one (no record read, full write in file order)")
      ("json", "JSON lines on stdout: {phase, done, total[, result]}, notes, and a final result")
      ("timeout", po::value<double>()->default_value(20), "seconds to wait for the board to (re)appear, and the longest one device operation may take");
  AddStationOptions(options);
  po::positional_options_description positional;
  positional.add("file", 1);
  int code = kOk;
  auto vm = ParseArgs("onedfu flash PKG.dfu [--serial S | --path BUS-PORT] [--app-id VID:PID] [--full] [--dry-run] [--json]\n"
                      "                    [--timeout SEC]\n"
                      "       onedfu flash PKG.dfu --all | --wait [--app-id VID:PID] [--again] [--expect N] [--report FILE.jsonl]\n"
                      "                    [--provision FILE.csv]",
                      args, options, positional, &code);
  if (!vm) return code;
  if (vm->count("serial") && vm->count("path")) {
    std::cerr << "onedfu: --serial and --path exclude each other\n";
    return kUsage;
  }
  const bool json = vm->count("json") > 0;
  CliProgress progress(json ? CliProgress::Style::kJson
                            : (::isatty(2) ? CliProgress::Style::kTerminal : CliProgress::Style::kPlain));
  const auto fail = [&](const host::Error& error) {
    progress.Finish();
    if (json) progress.Json({{"result", "error"}, {"message", error.message}});
    return Report(error);
  };

  const std::string file = (*vm)["file"].as<std::string>();
  std::optional<std::filesystem::path> board;
  if (vm->count("board")) board = (*vm)["board"].as<std::string>();
  auto package = flasher::LoadFlashPackage(file, board);
  if (!package.ok()) return fail(package.error());

  flasher::FlashOptions flash_options;
  if (vm->count("serial")) flash_options.serial = (*vm)["serial"].as<std::string>();
  if (vm->count("path")) flash_options.path = (*vm)["path"].as<std::string>();
  if (vm->count("app-id")) {
    unsigned vid = 0, pid = 0;
    char end = 0;
    const std::string id = (*vm)["app-id"].as<std::string>();
    if (std::sscanf(id.c_str(), "%4x:%4x%c", &vid, &pid, &end) != 2 || vid == 0) {
      std::cerr << "onedfu: --app-id: VID:PID in hex, e.g. f055:9800 (got '" << id << "')\n";
      return kUsage;
    }
    flash_options.app_vid = static_cast<uint16_t>(vid);
    flash_options.app_pid = static_cast<uint16_t>(pid);
  }
  flash_options.full = vm->count("full") > 0;
  flash_options.dry_run = vm->count("dry-run") > 0;
  flash_options.plain_dfuse = vm->count("plain-dfuse") > 0;
  const double timeout = (*vm)["timeout"].as<double>();
  if (!(timeout > 0 && timeout < 86400)) {
    std::cerr << "onedfu: --timeout: seconds in (0, 86400)\n";
    return kUsage;
  }
  flash_options.timeout_ms = static_cast<uint32_t>(timeout * 1000);
  if (WantsStation(*vm)) return FlashStation(*vm, *package, flash_options);
  flash_options.cancel = &g_interrupted;

  auto transport = flasher::LibusbTransport::Create();
  if (!transport.ok()) return fail(transport.error());
  std::signal(SIGINT, OnSigint);
  const auto start = Clock::now();
  auto result = flasher::Flash(*transport.value(), *package, flash_options, progress);
  std::signal(SIGINT, SIG_DFL);
  if (!result.ok()) return fail(result.error());
  progress.Finish();
  const double wall = Seconds(Clock::now() - start);
  const auto& r = *result;
  std::string summary;
  if (flash_options.dry_run) {
    summary = "dry run: nothing was changed";
  } else if (r.up_to_date) {
    summary = "up to date: " + package->version + " was already installed; the board runs " + r.booted;
  } else {
    summary = "flashed " + package->version + "; the board runs " + r.booted;
  }
  if (json) {
    progress.Json({{"result", "ok"},
                   {"message", summary},
                   {"device", r.device.Describe()},
                   {"up_to_date", r.up_to_date},
                   {"dry_run", flash_options.dry_run},
                   {"booted", r.booted},
                   {"sectors_changed", r.plan.sectors.size() + r.record_plan.sectors.size()},
                   {"segments_skipped", r.plan.segments_skipped},
                   {"bytes_read", r.bytes_read},
                   {"poll_ms", r.poll_ms},
                   {"seconds", wall}});
  } else {
    std::printf("%s (%.1f s)\n", summary.c_str(), wall);
  }
  return kOk;
}

int List(const Args& args) {
  po::options_description options("list options");
  options.add_options()("json", "print JSON instead of text");
  po::positional_options_description positional;
  int code = kOk;
  auto vm = ParseArgs("onedfu list [--json]", args, options, positional, &code);
  if (!vm) return code;
  auto transport = flasher::LibusbTransport::Create();
  if (!transport.ok()) return Report(transport.error());
  auto devices = flasher::ListDevices(*transport.value());
  if (!devices.ok()) return Report(devices.error());
  const flasher::UsbDevice* denied = nullptr;  // the first device without permission
  if (vm->count("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& l : *devices) {
      const auto& d = l.device;
      nlohmann::json j = {{"path", d.path}, {"serial", d.serial}, {"vid_pid", Ids(d)},
                          {"mode", d.dfu_mode ? "dfu" : "runtime"}, {"name", d.interface_name},
                          {"manufacturer", d.manufacturer}, {"product", d.product}, {"onedfu", l.onedfu},
                          {"board", l.board_id}};
      if (!d.open_error.empty()) j["error"] = d.open_error;
      if (l.record_read) {
        j["installed"] = {{"valid", l.record_valid}, {"board", l.installed_board}, {"name", l.installed_name},
                          {"version", l.installed_version}, {"problem", l.record_problem}};
      }
      out.push_back(j);
    }
    std::cout << out.dump(2) << "\n";
  } else {
    if (devices->empty()) std::printf("no DFU-capable USB device found\n");
    for (const auto& l : *devices) {
      const auto& d = l.device;
      std::printf("%s %s serial %s %s \"%s\"\n", d.path.c_str(), Ids(d).c_str(), d.serial.empty() ? "?" : d.serial.c_str(),
                  d.dfu_mode ? "DFU" : "runtime", d.interface_name.c_str());
      if (!d.open_error.empty()) {
        std::printf("    %s\n", d.open_error.c_str());
        if (d.access_denied && denied == nullptr) denied = &d;
      }
      if (!l.board_id.empty()) std::printf("    board file: %s\n", l.board_id.c_str());
      if (l.record_read && l.record_valid) {
        std::printf("    installed: board %s, %s %s, record valid\n", l.installed_board.c_str(),
                    l.installed_name.empty() ? "(unnamed)" : l.installed_name.c_str(), l.installed_version.c_str());
      } else if (l.record_read) {
        std::printf("    installed: record not valid: %s\n", l.record_problem.c_str());
      }
    }
    if (denied != nullptr) std::printf("%s\n", flasher::PermissionHint(*denied).c_str());
  }
  return kOk;
}

}  // namespace onedfu::cli
