// `onedfu-sim powercut`, step 1: load the inputs and record the host's update (powercut.h).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bootloader/boot_state.h"
#include "host/board_json.h"
#include "host/file_io.h"
#include "host/romfs_build.h"
#include "runtime/region_store.h"
#include "dfu_port.h"
#include "output_capture.h"
#include "powercut.h"
#include "sim_board.h"
#include "sim_device.h"
#include "sweep_board.h"
#include "umockdev_usb.h"

namespace onedfu::sim {
namespace {

using host::Expected;
using host::Fail;
using runtime::Board;
using runtime::RegionRole;

Expected<std::vector<host::DfuseElement>> LoadElements(const std::filesystem::path& path) {
  ONEDFU_PTRY(host::Bytes bytes, host::ReadFile(path));
  ONEDFU_PTRY(host::DfuseImage image, host::ParseDfuse(bytes, path.string()));
  std::vector<host::DfuseElement> elements;
  for (const host::DfuseTarget& target : image.targets) {
    if (target.alt != 0) continue;  // dfu-util -a 0 flashes alt 0 targets only
    elements.insert(elements.end(), target.elements.begin(), target.elements.end());
  }
  if (elements.empty()) return Fail(path.string() + ": no elements for alt 0");
  return elements;
}

using Commands = std::vector<std::vector<std::string>>;

// The commands that flash `package` (`elements`) with `host`; `detach_first`: the board runs its
// application, dfu-util detaches it first (onedfu flash does on its own). Raw element files go
// into `dir`.
Expected<Commands> HostCommands(HostStream host, const RecordOptions& options, bool detach_first,
                                const std::filesystem::path& package, const std::vector<host::DfuseElement>& elements,
                                const std::filesystem::path& dir) {
  Commands commands;
  if (detach_first && host != HostStream::kOnedfuFlash) commands.push_back({options.dfu_util, "-e"});
  switch (host) {
    case HostStream::kDfuUtil:
      commands.push_back({options.dfu_util, "-a", "0", "-D", package.string(), "-s", ":leave"});
      break;
    case HostStream::kMassErase:
      commands.push_back({options.dfu_util, "-a", "0", "-s", ":mass-erase:force:leave", "-D", package.string()});
      break;
    case HostStream::kRaw:
      for (size_t i = 0; i < elements.size(); ++i) {
        const host::DfuseElement& e = elements[i];
        const std::filesystem::path file = dir / ("element" + std::to_string(i) + ".bin");
        if (host::Outcome written = host::WriteFileAtomic(file, e.data); !written.ok()) return written.error();
        const bool last = i + 1 == elements.size();
        commands.push_back({options.dfu_util, "-a", "0", "-s", HexAddress(e.address) + (last ? ":leave" : ""), "-D",
                            file.string()});
      }
      break;
    case HostStream::kOnedfuFlash:
      commands.push_back({options.onedfu, "flash", package.string()});
      break;
  }
  return commands;
}

std::string Joined(const std::vector<std::string>& argv) {
  std::string command;
  for (const std::string& a : argv) command += (command.empty() ? "" : " ") + a;
  return command;
}

// Runs `commands` one after the other on `usb`; the first that fails is an error naming it
// (`what`: the step) with the tail of its output.
host::Outcome RunCommands(UmockdevUsb& usb, const Commands& commands, bool show_output, const char* what) {
  for (const std::vector<std::string>& argv : commands) {
    int status;
    std::string output;
    {
      OutputCapture capture(!show_output);
      status = usb.RunCommand(argv);
      output = capture.Finish();
    }
    if (status != 0) {
      std::string why = "`" + Joined(argv) + "` (" + what + ") exited with status " + std::to_string(status);
      if (!usb.LastError().empty()) why += ": " + usb.LastError();
      return Fail(why + Tail(output, 12));
    }
  }
  return host::Success();
}

// A SimBoard (as `onedfu-sim run` has it) in `dir` whose memories hold `flash`.
Expected<std::unique_ptr<SimBoard>> SimBoardHolding(const Board& board, const std::filesystem::path& dir,
                                                    const FlashView& flash) {
  ONEDFU_PTRY(std::unique_ptr<SimBoard> sim, SimBoard::Open(board, dir));
  for (size_t m = 0; m < sim->memory_count() && m < flash.size(); ++m) {
    if (!sim->flash(m).Preload(board.memories[m].base, flash[m])) {
      return Fail("powercut: cannot load memory " + std::string(board.memories[m].name) + " into " + dir.string());
    }
  }
  return sim;
}

FlashView SimView(const SimBoard& sim) {
  FlashView view;
  for (size_t m = 0; m < sim.memory_count(); ++m) view.push_back(sim.flash(m).contents());
  return view;
}

// Splits what a host asked of a board that changes mode (kPlug events): the update is the DFU
// mode session of the first DNLOAD (from the plug-in in DFU mode before it up to the next
// plug-in); what came before it (the application, DETACH) is the detach part.
host::Outcome SplitSessions(UsbStream all, UpdateRecording* recording) {
  size_t first_dnload = all.size();
  for (size_t i = 0; i < all.size() && first_dnload == all.size(); ++i) {
    const UsbEvent& e = all[i];
    if (e.kind == UsbEvent::Kind::kControl && e.setup.bmRequestType == 0x21 && e.setup.bRequest == 1) first_dnload = i;
  }
  if (first_dnload == all.size()) return Fail("the recorded host stream holds no DFU download");
  size_t begin = 0;  // first event of the DFU session
  for (size_t i = first_dnload; i-- > 0;) {
    if (all[i].kind != UsbEvent::Kind::kPlug) continue;
    if (!PlugsInDfuMode(all[i])) return Fail("the recorded host stream downloads to a device not in DFU mode");
    begin = i + 1;
    break;
  }
  size_t end = first_dnload;
  while (end < all.size() && all[end].kind != UsbEvent::Kind::kPlug) ++end;
  recording->detach.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(begin == 0 ? 0 : begin - 1));
  recording->update.assign(all.begin() + static_cast<std::ptrdiff_t>(begin), all.begin() + static_cast<std::ptrdiff_t>(end));
  return host::Success();
}

// The update step on a board that boots as `onedfu-sim run`'s does (SimUsbDevice): after leave
// it starts the application (which onedfu flash waits for); with options.app it starts in it.
host::Outcome RecordOnSimBoard(const PowercutInput& input, const RecordOptions& options, const Commands& commands,
                               const std::filesystem::path& dir, const FlashView& old_flash,
                               UpdateRecording* recording) {
  const Board& board = input.board;
  ONEDFU_PTRY(std::unique_ptr<SimBoard> sim, SimBoardHolding(board, dir, old_flash));
  SimUsbDevice device(*sim);
  if (!device.PowerOn(!options.app)) return Fail("the simulated board refused to start: " + device.error());
  if (options.app && !device.application_mode()) {
    return Fail(input.from.string() + " does not start its application (needed to detach it)");
  }
  RecordingDevice recorder(device);
  UmockdevUsbOptions usb_options;
  usb_options.trace = options.trace;
  usb_options.command_timeout_ms = options.timeout_ms;
  {
    UmockdevUsb usb(recorder, usb_options);
    if (host::Outcome ran = RunCommands(usb, commands, options.show_output, "updating OLD to NEW"); !ran.ok()) {
      return ran.error();
    }
  }
  const std::string command = Joined(commands.back());
  if (!device.application_mode()) {
    const std::string why = device.boots().empty() ? "" : ": " + device.boots().back().reason;
    return Fail(input.to.string() + " does not boot after `" + command + "`" + why);
  }
  if (const int e = FirstDifferingElement(board, SimView(*sim), input.to_elements); e >= 0) {
    return Fail(input.to.string() + ": after `" + command + "`, " + DescribeElement(input.to_elements, e) +
                " is not in flash");
  }
  return SplitSessions(recorder.TakeStream(), recording);
}

// Pushes a real ROMFS image (the packer's ROMFS builder over a few files written to `dir`) onto
// the board's romfs region through runtime::RegionStore, as the application does at run time,
// when its slot lands in sectors no package writes (`written`); records the slot, or why not.
host::Outcome PushRomfs(const Board& board, SweepBoard& ram, const SectorMask& written, const std::filesystem::path& dir,
                        UpdateRecording& recording) {
  const runtime::Region* region = board.FindRole(RegionRole::kRomfs);
  if (region == nullptr) {
    recording.pushed_romfs_note = "the board has no romfs region";
    return host::Success();
  }
  std::vector<uint8_t> table(5000);
  FillPattern(table, 0x524f4d46u);
  const std::string notes = "pushed at run time by the application; an update must leave it alone\n";
  std::vector<host::RomfsSource> sources;
  for (const auto& [name, bytes] : {std::pair<std::string, runtime::ByteSpan>{"app/notes.txt", runtime::ByteSpan(
                                        reinterpret_cast<const uint8_t*>(notes.data()), notes.size())},
                                    std::pair<std::string, runtime::ByteSpan>{"app/table.bin", table}}) {
    const std::filesystem::path file = dir / "pushed-romfs" / name;
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (host::Outcome done = host::WriteFileAtomic(file, bytes); !done.ok()) return done.error();
    sources.push_back(host::RomfsSource{name, file, "the sweep's pushed ROMFS image", false});
  }
  ONEDFU_PTRY(host::Bytes image, host::BuildRomfs(std::move(sources), host::RomfsBuildOptions{}));
  runtime::RegionStore store(ram.flash(region->memory), board.RegionStart(*region), region->size);
  runtime::Diag diag;
  if (!store.Scan(&diag).ok() || store.free_bytes() < image.size()) {
    recording.pushed_romfs_note = "no room in the romfs region";
    return host::Success();
  }
  SectorMask slot = EmptySectorMask(board);
  MarkSectors(board, store.chain_end(), runtime::kSlotImageOffset + image.size(), slot);
  for (int m = 0; m < board.memory_count; ++m) {
    for (size_t i = 0; i < slot[m].size(); ++i) {
      if (slot[m][i] && written[m][i]) {
        recording.pushed_romfs_note = "its slot at " + HexAddress(store.chain_end()) + " would lie in sectors a package writes";
        return host::Success();
      }
    }
  }
  if (runtime::Status pushed = store.Push(image, &diag); !pushed.ok()) {
    return Fail("pushing a ROMFS image onto OLD at " + HexAddress(store.chain_end()) + " failed: " + pushed.message() +
                (diag.c_str()[0] != '\0' ? std::string(" (") + diag.c_str() + ")" : std::string()));
  }
  const runtime::RegionImage& top = store.image(store.image_count() - 1);
  recording.pushed_romfs_address = top.slot_address;
  recording.pushed_romfs_size = top.slot_size;
  return host::Success();
}

}  // namespace

