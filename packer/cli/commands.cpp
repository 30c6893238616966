#include "commands.h"

#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "host/board_json.h"
#include "host/board_lookup.h"
#include "host/file_io.h"
#include "host/signing.h"
#include "packer/diff.h"
#include "packer/inspect.h"
#include "packer/map_svg.h"
#include "packer/pack.h"
#include "host/romfs_build.h"
#include "host/text.h"
#include "runtime/mpy.h"

namespace onedfu::cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;
using host::Bytes;

namespace {


std::optional<fs::path> OptionalPath(const po::variables_map& vm, const char* name) {
  if (!vm.count(name)) return std::nullopt;
  return fs::path(vm[name].as<std::string>());
}

// The record's board id, for finding the board file when --board is not given.
std::string BoardIdOf(const Bytes& bytes, const std::string& name) {
  auto inspection = packer::Inspect(bytes, name, nullptr);
  if (!inspection.ok() || !inspection->record) return {};
  return inspection->record->board_id;
}

// The options every command that reads a .dfu shares: the file and --board.
void AddPackageOptions(po::options_description& options, po::positional_options_description& positional,
                       const char* file_help) {
  options.add_options()
      ("file", po::value<std::string>()->required(), file_help)
      ("board", po::value<std::string>(), "board JSON (default: the board the package's record names)");
  positional.add("file", 1);
}

// A .dfu and the board it is checked against.
struct LoadedPackage {
  std::string file;
  Bytes bytes;
  runtime::Board board;
};

host::Expected<LoadedPackage> LoadPackage(const po::variables_map& vm) {
  LoadedPackage out;
  out.file = vm["file"].as<std::string>();
  ONEDFU_PTRY(out.bytes, host::ReadFile(out.file));
  ONEDFU_PTRY(out.board, host::ResolveBoard(OptionalPath(vm, "board"), BoardIdOf(out.bytes, out.file)));
  return out;
}

}  // namespace

// Parses `args` against `options` (+ positionals); prints help or a usage
// error. Returns nullopt with *exit_code set when the command must stop.
std::optional<po::variables_map> ParseArgs(const char* usage, const Args& args, po::options_description& options,
                                           const po::positional_options_description& positional, int* exit_code) {
  options.add_options()("help,h", "show this help");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << usage << "\n\n" << options << "\n";
      *exit_code = kOk;
      return std::nullopt;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "onedfu: " << e.what() << "\nusage: " << usage << "\n";
    *exit_code = kUsage;
    return std::nullopt;
  }
  return vm;
}

int Report(const host::Error& error) {
  std::cerr << "onedfu: " << error.message << "\n";
  return kFailed;
}

int Pack(const Args& args) {
  po::options_description options("pack options");
  options.add_options()
      ("package", po::value<std::string>(), "package JSON (manifests/examples/*.json)")
      ("board", po::value<std::string>(), "board JSON (default: the first of manifests/boards)")
      ("firmware", po::value<std::vector<std::string>>()->composing(), "[ADDR:]FILE: bin (ADDR required), Intel HEX, ELF or .dfu; repeatable")
      ("romfs", po::value<std::string>(), "directory whose tree becomes the ROMFS image")
      ("version", po::value<std::string>(), "package version recorded in the boot record")
      ("mpy-cross", po::value<std::string>(), "mpy-cross executable, to compile .py modules")
      ("romfs-align", po::value<uint32_t>(), "ROMFS file data alignment in bytes (default 8)")
      ("base", po::value<std::string>(), "OLD.dfu installed on the board: keep its firmware when none is given, "
                                         "and keep unchanged ROMFS files at their addresses")
      ("sign", po::value<std::string>(), "KEY.pem: sign the boot record with this Ed25519 private key (onedfu keygen)")
      ("security-counter", po::value<uint32_t>(), "anti-rollback counter recorded in the boot record (default 0)")
      ("output,o", po::value<std::string>()->required(), "output .dfu");
  po::positional_options_description positional;
  positional.add("package", 1);
  int code = kOk;
  auto vm = ParseArgs("onedfu pack [PACKAGE.json] [--board BOARD.json] [--firmware [ADDR:]FILE]... [--romfs DIR] [--base OLD.dfu] [--version V] [--sign KEY.pem] [--security-counter N] -o OUT.dfu",
                      args, options, positional, &code);
  if (!vm) return code;

  packer::PackRequest request;
  request.package = OptionalPath(*vm, "package");
  request.board = OptionalPath(*vm, "board");
  if (vm->count("firmware")) request.firmware_flags = (*vm)["firmware"].as<std::vector<std::string>>();
  request.romfs_dir = OptionalPath(*vm, "romfs");
  if (vm->count("version")) request.version = (*vm)["version"].as<std::string>();
  if (vm->count("mpy-cross")) request.mpy_cross = (*vm)["mpy-cross"].as<std::string>();
  if (vm->count("romfs-align")) request.romfs_align = (*vm)["romfs-align"].as<uint32_t>();
  request.base = OptionalPath(*vm, "base");
  request.sign_key = OptionalPath(*vm, "sign");
  if (vm->count("security-counter")) request.security_counter = (*vm)["security-counter"].as<uint32_t>();
  const fs::path output = (*vm)["output"].as<std::string>();

  auto packed = packer::PackToFile(request, output);
  if (!packed.ok()) return Report(packed.error());
  uint64_t total = 0;
  for (const auto& e : packed->elements) total += e.data.size();
  std::printf("%s: %zu element(s), %llu bytes of payload, board %s\n", output.c_str(), packed->elements.size(),
              static_cast<unsigned long long>(total), packed->board.id);
  for (const std::string& note : packed->notes) std::printf("  %s\n", note.c_str());
  return kOk;
}

