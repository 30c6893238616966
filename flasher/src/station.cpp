// The factory station: see flasher/station.h for the contract.
#include "flasher/station.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "host/text.h"
#include "runtime/sha256.h"

namespace onedfu::flasher {

// DfuTransport's default (declared in dfu_transport.h): no hotplug, wait out the interval.
bool DfuTransport::WaitForDeviceChange(uint32_t timeout_ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
  return false;
}

namespace {

using Clock = std::chrono::steady_clock;

// One board's FlashProgress: counts what was sent and erased, forwards phases to the observer.
class BoardProgress final : public FlashProgress {
 public:
  BoardProgress(const std::string& serial, StationObserver& observer) : serial_(serial), observer_(observer) {}

  void Begin(const std::string& phase, uint64_t total) override {
    phase_ = phase;
    total_ = total;
    last_percent_ = -2;
    base_ = Counter() ? *Counter() : 0;
    Report(0);
  }
  void Advance(uint64_t done) override {
    if (uint64_t* counter = Counter()) *counter = base_ + done;
    Report(done);
  }
  void End(const std::string& result) override { (void)result; }
  void Note(const std::string& text) override { observer_.BoardNote(serial_, text); }

  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t sectors_erased() const { return sectors_erased_; }

 private:
  // The total this phase adds to: "write" / "record write" -> bytes, "... erase" -> sectors.
  uint64_t* Counter() {
    if (phase_.ends_with("write")) return &bytes_sent_;
    if (phase_.ends_with("erase")) return &sectors_erased_;
    return nullptr;
  }
  void Report(uint64_t done) {
    const int percent = total_ == 0 ? -1 : static_cast<int>(std::min<uint64_t>(100, done * 100 / total_));
    if (percent == last_percent_) return;
    last_percent_ = percent;
    observer_.BoardProgress(serial_, phase_, percent);
  }

  std::string serial_;
  StationObserver& observer_;
  std::string phase_;
  uint64_t total_ = 0;
  uint64_t base_ = 0;
  int last_percent_ = -2;
  uint64_t bytes_sent_ = 0;
  uint64_t sectors_erased_ = 0;
};

// The report file: one line appended and fsync'd per board, under a lock.
class ReportFile {
 public:
  ~ReportFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  host::Outcome Open(const std::filesystem::path& path) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) return host::Fail(path.string() + ": cannot open the report file: " + std::strerror(errno));
    return host::Success();
  }
  // Appends `line` + "\n" and syncs it to disk; false (with *error) on failure.
  bool Append(const std::string& line, std::string* error) {
    if (fd_ < 0) return true;
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string text = line + "\n";
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        *error = path_.string() + ": cannot append the report line: " + std::strerror(errno);
        return false;
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd_) != 0) {
      *error = path_.string() + ": fsync: " + std::strerror(errno);
      return false;
    }
    return true;
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::mutex mutex_;
};

// A device's identity for the station: its serial, or its path when it has none.
std::string KeyOf(const UsbDevice& d) { return d.serial.empty() ? "path:" + d.path : d.serial; }

class Station {
 public:
  Station(const TransportFactory& transports, const FlashPackage& package, const StationOptions& options,
          StationObserver& observer)
      : transports_(transports), package_(package), options_(options), observer_(observer), scan_(options.flash) {
    scan_.serial.clear();  // every board the ids match; each worker picks its own by serial
    scan_.path.clear();
  }

  host::Expected<StationSummary> Run();

 private:
  bool Cancelled() const { return options_.flash.cancel != nullptr && options_.flash.cancel->load(); }
  // --wait stops taking boards after --expect of them; --all takes every board it finds.
  bool Enough() const { return options_.wait && options_.expect > 0 && started_ >= options_.expect; }
  void Start(const UsbDevice& device);
  void Work(UsbDevice device);
  BoardOutcome FlashOne(const UsbDevice& device);

  const TransportFactory& transports_;
  const FlashPackage& package_;
  const StationOptions& options_;
  StationObserver& observer_;
  FlashOptions scan_;  // what a board must match to be taken: the package's ids, or the application's
  ReportFile report_;

  std::mutex mutex_;  // guards the members below
  std::condition_variable finished_cv_;
  std::vector<BoardOutcome> outcomes_;
  std::set<std::string> running_;       // keys of the boards being flashed
  std::set<std::string> done_;          // keys flashed in this run, not seen leaving since
  std::set<std::string> ever_;          // keys flashed in this run
  uint32_t started_ = 0;
  std::vector<std::thread> workers_;
};

void Station::Start(const UsbDevice& device) {
  // Called with mutex_ held.
  const std::string key = KeyOf(device);
  running_.insert(key);
  ever_.insert(key);
  ++started_;
  workers_.emplace_back([this, device] { Work(device); });
}

void Station::Work(UsbDevice device) {
  BoardOutcome outcome;
  try {
    outcome = FlashOne(device);
  } catch (const std::exception& e) {  // a worker never takes the station down
    outcome.serial = device.serial;
    outcome.path = device.path;
    outcome.started = outcome.finished = std::chrono::system_clock::now();
    outcome.error = std::string("internal error: ") + e.what();
  }
  std::string report_error;
  if (!report_.Append(ReportLine(outcome, package_, options_.package_sha256), &report_error)) {
    outcome.ok = false;
    outcome.error += (outcome.error.empty() ? "" : "; ") + report_error;
  }
  observer_.BoardFinished(outcome);
  std::lock_guard<std::mutex> lock(mutex_);
  running_.erase(KeyOf(device));
  done_.insert(KeyOf(device));
  outcomes_.push_back(std::move(outcome));
  finished_cv_.notify_all();
}