Expected<PowercutInput> LoadPowercutInput(const std::string& board, const std::filesystem::path& from,
                                          const std::filesystem::path& to) {
  PowercutInput input;
  ONEDFU_PTRY(std::filesystem::path board_path, host::FindBoard(board));
  ONEDFU_PTRY(input.board, host::LoadBoardFile(board_path));
  input.from = from;
  input.to = to;
  if (!from.empty()) {
    ONEDFU_PTRY(input.from_elements, LoadElements(from));
  }
  ONEDFU_PTRY(input.to_elements, LoadElements(to));
  for (const auto* elements : {&input.from_elements, &input.to_elements}) {
    for (size_t i = 0; i < elements->size(); ++i) {
      const host::DfuseElement& e = (*elements)[i];
      if (MemoryFor(input.board, e.address, e.data.size()) < 0) {
        return Fail((elements == &input.from_elements ? from : to).string() + ": element " + std::to_string(i) +
                    " at " + HexAddress(e.address) + " (" + std::to_string(e.data.size()) +
                    " bytes) lies in no memory of board " + input.board.id);
      }
    }
  }
  return input;
}

Expected<UpdateRecording> RecordUpdate(const PowercutInput& input, const RecordOptions& options) {
  if (!UmockdevUsb::UnderWrapper()) {
    return Fail("powercut records dfu-util through the virtual USB and must run under umockdev-wrapper "
                "(onedfu-sim re-executes itself under it)");
  }
  const Board& board = input.board;
  ONEDFU_PTRY(host::TempDir state, host::TempDir::Create("onedfu-powercut-record"));
  ONEDFU_PTRY(std::unique_ptr<SweepBoard> board_files, SweepBoard::Open(board, PowercutFaults{}, state.path()));
  SweepBoard& ram = *board_files;
  ram.SetTrust(input.trust_keys);
  UpdateRecording recording;
  recording.may_change = EmptySectorMask(board);
  MarkSectors(board, input.to_elements, recording.may_change);
  if (options.host == HostStream::kMassErase) {
    // Mass erase may erase what no package protects: the firmware, record and romfs regions.
    for (int r = 0; r < board.region_count; ++r) {
      const runtime::Region& region = board.regions[r];
      if (region.role == RegionRole::kFirmware || region.role == RegionRole::kRecord || region.role == RegionRole::kRomfs) {
        MarkSectors(board, board.RegionStart(region), region.size, recording.may_change);
      }
    }
  }
  // Every sector neither package writes gets a pattern, so a stray erase or write shows.
  SectorMask written = recording.may_change;
  MarkSectors(board, input.from_elements, written);
  ForEachSector(board, [&](int m, const runtime::SectorInfo& sector) {
    if (written[m][sector.index]) return;
    std::vector<uint8_t> pattern(sector.size);
    FillPattern(pattern, static_cast<uint32_t>(m) << 16 | (sector.index + 1));
    (void)ram.flash(m).Preload(sector.start, pattern);
  });
  // A factory-fresh trusting bootloader: its security counter log erased.
  if (const bootloader::FlashArea counter = bootloader::CounterArea(board); counter.memory >= 0) {
    (void)ram.flash(counter.memory)
        .Preload(counter.address, std::vector<uint8_t>(counter.size, board.memories[counter.memory].erased_value));
  }
  recording.blank_flash = ram.Snapshot();

  if (options.app && input.from.empty()) {
    return Fail("the application-mode start needs OLD (--from): a blank board has no application");
  }
  // onedfu flash waits for the application after leave, and a detach starts in it: those
  // update steps run on a board that boots as `onedfu-sim run`'s does.
  const bool on_sim_board = options.host == HostStream::kOnedfuFlash || options.app;
  if (options.host == HostStream::kOnedfuFlash) {
    recording.rerun = {options.onedfu, "flash", input.to.string()};
    recording.rerun_timeout_ms = options.timeout_ms;
    recording.rerun_app = options.app;
  }
  DfuModeDevice dfu_mode(board, ram.memories(), DfuPortStrings{}, ReplayDfuOptions());
  if (!dfu_mode.ok()) return Fail(dfu_mode.error());
  RecordingDevice device(dfu_mode);
  UmockdevUsbOptions usb_options;
  usb_options.trace = options.trace;
  usb_options.command_timeout_ms = options.timeout_ms;
  std::optional<UmockdevUsb> usb;  // one testbed at a time: RecordOnSimBoard makes its own
  usb.emplace(device, usb_options);

  struct Step {
    const std::filesystem::path* package;
    const std::vector<host::DfuseElement>* elements;
    const char* what;
  };
  const Step steps[] = {{&input.from, &input.from_elements, "flashing OLD onto a blank board"},
                        {&input.to, &input.to_elements, "updating OLD to NEW"}};
  for (const Step& step : steps) {
    if (step.package->empty()) {  // a first flash onto a blank board: OLD is nothing
      recording.old_flash = recording.blank_flash;
      recording.pushed_romfs_note = "a blank board";
      continue;
    }
    // The commands of this step: OLD always goes on with a plain download.
    const bool update = step.package == &input.to;
    ONEDFU_PTRY(Commands commands, HostCommands(update ? options.host : HostStream::kDfuUtil, options,
                                                update && options.app, *step.package, *step.elements, state.path()));
    if (update && on_sim_board) {
      usb.reset();
      if (host::Outcome recorded = RecordOnSimBoard(input, options, commands, state.path() / "board",
                                                    View(recording.old_flash), &recording);
          !recorded.ok()) {
        return recorded.error();
      }
      continue;
    }
    if (host::Outcome ran = RunCommands(*usb, commands, options.show_output, step.what); !ran.ok()) return ran.error();
    const std::string command = Joined(commands.back());
    ram.PowerOn();
    const Boot boot = DecideBoot(ram, PowercutFaults{});
    if (!boot.start) {
      return Fail(step.package->string() + " does not boot after `" + command + "`: " +
                  DescribeDecision(boot.decision));
    }
    if (const int e = FirstDifferingElement(board, ram.storage(), *step.elements); e >= 0) {
      return Fail(step.package->string() + ": after `" + command + "`, " + DescribeElement(*step.elements, e) +
                  " is not in flash");
    }
    if (step.package == &input.from) {
      // The starting point must be sane; a NEW that changes them is reported by the sweep.
      SectorMask old_writes = EmptySectorMask(board);
      MarkSectors(board, input.from_elements, old_writes);
      std::string changed = ChangedProtectedRegion(board, View(recording.blank_flash), ram.storage());
      if (changed.empty()) changed = ChangedOutside(board, old_writes, View(recording.blank_flash), ram.storage());
      if (!changed.empty()) {
        return Fail("`" + command + "` changed a protected region: " + changed);
      }
      // What the application adds at run time, which NEW must leave alone.
      if (host::Outcome pushed = PushRomfs(board, ram, written, state.path(), recording); !pushed.ok()) {
        return pushed.error();
      }
      recording.old_stream = device.TakeStream();
      recording.old_flash = ram.Snapshot();
    } else {
      recording.update = device.TakeStream();
    }
  }
  return recording;
}

