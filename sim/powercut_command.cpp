// `onedfu-sim powercut`: the command line (powercut.h).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "host/signing.h"
#include "powercut.h"
#include "sim_commands.h"
#include "cli_options.h"

namespace onedfu::sim {
namespace {

constexpr const char* kUsage =
    "usage: onedfu-sim powercut --board BOARD.json [--from OLD.dfu] --to NEW.dfu [options]\n"
    "\n"
    "Proves an update from OLD to NEW cannot brick the board. Records what the real\n"
    "`dfu-util -a 0 -D NEW.dfu -s :leave` asks of the bootloader on a board that holds OLD\n"
    "(flashed by dfu-util too; without --from the board is blank, as from the factory), then\n"
    "replays that update in-process, cutting the power before, after and half-way through\n"
    "every flash operation, then every flash operation of NEW's first boot. The board boots as\n"
    "a trusting bootloader does (bootloader::TrustedBoot: the security counter log, a record\n"
    "verified once is not re-hashed). After each cut the board must boot OLD or NEW completely\n"
    "or stay in DFU mode (a blank board: boot NEW or stay in DFU mode; once the update is\n"
    "complete: boot NEW), the next power-on must boot the same, the security counter must never\n"
    "go back, the bootloader and filesystem regions and a ROMFS image pushed on OLD must be\n"
    "unchanged, and flashing NEW again must succeed and boot NEW. One `FAIL` line per failed\n"
    "check; the last line is `cuts=N failures=N` (failures: cuts with a failed check). Exit\n"
    "status 0 only without failures.\n"
    "\n"
    "options:\n"
    "  --board B            board JSON file, or the id of a bundled board (required)\n"
    "  --from OLD.dfu       the package on the board before the update (default: a blank board)\n"
    "  --to NEW.dfu         the update (required)\n"
    "  --host STREAM        how the update is flashed: with dfu-util, download (default:\n"
    "                       -D NEW.dfu -s :leave), mass-erase (-s :mass-erase:force:leave\n"
    "                       -D NEW.dfu), raw (one -s ADDR -D element.bin per element of NEW);\n"
    "                       onedfu-flash: `onedfu flash NEW.dfu` (only what changed, hash\n"
    "                       command); after a cut its re-flash is the real command run again\n"
    "  --app                the board runs OLD's application when the host comes: dfu-util -e\n"
    "                       first (onedfu flash detaches on its own); the requests after it\n"
    "                       re-enumerates in DFU mode are swept (needs --from)\n"
    "  --rerun N            onedfu-flash: re-run `onedfu flash` after N of the cuts (an even,\n"
    "                       deterministic sample; default 16; 0 = none): it must exit 0, the\n"
    "                       board must boot NEW with every protected byte kept\n"
    "  --dfu-util PATH      dfu-util executable (default: dfu-util from PATH)\n"
    "  --onedfu PATH        onedfu executable for --host onedfu-flash (default: onedfu from PATH)\n"
    "  --timeout MS         limit for each host run (default 120000; 0 = none)\n"
    "  --torn half|random   how a cut during an operation leaves it (default half: its first\n"
    "                       half done; random: a random write unit half-programmed, a random\n"
    "                       sector half-erased, faulting when read on a board memory with \"ecc\")\n"
    "  --seed N             seed of --torn random, --double and --sample (default 1;\n"
    "                       reproducible)\n"
    "  --sample N           cut only N of the update's operations: the first, the last and a\n"
    "                       seeded sample of the rest (for product-size updates)\n"
    "  --double N           also N pairs (a seeded sample): a cut during the update, then a\n"
    "                       second one during the re-flash that follows; same checks\n"
    "  --trust KEY.pub.pem  the bootloader is built with this Ed25519 key (repeatable: key\n"
    "                       rotation): only records signed by one of them boot\n"
    "  --verbose            print every cut and its outcome, and dfu-util's output\n"
    "  --unsafe-skip-revoke     TEST ONLY: the bootloader does not revoke the old record\n"
    "  --unsafe-trust-record    TEST ONLY: the boot ignores SHA-256 mismatches\n"
    "  --unsafe-erase-extra     TEST ONLY: every erase also erases the next sector\n"
    "  --unsafe-counter-rewrite TEST ONLY: the counter advance erases the log, then writes it\n"
    "                       (each proves the sweep detects what it guards against)\n";

}  // namespace

int RunPowercut(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const SubcommandOptions parsed = ParseSubcommandOptions(
      args, {"--board", "--from", "--to", "--dfu-util", "--timeout", "--torn", "--seed", "--double", "--host", "--onedfu",
              "--rerun", "--trust", "--sample"},
      {"--help", "--verbose", "--trace", "--app", "--unsafe-skip-revoke", "--unsafe-trust-record",
       "--unsafe-erase-extra", "--unsafe-counter-rewrite"});
  if (parsed.Flag("--help")) {
    out << kUsage;
    return 0;
  }
  std::string usage_error = parsed.error;
  if (usage_error.empty() && !parsed.positional.empty()) usage_error = "unexpected argument '" + parsed.positional[0] + "'";
  if (usage_error.empty() && !parsed.after_dashes.empty()) {
    usage_error = "unexpected argument '" + parsed.after_dashes[0] + "'";
  }
  for (const char* required : {"--board", "--to"}) {
    if (usage_error.empty() && !parsed.Has(required)) usage_error = std::string(required) + " is required";
  }
  RecordOptions record_options;
  if (usage_error.empty() && parsed.Has("--timeout")) {
    const std::string text = parsed.Value("--timeout");
    unsigned long long ms = 0;
    if (!ParseNumber(text, 3600000, &ms)) usage_error = "--timeout: not a number of ms: '" + text + "'";
    record_options.timeout_ms = static_cast<unsigned>(ms);
  }
  SweepOptions sweep_options;
  if (usage_error.empty() && parsed.Has("--torn")) {
    const std::string text = parsed.Value("--torn");
    if (text == "random") {
      sweep_options.torn = runtime::TornModel::kRandom;
    } else if (text != "half") {
      usage_error = "--torn: expected half or random, not '" + text + "'";
    }
  }
  if (usage_error.empty() && parsed.Has("--seed")) {
    const std::string text = parsed.Value("--seed");
    unsigned long long seed = 0;
    if (!ParseNumber(text, 0xffffffffu, &seed)) usage_error = "--seed: not a 32-bit number: '" + text + "'";
    sweep_options.seed = static_cast<uint32_t>(seed);
  }
  if (usage_error.empty() && parsed.Has("--host")) {
    const std::string text = parsed.Value("--host");
    if (text == "mass-erase") {
      record_options.host = HostStream::kMassErase;
    } else if (text == "raw") {
      record_options.host = HostStream::kRaw;
    } else if (text == "onedfu-flash") {
      record_options.host = HostStream::kOnedfuFlash;
    } else if (text != "download") {
      usage_error = "--host: expected download, mass-erase, raw or onedfu-flash, not '" + text + "'";
    }
  }
  if (usage_error.empty() && parsed.Has("--rerun")) {
    const std::string text = parsed.Value("--rerun");
    unsigned long long n = 0;
    if (!ParseNumber(text, 10000000, &n)) usage_error = "--rerun: not a number of cuts: '" + text + "'";
    sweep_options.rerun_sample = static_cast<uint32_t>(n);
  }
  record_options.app = parsed.Flag("--app");
  if (usage_error.empty() && record_options.app && !parsed.Has("--from")) {
    usage_error = "--app needs --from (a blank board has no application to detach)";
  }
  if (usage_error.empty() && parsed.Has("--sample")) {
    const std::string text = parsed.Value("--sample");
    unsigned long long sample = 0;
    if (!ParseNumber(text, 10000000, &sample) || sample == 0) {
      usage_error = "--sample: not a positive number of operations: '" + text + "'";
    }
    sweep_options.sample = static_cast<uint32_t>(sample);
  }
  if (usage_error.empty() && parsed.Has("--double")) {
    const std::string text = parsed.Value("--double");
    unsigned long long pairs = 0;
    if (!ParseNumber(text, 10000000, &pairs)) usage_error = "--double: not a number of pairs: '" + text + "'";
    sweep_options.double_pairs = static_cast<uint32_t>(pairs);
    if (usage_error.empty() && pairs != 0 && record_options.host == HostStream::kOnedfuFlash) {
      usage_error = "--double replays the recorded re-flash; onedfu flash adapts to the board (see --rerun)";
    }
  }
  if (!usage_error.empty()) {
    err << "onedfu-sim powercut: " << usage_error << "\n\n" << kUsage;
    return kExitUsage;
  }
  record_options.dfu_util = parsed.Value("--dfu-util", "dfu-util");
  record_options.onedfu = parsed.Value("--onedfu", "onedfu");
  record_options.show_output = parsed.Flag("--verbose");
  record_options.trace = parsed.Flag("--trace");
  sweep_options.verbose = parsed.Flag("--verbose");
  sweep_options.faults.skip_revoke = parsed.Flag("--unsafe-skip-revoke");
  sweep_options.faults.trust_record = parsed.Flag("--unsafe-trust-record");
  sweep_options.faults.erase_extra = parsed.Flag("--unsafe-erase-extra");
  sweep_options.faults.counter_rewrite = parsed.Flag("--unsafe-counter-rewrite");

  using Clock = std::chrono::steady_clock;
  auto input = LoadPowercutInput(parsed.Value("--board"), parsed.Value("--from"), parsed.Value("--to"));
  if (!input.ok()) {
    err << "onedfu-sim powercut: " << input.error().message << "\n";
    return kExitFailure;
  }
  for (const std::string& path : parsed.All("--trust")) {
    auto key = host::LoadPublicKey(path);
    if (!key.ok()) {
      err << "onedfu-sim powercut: --trust: " << key.error().message << "\n";
      return kExitFailure;
    }
    input->trust_keys.push_back(key.value());
  }
  const Clock::time_point t0 = Clock::now();
  auto recording = RecordUpdate(*input, record_options);
  if (!recording.ok()) {
    err << "onedfu-sim powercut: " << recording.error().message << "\n";
    return kExitFailure;
  }
  const Clock::time_point t1 = Clock::now();
  const PowercutFaults& faults = sweep_options.faults;
  if (faults.skip_revoke || faults.trust_record || faults.erase_extra || faults.counter_rewrite) {
    out << "WARNING: test-only faults on:" << (faults.skip_revoke ? " --unsafe-skip-revoke" : "")
        << (faults.trust_record ? " --unsafe-trust-record" : "") << (faults.erase_extra ? " --unsafe-erase-extra" : "")
        << (faults.counter_rewrite ? " --unsafe-counter-rewrite" : "")
        << " (the bootloader's protections are off)\n";
  }
  auto result = SweepPowerCuts(*input, *recording, sweep_options, out);
  if (!result.ok()) {
    err << "onedfu-sim powercut: " << result.error().message << "\n";
    return kExitFailure;
  }
  const Clock::time_point t2 = Clock::now();
  const auto seconds = [](Clock::duration d) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", std::chrono::duration<double>(d).count());
    return std::string(b);
  };

