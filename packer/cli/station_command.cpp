// `onedfu flash PKG --all | --wait`: see station_command.h.
#include "station_command.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "commands.h"
#include "flasher/libusb_transport.h"
#include "flasher/provision.h"
#include "flasher/station.h"
#include "host/file_io.h"
#include "runtime/sha256.h"

namespace onedfu::cli {

namespace po = boost::program_options;

namespace {

std::atomic<bool> g_station_interrupted{false};

extern "C" void OnStationSigint(int) { g_station_interrupted.store(true); }

// One status line per board: redrawn in place on a terminal (stderr), plain lines otherwise
// (a line when a board starts a phase and when it finishes).
class StationDisplay final : public flasher::StationObserver {
 public:
  explicit StationDisplay(bool terminal) : terminal_(terminal) {}

  void BoardStarted(const std::string& serial, const std::string& path) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Line& line = LineFor(serial);
    line.path = path;
    line.status = "started";
    if (!terminal_) std::fprintf(stderr, "%s %s: started\n", serial.c_str(), path.c_str());
    Draw(true);
  }
  void BoardProgress(const std::string& serial, const std::string& phase, int percent) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Line& line = LineFor(serial);
    const bool new_phase = line.phase != phase;
    line.phase = phase;
    line.percent = percent;
    if (!terminal_ && new_phase) std::fprintf(stderr, "%s %s: %s\n", serial.c_str(), line.path.c_str(), phase.c_str());
    Draw(false);
  }
  void BoardNote(const std::string& serial, const std::string& text) override {
    if (!serial.empty()) return;  // per-board plan notes would flood a station's screen
    std::lock_guard<std::mutex> lock(mutex_);
    Clear();
    std::fprintf(stderr, "%s\n", text.c_str());
    Draw(true);
  }
  void BoardFinished(const flasher::BoardOutcome& o) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Line& line = LineFor(o.serial.empty() ? o.path : o.serial);
    line.done = true;
    char text[64];
    std::snprintf(text, sizeof text, " (%.1f s)", o.duration_s());
    line.status = (o.ok ? "ok: runs " + o.booted : "FAILED: " + o.error) + text;
    if (!terminal_) std::fprintf(stderr, "%s %s: %s\n", o.serial.c_str(), o.path.c_str(), line.status.c_str());
    // The finished board's line on stdout too (what a log keeps), above the status lines when
    // both go to the terminal.
    Clear();
    std::fflush(stderr);
    std::printf("%s %s %s\n", o.ok ? "ok" : "FAILED", o.serial.c_str(), o.ok ? o.booted.c_str() : o.error.c_str());
    std::fflush(stdout);
    Draw(true);
  }

 private:
  struct Line {
    std::string serial;
    std::string path;
    std::string phase;
    int percent = -1;
    std::string status;
    bool done = false;
  };

  Line& LineFor(const std::string& serial) {
    auto it = index_.find(serial);
    if (it != index_.end()) return lines_[it->second];
    index_[serial] = lines_.size();
    lines_.push_back(Line{serial, "", "", -1, "", false});
    return lines_.back();
  }
  // Moves the cursor back over the lines drawn last time and clears them (terminal only).
  void Clear() {
    if (!terminal_ || drawn_ == 0) return;
    std::fprintf(stderr, "\033[%zuA", drawn_);
    for (size_t i = 0; i < drawn_; ++i) std::fprintf(stderr, "\r\033[K\n");
    std::fprintf(stderr, "\033[%zuA", drawn_);
    drawn_ = 0;
  }
  void Draw(bool force) {
    if (!terminal_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    if (drawn_ > 0) std::fprintf(stderr, "\033[%zuA", drawn_);
    for (const Line& l : lines_) {
      std::string state = l.done || l.phase.empty() ? l.status : l.phase;
      if (!l.done && l.percent >= 0) state += " " + std::to_string(l.percent) + "%";
      std::fprintf(stderr, "\r\033[K%-14s %-6s %s\n", l.serial.c_str(), l.path.c_str(), state.c_str());
    }
    drawn_ = lines_.size();
    std::fflush(stderr);
  }

  bool terminal_;
  std::mutex mutex_;
  std::vector<Line> lines_;
  std::map<std::string, size_t> index_;
  size_t drawn_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace

void AddStationOptions(po::options_description& options) {
  options.add_options()
      ("all", "flash every matching board at once, one worker per board (the factory station)")
      ("wait", "station mode: keep running and flash each board as it is plugged in")
      ("again", "with --wait: flash a serial again when it is plugged in again")
      ("expect", po::value<unsigned>(), "exactly N boards (--all: fail unless N were flashed; --wait: stop after N)")
      ("report", po::value<std::string>(), "append one JSON line per finished board to FILE.jsonl (fsync'd)")
      ("provision", po::value<std::string>(), "per-serial data (CSV with a header row and a 'serial' column) written "
                                              "into the board's provision region");
}

bool WantsStation(const po::variables_map& vm) {
  for (const char* name : {"all", "wait", "again", "expect", "report", "provision"}) {
    if (vm.count(name)) return true;
  }
  return false;
}

int FlashStation(const po::variables_map& vm, const flasher::FlashPackage& package, flasher::FlashOptions flash) {
  if (!vm.count("all") && !vm.count("wait")) {
    std::cerr << "onedfu: --again, --expect, --report and --provision are station options: add --all or --wait\n";
    return kUsage;
  }
  if (vm.count("all") && vm.count("wait")) {
    std::cerr << "onedfu: --all (the boards there now) and --wait (boards as they come) exclude each other\n";
    return kUsage;
  }
  if (vm.count("serial") || vm.count("path")) {
    std::cerr << "onedfu: --all/--wait flash every matching board; --serial/--path pick one (use one or the other)\n";
    return kUsage;
  }
  if (vm.count("dry-run") || vm.count("json")) {
    std::cerr << "onedfu: --dry-run and --json are for one board; the station reports with --report FILE.jsonl\n";
    return kUsage;
  }
  if (vm.count("again") && !vm.count("wait")) {
    std::cerr << "onedfu: --again needs --wait\n";
    return kUsage;
  }
  flasher::StationOptions options;
  options.wait = vm.count("wait") > 0;
  options.again = vm.count("again") > 0;
  if (vm.count("expect")) {
    options.expect = vm["expect"].as<unsigned>();
    if (options.expect == 0) {
      std::cerr << "onedfu: --expect: at least 1\n";
      return kUsage;
    }
  }
  if (vm.count("report")) options.report = vm["report"].as<std::string>();
  auto bytes = host::ReadFile(package.file);
  if (!bytes.ok()) return Report(bytes.error());
  char hex[65];
  runtime::HexDigest(runtime::Sha256Digest(bytes.value()), hex);
  options.package_sha256 = hex;
  if (vm.count("provision")) {
    auto table = flasher::LoadProvisionCsv(vm["provision"].as<std::string>());
    if (!table.ok()) return Report(table.error());
    auto source = flasher::ProvisionFor(package.board, std::move(table.value()));
    if (!source.ok()) return Report(source.error());
    options.provision = std::move(source.value());
  }
  flash.cancel = &g_station_interrupted;
  options.flash = flash;

  StationDisplay display(::isatty(2) != 0);
  const flasher::TransportFactory transports = []() -> host::Expected<std::unique_ptr<flasher::DfuTransport>> {
    auto t = flasher::LibusbTransport::Create();
    if (!t.ok()) return t.error();
    return std::unique_ptr<flasher::DfuTransport>(std::move(t.value()));
  };
  std::signal(SIGINT, OnStationSigint);
  auto summary = flasher::RunStation(transports, package, options, display);
  std::signal(SIGINT, SIG_DFL);
  if (!summary.ok()) return Report(summary.error());

  const size_t ok = summary->ok_count();
  const std::vector<std::string> failed = summary->failed_serials();
  std::string line = std::to_string(ok) + " ok, " + std::to_string(failed.size()) + " failed";
  if (!failed.empty()) {
    line += " (";
    for (size_t i = 0; i < failed.size(); ++i) line += (i ? ", " : "") + failed[i];
    line += ")";
  }
  char wall[48];
  std::snprintf(wall, sizeof wall, "; wall time %.1f s", summary->wall_s);
  line += wall;
  if (summary->interrupted) line += "; interrupted";
  const bool count_ok = options.expect == 0 || summary->boards.size() == options.expect;
  if (!count_ok) line += "; expected " + std::to_string(options.expect) + " board(s), flashed " + std::to_string(summary->boards.size());
  std::printf("station: %s\n", line.c_str());
  return failed.empty() && count_ok && !summary->boards.empty() ? kOk : kFailed;
}

}  // namespace onedfu::cli
