#include "host/romfs_build.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <thread>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <system_error>
#include <utility>

#include "host/text.h"
#include "runtime/romfs.h"

extern char** environ;

namespace onedfu::host {

namespace fs = std::filesystem;
using runtime::Diag;
using runtime::MpyArch;

namespace {

std::string ArchNames() {
  std::string out;
  for (uint8_t code = 1; code <= runtime::kMpyArchMax; ++code) {
    if (!out.empty()) out += ", ";
    out += runtime::MpyArchName(static_cast<MpyArch>(code));
  }
  return out;
}

std::string BoardArchText(MpyArch arch) {
  return arch == MpyArch::kNone ? std::string("none (bytecode only)") : runtime::MpyArchName(arch);
}

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t slash = path.find('/', start);
    parts.push_back(path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return parts;
    start = slash + 1;
  }
}

// Same rules as runtime::WriteRomfs, with messages that name the culprit.
Outcome CheckTargetPath(const std::string& path, const std::string& origin) {
  auto fail = [&](const std::string& why) {
    return Fail(EscapeText(origin) + ": ROMFS path \"" + EscapeText(path) + "\" " + why);
  };
  if (path.empty()) return Fail(EscapeText(origin) + ": empty ROMFS path");
  if (path.find('\0') != std::string::npos) return fail("contains a NUL byte");
  if (!IsUtf8(path)) return fail("is not valid UTF-8 (MicroPython file names are str): rename it");
  if (path.front() == '/') return fail("must be relative (no leading '/')");
  if (path.size() > runtime::kRomfsMaxPath) return fail("is longer than 255 characters");
  const auto parts = Split(path);
  if (parts.size() - 1 > runtime::kRomfsMaxDepth) return fail("is nested deeper than 16 directories");
  for (const std::string& part : parts) {
    if (part.empty()) return fail("has an empty component (leading, trailing or double '/')");
    if (part == "." || part == "..") return fail("has a '.' or '..' component");
  }
  return Success();
}

// A temporary directory removed (with its contents) when this goes away.
class TempDir {
 public:
  TempDir() = default;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

  static Expected<TempDir> Create() {
    std::error_code ec;
    fs::path base = fs::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string pattern = (base / "onedfu-romfs-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      return Fail(pattern + ": cannot create a temporary directory: " + std::strerror(errno));
    }
    TempDir dir;
    dir.path_ = pattern;
    return Expected<TempDir>(std::move(dir));
  }

 private:
  fs::path path_;
};

std::string ReadLog(const fs::path& log) {
  auto bytes = ReadFile(log);
  if (!bytes.ok()) return "";
  std::string text(bytes->begin(), bytes->end());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  constexpr size_t kMaxLog = 2000;
  if (text.size() > kMaxLog) text = text.substr(0, kMaxLog) + " ...";
  return text;
}

// Runs `mpy_cross` on `source` and returns the .mpy it wrote. `source_name`
// is recorded in the .mpy (tracebacks show it), so the output does not
// depend on where the package sits on disk.
Expected<Bytes> RunMpyCross(const std::string& mpy_cross, const fs::path& source, const std::string& source_name,
                            MpyArch arch, uint32_t timeout_ms, const fs::path& out, const fs::path& log,
                            const std::string& what) {
  std::vector<std::string> args = {mpy_cross, "-o", out.string(), "-s", source_name};
  if (arch != MpyArch::kNone) args.push_back(std::string("-march=") + runtime::MpyArchName(arch));
  args.push_back(source.string());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // Its own process group, so a timeout stops whatever it started too.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, mpy_cross.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    return Fail(what + ": cannot run mpy-cross \"" + mpy_cross + "\": " + std::strerror(rc));
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto pause = std::chrono::microseconds(500);
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return Fail(what + ": waiting for mpy-cross failed: " + std::strerror(errno));
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return Fail(what + ": mpy-cross \"" + mpy_cross + "\" did not finish within " + std::to_string(timeout_ms) +
                  " ms and was stopped");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20000));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                        : "was killed by signal " + std::to_string(WTERMSIG(status));
    // posix_spawnp reports a missing program as exit status 127 on glibc.
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) how += " (program not found?)";
    const std::string output = ReadLog(log);
    return Fail(what + ": mpy-cross " + how + (output.empty() ? "" : ": " + output));
  }
  auto bytes = ReadFile(out);
  if (!bytes.ok()) return Fail(what + ": mpy-cross succeeded but wrote no output", bytes.error());
  return bytes;
}