Expected<RerunResult> RerunHost(const PowercutInput& input, const UpdateRecording& recording, const FlashView& flash) {
  if (!UmockdevUsb::UnderWrapper()) return Fail("powercut re-runs the host through the virtual USB: needs umockdev-wrapper");
  if (recording.rerun.empty()) return Fail("powercut: this recording has no command to re-run");
  ONEDFU_PTRY(host::TempDir dir, host::TempDir::Create("onedfu-powercut-rerun"));
  ONEDFU_PTRY(std::unique_ptr<SimBoard> sim, SimBoardHolding(input.board, dir.path() / "board", flash));
  RerunResult result;
  {
    SimUsbDevice device(*sim);
    if (!device.PowerOn(!recording.rerun_app)) return Fail("the simulated board refused to start: " + device.error());
    UmockdevUsbOptions usb_options;
    usb_options.command_timeout_ms = recording.rerun_timeout_ms;
    UmockdevUsb usb(device, usb_options);
    OutputCapture capture(true);
    result.status = usb.RunCommand(recording.rerun);
    result.output = capture.Finish();
    if (result.status != 0 && !usb.LastError().empty()) result.output += "\n" + usb.LastError();
  }
  const FlashView after = SimView(*sim);
  for (runtime::ByteSpan bytes : after) result.flash.emplace_back(bytes.begin(), bytes.end());
  const bootloader::BootDecision decision = sim->Boot(false);
  result.boots = decision.start_application;
  result.decision = DescribeDecision(decision);
  return result;
}

}  // namespace onedfu::sim
