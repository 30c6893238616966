// Host ROMFS building: sources -> image -> listing, .mpy checks against the
// board arch, native/<arch>/ variant selection, and the mpy-cross hand-off
// (exercised with small shell scripts standing in for mpy-cross, which is
// not packaged in Debian).
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "host/romfs_build.h"
#include "runtime/romfs.h"

using namespace onedfu;
using namespace onedfu::host;
namespace fs = std::filesystem;
using runtime::MpyArch;

namespace {

const fs::path kMpyDir = fs::path(ONEDFU_SHARED_DIR) / "testdata" / "mpy";

class ScratchDir {
 public:
  ScratchDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("onedfu-romfs-build-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

  fs::path Write(const std::string& rel, const Bytes& data) const {
    const fs::path p = path_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    return p;
  }
  fs::path Copy(const std::string& sample, const std::string& rel) const {
    const fs::path p = path_ / rel;
    fs::create_directories(p.parent_path());
    fs::copy_file(kMpyDir / sample, p, fs::copy_options::overwrite_existing);
    return p;
  }
  fs::path Script(const std::string& name, const std::string& body) const {
    const fs::path p = path_ / name;
    std::ofstream(p) << "#!/bin/sh\n" << body;
    fs::permissions(p, fs::perms::owner_all);
    return p;
  }

 private:
  fs::path path_;
};

Bytes Load(const fs::path& p) {
  auto bytes = ReadFile(p);
  REQUIRE_MESSAGE(bytes.ok(), (bytes.ok() ? "" : bytes.error().message));
  return bytes.value();
}

std::string Text(const fs::path& p) {
  const Bytes b = Load(p);
  return std::string(b.begin(), b.end());
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

Bytes Pattern(size_t n) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(i * 13 + 5);
  return out;
}

std::vector<std::string> ListPaths(const Bytes& image) {
  auto listing = ListRomfs(image, "test image");
  REQUIRE_MESSAGE(listing.ok(), (listing.ok() ? "" : listing.error().message));
  std::vector<std::string> out;
  for (const RomfsListing& l : listing.value()) out.push_back(l.path + (l.is_dir ? "/" : ""));
  return out;
}

RomfsBuildOptions Board(MpyArch arch) {
  RomfsBuildOptions options;
  options.board_arch = arch;
  return options;
}

}  // namespace

TEST_CASE("romfs build: modules and assets into an image, listed back") {
  ScratchDir dir;
  const Bytes font = Pattern(3000);
  const fs::path font_path = dir.Write("assets/big.bin", font);
  const std::vector<RomfsSource> sources = {
      {"lib/plain_mod.mpy", kMpyDir / "plain_mod.mpy", "package.json: /modules/0"},
      {"fonts/big.bin", font_path, "package.json: /assets/0"},
      {"lib/native_mod.mpy", kMpyDir / "native_mod.armv7emsp.mpy", "package.json: /modules/1"},
  };
  auto image = BuildRomfs(sources, Board(MpyArch::kArmV7EMDP));
  REQUIRE_MESSAGE(image.ok(), (image.ok() ? "" : image.error().message));
  CHECK(image->size() % 2 == 0);

  auto listing = ListRomfs(image.value(), "test image");
  REQUIRE(listing.ok());
  CHECK(ListPaths(image.value()) ==
        std::vector<std::string>{"fonts/", "fonts/big.bin", "lib/", "lib/native_mod.mpy", "lib/plain_mod.mpy"});
  const std::pair<std::string, Bytes> expect[] = {
      {"fonts/big.bin", font},
      {"lib/native_mod.mpy", Load(kMpyDir / "native_mod.armv7emsp.mpy")},
      {"lib/plain_mod.mpy", Load(kMpyDir / "plain_mod.mpy")},
  };
  for (const auto& want : expect) {
    const std::string& path = want.first;
    const Bytes& bytes = want.second;
    CAPTURE(path);
    auto it = std::find_if(listing->begin(), listing->end(), [&](const RomfsListing& l) { return l.path == path; });
    REQUIRE(it != listing->end());
    CHECK(it->size == bytes.size());
    CHECK(it->offset % 8 == 0);
    REQUIRE(it->offset + it->size <= image->size());
    CHECK(Bytes(image->begin() + it->offset, image->begin() + it->offset + it->size) == bytes);
  }

  // The same code the device runs finds the modules.
  auto reader = runtime::RomfsReader::Open(image.value(), nullptr);
  REQUIRE(reader.ok());
  CHECK(reader->Lookup("/lib/plain_mod.mpy").ok());

  // data_align is passed through.
  RomfsBuildOptions aligned = Board(MpyArch::kArmV7EMDP);
  aligned.data_align = 256;
  auto image256 = BuildRomfs(sources, aligned);
  REQUIRE(image256.ok());
  auto listing256 = ListRomfs(image256.value(), "test image");
  REQUIRE(listing256.ok());
  for (const RomfsListing& l : listing256.value()) {
    if (!l.is_dir) CHECK(l.offset % 256 == 0);
  }
}

TEST_CASE("romfs build: .mpy checks name the file") {
  ScratchDir dir;
  SUBCASE("native code for another arch") {
    auto r = BuildRomfs({{"lib/n.mpy", kMpyDir / "native_mod.x64.mpy", "package.json: /modules/3"}},
                        Board(MpyArch::kArmV7EMDP));
    REQUIRE_FALSE(r.ok());
    const std::string& m = r.error().message;
    CHECK(Contains(m, "package.json: /modules/3"));
    CHECK(Contains(m, "lib/n.mpy"));
    CHECK(Contains(m, "native_mod.x64.mpy"));
    CHECK(Contains(m, "native code for x64 cannot run on armv7emdp"));
  }
  SUBCASE("native code on a board without an arch") {
    auto r = BuildRomfs({{"v.mpy", kMpyDir / "viper_mod.armv6m.mpy", "pkg"}}, Board(MpyArch::kNone));
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "native code for armv6m"));
  }
  SUBCASE("Thumb: older arch on a newer firmware is fine") {
    auto r = BuildRomfs({{"v.mpy", kMpyDir / "viper_mod.armv6m.mpy", "pkg"}}, Board(MpyArch::kArmV7M));
    CHECK(r.ok());
  }
  SUBCASE("other .mpy version") {
    const fs::path old = dir.Write("old.mpy", {'M', 5, 0, 31, 0, 0});
    auto r = BuildRomfs({{"old.mpy", old, "pkg: /modules/0"}}, Board(MpyArch::kArmV7EMDP));
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "old.mpy"));
    CHECK(Contains(r.error().message, "version 5"));
  }
  SUBCASE("not a .mpy at all") {
    const fs::path fake = dir.Write("fake.mpy", {'h', 'e', 'l', 'l', 'o'});
    auto r = BuildRomfs({{"fake.mpy", fake, "pkg"}}, Board(MpyArch::kArmV7EMDP));
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "not 'M'"));
  }
  SUBCASE("assets are not checked") {
    const fs::path blob = dir.Write("x.bin", {'h', 'i'});
    CHECK(BuildRomfs({{"x.bin", blob, "pkg"}}, Board(MpyArch::kArmV7EMDP)).ok());
  }
  SUBCASE("missing source") {
    auto r = BuildRomfs({{"x.bin", dir.path() / "nope.bin", "pkg: /assets/4"}}, Board(MpyArch::kNone));
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "pkg: /assets/4"));
    CHECK(Contains(r.error().message, "nope.bin"));
  }
}