int Inspect(const Args& args) {
  po::options_description options("inspect options");
  po::positional_options_description positional;
  AddPackageOptions(options, positional, "the .dfu to inspect");
  options.add_options()("json", "print JSON instead of text");
  int code = kOk;
  auto vm = ParseArgs("onedfu inspect FILE.dfu [--board BOARD.json] [--json]", args, options, positional, &code);
  if (!vm) return code;
  auto package = LoadPackage(*vm);
  if (!package.ok()) return Report(package.error());
  auto inspection = packer::Inspect(package->bytes, package->file, &package->board);
  if (!inspection.ok()) return Report(inspection.error());
  std::cout << (vm->count("json") ? packer::InspectionJson(*inspection) : packer::InspectionText(*inspection));
  return kOk;
}

int Verify(const Args& args) {
  po::options_description options("verify options");
  po::positional_options_description positional;
  AddPackageOptions(options, positional, "the .dfu to verify");
  options.add_options()("key", po::value<std::vector<std::string>>()->composing(),
                        "KEY.pub.pem: the record must be signed by this Ed25519 key (repeatable: any of them)");
  int code = kOk;
  auto vm = ParseArgs("onedfu verify FILE.dfu [--board BOARD.json] [--key KEY.pub.pem]...", args, options, positional,
                      &code);
  if (!vm) return code;
  std::vector<host::Ed25519PublicKey> keys;
  if (vm->count("key")) {
    for (const std::string& path : (*vm)["key"].as<std::vector<std::string>>()) {
      auto key = host::LoadPublicKey(path);
      if (!key.ok()) return Report(key.error());
      keys.push_back(*key);
    }
  }
  auto package = LoadPackage(*vm);
  if (!package.ok()) return Report(package.error());
  const std::string& file = package->file;
  const packer::Verification v = packer::Verify(package->bytes, file, package->board, keys);
  for (const std::string& line : v.passed) std::cout << "ok    " << line << "\n";
  for (const std::string& line : v.failed) std::cout << "FAIL  " << line << "\n";
  std::cout << file << ": " << (v.ok() ? "verified" : "NOT valid") << "\n";
  return v.ok() ? kOk : kFailed;
}

int Keygen(const Args& args) {
  po::options_description options("keygen options");
  options.add_options()("out", po::value<std::string>()->required(),
                        "NAME: write the private key to NAME.pem and the public key to NAME.pub.pem");
  po::positional_options_description positional;
  int code = kOk;
  auto vm = ParseArgs("onedfu keygen --out NAME", args, options, positional, &code);
  if (!vm) return code;
  auto pair = host::GenerateKeyPair((*vm)["out"].as<std::string>());
  if (!pair.ok()) return Report(pair.error());
  std::printf("%s: Ed25519 private key (keep it secret)\n%s: public key, fingerprint %s\n",
              pair->private_pem.c_str(), pair->public_pem.c_str(), host::KeyFingerprint(pair->public_key).c_str());
  return kOk;
}

