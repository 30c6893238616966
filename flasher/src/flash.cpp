// Flash, LoadFlashPackage, ListDevices (issue 8). See flasher/flash.h for the order of work.
#include "flasher/flash.h"

#include "bootloader/boot_state.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "bootloader/descriptors.h"
#include "flasher/dfuse_client.h"
#include "host/board_json.h"
#include "host/board_lookup.h"
#include "host/file_io.h"
#include "packer/inspect.h"
#include "runtime/flash_timing.h"
#include "runtime/sha256.h"

namespace onedfu::flasher {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kOnedfuManufacturer = "onedfu";
constexpr uint32_t kEnumeratePollMs = 50;

std::string RerunHint(const std::string& file) {
  return "the board waits in DFU mode; run `onedfu flash " + file + "` again to complete the update";
}

std::string LayoutOf(const runtime::Board& board) {
  char text[bootloader::kMaxStringChars + 1] = {};
  auto n = bootloader::BuildLayoutString(board, text, sizeof text);
  return n.ok() ? std::string(text, n.value()) : std::string();
}

std::string ManifestName(const uint8_t* bytes, size_t n) {
  try {
    const auto json = nlohmann::json::parse(bytes, bytes + n);
    if (json.is_object() && json.contains("name") && json["name"].is_string()) return json["name"].get<std::string>();
  } catch (const nlohmann::json::exception&) {
  }
  return {};
}

std::string ListOf(const std::vector<UsbDevice>& devices) {
  std::string out;
  for (const UsbDevice& d : devices) out += "\n  " + d.Describe() + (d.open_error.empty() ? "" : " [" + d.open_error + "]");
  return out;
}

// The permission hint for the first device that could not be opened for lack of permission
// ("" when none).
std::string AccessHint(const std::vector<UsbDevice>& devices) {
  for (const UsbDevice& d : devices) {
    if (d.access_denied) return "\n" + PermissionHint(d);
  }
  return {};
}

// Waits for the board (same serial, or same path without one) to enumerate at a new address.
host::Expected<UsbDevice> WaitForReturn(DfuTransport& transport, const UsbDevice& old, uint32_t timeout_ms,
                                        const std::atomic<bool>* cancel, const char* what) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    ONEDFU_PTRY(std::vector<UsbDevice> devices, transport.Enumerate());
    for (const UsbDevice& d : devices) {
      const bool same = old.serial.empty() ? d.path == old.path : d.serial == old.serial;
      if (same && !(d.bus == old.bus && d.address == old.address)) return d;
    }
    if (cancel != nullptr && cancel->load()) return host::Fail(std::string("interrupted while waiting for ") + what);
    if (Clock::now() > deadline) {
      char limit[32];
      std::snprintf(limit, sizeof limit, "%.1f s", timeout_ms / 1000.0);
      return host::Fail(std::string("timeout: the board (serial ") + old.serial + ") did not come back " + what +
                        " within " + limit + " (--timeout)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kEnumeratePollMs));
  }
}

class Flasher {
 public:
  Flasher(DfuTransport& transport, const FlashPackage& package, const FlashOptions& options, FlashProgress& progress)
      : transport_(transport), package_(package), options_(options), progress_(progress) {}

  host::Expected<FlashResult> Run();

 private:
  host::Outcome FindBoard();
  host::Outcome Detach();
  host::Outcome CheckInstalled(DfuseClient& client);
  // Erase pass, write pass, then (verify) read-back; phases named prefix + "erase" etc.
  host::Outcome Execute(DfuseClient& client, const FlashPlan& plan, bool verify, const std::string& prefix);
  host::Outcome Verify(DfuseClient& client, const FlashPlan& plan, const std::string& prefix);
  host::Outcome Boot();
  host::Error Wrap(const DfuseClient& client, const host::Error& error) const;
  // Wrap for a failure once the flash may have changed (erase, write): says the board waits in
  // DFU mode and how to complete the update.
  host::Error WrapChange(const DfuseClient& client, const host::Error& error) const;
  void ShowPlan(const FlashPlan& plan, const char* what);
  bool SkipSegment(const host::DfuseElement& e) const;
  CurrentContent Reader(DfuseClient& client);
  // The bytes the package puts at [address, address + size) (the erased value where no
  // element does).
  host::Bytes Image(uint32_t address, uint32_t size) const;
  // Learns [address, address + size) by the hash command: each piece of at most
  // kDfuseHashMaxLength bytes that equals Image() or is erased is remembered in known_.
  host::Outcome HashPieces(DfuseClient& client, uint32_t address, uint32_t size);
  // Fills `out` (size bytes at address) from known_; false when some byte is not known.
  bool FromKnown(uint32_t address, uint32_t size, host::Bytes* out) const;
  host::Outcome VerifyByHash(DfuseClient& client, const FlashPlan& plan, const std::string& prefix);