TEST_CASE("romfs build: path rules") {
  const fs::path plain = kMpyDir / "plain_mod.mpy";
  SUBCASE("duplicates name both origins") {
    auto r = BuildRomfs({{"lib/a.mpy", plain, "pkg: /modules/0"}, {"lib/a.mpy", plain, "pkg: /modules/5"}}, {});
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "duplicate ROMFS path \"lib/a.mpy\""));
    CHECK(Contains(r.error().message, "pkg: /modules/0"));
    CHECK(Contains(r.error().message, "pkg: /modules/5"));
  }
  SUBCASE("a file that is also a directory") {
    auto r = BuildRomfs({{"lib", plain, "pkg: /modules/0"}, {"lib/a.mpy", plain, "pkg: /modules/1"}}, {});
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "\"lib\" is a file"));
  }
  SUBCASE("malformed target paths") {
    for (const char* bad : {"/lib/a.mpy", "lib//a.mpy", "lib/", "", "../a.mpy", "lib/./a.mpy"}) {
      CAPTURE(bad);
      auto r = BuildRomfs({{bad, plain, "pkg: /modules/7"}}, {});
      REQUIRE_FALSE(r.ok());
      CHECK(Contains(r.error().message, "pkg: /modules/7"));
    }
  }
  SUBCASE("empty source list gives an empty, valid image") {
    auto r = BuildRomfs({}, {});
    REQUIRE(r.ok());
    CHECK(ListPaths(r.value()).empty());
  }
}