struct Item {
  std::string target;
  fs::path source;
  std::string origin;
  bool compile = false;
  bool is_dir = false;
};

std::string Describe(const Item& item) {
  return item.origin + ": " + item.target + " (" + item.source.string() + ")";
}

class ListingVisitor final : public runtime::RomfsReader::WalkVisitor {
 public:
  runtime::Status OnEntry(const char* path, const runtime::RomfsEntry& entry) override {
    RomfsListing item;
    item.path = path;
    item.is_dir = entry.is_dir;
    if (!entry.is_dir) {
      item.size = entry.data.size();
      item.offset = entry.data_offset;
    }
    listing.push_back(std::move(item));
    return runtime::Status::Ok();
  }
  std::vector<RomfsListing> listing;
};

// The tree under a directory as the user sees it: symbolic links followed
// (a file or directory stored under the link's own path), every regular file
// and every empty directory, by path relative to the root ('/'-separated).
// A broken link, a link loop (a chain of links, or a directory link leading
// back to a directory it sits in) and anything neither a regular file nor a
// directory (FIFO, socket, device) are errors naming the path.
struct TreeWalk {
  std::vector<std::string> files;
  std::vector<std::string> empty_dirs;

  Outcome Run(const fs::path& root) {
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0) return Fail(root.string() + ": cannot read: " + std::strerror(errno));
    return Walk(root, "", st);
  }

 private:
  struct Ancestor {
    dev_t dev;
    ino_t ino;
    std::string rel;
  };
  std::vector<Ancestor> ancestors_;
  static constexpr size_t kMaxDepth = 64;

  static std::string Shown(const fs::path& path) { return EscapeText(path.string()); }

  Outcome Walk(const fs::path& path, const std::string& rel, const struct stat& self) {
    if (ancestors_.size() >= kMaxDepth) return Fail(Shown(path) + ": nested deeper than 64 directories");
    ancestors_.push_back({self.st_dev, self.st_ino, rel});
    std::vector<std::string> names;
    std::error_code ec;
    fs::directory_iterator it(path, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) names.push_back(it->path().filename().string());
    if (ec) return Fail(Shown(path) + ": cannot list: " + ec.message());
    std::sort(names.begin(), names.end());
    if (names.empty() && !rel.empty()) empty_dirs.push_back(rel);
    for (const std::string& name : names) {
      const fs::path child = path / name;
      const std::string child_rel = rel.empty() ? name : rel + "/" + name;
      struct stat st {};
      if (::lstat(child.c_str(), &st) != 0) return Fail(Shown(child) + ": cannot read: " + std::strerror(errno));
      const bool link = S_ISLNK(st.st_mode);
      if (link && ::stat(child.c_str(), &st) != 0) {
        const int why = errno;
        std::error_code link_ec;
        const std::string target = fs::read_symlink(child, link_ec).string();
        const std::string to = link_ec ? "" : " -> " + target;
        if (why == ENOENT) return Fail(Shown(child) + ": broken symbolic link" + to);
        if (why == ELOOP) return Fail(Shown(child) + ": symbolic link loop" + to);
        return Fail(Shown(child) + ": cannot follow symbolic link" + to + ": " + std::strerror(why));
      }
      if (S_ISDIR(st.st_mode)) {
        for (const Ancestor& a : ancestors_) {
          if (a.dev == st.st_dev && a.ino == st.st_ino) {
            return Fail(Shown(child) + ": symbolic link loop: leads back to " +
                        (a.rel.empty() ? std::string("the top of the tree") : a.rel));
          }
        }
        ONEDFU_PTRY(auto walked, Walk(child, child_rel, st));
        (void)walked;
        continue;
      }
      if (S_ISREG(st.st_mode)) {
        files.push_back(child_rel);
        continue;
      }
      const char* kind = S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" : "a device";
      return Fail(Shown(child) + ": " + kind + ", not a regular file or directory");
    }
    ancestors_.pop_back();
    return Success();
  }
};

}  // namespace