int Romfs(const Args& args) {
  if (args.empty() || (args[0] != "build" && args[0] != "ls")) {
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
      std::cout << "usage: onedfu romfs build DIR -o IMG [--board BOARD.json] [--align N] [--mpy-cross P]\n"
                   "       onedfu romfs ls IMG\n";
      return kOk;
    }
    std::cerr << "usage: onedfu romfs build DIR -o IMG | onedfu romfs ls IMG\n";
    return kUsage;
  }
  const Args rest(args.begin() + 1, args.end());
  int code = kOk;
  if (args[0] == "ls") {
    po::options_description options("romfs ls options");
    options.add_options()("image", po::value<std::string>()->required(), "ROMFS image file");
    po::positional_options_description positional;
    positional.add("image", 1);
    auto vm = ParseArgs("onedfu romfs ls IMG", rest, options, positional, &code);
    if (!vm) return code;
    const std::string image = (*vm)["image"].as<std::string>();
    auto bytes = host::ReadFile(image);
    if (!bytes.ok()) return Report(bytes.error());
    auto listing = host::ListRomfs(*bytes, image);
    if (!listing.ok()) return Report(listing.error());
    for (const auto& f : *listing) {
      const std::string path = host::EscapeText(f.path);
      if (f.is_dir) {
        std::printf("%s/\n", path.c_str());
      } else {
        std::printf("%-40s %10llu  +%llu\n", path.c_str(), static_cast<unsigned long long>(f.size),
                    static_cast<unsigned long long>(f.offset));
      }
    }
    return kOk;
  }
  po::options_description options("romfs build options");
  options.add_options()
      ("dir", po::value<std::string>()->required(), "directory tree to pack")
      ("output,o", po::value<std::string>()->required(), "image file to write")
      ("board", po::value<std::string>(), "board JSON, for the native .mpy arch (default board otherwise)")
      ("align", po::value<uint32_t>()->default_value(8), "file data alignment, bytes")
      ("mpy-cross", po::value<std::string>(), "mpy-cross executable, to compile .py files");
  po::positional_options_description positional;
  positional.add("dir", 1);
  auto vm = ParseArgs("onedfu romfs build DIR -o IMG [--board BOARD.json] [--align N]", rest, options, positional, &code);
  if (!vm) return code;
  auto board = host::LoadBoardFile(vm->count("board") ? fs::path((*vm)["board"].as<std::string>())
                                                        : host::DefaultBoardPath());
  if (!board.ok()) return Report(board.error());
  host::RomfsBuildOptions build;
  build.data_align = (*vm)["align"].as<uint32_t>();
  if (vm->count("mpy-cross")) build.mpy_cross = (*vm)["mpy-cross"].as<std::string>();
  if (auto arch = runtime::ParseMpyArch(board->arch); arch.ok()) build.board_arch = arch.value();
  auto sources = host::CollectRomfsDir((*vm)["dir"].as<std::string>(), build);
  if (!sources.ok()) return Report(sources.error());
  auto image = host::BuildRomfs(std::move(sources).value(), build);
  if (!image.ok()) return Report(image.error());
  const fs::path output = (*vm)["output"].as<std::string>();
  auto written = host::WriteFileAtomic(output, *image);
  if (!written.ok()) return Report(written.error());
  std::printf("%s: %zu bytes\n", output.c_str(), image->size());
  return kOk;
}

int Map(const Args& args) {
  po::options_description options("map options");
  po::positional_options_description positional;
  AddPackageOptions(options, positional, "the .dfu to draw");
  options.add_options()("output,o", po::value<std::string>()->required(), "SVG file to write");
  int code = kOk;
  auto vm = ParseArgs("onedfu map FILE.dfu -o map.svg [--board BOARD.json]", args, options, positional, &code);
  if (!vm) return code;
  auto package = LoadPackage(*vm);
  if (!package.ok()) return Report(package.error());
  const runtime::Board& board = package->board;
  auto inspection = packer::Inspect(package->bytes, package->file, &board);
  if (!inspection.ok()) return Report(inspection.error());
  std::vector<packer::MapElement> elements;
  for (const auto& t : inspection->targets) {
    for (const auto& e : t.elements) {
      std::string label = e.region.empty() ? std::string("element") : e.region;
      if (inspection->record_address && e.address == *inspection->record_address) label = "boot record + manifest";
      elements.push_back({e.address, e.size, label});
    }
  }
  const std::string svg =
      packer::RenderMapSvg(board, elements, fs::path(package->file).filename().string() + " on " + board.id);
  auto written = host::WriteFileAtomic((*vm)["output"].as<std::string>(),
                                         {reinterpret_cast<const uint8_t*>(svg.data()), svg.size()});
  if (!written.ok()) return Report(written.error());
  return kOk;
}

}  // namespace onedfu::cli

namespace onedfu::cli {

int Diff(const Args& args) {
  po::options_description options("diff options");
  options.add_options()
      ("old", po::value<std::string>()->required(), "the package installed on the board")
      ("file", po::value<std::string>()->required(), "the update")
      ("board", po::value<std::string>(), "board JSON (default: the board the update's record names)")
      ("json", "print one JSON object instead of text");
  po::positional_options_description positional;
  positional.add("old", 1).add("file", 1);
  int code = kOk;
  auto vm = ParseArgs("onedfu diff OLD.dfu NEW.dfu [--board BOARD.json] [--json]", args, options, positional, &code);
  if (!vm) return code;
  auto package = LoadPackage(*vm);
  if (!package.ok()) return Report(package.error());
  const std::string old_name = (*vm)["old"].as<std::string>();
  auto old_bytes = host::ReadFile(old_name);
  if (!old_bytes.ok()) return Report(old_bytes.error());
  auto diff = packer::DiffPackages(*old_bytes, old_name, package->bytes, package->file, package->board);
  if (!diff.ok()) return Report(diff.error());
  std::cout << (vm->count("json") ? packer::DiffJson(*diff) : packer::DiffText(*diff));
  return kOk;
}

}  // namespace onedfu::cli