TEST_CASE("romfs build: .py needs mpy-cross") {
  ScratchDir dir;
  const fs::path py = dir.Write("m.py", {'x', '=', '1', '\n'});
  const fs::path args = dir.path() / "args.txt";

  SUBCASE("refused without mpy_cross, with a hint") {
    auto r = BuildRomfs({{"lib/m.py", py, "pkg: /modules/2"}}, Board(MpyArch::kArmV7EMDP));
    REQUIRE_FALSE(r.ok());
    const std::string& m = r.error().message;
    CHECK(Contains(m, "pkg: /modules/2"));
    CHECK(Contains(m, "compile it with mpy-cross and list the .mpy"));
    CHECK(Contains(m, "\"mpy_cross\""));
    CHECK(Contains(m, "--mpy-cross"));
  }
  SUBCASE("compiled by mpy_cross into .mpy") {
    // Stand-in: records its arguments and writes the plain_mod.mpy sample to -o.
    const fs::path fake = dir.Script(
        "fake-mpy-cross",
        "echo \"$@\" > '" + args.string() + "'\n"
        "out=''\n"
        "while [ $# -gt 0 ]; do case \"$1\" in -o) out=\"$2\"; shift 2;; *) shift;; esac; done\n"
        "cp '" + (kMpyDir / "plain_mod.mpy").string() + "' \"$out\"\n");
    RomfsBuildOptions options = Board(MpyArch::kArmV7EMDP);
    options.mpy_cross = fake.string();
    auto r = BuildRomfs({{"lib/m.py", py, "pkg: /modules/2"}}, options);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    CHECK(ListPaths(r.value()) == std::vector<std::string>{"lib/", "lib/m.mpy"});
    auto reader = runtime::RomfsReader::Open(r.value(), nullptr);
    REQUIRE(reader.ok());
    auto entry = reader->Lookup("lib/m.mpy");
    REQUIRE(entry.ok());
    CHECK(Bytes(entry->data.begin(), entry->data.end()) == Load(kMpyDir / "plain_mod.mpy"));
    const std::string called = Text(args);
    CHECK(Contains(called, "-march=armv7emdp"));
    CHECK(Contains(called, "-s lib/m.py"));
    CHECK(Contains(called, py.string()));
  }
  SUBCASE("no -march for a board without an arch") {
    const fs::path fake = dir.Script(
        "fake-mpy-cross",
        "echo \"$@\" > '" + args.string() + "'\n"
        "while [ $# -gt 0 ]; do case \"$1\" in -o) out=\"$2\"; shift 2;; *) shift;; esac; done\n"
        "cp '" + (kMpyDir / "plain_mod.mpy").string() + "' \"$out\"\n");
    RomfsBuildOptions options = Board(MpyArch::kNone);
    options.mpy_cross = fake.string();
    REQUIRE(BuildRomfs({{"m.py", py, "pkg"}}, options).ok());
    CHECK_FALSE(Contains(Text(args), "-march"));
  }
  SUBCASE("the .mpy mpy-cross wrote is checked too") {
    const fs::path fake = dir.Script(
        "fake-mpy-cross",
        "while [ $# -gt 0 ]; do case \"$1\" in -o) out=\"$2\"; shift 2;; *) shift;; esac; done\n"
        "cp '" + (kMpyDir / "native_mod.x64.mpy").string() + "' \"$out\"\n");
    RomfsBuildOptions options = Board(MpyArch::kArmV7EMDP);
    options.mpy_cross = fake.string();
    auto r = BuildRomfs({{"m.py", py, "pkg"}}, options);
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "native code for x64 cannot run on armv7emdp"));
  }
  SUBCASE("an mpy-cross that never exits is stopped after the timeout, with what it started") {
    const fs::path pid_file = dir.path() / "child.pid";
    // A child that would outlive a plain kill of the script: the whole process group must go.
    const fs::path fake = dir.Script("hanging-mpy-cross",
                                     "sleep 1000 &\necho $! > '" + pid_file.string() + "'\nwait\n");
    RomfsBuildOptions options = Board(MpyArch::kArmV7EMDP);
    options.mpy_cross = fake.string();
    options.mpy_cross_timeout_ms = 200;
    auto r = BuildRomfs({{"m.py", py, "pkg: /modules/4"}}, options);
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "pkg: /modules/4"));
    CHECK(Contains(r.error().message, "mpy-cross \"" + fake.string() + "\" did not finish within 200 ms and was stopped"));
    std::string child = Text(pid_file);
    while (!child.empty() && (child.back() == '\n' || child.back() == ' ')) child.pop_back();
    REQUIRE_FALSE(child.empty());
    const pid_t child_pid = static_cast<pid_t>(std::stol(child));
    // Killed with its group: gone, or a zombie waiting for whoever inherited it.
    const auto running = [&] {
      if (::kill(child_pid, 0) != 0) return false;
      auto read = ReadFile("/proc/" + child + "/stat");
      if (!read.ok()) return false;  // gone between the two looks
      const std::string stat(read->begin(), read->end());
      const size_t paren = stat.rfind(')');
      return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
    };
    bool alive = running();
    for (int i = 0; alive && i < 200; ++i) {
      ::usleep(10000);  // the signal is delivered asynchronously
      alive = running();
    }
    CHECK_FALSE(alive);
  }
  SUBCASE("mpy-cross failing: exit status and its output") {
    const fs::path fake = dir.Script("failing-mpy-cross", "echo 'SyntaxError: invalid syntax' >&2\nexit 3\n");
    RomfsBuildOptions options = Board(MpyArch::kArmV7EMDP);
    options.mpy_cross = fake.string();
    auto r = BuildRomfs({{"m.py", py, "pkg: /modules/9"}}, options);
    REQUIRE_FALSE(r.ok());
    const std::string& m = r.error().message;
    CHECK(Contains(m, "pkg: /modules/9"));
    CHECK(Contains(m, "exited with status 3"));
    CHECK(Contains(m, "SyntaxError: invalid syntax"));
  }
  SUBCASE("mpy-cross succeeding without output") {
    const fs::path fake = dir.Script("lazy-mpy-cross", "exit 0\n");
    RomfsBuildOptions options = Board(MpyArch::kArmV7EMDP);
    options.mpy_cross = fake.string();
    auto r = BuildRomfs({{"m.py", py, "pkg"}}, options);
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "wrote no output"));
  }
  SUBCASE("mpy-cross missing") {
    RomfsBuildOptions options = Board(MpyArch::kArmV7EMDP);
    options.mpy_cross = (dir.path() / "no-such-mpy-cross").string();
    auto r = BuildRomfs({{"m.py", py, "pkg"}}, options);
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "no-such-mpy-cross"));
  }
}