Expected<std::vector<RomfsSource>> CollectRomfsDir(const fs::path& dir, const RomfsBuildOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Fail(dir.string() + ": not a directory");

  TreeWalk walk;
  ONEDFU_PTRY(auto walked, walk.Run(dir));
  (void)walked;
  std::vector<std::string>& files = walk.files;  // relative, '/'-separated
  std::sort(files.begin(), files.end());

  struct Variant {
    MpyArch arch;
    std::string rel;
  };
  std::map<std::string, std::vector<Variant>> variants;  // target -> candidates
  std::map<std::string, std::string> plain;              // target -> relative path

  for (const std::string& rel : files) {
    const auto parts = Split(rel);
    const auto native = std::find(parts.begin(), parts.end(), "native");
    if (native == parts.end()) {
      plain[rel] = rel;
      continue;
    }
    const size_t k = static_cast<size_t>(native - parts.begin());
    if (parts.size() != k + 3 || !EndsWith(parts[k + 2], ".mpy")) {
      return Fail((dir / rel).string() + ": files under a native/ directory must be native/<arch>/<name>.mpy");
    }
    auto arch = runtime::ParseMpyArch(parts[k + 1].c_str());
    if (!arch.ok()) {
      return Fail((dir / rel).string() + ": unknown arch directory \"" + parts[k + 1] + "\" (use one of: " +
                  ArchNames() + ")");
    }
    std::string target;
    for (size_t i = 0; i < k; ++i) target += parts[i] + "/";
    target += parts[k + 2];
    variants[target].push_back({arch.value(), rel});
  }

  std::vector<RomfsSource> out;
  for (const auto& [target, rel] : plain) out.push_back({target, dir / rel, (dir / rel).string()});
  for (const std::string& rel : walk.empty_dirs) {
    const auto parts = Split(rel);
    if (std::find(parts.begin(), parts.end(), "native") != parts.end()) continue;  // variant folders, not content
    out.push_back({rel, dir / rel, (dir / rel).string(), true});
  }

  for (const auto& [target, candidates] : variants) {
    const Variant* best = nullptr;
    std::string have;
    for (const Variant& v : candidates) {
      have += (have.empty() ? "" : ", ") + std::string(runtime::MpyArchName(v.arch));
      if (!runtime::MpyArchCompatible(v.arch, options.board_arch)) continue;
      if (best == nullptr || v.arch > best->arch) best = &v;
    }
    const std::string native_dir = (dir / fs::path(target).parent_path() / "native").lexically_normal().string();
    const std::string name = fs::path(target).filename().string();
    if (best == nullptr) {
      return Fail(native_dir + ": no variant of " + name + " suits board arch " + BoardArchText(options.board_arch) +
                  " (have: " + have + ")");
    }
    if (auto clash = plain.find(target); clash != plain.end()) {
      return Fail((dir / clash->second).string() + ": clashes with the native variant " + (dir / best->rel).string() +
                  " (both become " + target + ")");
    }
    // The arch directory must say what the file holds.
    auto bytes = ReadFile(dir / best->rel);
    if (!bytes.ok()) return bytes.error();
    Diag diag;
    auto header = runtime::ParseMpyHeader(bytes.value(), &diag);
    if (!header.ok()) return Fail((dir / best->rel).string() + ": " + diag.c_str());
    if (header->native && header->arch != best->arch) {
      return Fail((dir / best->rel).string() + ": holds native code for " + runtime::MpyArchName(header->arch) +
                  " but sits in native/" + runtime::MpyArchName(best->arch) + "/");
    }
    out.push_back({target, dir / best->rel, (dir / best->rel).string()});
  }
  std::sort(out.begin(), out.end(),
            [](const RomfsSource& a, const RomfsSource& b) { return a.target_path < b.target_path; });
  return out;
}