  DfuTransport& transport_;
  const FlashPackage& package_;
  const FlashOptions& options_;
  FlashProgress& progress_;
  FlashResult result_;
  std::optional<runtime::BootRecord> installed_;
  uint64_t read_done_ = 0;
  bool record_region_erased_ = false;  // the hash command found the record region erased
  // Ranges whose current content the hash command told: erased, or equal to Image(). Cleared
  // whenever the flash changes.
  struct Known {
    uint32_t start;
    uint32_t end;
    bool erased;
  };
  std::vector<Known> known_;
};

uint8_t ErasedAt(const runtime::Board& board, uint32_t address) {
  const runtime::Memory* m = board.MemoryAt(address);
  return m != nullptr ? m->erased_value : 0xff;
}

host::Bytes Flasher::Image(uint32_t address, uint32_t size) const {
  host::Bytes out(size, ErasedAt(package_.board, address));
  const uint64_t end = uint64_t{address} + size;
  for (const host::DfuseElement& e : package_.elements) {
    const uint64_t lo = std::max<uint64_t>(e.address, address);
    const uint64_t hi = std::min<uint64_t>(e.address + e.data.size(), end);
    if (lo >= hi) continue;
    std::copy(e.data.begin() + static_cast<std::ptrdiff_t>(lo - e.address),
              e.data.begin() + static_cast<std::ptrdiff_t>(hi - e.address), out.begin() + static_cast<std::ptrdiff_t>(lo - address));
  }
  return out;
}

host::Outcome Flasher::HashPieces(DfuseClient& client, uint32_t address, uint32_t size) {
  const uint64_t end = uint64_t{address} + size;
  for (uint64_t at = address; at < end;) {
    const auto n = static_cast<uint32_t>(std::min<uint64_t>(bootloader::kDfuseHashMaxLength, end - at));
    const auto a = static_cast<uint32_t>(at);
    auto digest = client.Hash(a, n);
    if (!digest.ok()) return Wrap(client, digest.error());
    result_.bytes_hashed += n;
    progress_.Advance(read_done_ += n);
    if (*digest == runtime::Sha256Digest(Image(a, n))) {
      known_.push_back({a, a + n, false});
    } else if (*digest == runtime::Sha256Digest(host::Bytes(n, ErasedAt(package_.board, a)))) {
      known_.push_back({a, a + n, true});
    }
    at += n;
  }
  return host::Success();
}

bool Flasher::FromKnown(uint32_t address, uint32_t size, host::Bytes* out) const {
  out->assign(size, 0);
  const uint64_t end = uint64_t{address} + size;
  for (uint64_t at = address; at < end;) {
    const auto k = std::find_if(known_.begin(), known_.end(), [&](const Known& x) { return x.start <= at && at < x.end; });
    if (k == known_.end()) return false;
    const uint64_t stop = std::min<uint64_t>(end, k->end);
    const auto offset = static_cast<std::ptrdiff_t>(at - address);
    if (k->erased) {
      std::fill(out->begin() + offset, out->begin() + offset + static_cast<std::ptrdiff_t>(stop - at),
                ErasedAt(package_.board, static_cast<uint32_t>(at)));
    } else {
      const host::Bytes image = Image(static_cast<uint32_t>(at), static_cast<uint32_t>(stop - at));
      std::copy(image.begin(), image.end(), out->begin() + offset);
    }
    at = stop;
  }
  return true;
}

host::Error Flasher::Wrap(const DfuseClient& client, const host::Error& error) const {
  if (client.interrupted()) return host::Fail(error.message + "; " + RerunHint(package_.file));
  if (client.gone()) return host::Fail(error.message + "; " + RerunHint(package_.file) + " once it is back");
  return error;
}

host::Error Flasher::WrapChange(const DfuseClient& client, const host::Error& error) const {
  if (client.interrupted() || client.gone()) return Wrap(client, error);
  // Only the onedfu bootloader refuses a half-written image (record revoked first, new record
  // last); a plain DfuSe one may start whatever the flash holds.
  return host::Fail(error.message + "; the update did not complete" +
                    (result_.onedfu_bootloader ? " and nothing half-written boots" : "") + "; " + RerunHint(package_.file));
}

host::Outcome Flasher::FindBoard() {
  progress_.Begin("find", 0);
  const runtime::Board& board = package_.board;
  ONEDFU_PTRY(std::vector<UsbDevice> devices, transport_.Enumerate());
  std::vector<UsbDevice> matching;
  for (const UsbDevice& d : devices) {
    if (IsChosenBoard(d, board, options_)) matching.push_back(d);
  }
  const std::string ids = ChosenIds(board, options_);
  if (matching.empty()) {
    std::string message = std::string("no board ") + ids;
    if (!options_.serial.empty()) message += " with serial " + options_.serial;
    if (!options_.path.empty()) message += " at path " + options_.path;
    message += devices.empty() ? " found: no DFU-capable USB device on the bus" : " found; DFU-capable devices seen:" + ListOf(devices);
    message += AccessHint(devices);
    return host::Fail(message);
  }
  if (matching.size() > 1) {
    return host::Fail(std::to_string(matching.size()) + " boards " + ids +
                      " found; choose one with --serial S or --path BUS-PORT:" + ListOf(matching));
  }
  result_.device = matching.front();
  if (!result_.device.open_error.empty()) {
    std::string message = result_.device.Describe() + ": " + result_.device.open_error + AccessHint(matching);
    return host::Fail(message);
  }
  progress_.End(result_.device.Describe());
  return host::Success();
}

host::Outcome Flasher::Detach() {
  const UsbDevice app = result_.device;
  progress_.Begin("detach", 0);
  if (UsbStatus s = transport_.Open(app); !s.ok()) {
    return host::Fail(app.Describe() + ": " + s.message + (s.error == UsbError::kAccess ? "\n" + PermissionHint(app) : ""));
  }
  const UsbStatus detach =
      transport_.ControlOut(static_cast<uint8_t>(bootloader::DfuRequest::kDetach), app.detach_timeout_ms, {});
  if (!detach.ok() && detach.error != UsbError::kGone) {
    transport_.Close();
    return host::Fail("DETACH to " + app.Describe() + ": " + detach.message);
  }
  if (detach.ok() && !app.will_detach()) {
    // Without bitWillDetach the host resets the bus to end the detach (DFU 1.1 5.1).
    if (UsbStatus s = transport_.Reset(); !s.ok()) {
      transport_.Close();
      return host::Fail("USB reset after DETACH: " + s.message);
    }
  }
  transport_.Close();
  ONEDFU_PTRY(UsbDevice dfu, WaitForReturn(transport_, app, options_.timeout_ms, options_.cancel, "in DFU mode after DETACH"));
  if (!dfu.dfu_mode) return host::Fail("the board came back in application mode after DETACH: " + dfu.Describe());
  result_.device = dfu;
  progress_.End(dfu.Describe());
  return host::Success();
}

host::Outcome Flasher::CheckInstalled(DfuseClient& client) {
  const runtime::Board& board = package_.board;
  const std::string expected = LayoutOf(board);
  if (result_.device.interface_name != expected) {
    return host::Fail("memory layout differs: the board reports \"" + result_.device.interface_name +
                      "\", the package's board " + board.id + " has \"" + expected + "\"; nothing was changed");
  }
  // Anti-rollback (bootloader/boot_state.h): a trusting board keeps the highest counter it
  // booted at the end of its bootloader region; refuse an older package before any change.
  // Read only for packages that use signing or counters (others never change the log).
  const bootloader::FlashArea counter_area = bootloader::CounterArea(board);
  if (counter_area.memory >= 0 && (package_.record.Signed() || package_.record.security_counter > 0)) {
    host::Bytes log(counter_area.size);
    if (auto read = client.Read(counter_area.address, log, [](size_t) {}); !read.ok()) return Wrap(client, read.error());
    result_.bytes_read += log.size();
    const runtime::Memory& m = board.memories[counter_area.memory];
    const uint32_t board_counter = bootloader::HighestCounter(log, m.write_align, m.erased_value);
    if (package_.record.security_counter < board_counter) {
      return host::Fail("rollback: " + package_.file + " has security counter " +
                        std::to_string(package_.record.security_counter) + ", the board has booted counter " +
                        std::to_string(board_counter) + " and would refuse it; nothing was changed");
    }
  }
  const runtime::Region* region = board.FindRole(runtime::RegionRole::kRecord);
  if (region == nullptr) return host::Success();
  host::Bytes bytes(region->size);
  progress_.Begin("record", bytes.size());
  if (result_.hash_command) {
    // An erased record region (a blank board) needs no read-back. Hashed: the span the new
    // record element covers (a record starts at the region start and the plan of the record
    // sector needs just these bytes), not the whole region.
    const uint32_t start = board.RegionStart(*region);
    const host::DfuseElement& element = package_.elements.back();
    const auto span = element.address == start && !element.data.empty() && element.data.size() <= region->size
                          ? static_cast<uint32_t>(element.data.size())
                          : region->size;
    if (auto h = HashPieces(client, start, span); !h.ok()) return h.error();
    host::Bytes known;
    if (FromKnown(start, span, &known) &&
        std::all_of(known.begin(), known.end(), [&](uint8_t b) { return b == ErasedAt(board, start); })) {
      read_done_ = 0;
      record_region_erased_ = true;
      progress_.End("erased (by hash)");
      progress_.Note("installed record: none");
      return host::Success();
    }
  }
  if (auto read = client.Read(board.RegionStart(*region), bytes, [&](size_t n) { progress_.Advance(read_done_ += n); });
      !read.ok()) {
    return Wrap(client, read.error());
  }
  read_done_ = 0;
  result_.bytes_read += bytes.size();
  progress_.End("read " + std::to_string(bytes.size()) + " bytes");
  runtime::Diag diag;
  auto record = runtime::DecodeBootRecord(bytes, &diag);
  if (!record.ok()) {
    progress_.Note(std::string("installed record: ") + (record.status().code() == runtime::StatusCode::kNotFound
                                                           ? "none"
                                                           : std::string("not valid (") + diag.c_str() + ")"));
    return host::Success();
  }
  result_.record_found = true;
  result_.installed_version = record->package_version;
  if (std::strcmp(record->board_id, package_.record.board_id) != 0) {
    return host::Fail(std::string("wrong board: the board runs a package for board '") + record->board_id + "' (version " +
                      record->package_version + "), " + package_.file + " is for board '" + package_.record.board_id +
                      "'; nothing was changed");
  }
  installed_ = record.value();
  progress_.Note(std::string("installed: ") + record->board_id + " " + record->package_version);
  return host::Success();
}

bool Flasher::SkipSegment(const host::DfuseElement& e) const {
  if (!installed_ || options_.full) return false;
  const runtime::Sha256Hash hash = runtime::Sha256Digest(e.data);
  for (uint32_t i = 0; i < installed_->segment_count && i < runtime::kMaxSegments; ++i) {
    const runtime::BootSegment& s = installed_->segments[i];
    if (s.address == e.address && s.length == e.data.size() && s.sha256 == hash) return true;
  }
  return false;
}

CurrentContent Flasher::Reader(DfuseClient& client) {
  return [this, &client](uint32_t address, uint32_t size, host::Bytes* out) -> host::Outcome {
    if (result_.hash_command) {
      // Known from the hashes taken up front; else hash just this range; read back only what
      // is neither the new content nor erased.
      if (FromKnown(address, size, out)) return host::Success();
      if (auto h = HashPieces(client, address, size); !h.ok()) return h.error();
      if (FromKnown(address, size, out)) return host::Success();
    }
    out->assign(size, 0);
    auto read = client.Read(address, *out, [this](size_t n) { progress_.Advance(read_done_ += n); });
    if (!read.ok()) return Wrap(client, read.error());
    result_.bytes_read += size;
    return host::Success();
  };
}

host::Outcome Flasher::VerifyByHash(DfuseClient& client, const FlashPlan& plan, const std::string& prefix) {
  uint64_t total = 0;
  for (const WriteRun& r : plan.runs) total += r.data.size();
  progress_.Begin(prefix + "verify", total);
  uint64_t done = 0;
  for (const WriteRun& r : plan.runs) {
    for (size_t at = 0; at < r.data.size(); at += bootloader::kDfuseHashMaxLength) {
      const size_t n = std::min<size_t>(bootloader::kDfuseHashMaxLength, r.data.size() - at);
      const auto address = static_cast<uint32_t>(r.address + at);
      auto digest = client.Hash(address, static_cast<uint32_t>(n));
      if (!digest.ok()) return Wrap(client, digest.error());
      result_.bytes_hashed += n;
      if (*digest != runtime::Sha256Digest(std::span<const uint8_t>(r.data).subspan(at, n))) {
        return host::Fail("verify failed: the SHA-256 of " + std::to_string(n) + " bytes at " + Hex32(address) +
                          " differs from what was written; the boot record was not written; " + RerunHint(package_.file));
      }
      progress_.Advance(done += n);
    }
  }
  progress_.End("ok (by hash)");
  return host::Success();
}

host::Outcome Flasher::Verify(DfuseClient& client, const FlashPlan& plan, const std::string& prefix) {
  if (result_.hash_command) return VerifyByHash(client, plan, prefix);
  // Everything sent, read back (the device skipped all-erased units; they read back erased).
  uint64_t total = 0;
  for (const WriteRun& r : plan.runs) total += r.data.size();
  progress_.Begin(prefix + "verify", total);
  uint64_t done = 0;
  host::Bytes back;
  for (const WriteRun& r : plan.runs) {
    back.assign(r.data.size(), 0);
    auto read = client.Read(r.address, back, [&](size_t n) { progress_.Advance(done += n); });
    if (!read.ok()) return Wrap(client, read.error());
    result_.bytes_read += back.size();
    const auto diff = std::mismatch(back.begin(), back.end(), r.data.begin());
    if (diff.first != back.end()) {
      char text[96];
      const auto offset = static_cast<uint32_t>(diff.first - back.begin());
      std::snprintf(text, sizeof text, "verify failed at %s: read 0x%02x, expected 0x%02x",
                    Hex32(r.address + offset).c_str(), *diff.first, *diff.second);
      return host::Fail(std::string(text) + "; the boot record was not written; " + RerunHint(package_.file));
    }
  }
  progress_.End("ok");
  return host::Success();
}

host::Outcome Flasher::Execute(DfuseClient& client, const FlashPlan& plan, bool verify, const std::string& prefix) {
  uint64_t erases = 0;
  for (const SectorWork& s : plan.sectors) erases += s.erase ? 1 : 0;
  if (erases > 0) {
    progress_.Begin(prefix + "erase", erases);
    uint64_t done = 0;
    for (const SectorWork& s : plan.sectors) {
      if (!s.erase) continue;
      if (auto e = client.EraseSector(s.start); !e.ok()) return WrapChange(client, e.error());
      progress_.Advance(++done);
    }
    progress_.End(std::to_string(done) + " sectors");
  }
  uint64_t total = 0;
  for (const WriteRun& r : plan.runs) total += r.data.size();
  if (total > 0) {
    progress_.Begin(prefix + "write", total);
    uint64_t done = 0;
    for (const WriteRun& r : plan.runs) {
      auto w = client.Write(r.address, r.data, [&](size_t n) { progress_.Advance(done += n); });
      if (!w.ok()) return WrapChange(client, w.error());
    }
    progress_.End(std::to_string(total) + " bytes");
  }
  // What the hashes told no longer holds for the sectors that changed.
  for (const SectorWork& w : plan.sectors) {
    std::erase_if(known_, [&](const Known& k) { return k.start < w.start + w.size && w.start < k.end; });
  }
  if (verify && !plan.empty()) return Verify(client, plan, prefix);
  return host::Success();
}

void Flasher::ShowPlan(const FlashPlan& plan, const char* what) {
  for (uint8_t m = 0; m < package_.board.memory_count; ++m) {
    uint32_t erase = 0, program = 0;
    uint64_t bytes = 0;
    for (const SectorWork& s : plan.sectors) {
      if (s.memory != m) continue;
      erase += s.erase ? 1 : 0;
      program += s.program_bytes > 0 ? 1 : 0;
      bytes += s.program_bytes;
    }
    if (erase + program == 0) continue;
    progress_.Note(std::string(what) + " " + package_.board.memories[m].name + ": erase " + std::to_string(erase) +
                   " sector(s), write " + std::to_string(program) + " sector(s), " + std::to_string(bytes) + " bytes");
  }
  char text[160];
  std::snprintf(text, sizeof text, "%s: %zu sector(s) to change, %u unchanged, %u segment(s) skipped; modeled device time %.3f s (erase %.3f s, program %.3f s)",
                what, plan.sectors.size(), plan.sectors_unchanged, plan.segments_skipped,
                static_cast<double>(plan.erase_us + plan.program_us) / 1e6, static_cast<double>(plan.erase_us) / 1e6,
                static_cast<double>(plan.program_us) / 1e6);
  progress_.Note(text);
}

host::Outcome Flasher::Boot() {
  progress_.Begin("boot", 0);
  ONEDFU_PTRY(UsbDevice back, WaitForReturn(transport_, result_.device, options_.timeout_ms, nullptr, "after leave"));
  result_.device = back;
  if (!back.dfu_mode) {
    result_.booted_application = true;
    result_.booted = back.interface_name;
    const std::string prefix = "onedfu app ";
    if (back.interface_name.rfind(prefix, 0) == 0) {
      const std::string version = back.interface_name.substr(prefix.size(), back.interface_name.find(',') - prefix.size());
      if (version != package_.version) {
        return host::Fail("the board runs version " + version + ", not the package's " + package_.version);
      }
    } else if (result_.onedfu_bootloader) {
      // The application does not report its version. The old record was revoked before the first
      // change and the bootloader starts an application only after verifying the record it finds,
      // so a running application means the new record (written last) verified.
      progress_.Note("the application does not report its version; the bootloader verified the new record before starting it");
    } else {
      progress_.Note("a plain DfuSe bootloader started the application; it cannot confirm which package runs");
    }
    progress_.End("application: " + back.interface_name);
    return host::Success();
  }
  // DFU mode: the bootloader's status string says why.
  std::string why = "no reason given";
  if (transport_.Open(back).ok()) {
    DfuseClient client(transport_, back.transfer_size, nullptr);
    auto status = client.GetStatus();
    const std::string text = client.StatusText(status.ok() ? status->string_index : 0);
    if (!text.empty()) why = text;
    transport_.Close();
  }
  result_.booted = "DFU mode: " + why;
  // Everything was written and checked: running the same package again would not help.
  return host::Fail("the board stayed in DFU mode after the update: " + why +
                    "; the package was written and checked, but the bootloader does not start it");
}

host::Expected<FlashResult> Flasher::Run() {
  if (auto found = FindBoard(); !found.ok()) return found.error();
  if (!result_.device.dfu_mode) {
    if (options_.dry_run) {
      progress_.Note("the board runs its application; a real run would DETACH it first");
    } else if (auto d = Detach(); !d.ok()) {
      return d.error();
    }
  }
  const bool in_dfu = result_.device.dfu_mode;
  if (in_dfu) {
    if (UsbStatus s = transport_.Open(result_.device); !s.ok()) {
      std::string message = result_.device.Describe() + ": " + s.message;
      if (s.error == UsbError::kAccess) message += "\n" + PermissionHint(result_.device);
      return host::Fail(message);
    }
  }
  DfuseClient client(transport_, result_.device.transfer_size, options_.cancel, options_.timeout_ms);
  struct Closer {
    DfuTransport& t;
    ~Closer() { t.Close(); }
  } closer{transport_};
  result_.onedfu_bootloader = !options_.plain_dfuse && result_.device.manufacturer == kOnedfuManufacturer;

  std::vector<host::DfuseElement> main(package_.elements.begin(), package_.elements.end() - 1);
  const host::DfuseElement& record = package_.elements.back();
  if (in_dfu) {
    if (auto idle = client.EnsureIdle(); !idle.ok()) return Wrap(client, idle.error());
  }
  if (!result_.onedfu_bootloader || !in_dfu) {
    // Plain DfuSe (or a dry run against a board still in its application): full write, every
    // element in file order, the record last.
    // Per element, as dfu-util does: erase the sectors it touches (each once per run, so an
    // element never wipes the tail of the one before it), then write it.
    std::vector<FlashPlan> steps;
    std::vector<uint32_t> erased;
    for (const host::DfuseElement& e : package_.elements) {
      ONEDFU_PTRY(FlashPlan step, PlanSectors(package_.board, {e}, nullptr));
      for (SectorWork& s : step.sectors) {
        if (std::find(erased.begin(), erased.end(), s.start) != erased.end()) {
          s.erase = false;
          step.erase_us -= runtime::EraseTimeUs(package_.board.memories[s.memory], s.start, s.size);
        } else {
          erased.push_back(s.start);
        }
      }
      result_.plan.erase_us += step.erase_us;
      result_.plan.program_us += step.program_us;
      result_.plan.sectors.insert(result_.plan.sectors.end(), step.sectors.begin(), step.sectors.end());
      steps.push_back(std::move(step));
    }
    if (options_.dry_run) {
      ShowPlan(result_.plan, "plan");
      return result_;
    }
    progress_.Note("plain DfuSe bootloader (" + result_.device.manufacturer + "): full write, element by element");
    for (const FlashPlan& step : steps) {
      if (auto e = Execute(client, step, false, ""); !e.ok()) return e.error();
    }
  } else {
    ONEDFU_PTRY(std::vector<uint8_t> commands, client.Commands());
    result_.hash_command = std::find(commands.begin(), commands.end(), bootloader::kDfuseHash) != commands.end();
    if (auto c = CheckInstalled(client); !c.ok()) return c.error();
    std::vector<host::DfuseElement> changed;
    for (const host::DfuseElement& e : main) {
      if (SkipSegment(e)) {
        ++result_.plan.segments_skipped;
      } else {
        changed.push_back(e);
      }
    }
    const uint32_t skipped = result_.plan.segments_skipped;
    const CurrentContent reader = Reader(client);
    if (options_.full) {
      ONEDFU_PTRY(result_.plan, PlanSectors(package_.board, changed, nullptr));
    } else {
      uint64_t covered = 0;
      for (const host::DfuseElement& e : changed) covered += e.data.size();
      progress_.Begin("read", covered);
      read_done_ = 0;
      if (result_.hash_command) {
        // One hash per 64 KiB of each changed element first: a blank or already-right range
        // is then known without a request per sector.
        for (const host::DfuseElement& e : changed) {
          if (auto h = HashPieces(client, e.address, static_cast<uint32_t>(e.data.size())); !h.ok()) return h.error();
        }
      }
      ONEDFU_PTRY(result_.plan, PlanSectors(package_.board, changed, &reader));
      progress_.End(std::to_string(read_done_) + " bytes, " + std::to_string(result_.plan.sectors_unchanged) +
                    " sector(s) already right");
    }
    result_.plan.segments_skipped = skipped;
    if (options_.dry_run) {
      // The first change revokes the installed record, so its sector then needs an erase.
      if (result_.plan.empty()) {
        ONEDFU_PTRY(result_.record_plan, PlanSectors(package_.board, {record}, &reader));
      } else {
        ONEDFU_PTRY(result_.record_plan, PlanSectors(package_.board, {record}, nullptr));
      }
      ShowPlan(result_.plan, "plan");
      ShowPlan(result_.record_plan, "record");
      result_.up_to_date = result_.plan.empty() && result_.record_plan.empty();
      return result_;
    }
    if (auto e = Execute(client, result_.plan, true, ""); !e.ok()) return e.error();
    if (!result_.plan.empty() && !record_region_erased_) {
      // The first change made the bootloader revoke the installed record (DESIGN.md 7, rule
      // 1): what the hashes told about the record sector no longer holds (an identical record,
      // e.g. with --full, must be written again). An erased record region has nothing to revoke.
      if (const runtime::Region* region = package_.board.FindRole(runtime::RegionRole::kRecord); region != nullptr) {
        const uint32_t start = package_.board.RegionStart(*region);
        std::erase_if(known_, [&](const Known& k) { return k.start < start + region->size && start < k.end; });
      }
    }
    // The record sector, last: planned against what it holds once the rest is written and
    // checked (a change above revoked the old record).
    progress_.Begin("record", record.data.size());
    read_done_ = 0;
    ONEDFU_PTRY(result_.record_plan, PlanSectors(package_.board, {record}, &reader));
    progress_.End(result_.record_plan.empty() ? "unchanged" : "to write");
    result_.up_to_date = result_.plan.empty() && result_.record_plan.empty();
    if (result_.up_to_date) progress_.Note("up to date: nothing to erase or write");
    // The record element is not hashed or read back here: the bootloader checks all of it (the
    // record's CRC, the manifest's and every segment's SHA-256) before it starts anything, and
    // Boot() waits for that verdict; a record written wrong leaves the board in DFU mode with
    // the reason, which fails the run. What the record points at was checked above.
    if (auto e = Execute(client, result_.record_plan, false, "record "); !e.ok()) return e.error();
  }
  progress_.Begin("leave", 0);
  auto leave = client.Leave(package_.elements.front().address);
  result_.requests = client.counters().requests;
  result_.poll_ms = client.counters().poll_ms_slept;
  if (!leave.ok()) return Wrap(client, leave.error());
  transport_.Close();
  if (auto b = Boot(); !b.ok()) return b.error();
  return result_;
}

}  // namespace

