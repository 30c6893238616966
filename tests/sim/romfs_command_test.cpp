// `onedfu-sim romfs push|pop|ls|cat` in-process: every call opens the state directory afresh,
// as separate invocations of the tool do, so state persisting between calls is persisting in
// the flash files.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "host/board_json.h"
#include "host/file_io.h"
#include "packer/pack.h"
#include "host/romfs_build.h"
#include "romfs_command.h"
#include "runtime/region_store.h"
#include "sim_board.h"
#include "state_lock.h"

namespace fs = std::filesystem;

namespace onedfu::sim {
namespace {

const fs::path kSource = ONEDFU_SOURCE_DIR;
const fs::path kScratch = fs::path(ONEDFU_TEST_SCRATCH) / "romfs";
const std::string kBoard = (kSource / "manifests/boards/pybd-sf6.json").string();

struct Run {
  int status = -1;
  std::string out;
  std::string err;
};

Run Romfs(const fs::path& state, std::vector<std::string> args) {
  args.push_back("--board");
  args.push_back(kBoard);
  args.push_back("--state");
  args.push_back(state.string());
  std::ostringstream out;
  std::ostringstream err;
  Run r;
  r.status = RunRomfs(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

void WriteBytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> Text(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

std::vector<uint8_t> Binary(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 7;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v[i] = static_cast<uint8_t>(x);
  }
  v[0] = 0x00;  // NUL and 0xff bytes must come through unchanged
  v[1] = 0xff;
  v[2] = '\n';
  return v;
}

std::vector<uint8_t> Bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// The `ls` line of `path` (files and dirs are listed as "  f  SIZE  #IMAGE  PATH").
std::string LsLine(const std::string& ls, const std::string& path) {
  std::istringstream in(ls);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0 &&
        line[line.size() - path.size() - 1] == ' ') {
      return line;
    }
  }
  return "";
}

}  // namespace

TEST_CASE("romfs push DIR, ls, cat; a second image overrides a file; pop restores it; state persists") {
  const fs::path state = kScratch / "stack-state";
  const fs::path a = kScratch / "stack-a";
  const fs::path b = kScratch / "stack-b";
  fs::remove_all(kScratch / "stack-state");
  fs::remove_all(a);
  fs::remove_all(b);
  const std::vector<uint8_t> blob = Binary(3001, 1);
  WriteBytes(a / "hello.txt", Text("hello from image A\n"));
  WriteBytes(a / "lib/util.txt", Text("util v1\n"));
  WriteBytes(a / "assets/blob.bin", blob);
  WriteBytes(b / "hello.txt", Text("HELLO FROM IMAGE B, LONGER\n"));
  WriteBytes(b / "new.txt", Text("only in B\n"));

  Run r = Romfs(state, {"push", a.string()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("as image #0") != std::string::npos);
  // The simulated board was created: every memory file, the bootloader image in place.
  CHECK(fs::file_size(state / "internal.bin") == 2 * 1024 * 1024);
  CHECK(fs::file_size(state / "qspi.bin") == 2 * 1024 * 1024);

  r = Romfs(state, {"ls"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  INFO(r.out);
  CHECK(r.out.find("images 1 (1 live)") != std::string::npos);
  CHECK(r.out.find("#0 slot at 0x90100080") != std::string::npos);  // slot header, then the image
  CHECK(r.out.find("3 files, 2 dirs") != std::string::npos);
  CHECK(LsLine(r.out, "assets/blob.bin").find(" 3001  #0  ") != std::string::npos);
  CHECK(LsLine(r.out, "hello.txt").find(" 19  #0  ") != std::string::npos);
  CHECK(LsLine(r.out, "lib/").find("  d") == 0);

  r = Romfs(state, {"cat", "assets/blob.bin"});
  REQUIRE(r.status == 0);
  CHECK(Bytes(r.out) == blob);
  r = Romfs(state, {"cat", "/lib/util.txt"});
  CHECK(r.out == "util v1\n");

  r = Romfs(state, {"push", b.string()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("as image #1") != std::string::npos);
  r = Romfs(state, {"ls"});
  CHECK(r.out.find("images 2 (2 live)") != std::string::npos);
  CHECK(LsLine(r.out, "hello.txt").find(" 27  #1  ") != std::string::npos);
  CHECK(LsLine(r.out, "new.txt").find("#1") != std::string::npos);
  CHECK(LsLine(r.out, "lib/util.txt").find("#0") != std::string::npos);  // older files stay visible
  CHECK(Romfs(state, {"cat", "hello.txt"}).out == "HELLO FROM IMAGE B, LONGER\n");
  CHECK(Bytes(Romfs(state, {"cat", "assets/blob.bin"}).out) == blob);

  r = Romfs(state, {"pop"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("popped image #1") != std::string::npos);
  CHECK(Romfs(state, {"cat", "hello.txt"}).out == "hello from image A\n");
  r = Romfs(state, {"cat", "new.txt"});
  CHECK(r.status == 1);
  CHECK(r.err.find("new.txt") != std::string::npos);
  r = Romfs(state, {"ls"});
  CHECK(r.out.find("(1 live)") != std::string::npos);
  CHECK(LsLine(r.out, "new.txt").empty());

  // A push after the pop mounts first (erasing the popped slot) and reuses its place.
  r = Romfs(state, {"push", b.string()});
  REQUIRE(r.status == 0);
  CHECK(r.out.find("as image #1") != std::string::npos);
  CHECK(Romfs(state, {"ls"}).out.find("images 2 (2 live)") != std::string::npos);

  REQUIRE(Romfs(state, {"pop"}).status == 0);
  REQUIRE(Romfs(state, {"pop"}).status == 0);
  r = Romfs(state, {"pop"});
  CHECK(r.status == 1);
  CHECK(r.err.find("nothing to pop") != std::string::npos);
  r = Romfs(state, {"cat", "hello.txt"});
  CHECK(r.status == 1);
}

TEST_CASE("romfs push IMG: an image file as is; a file that is not an image changes nothing") {
  const fs::path state = kScratch / "img-state";
  fs::remove_all(state);
  // Build the image with the packer's builder from a directory holding one file.
  const fs::path dir = kScratch / "img-src";
  fs::remove_all(dir);
  WriteBytes(dir / "x/y.bin", Binary(100, 3));
  host::RomfsBuildOptions options;
  auto sources = host::CollectRomfsDir(dir, options);
  REQUIRE(sources.ok());
  auto image = host::BuildRomfs(*sources, options);
  REQUIRE(image.ok());
  const fs::path image_file = kScratch / "one.romfs";
  REQUIRE(host::WriteFileAtomic(image_file, *image).ok());

  Run r = Romfs(state, {"push", image_file.string()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("(" + std::to_string(image->size()) + " bytes)") != std::string::npos);
  CHECK(Bytes(Romfs(state, {"cat", "x/y.bin"}).out) == Binary(100, 3));

  const fs::path junk = kScratch / "junk.bin";
  REQUIRE(host::WriteFileAtomic(junk, Binary(300, 4)).ok());
  r = Romfs(state, {"push", junk.string()});
  CHECK(r.status == 1);
  CHECK(r.err.find("junk.bin") != std::string::npos);
  r = Romfs(state, {"ls"});
  CHECK(r.out.find("images 1 (1 live)") != std::string::npos);

  r = Romfs(state, {"cat", "x"});
  CHECK(r.status == 1);
  CHECK(r.err.find("is a directory") != std::string::npos);
}

TEST_CASE("romfs on a board flashed with a package: the base image is image #0 and is never popped") {
  const fs::path state = kScratch / "base-state";
  fs::remove_all(state);
  const fs::path dfu = kScratch / "demo.dfu";
  packer::PackRequest request;
  request.package = kSource / "manifests/examples/pybd-sf6-demo.json";
  auto packed = packer::PackToFile(request, dfu);
  REQUIRE_MESSAGE(packed.ok(), packed.error().message);
  // Put the package's elements into the board's flash files, as a dfu-util download would.
  {
    auto board = host::LoadBoardFile(kBoard);
    REQUIRE(board.ok());
    auto sim = SimBoard::Open(*board, state);
    REQUIRE(sim.ok());
    for (const packer::PackedElement& e : packed->elements) {
      FileFlash* flash = (*sim)->FlashAt(e.address);
      REQUIRE(flash != nullptr);
      REQUIRE(flash->Preload(e.address, e.data));
    }
    REQUIRE((*sim)->Sync());
  }
  Run r = Romfs(state, {"ls"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  INFO(r.out);
  CHECK(r.out.find("#0 base at 0x90100000") != std::string::npos);
  CHECK(LsLine(r.out, "lib/plain_mod.mpy").find(" 256  #0  ") != std::string::npos);
  const auto greeting = host::ReadFile(kSource / "manifests/examples/pybd-sf6-demo/romfs/data/greeting.txt");
  REQUIRE(greeting.ok());
  CHECK(Bytes(Romfs(state, {"cat", "data/greeting.txt"}).out) == *greeting);

  // A soft update of one file on top of the package's image.
  const fs::path soft = kScratch / "soft";
  fs::remove_all(soft);
  WriteBytes(soft / "data/greeting.txt", Text("patched greeting\n"));
  REQUIRE(Romfs(state, {"push", soft.string()}).status == 0);
  CHECK(Romfs(state, {"cat", "data/greeting.txt"}).out == "patched greeting\n");
  {
    // A soft update never touches what the boot record covers: the board still starts.
    auto board = host::LoadBoardFile(kBoard);
    REQUIRE(board.ok());
    auto sim = SimBoard::Open(*board, state);
    REQUIRE(sim.ok());
    const bootloader::BootDecision decision = (*sim)->Boot(false);
    CHECK_MESSAGE(decision.start_application, decision.message.c_str());
  }
  CHECK(LsLine(Romfs(state, {"ls"}).out, "lib/plain_mod.mpy").find("#0") != std::string::npos);
  REQUIRE(Romfs(state, {"pop"}).status == 0);
  CHECK(Bytes(Romfs(state, {"cat", "data/greeting.txt"}).out) == *greeting);
  r = Romfs(state, {"pop"});
  CHECK(r.status == 1);
  CHECK(Bytes(Romfs(state, {"cat", "data/greeting.txt"}).out) == *greeting);
}

TEST_CASE("romfs on a state directory that a run holds is refused, naming the board in use") {
  const fs::path state = kScratch / "locked" / "state";
  fs::remove_all(state);
  auto held = StateLock::Acquire(state, "pybd-sf6");  // what `onedfu-sim run` holds while it runs
  REQUIRE(held.ok());
  const Run r = Romfs(state, {"ls"});
  CHECK(r.status != 0);
  CHECK(r.err.find("state directory " + state.string() + " is in use by another onedfu-sim (pid ") !=
        std::string::npos);
  CHECK(r.err.find(", board pybd-sf6)") != std::string::npos);
  CHECK_FALSE(fs::exists(state / "qspi.bin"));  // refused before any flash file was opened
  held.value().reset();
  CHECK(Romfs(state, {"ls"}).status == 0);
}

TEST_CASE("romfs usage errors") {
  const fs::path state = kScratch / "usage-state";
  CHECK(Romfs(state, {}).status == 2);
  CHECK(Romfs(state, {"frobnicate"}).err.find("unknown action 'frobnicate'") != std::string::npos);
  CHECK(Romfs(state, {"cat"}).status == 2);
  CHECK(Romfs(state, {"ls", "extra"}).status == 2);
  CHECK(Romfs(state, {"push", "x", "--align", "3"}).status == 2);
  std::ostringstream out;
  std::ostringstream err;
  CHECK(RunRomfs({"ls", "--board", kBoard}, out, err) == 2);
  CHECK(err.str().find("--state is required") != std::string::npos);
  CHECK(RunRomfs({"ls", "--state", state.string(), "--board", "no-such-board"}, out, err) == 1);
}

}  // namespace onedfu::sim