BoardOutcome Station::FlashOne(const UsbDevice& device) {
  BoardOutcome outcome;
  outcome.serial = device.serial;
  outcome.path = device.path;
  outcome.started = std::chrono::system_clock::now();
  observer_.BoardStarted(device.serial, device.path);
  BoardProgress progress(device.serial, observer_);
  const auto finish = [&](const std::string& error) {
    outcome.finished = std::chrono::system_clock::now();
    outcome.ok = error.empty();
    outcome.error = error;
    outcome.bytes_sent = progress.bytes_sent();
    outcome.sectors_erased = progress.sectors_erased();
    return outcome;
  };
  if (device.serial.empty()) {
    return finish("the board at " + device.path + " has no USB serial number; the station tells boards apart by serial");
  }
  FlashPackage package = package_;
  if (options_.provision) {
    auto element = options_.provision(device.serial);
    if (!element.ok()) return finish(element.error().message);
    host::DfuseElement e;
    e.address = element->address;
    e.data = element->data;
    char hex[65];
    runtime::HexDigest(runtime::Sha256Digest(e.data), hex);
    outcome.provision_sha256 = hex;
    // Before the boot record, which stays the last element written.
    package.elements.insert(package.elements.end() - 1, std::move(e));
  }
  auto transport = transports_();
  if (!transport.ok()) return finish(transport.error().message);
  FlashOptions flash = options_.flash;
  flash.serial = device.serial;
  flash.path.clear();
  auto result = Flash(*transport.value(), package, flash, progress);
  if (!result.ok()) return finish(result.error().message);
  outcome.path = result->device.path;
  outcome.booted = result->booted;
  outcome.verified = result->onedfu_bootloader && result->booted_application;
  return finish("");
}

host::Expected<StationSummary> Station::Run() {
  const auto start = Clock::now();
  if (!options_.report.empty()) {
    if (auto opened = report_.Open(options_.report); !opened.ok()) return opened.error();
  }
  auto scanner_or = transports_();
  if (!scanner_or.ok()) return scanner_or.error();
  DfuTransport& scanner = *scanner_or.value();

  bool first = true;
  while (!Cancelled()) {
    auto devices = scanner.Enumerate();
    if (!devices.ok()) {
      if (first) return devices.error();
      observer_.BoardNote("", "scan: " + devices.error().message);
    } else {
      std::lock_guard<std::mutex> lock(mutex_);
      std::set<std::string> present;
      std::set<std::string> this_scan;
      for (const UsbDevice& d : *devices) {
        if (!IsChosenBoard(d, package_.board, scan_)) continue;
        const std::string key = KeyOf(d);
        present.insert(key);
        if (running_.count(key) || this_scan.count(key) || Enough()) continue;
        if (options_.again ? done_.count(key) != 0 : ever_.count(key) != 0) continue;
        this_scan.insert(key);
        Start(d);
      }
      // A board that left the bus since it was flashed may be flashed again (--again).
      for (auto it = done_.begin(); it != done_.end();) it = present.count(*it) ? std::next(it) : done_.erase(it);
      if (first && !options_.wait && started_ == 0) {
        return host::Fail("no board " + ChosenIds(package_.board, scan_) + " found for --all (the package's VID:PID" +
                          (scan_.app_vid != 0 ? " and --app-id)" : ")"));
      }
    }
    first = false;
    if (!options_.wait || Enough()) break;
    scanner.WaitForDeviceChange(options_.poll_ms);
  }

  {
    std::unique_lock<std::mutex> lock(mutex_);
    finished_cv_.wait(lock, [&] { return running_.empty(); });
  }
  for (std::thread& t : workers_) t.join();
  StationSummary summary;
  summary.boards = std::move(outcomes_);
  summary.interrupted = Cancelled();
  summary.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  return summary;
}

}  // namespace

size_t StationSummary::ok_count() const {
  size_t n = 0;
  for (const BoardOutcome& b : boards) n += b.ok ? 1 : 0;
  return n;
}

std::vector<std::string> StationSummary::failed_serials() const {
  std::vector<std::string> out;
  for (const BoardOutcome& b : boards) {
    if (!b.ok) out.push_back(b.serial.empty() ? b.path : b.serial);
  }
  return out;
}

std::string IsoUtc(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[80];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(ms % 1000));
  return text;
}

std::string ReportLine(const BoardOutcome& o, const FlashPackage& package, const std::string& package_sha256) {
  const auto text = [](const std::string& s) { return host::EscapeText(s); };
  nlohmann::json j = {
      {"serial", text(o.serial)},
      {"path", text(o.path)},
      {"board", package.board.id},
      {"package", {{"name", text(package.name)}, {"version", text(package.version)}, {"sha256", package_sha256}}},
      {"result", o.ok ? "ok" : "error"},
      {"started", IsoUtc(o.started)},
      {"finished", IsoUtc(o.finished)},
      {"duration_s", std::round(o.duration_s() * 1000.0) / 1000.0},
      {"bytes_sent", o.bytes_sent},
      {"sectors_erased", o.sectors_erased},
      {"verified", o.verified},
      {"booted", text(o.booted)},
  };
  if (!o.ok) j["error"] = text(o.error);
  if (!o.provision_sha256.empty()) j["provision"] = {{"sha256", o.provision_sha256}};
  return j.dump();
}

host::Expected<StationSummary> RunStation(const TransportFactory& transports, const FlashPackage& package,
                                          const StationOptions& options, StationObserver& observer) {
  try {
    Station station(transports, package, options, observer);
    return station.Run();
  } catch (const std::exception& e) {
    return host::Fail(std::string("station: ") + e.what());
  }
}

}  // namespace onedfu::flasher