host::Expected<FlashPackage> LoadFlashPackage(const std::filesystem::path& file,
                                              const std::optional<std::filesystem::path>& board_file) {
  FlashPackage out;
  out.file = file.string();
  ONEDFU_PTRY(host::Bytes bytes, host::ReadFile(file));
  std::string board_id;
  if (auto inspection = packer::Inspect(bytes, out.file, nullptr); inspection.ok() && inspection->record) {
    board_id = inspection->record->board_id;
  }
  ONEDFU_PTRY(out.board, host::ResolveBoard(board_file, board_id));
  const packer::Verification v = packer::Verify(bytes, out.file, out.board);
  if (!v.ok()) {
    std::string message = out.file + ": the package is NOT valid; nothing was sent to any device:";
    for (const std::string& line : v.failed) message += "\n  FAIL  " + line;
    return host::Fail(message);
  }
  ONEDFU_PTRY(auto inspection, packer::Inspect(bytes, out.file, &out.board));
  ONEDFU_PTRY(host::DfuseImage image, host::ParseDfuse(bytes, out.file));
  if (image.targets.size() != 1 || image.targets[0].elements.empty() || !inspection.record ||
      !inspection.record_address) {
    return host::Fail(out.file + ": expected one target whose last element is the boot record");
  }
  out.elements = std::move(image.targets[0].elements);
  out.record = *inspection.record;
  out.record_address = *inspection.record_address;
  if (out.elements.back().address != out.record_address) {
    return host::Fail(out.file + ": the boot record is not the last element");
  }
  out.version = out.record.package_version;
  out.name = ManifestName(reinterpret_cast<const uint8_t*>(inspection.manifest_json.data()), inspection.manifest_json.size());
  return out;
}