TEST_CASE("romfs build: CollectRomfsDir picks native variants") {
  ScratchDir dir;
  const fs::path root = dir.path() / "romfs";
  dir.Write("romfs/boot.bin", Pattern(10));
  dir.Copy("plain_mod.mpy", "romfs/lib/util.mpy");
  dir.Copy("viper_mod.armv6m.mpy", "romfs/lib/native/armv6m/fast.mpy");
  dir.Copy("native_mod.armv7emsp.mpy", "romfs/lib/native/armv7emsp/fast.mpy");
  dir.Copy("native_mod.x64.mpy", "romfs/lib/native/x64/fast.mpy");

  auto pick = [&](MpyArch arch) -> std::string {
    auto r = CollectRomfsDir(root, Board(arch));
    if (!r.ok()) return "error: " + r.error().message;
    std::string out;
    for (const RomfsSource& s : r.value()) {
      out += s.target_path + "=" + fs::relative(s.source, root).generic_string() + ";";
      CHECK(s.origin == s.source.string());
    }
    return out;
  };
  CHECK(pick(MpyArch::kArmV7EMDP) == "boot.bin=boot.bin;lib/fast.mpy=lib/native/armv7emsp/fast.mpy;"
                                     "lib/util.mpy=lib/util.mpy;");
  CHECK(pick(MpyArch::kArmV7M) == "boot.bin=boot.bin;lib/fast.mpy=lib/native/armv6m/fast.mpy;"
                                  "lib/util.mpy=lib/util.mpy;");
  CHECK(pick(MpyArch::kX64) == "boot.bin=boot.bin;lib/fast.mpy=lib/native/x64/fast.mpy;lib/util.mpy=lib/util.mpy;");
  const std::string none = pick(MpyArch::kNone);
  CHECK(Contains(none, "error: "));
  CHECK(Contains(none, "no variant of fast.mpy suits board arch none"));
  CHECK(Contains(none, "have: armv6m, armv7emsp, x64"));
  CHECK(Contains(pick(MpyArch::kXtensa), "suits board arch xtensa"));

  // A bytecode fallback in native/none/ serves boards that fit no native variant.
  dir.Copy("plain_mod.mpy", "romfs/lib/native/none/fast.mpy");
  CHECK(Contains(pick(MpyArch::kXtensa), "lib/fast.mpy=lib/native/none/fast.mpy;"));
  CHECK(Contains(pick(MpyArch::kArmV7EMDP), "lib/fast.mpy=lib/native/armv7emsp/fast.mpy;"));

  // Full pipeline: collect, build, list.
  auto sources = CollectRomfsDir(root, Board(MpyArch::kArmV7EMDP));
  REQUIRE(sources.ok());
  auto image = BuildRomfs(sources.value(), Board(MpyArch::kArmV7EMDP));
  REQUIRE_MESSAGE(image.ok(), (image.ok() ? "" : image.error().message));
  CHECK(ListPaths(image.value()) == std::vector<std::string>{"boot.bin", "lib/", "lib/fast.mpy", "lib/util.mpy"});
}

