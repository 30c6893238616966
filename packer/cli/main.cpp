// onedfu: one DfuSe file from VM firmware, frozen modules and assets.
#include <cstdio>
#include <cstring>
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
    {"romfs", "build or list a ROMFS image (romfs build DIR -o IMG, romfs ls IMG)", onedfu::cli::Romfs},
    {"map", "draw what a .dfu puts where, as SVG", onedfu::cli::Map},
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
    if (name == c.name) return c.run(onedfu::cli::Args(argv + 2, argv + argc));
  }
  std::fprintf(stderr, "onedfu: unknown command '%s'\n", name.c_str());
  Usage(stderr);
  return 2;
}
