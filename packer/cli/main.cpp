// onedfu: one DfuSe file from VM firmware, frozen modules and assets.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "commands.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const onedfu::cli::Args&);
};

constexpr Command kCommands[] = {
    {"pack", "merge firmware, modules and assets into one .dfu", onedfu::cli::Pack},
    {"inspect", "show the targets, elements, record, manifest and ROMFS tree of a .dfu", onedfu::cli::Inspect},
    {"diff", "what an update from OLD.dfu to NEW.dfu changes: files, sectors, modeled device time", onedfu::cli::Diff},
    {"verify", "check a .dfu: CRC, boot record, hashes, layout rules", onedfu::cli::Verify},
    {"keygen", "write an Ed25519 key pair (NAME.pem, NAME.pub.pem) for pack --sign", onedfu::cli::Keygen},
    {"romfs", "build or list a ROMFS image (romfs build DIR -o IMG, romfs ls IMG)", onedfu::cli::Romfs},
    {"map", "draw what a .dfu puts where, as SVG", onedfu::cli::Map},
    {"flash", "update a board over USB: only what changed, verified, confirmed booted", onedfu::cli::Flash},
    {"list", "list DFU-capable USB devices and the package each onedfu board holds", onedfu::cli::List},
};

void Usage(FILE* out) {
  std::fprintf(out, "usage: onedfu COMMAND [OPTIONS]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-8s %s\n", c.name, c.summary);
  std::fprintf(out, "\n'onedfu COMMAND --help' shows a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    Usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("onedfu 0.1.0\n");
    return 0;
  }
  for (const Command& c : kCommands) {
    if (name != c.name) continue;
    // The libraries report failures as values; this is the last guard, so
    // that even a bug or an exhausted machine ends with a message, not abort().
    try {
      return c.run(onedfu::cli::Args(argv + 2, argv + argc));
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "onedfu %s: out of memory\n", c.name);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "onedfu %s: internal error: %s\n", c.name, e.what());
    } catch (...) {
      std::fprintf(stderr, "onedfu %s: internal error\n", c.name);
    }
    return 1;
  }
  std::fprintf(stderr, "onedfu: unknown command '%s'\n", name.c_str());
  Usage(stderr);
  return 2;
}