TEST_CASE("romfs build: CollectRomfsDir refuses what it cannot place") {
  ScratchDir dir;
  const fs::path root = dir.path() / "romfs";
  SUBCASE("file in the wrong arch directory") {
    dir.Copy("native_mod.x64.mpy", "romfs/native/armv7m/m.mpy");
    auto r = CollectRomfsDir(root, Board(MpyArch::kArmV7EMDP));
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "holds native code for x64 but sits in native/armv7m/"));
  }
  SUBCASE("unknown arch directory") {
    dir.Copy("plain_mod.mpy", "romfs/native/armv9/m.mpy");
    auto r = CollectRomfsDir(root, Board(MpyArch::kArmV7EMDP));
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "unknown arch directory \"armv9\""));
    CHECK(Contains(r.error().message, "armv7emdp"));  // lists the valid names
  }
  SUBCASE("other files under native/") {
    dir.Write("romfs/native/README.txt", {'x'});
    auto r = CollectRomfsDir(root, Board(MpyArch::kArmV7EMDP));
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "native/<arch>/<name>.mpy"));
  }
  SUBCASE("variant clashes with a plain file") {
    dir.Copy("plain_mod.mpy", "romfs/m.mpy");
    dir.Copy("native_mod.armv7emsp.mpy", "romfs/native/armv7emsp/m.mpy");
    auto r = CollectRomfsDir(root, Board(MpyArch::kArmV7EMDP));
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "clashes with the native variant"));
  }
  SUBCASE("not a directory") {
    auto r = CollectRomfsDir(dir.path() / "missing", {});
    REQUIRE_FALSE(r.ok());
    CHECK(Contains(r.error().message, "missing: not a directory"));
  }
}

TEST_CASE("romfs build: ListRomfs reports where an image is broken") {
  auto r = ListRomfs(Bytes(16, 0xff), "pkg.dfu: romfs");
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(r.error().message, "pkg.dfu: romfs: "));
  CHECK(Contains(r.error().message, "no header"));
  // A file record whose payload runs past the image.
  const Bytes broken = {0xd2, 0xcd, 0x31, 0x04, 0x05, 0x10, 0x01, 'x'};
  r = ListRomfs(broken, "pkg.dfu: romfs");
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(r.error().message, "pkg.dfu: romfs: romfs record at 0x00000004"));
}