Expected<Bytes> BuildRomfs(std::vector<RomfsSource> sources, const RomfsBuildOptions& options) {
  std::vector<Item> items;
  items.reserve(sources.size());
  for (RomfsSource& src : sources) {
    const std::string origin = src.origin.empty() ? src.source.string() : src.origin;
    auto checked = CheckTargetPath(src.target_path, origin);
    if (!checked.ok()) return checked.error();
    Item item{std::move(src.target_path), std::move(src.source), origin, false, src.is_dir};
    if (!item.is_dir && EndsWith(item.target, ".py")) {
      if (options.mpy_cross.empty()) {
        return Fail(Describe(item) +
                    ": .py source cannot go into ROMFS as text; compile it with mpy-cross and list the .mpy, "
                    "or set \"mpy_cross\" in the package / pass --mpy-cross");
      }
      item.target.replace(item.target.size() - 3, 3, ".mpy");
      item.compile = true;
    }
    items.push_back(std::move(item));
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.target < b.target; });

  std::map<std::string, size_t> by_target;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0 && items[i].target == items[i - 1].target) {
      return Fail("duplicate ROMFS path \"" + items[i].target + "\": from " + items[i - 1].origin + " and " +
                  items[i].origin);
    }
    by_target[items[i].target] = i;
  }
  std::vector<bool> implied(items.size(), false);  // directory entries with something under them
  for (const Item& item : items) {
    for (size_t k = item.target.find('/'); k != std::string::npos; k = item.target.find('/', k + 1)) {
      auto file = by_target.find(item.target.substr(0, k));
      if (file == by_target.end()) continue;
      if (items[file->second].is_dir) {
        implied[file->second] = true;
        continue;
      }
      return Fail("ROMFS path \"" + file->first + "\" is a file (from " + items[file->second].origin +
                  ") and a directory of \"" + item.target + "\" (from " + item.origin + ")");
    }
  }
  size_t kept = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (implied[i]) continue;
    if (kept != i) items[kept] = std::move(items[i]);
    ++kept;
  }
  items.resize(kept);

  std::optional<TempDir> temp;
  std::vector<Bytes> data(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    if (item.is_dir) continue;
    if (item.compile) {
      if (!temp) {
        auto created = TempDir::Create();
        if (!created.ok()) return created.error();
        temp.emplace(std::move(created).value());
      }
      const fs::path out = temp->path() / (std::to_string(i) + ".mpy");
      const fs::path log = temp->path() / (std::to_string(i) + ".log");
      const std::string source_name = item.target.substr(0, item.target.size() - 4) + ".py";
      auto compiled = RunMpyCross(options.mpy_cross, item.source, source_name, options.board_arch,
                                  options.mpy_cross_timeout_ms, out, log, Describe(item));
      if (!compiled.ok()) return compiled.error();
      data[i] = std::move(compiled).value();
    } else {
      auto bytes = ReadFile(item.source);
      if (!bytes.ok()) return Fail(item.origin, bytes.error());
      data[i] = std::move(bytes).value();
    }
    if (EndsWith(item.target, ".mpy")) {
      Diag diag;
      const runtime::Status s = runtime::CheckMpyForBoard(data[i], options.board_arch, &diag);
      if (!s.ok()) return Fail(Describe(item) + ": " + diag.c_str());
    }
  }

  std::vector<runtime::RomfsFileSpec> specs(items.size());
  for (size_t i = 0; i < items.size(); ++i) specs[i] = {items[i].target.c_str(), data[i], items[i].is_dir};
  runtime::RomfsWriteOptions write_options;
  write_options.data_align = options.data_align;
  auto size = runtime::RomfsImageSize(specs, write_options);
  if (!size.ok()) return Fail(std::string("ROMFS image: ") + size.status().message());
  Bytes image(size.value());
  auto written = runtime::WriteRomfs(specs, write_options, image);
  if (!written.ok()) return Fail(std::string("ROMFS image: ") + written.status().message());
  image.resize(written.value());
  return image;
}

Expected<std::vector<RomfsListing>> ListRomfs(std::span<const uint8_t> image, const std::string& source_name) {
  Diag diag;
  auto reader = runtime::RomfsReader::Open(image, &diag);
  if (!reader.ok()) return Fail(source_name + ": " + diag.c_str());
  ListingVisitor visitor;
  const runtime::Status s = reader->Walk(visitor, &diag);
  if (!s.ok()) {
    return Fail(source_name + ": " + (diag.empty() ? std::string(s.message()) : std::string(diag.c_str())));
  }
  return std::move(visitor.listing);
}

}  // namespace onedfu::host
