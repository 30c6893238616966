// `onedfu-sim romfs`: see romfs_command.h.
#include "romfs_command.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "host/board_json.h"
#include "host/file_io.h"
#include "host/romfs_build.h"
#include "runtime/diag.h"
#include "runtime/mpy.h"
#include "runtime/region_store.h"
#include "sim_board.h"
#include "state_lock.h"
#include "sim_commands.h"
#include "cli_options.h"

namespace onedfu::sim {
namespace {

using host::Expected;
using host::Fail;


constexpr const char* kUsage =
    "usage: onedfu-sim romfs ACTION [--board BOARD.json] --state DIR\n"
    "\n"
    "The simulated board's in-place ROMFS region (a stack of images; lookups newest first),\n"
    "changed through the same runtime code the device runs. No USB involved.\n"
    "\n"
    "actions:\n"
    "  push IMG|DIR   push a ROMFS image file, or a directory built into one (--align N:\n"
    "                 file data alignment, default 8); it overrides files of older images\n"
    "  pop            remove the newest pushed image (the package's base image stays)\n"
    "  ls             the stack, then every visible path with its size and image\n"
    "  cat PATH       write a file's bytes to stdout\n"
    "\n"
    "options:\n"
    "  --board B      board JSON file, or the id of a bundled board (default: the default board,\n"
    "                 as for `onedfu-sim run`)\n"
    "  --state DIR    the board's flash files, as for `onedfu-sim run` (required; refused while\n"
    "                 another onedfu-sim uses DIR)\n";

std::string Hex32(uint32_t value) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", value);
  return b;
}

// "<what>: <status message>[: <diag>]"
std::string StatusText(const std::string& what, const runtime::Status& status, const runtime::Diag& diag) {
  std::string text = what + ": " + status.message();
  if (diag.c_str()[0] != '\0') text += std::string(" (") + diag.c_str() + ")";
  return text;
}

// The opened board and its romfs region.
struct RomfsBoard {
  std::unique_ptr<StateLock> lock;  // first: released after the flash files are closed
  std::unique_ptr<SimBoard> sim;
  const runtime::Region* region = nullptr;
  std::unique_ptr<runtime::RegionStore> store;
};

Expected<RomfsBoard> OpenBoard(const std::string& board_arg, const std::string& state_dir) {
  std::filesystem::path board_path = host::DefaultBoardPath();
  if (!board_arg.empty()) {
    ONEDFU_PTRY(board_path, host::FindBoard(board_arg));
  }
  ONEDFU_PTRY(runtime::Board board, host::LoadBoardFile(board_path));
  RomfsBoard out;
  ONEDFU_PTRY(out.lock, StateLock::Acquire(state_dir, board.id));  // not while a run uses the board
  ONEDFU_PTRY(out.sim, SimBoard::Open(board, state_dir));
  out.region = out.sim->board().FindRole(runtime::RegionRole::kRomfs);
  if (out.region == nullptr) return Fail(board_path.string() + ": board " + board.id + " has no romfs region");
  out.store = std::make_unique<runtime::RegionStore>(out.sim->flash(out.region->memory),
                                                     out.sim->board().RegionStart(*out.region), out.region->size);
  return out;
}

Expected<host::Bytes> LoadImage(const std::filesystem::path& source, const runtime::Board& board, uint32_t align) {
  std::error_code ec;
  if (!std::filesystem::is_directory(source, ec)) return host::ReadFile(source);
  host::RomfsBuildOptions options;
  options.data_align = align;
  if (board.arch[0] != '\0') {
    const auto arch = runtime::ParseMpyArch(board.arch);
    if (!arch.ok()) return Fail(std::string("board ") + board.id + ": unknown MicroPython arch '" + board.arch + "'");
    options.board_arch = arch.value();
  }
  ONEDFU_PTRY(std::vector<host::RomfsSource> sources, host::CollectRomfsDir(source, options));
  return host::BuildRomfs(std::move(sources), options);
}

class Collector final : public runtime::RegionWalkVisitor {
 public:
  struct Item {
    std::string path;
    bool is_dir = false;
    size_t size = 0;
    size_t image = 0;
  };
  runtime::Status OnEntry(const char* path, const runtime::RomfsEntry& entry, size_t image_index) override {
    items.push_back(Item{path, entry.is_dir, entry.data.size(), image_index});
    return runtime::Status::Ok();
  }
  std::vector<Item> items;
};

int Ls(RomfsBoard& b, std::ostream& out, std::ostream& err) {
  runtime::RegionStore& store = *b.store;
  std::ostringstream text;
  text << "region " << b.region->name << " at " << Hex32(store.region_start()) << " (" << store.region_size()
       << " bytes): images " << store.image_count() << " (" << store.live_count() << " live), "
       << store.free_bytes() << " bytes free\n";
  for (size_t i = 0; i < store.image_count(); ++i) {
    const runtime::RegionImage& image = store.image(i);
    uint32_t files = 0;
    uint32_t dirs = 0;
    runtime::Diag diag;
    const runtime::Status counted = store.CountEntries(i, &files, &dirs, &diag);
    text << "  #" << i << (image.kind == runtime::RegionImageKind::kBase ? " base" : " slot") << " at "
         << Hex32(image.image_address) << std::setw(10) << image.image_size << " bytes  "
         << (image.state == runtime::RegionImageState::kLive ? "live   " : "removed");
    if (counted.ok()) {
      text << "  " << files << (files == 1 ? " file" : " files") << ", " << dirs << (dirs == 1 ? " dir" : " dirs");
    } else {
      text << "  " << StatusText("unreadable", counted, diag);
    }
    text << "\n";
  }
  Collector collector;
  runtime::Diag diag;
  if (const runtime::Status s = store.Walk(collector, &diag); !s.ok()) {
    out << text.str();
    err << "onedfu-sim romfs ls: " << StatusText("walk", s, diag) << "\n";
    return kExitFailure;
  }
  text << "files (newest image first decides):\n";
  for (const Collector::Item& item : collector.items) {
    text << "  " << (item.is_dir ? "d" : "f") << std::setw(10);
    if (item.is_dir) {
      text << "-";
    } else {
      text << item.size;
    }
    text << "  #" << item.image << "  " << item.path << (item.is_dir ? "/" : "") << "\n";
  }
  out << text.str();
  return 0;
}

int Cat(RomfsBoard& b, const std::string& path, std::ostream& out, std::ostream& err) {
  const auto entry = b.store->Lookup(path.c_str());
  if (!entry.ok()) {
    err << "onedfu-sim romfs cat: " << path << ": " << entry.status().message() << "\n";
    return kExitFailure;
  }
  if (entry->entry.is_dir) {
    err << "onedfu-sim romfs cat: " << path << ": is a directory\n";
    return kExitFailure;
  }
  const runtime::ByteSpan data = entry->entry.data;
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  out.flush();
  return out ? 0 : kExitFailure;
}

}  // namespace

