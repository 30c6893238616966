// The factory station (issue 9): `onedfu flash PKG --all | --wait` as a library. It finds the
// boards that match the package (VID:PID, or in application mode FlashOptions::app_vid:app_pid:
// IsChosenBoard in flash.h; one per serial), and flashes each with Flash() (flash.h: the same
// DETACH, checks, plan, verify and record-last order as a single board) on its own worker
// thread with its own transport, so a failing or slow board never stops or slows the others.
// Each finished board is reported to the StationObserver and, with a report file, appended to
// it as one JSON line and fsync'd before the next line can be written.
//
// --all: the boards on the bus when the station starts. --wait: keep scanning (the
// transport's WaitForDeviceChange: libusb hotplug where it has it, else a poll interval) and
// flash each board that appears; a serial is flashed once per run, or with `again` once per
// appearance (it must leave the bus and come back). Both stop after `expect` boards have
// finished (when > 0), --wait otherwise on cancel (Ctrl-C), and wait for the workers.
//
// Host only; exceptions never leave these functions.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "flasher/dfu_transport.h"
#include "flasher/flash.h"
#include "host/expected.h"

namespace onedfu::flasher {

// What one board's update came to: one line of the report (see README "Station report").
struct BoardOutcome {
  std::string serial;
  std::string path;                  // bus path when the board was found ("1-3")
  bool ok = false;
  std::string error;                 // when not ok
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point finished;
  uint64_t bytes_sent = 0;           // data bytes written over DFU (all write phases)
  uint64_t sectors_erased = 0;       // erase commands sent (all erase phases)
  bool verified = false;             // every changed sector read back equal, and the onedfu
                                     // bootloader verified the new record before booting it
  std::string booted;                // what the board reported after leave ("" when it did not)
  std::string provision_sha256;      // SHA-256 of the provision record written ("" = none)
  double duration_s() const { return std::chrono::duration<double>(finished - started).count(); }
};

// Per-board data for `--provision`: the bytes to place at `address` for the board with
// `serial`, or an error naming why there are none (e.g. "no row for serial X in FILE").
struct ProvisionElement {
  uint32_t address = 0;
  host::Bytes data;
};
using ProvisionSource = std::function<host::Expected<ProvisionElement>(const std::string& serial)>;

using TransportFactory = std::function<host::Expected<std::unique_ptr<DfuTransport>>()>;

struct StationOptions {
  FlashOptions flash;             // full, plain_dfuse, app ids, timeout_ms, cancel; serial/path are set per board
  bool wait = false;              // station mode
  bool again = false;             // --wait: a serial may be flashed again after it re-appears
  uint32_t expect = 0;            // > 0: stop after this many boards finished
  std::filesystem::path report;   // "" = no report file
  std::string package_sha256;     // of the .dfu file (report)
  uint32_t poll_ms = 250;         // --wait: scan interval without hotplug
  ProvisionSource provision;      // empty = no provisioning
};

// Called from worker threads (serialize inside).
class StationObserver {
 public:
  virtual ~StationObserver() = default;
  virtual void BoardStarted(const std::string& serial, const std::string& path) = 0;
  // `phase` as FlashProgress names it; `percent` of that phase (0..100, -1 without a total).
  virtual void BoardProgress(const std::string& serial, const std::string& phase, int percent) = 0;
  virtual void BoardNote(const std::string& serial, const std::string& text) = 0;
  virtual void BoardFinished(const BoardOutcome& outcome) = 0;
};

struct StationSummary {
  std::vector<BoardOutcome> boards;  // in the order they finished
  double wall_s = 0;
  bool interrupted = false;
  size_t ok_count() const;
  std::vector<std::string> failed_serials() const;
};

// The report line of one board (no newline): serial, path, board, package {name, version,
// sha256}, result, error, started, finished, duration_s, bytes_sent, sectors_erased,
// verified, booted (+ provision {sha256}).
std::string ReportLine(const BoardOutcome& outcome, const FlashPackage& package, const std::string& package_sha256);

// "2026-12-01T13:45:07.123Z"
std::string IsoUtc(std::chrono::system_clock::time_point t);

// Runs the station. Errors only for what stops it before any board is flashed (no transport,
// the report file cannot be opened, --all found no board); board failures are in the summary.
host::Expected<StationSummary> RunStation(const TransportFactory& transports, const FlashPackage& package,
                                          const StationOptions& options, StationObserver& observer);

}  // namespace onedfu::flasher