bool IsChosenBoard(const UsbDevice& d, const runtime::Board& board, const FlashOptions& options) {
  const bool app = !d.dfu_mode && options.app_vid != 0 && d.vid == options.app_vid && d.pid == options.app_pid;
  if (!app && (d.vid != board.vid || d.pid != board.pid)) return false;
  if (!options.serial.empty() && d.serial != options.serial) return false;
  if (!options.path.empty() && d.path != options.path) return false;
  return true;
}

std::string ChosenIds(const runtime::Board& board, const FlashOptions& options) {
  char ids[48];
  if (options.app_vid != 0) {
    std::snprintf(ids, sizeof ids, "%04x:%04x (application %04x:%04x)", board.vid, board.pid, options.app_vid,
                  options.app_pid);
  } else {
    std::snprintf(ids, sizeof ids, "%04x:%04x", board.vid, board.pid);
  }
  return ids;
}

host::Expected<FlashResult> Flash(DfuTransport& transport, const FlashPackage& package, const FlashOptions& options,
                                  FlashProgress& progress) {
  Flasher flasher(transport, package, options, progress);
  return flasher.Run();
}

std::string PermissionHint(const UsbDevice& device) {
  char ids[16];
  std::snprintf(ids, sizeof ids, "%04x:%04x", device.vid, device.pid);
  return std::string("no permission to open the USB device ") + device.path + " " + ids + " (" + device.Node() +
         "). Fix: install the udev rules shipped with onedfu, manifests/udev/60-onedfu.rules in the onedfu "
         "source tree (a board whose USB ids it does not list needs its own line there), from that tree:\n"
         "  sudo cp manifests/udev/60-onedfu.rules /etc/udev/rules.d/ && sudo udevadm control --reload-rules && "
         "sudo udevadm trigger\n"
         "then unplug and replug the board (or run onedfu as root)";
}