int RunRomfs(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  SubcommandOptions parsed = ParseSubcommandOptions(args, {"--board", "--state", "--align"}, {"--help"});
  // Operands may follow `--` (a path that starts with '-').
  parsed.positional.insert(parsed.positional.end(), parsed.after_dashes.begin(), parsed.after_dashes.end());
  if (parsed.Flag("--help")) {
    out << kUsage;
    return 0;
  }
  std::string usage_error = parsed.error;
  const std::string action = parsed.positional.empty() ? "" : parsed.positional[0];
  const size_t operands = action == "push" || action == "cat" ? 1 : 0;
  if (usage_error.empty() && action.empty()) usage_error = "no action (push, pop, ls, cat)";
  if (usage_error.empty() && action != "push" && action != "pop" && action != "ls" && action != "cat") {
    usage_error = "unknown action '" + action + "'";
  }
  if (usage_error.empty() && parsed.positional.size() != 1 + operands) {
    usage_error = action + (operands ? " takes one operand" : " takes no operand");
  }
  if (usage_error.empty() && !parsed.Has("--state")) usage_error = "--state is required";
  uint32_t align = 8;
  if (usage_error.empty() && parsed.Has("--align")) {
    const std::string text = parsed.Value("--align");
    unsigned long long value = 0;
    if (!ParseNumber(text, 4096, &value) || value == 0 || (value & (value - 1)) != 0) {
      usage_error = "--align: not a power of two from 1 to 4096: '" + text + "'";
    }
    align = static_cast<uint32_t>(value);
  }
  if (!usage_error.empty()) {
    err << "onedfu-sim romfs: " << usage_error << "\n\n" << kUsage;
    return kExitUsage;
  }
  const std::string prefix = "onedfu-sim romfs " + action + ": ";

  auto opened = OpenBoard(parsed.Has("--board") ? parsed.Value("--board") : std::string(), parsed.Value("--state"));
  if (!opened.ok()) {
    err << prefix << opened.error().message << "\n";
    return kExitFailure;
  }
  RomfsBoard& b = *opened;
  runtime::RegionStore& store = *b.store;
  runtime::Diag diag;

  if (action == "ls" || action == "cat") {
    if (const runtime::Status s = store.Scan(&diag); !s.ok()) {
      err << prefix << StatusText("cannot read the region", s, diag) << "\n";
      return kExitFailure;
    }
    return action == "ls" ? Ls(b, out, err) : Cat(b, parsed.positional[1], out, err);
  }

  // push / pop change the region: mount first, as the device does at start-up.
  if (const runtime::Status s = store.Mount(&diag); !s.ok()) {
    err << prefix << StatusText("cannot mount the region", s, diag) << "\n";
    return kExitFailure;
  }
  int status = 0;
  if (action == "push") {
    const std::filesystem::path source = parsed.positional[1];
    auto image = LoadImage(source, b.sim->board(), align);
    if (!image.ok()) {
      err << prefix << image.error().message << "\n";
      return kExitFailure;
    }
    diag.Clear();
    if (const runtime::Status s = store.Push(*image, &diag); !s.ok()) {
      err << prefix << StatusText(source.string() + " (" + std::to_string(image->size()) + " bytes)", s, diag)
          << "\n";
      status = kExitFailure;
    } else {
      const size_t top = store.image_count() - 1;
      out << "pushed " << source.string() << " as image #" << top << " at " << Hex32(store.image(top).image_address)
          << " (" << store.image(top).image_size << " bytes); " << store.live_count() << " live images, "
          << store.free_bytes() << " bytes free\n";
    }
  } else {
    const auto top = store.LiveIndex(0);
    if (const runtime::Status s = store.Pop(); !s.ok()) {
      if (s.code() == runtime::StatusCode::kFailedPrecondition) {
        err << prefix << "nothing to pop: the stack holds no pushed image (" << store.live_count()
            << " live, the base image is never popped)\n";
      } else {
        err << prefix << StatusText("pop", s, diag) << "\n";
      }
      status = kExitFailure;
    } else {
      const runtime::RegionImage& image = store.image(top.value());
      out << "popped image #" << top.value() << " at " << Hex32(image.image_address) << " (" << image.image_size
          << " bytes); " << store.live_count() << " live images\n";
    }
  }
  if (!b.sim->Sync()) {
    err << prefix << "cannot write the flash files in " << parsed.Value("--state") << "\n";
    return kExitFailure;
  }
  return status;
}

int RomfsCommand(const std::vector<std::string>& args) { return RunRomfs(args, std::cout, std::cerr); }

}  // namespace onedfu::sim