TEST_CASE("romfs build: the tree as the user has it: empty directories and symbolic links") {
  ScratchDir dir;
  const fs::path root = dir.path() / "romfs";
  dir.Write("romfs/a.txt", Pattern(10));
  fs::create_directories(root / "empty");
  fs::create_directories(root / "sub/deeper");
  fs::create_directories(root / "lib/native/armv7emsp");  // an empty variant folder is no content
  fs::create_symlink("a.txt", root / "link.txt");
  dir.Write("outside.bin", Pattern(20));
  dir.Write("outside_dir/f.bin", Pattern(30));
  fs::create_symlink("../outside.bin", root / "ext.bin");
  fs::create_symlink(dir.path() / "outside_dir", root / "linked");

  auto sources = CollectRomfsDir(root, Board(MpyArch::kArmV7EMDP));
  REQUIRE_MESSAGE(sources.ok(), (sources.ok() ? "" : sources.error().message));
  std::string listed;
  for (const RomfsSource& s : *sources) listed += s.target_path + (s.is_dir ? "/;" : ";");
  CHECK(listed == "a.txt;empty/;ext.bin;link.txt;linked/f.bin;sub/deeper/;");
  auto image = BuildRomfs(*sources, Board(MpyArch::kArmV7EMDP));
  REQUIRE_MESSAGE(image.ok(), (image.ok() ? "" : image.error().message));
  CHECK(ListPaths(*image) == std::vector<std::string>{"a.txt", "empty/", "ext.bin", "link.txt", "linked/",
                                                      "linked/f.bin", "sub/", "sub/deeper/"});
  auto reader = runtime::RomfsReader::Open(*image, nullptr);
  REQUIRE(reader.ok());
  auto link = reader->Lookup("link.txt");
  REQUIRE(link.ok());
  CHECK(Bytes(link->data.begin(), link->data.end()) == Pattern(10));
  auto ext = reader->Lookup("ext.bin");
  REQUIRE(ext.ok());
  CHECK(Bytes(ext->data.begin(), ext->data.end()) == Pattern(20));

  // An explicit empty directory with files under it from another source is just that directory.
  std::vector<RomfsSource> mixed = *sources;
  mixed.push_back({"empty/now.bin", dir.path() / "outside.bin", "extra"});
  auto filled = BuildRomfs(mixed, Board(MpyArch::kArmV7EMDP));
  REQUIRE_MESSAGE(filled.ok(), (filled.ok() ? "" : filled.error().message));
  const auto paths = ListPaths(*filled);
  CHECK(std::count(paths.begin(), paths.end(), "empty/") == 1);
  CHECK(std::count(paths.begin(), paths.end(), "empty/now.bin") == 1);
}

TEST_CASE("romfs build: broken links, link loops and special files are errors naming the path") {
  ScratchDir dir;
  const fs::path root = dir.path() / "romfs";
  dir.Write("romfs/a.txt", Pattern(10));
  const auto error = [&]() {
    auto r = CollectRomfsDir(root, Board(MpyArch::kArmV7EMDP));
    return r.ok() ? std::string("ok") : r.error().message;
  };
  SUBCASE("broken link") {
    fs::create_symlink("missing.txt", root / "gone.txt");
    CHECK(error() == (root / "gone.txt").string() + ": broken symbolic link -> missing.txt");
  }
  SUBCASE("a directory link back up the tree") {
    fs::create_directories(root / "sub");
    fs::create_symlink("..", root / "sub/up");
    CHECK(error() == (root / "sub/up").string() + ": symbolic link loop: leads back to the top of the tree");
    fs::remove(root / "sub/up");
    fs::create_directories(root / "sub/inner");
    fs::create_symlink("../../sub", root / "sub/inner/again");
    CHECK(error() == (root / "sub/inner/again").string() + ": symbolic link loop: leads back to sub");
  }
  SUBCASE("a chain of links that never ends") {
    fs::create_symlink("y", root / "x");
    fs::create_symlink("x", root / "y");
    CHECK(error() == (root / "x").string() + ": symbolic link loop -> y");
  }
  SUBCASE("a FIFO") {
    REQUIRE(::mkfifo((root / "pipe").c_str(), 0600) == 0);
    CHECK(error() == (root / "pipe").string() + ": a FIFO, not a regular file or directory");
  }
}