host::Expected<std::vector<ListedDevice>> ListDevices(DfuTransport& transport) {
  ONEDFU_PTRY(std::vector<UsbDevice> devices, transport.Enumerate());
  std::vector<runtime::Board> boards;
  for (const auto& path : host::ListBoardFiles()) {
    if (auto b = host::LoadBoardFile(path); b.ok()) boards.push_back(b.value());
  }
  std::vector<ListedDevice> out;
  for (const UsbDevice& d : devices) {
    ListedDevice listed;
    listed.device = d;
    listed.onedfu = d.manufacturer == kOnedfuManufacturer;
    const runtime::Board* board = nullptr;
    for (const runtime::Board& b : boards) {
      if (b.vid == d.vid && b.pid == d.pid && d.dfu_mode && LayoutOf(b) == d.interface_name) {
        board = &b;
        break;
      }
    }
    if (board != nullptr) listed.board_id = board->id;
    const runtime::Region* region = board != nullptr ? board->FindRole(runtime::RegionRole::kRecord) : nullptr;
    if (listed.onedfu && region != nullptr && d.open_error.empty() && transport.Open(d).ok()) {
      DfuseClient client(transport, d.transfer_size, nullptr);
      host::Bytes bytes(region->size);
      auto idle = client.EnsureIdle();
      if (idle.ok() && client.Read(board->RegionStart(*region), bytes, [](size_t) {}).ok()) {
        listed.record_read = true;
        runtime::Diag diag;
        auto record = runtime::DecodeBootRecord(bytes, &diag);
        if (record.ok()) {
          listed.record_valid = true;
          listed.installed_board = record->board_id;
          listed.installed_version = record->package_version;
          const uint64_t end = uint64_t{runtime::kManifestOffset} + record->manifest_length;
          if (end <= bytes.size()) listed.installed_name = ManifestName(bytes.data() + runtime::kManifestOffset, record->manifest_length);
        } else {
          listed.record_problem = record.status().code() == runtime::StatusCode::kNotFound ? "no boot record" : diag.c_str();
        }
      } else {
        listed.record_problem = "record region could not be read";
      }
      transport.Close();
    }
    out.push_back(std::move(listed));
  }
  return out;
}

}  // namespace onedfu::flasher