  out << "recorded: ";
  if (input->from.empty()) {
    out << "a blank board, ";
  } else {
    out << "dfu-util " << recording->old_stream.size() << " requests for OLD, ";
  }
  out << (record_options.host == HostStream::kOnedfuFlash ? "onedfu flash " : "dfu-util ");
  if (record_options.app) out << recording->detach.size() << " to the application (detach), ";
  out << recording->update.size() << " for the update (" << seconds(t1 - t0) << " s)\n";
  out << "update: " << result->operations << " flash operations (";
  bool first = true;
  for (const auto& [name, counts] : result->operations_per_memory) {
    out << (first ? "" : "; ") << name << ": " << counts.erases << " erases, " << counts.writes << " writes";
    first = false;
  }
  if (result->operations_cut == result->operations) {
    out << "), each cut before, after and torn\n";
  } else {
    out << "); " << result->operations_cut << " of them (the first, the last and a sample, seed "
        << sweep_options.seed << ") cut before, after and torn\n";
  }
  out << "first boot of NEW: " << result->boot_operations << " flash operations (verified marker, counter), "
      << result->boot_cuts << " cuts, " << result->boot_failures << " failures; security counter: OLD "
      << result->old_counter << ", NEW " << result->new_counter << "; "
      << (input->trust_keys.empty() ? std::string("unsigned records allowed")
                                    : std::to_string(input->trust_keys.size()) + " trusted key(s)")
      << "; " << result->verified_once << " power-ons skipped the hashes (verified once)\n";
  if (recording->pushed_romfs_size != 0) {
    out << "pushed ROMFS image on OLD: slot " << HexAddress(recording->pushed_romfs_address) << ", "
        << recording->pushed_romfs_size << " bytes, checked after every cut\n";
  } else {
    out << "pushed ROMFS image on OLD: none (" << recording->pushed_romfs_note << ")\n";
  }
  out << "outcomes: boots OLD " << result->booted_old << ", boots NEW " << result->booted_new << ", DFU mode "
      << result->stayed_dfu;
  if (!result->dfu_reasons.empty()) {
    out << " (";
    first = true;
    for (const auto& [reason, count] : result->dfu_reasons) {
      out << (first ? "" : ", ") << reason << " " << count;
      first = false;
    }
    out << ")";
  }
  out << "; sweep " << seconds(t2 - t1) << " s\n";
  if (!recording->rerun.empty()) {
    out << "re-run: `onedfu flash` again after " << result->reruns << " of the cuts, " << result->rerun_failures
        << " failed\n";
  }
  if (result->double_cuts != 0) {
    out << "double: " << result->double_cuts << " pairs (seed " << sweep_options.seed << "), "
        << result->double_failures << " failures, " << result->double_short
        << " whose re-flash ended before its second cut\n";
  }
  out << "cuts=" << result->cuts << " failures=" << result->failures << "\n";
  out.flush();
  return result->failures == 0 ? 0 : kExitFailure;
}

int PowercutCommand(const std::vector<std::string>& args) { return RunPowercut(args, std::cout, std::cerr); }

}  // namespace onedfu::sim
