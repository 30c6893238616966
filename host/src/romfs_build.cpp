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
#include "runtime/romfs_index.h"

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

namespace {

struct LoadedFiles {
  std::vector<std::string> targets;  // sorted
  std::vector<Bytes> data;           // empty for a directory
  std::vector<bool> is_dir;          // an empty directory, kept as it is (no data, not indexed)
};

// Checks, sorts, reads (or compiles) and checks the .mpy headers of `sources`.
Expected<LoadedFiles> LoadRomfsFiles(std::vector<RomfsSource> sources, const RomfsBuildOptions& options) {
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
        auto created = TempDir::Create("onedfu-romfs");
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

  LoadedFiles out;
  for (Item& item : items) {
    out.targets.push_back(std::move(item.target));
    out.is_dir.push_back(item.is_dir);
  }
  out.data = std::move(data);
  return out;
}

}  // namespace

Expected<Bytes> BuildRomfs(std::vector<RomfsSource> sources, const RomfsBuildOptions& options) {
  auto loaded = LoadRomfsFiles(std::move(sources), options);
  if (!loaded.ok()) return loaded.error();
  const LoadedFiles& files = loaded.value();
  std::vector<runtime::RomfsFileSpec> specs(files.targets.size());
  for (size_t i = 0; i < specs.size(); ++i) specs[i] = {files.targets[i].c_str(), files.data[i], files.is_dir[i]};
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

namespace {

uint64_t AlignUp(uint64_t value, uint64_t align) { return (value + align - 1) / align * align; }

// Free space of an image being laid out: sorted, disjoint [begin, end) gaps.
class FreeSpace {
 public:
  FreeSpace(uint64_t begin, uint64_t end) {
    if (end > begin) gaps_.push_back({begin, end});
  }

  // Takes [begin, end) out of the free space (parts already taken are ignored).
  void Take(uint64_t begin, uint64_t end) {
    std::vector<std::pair<uint64_t, uint64_t>> next;
    for (const auto& [a, b] : gaps_) {
      if (b <= begin || a >= end) {
        next.push_back({a, b});
        continue;
      }
      if (a < begin) next.push_back({a, begin});
      if (b > end) next.push_back({end, b});
    }
    gaps_ = std::move(next);
  }

  bool IsFree(uint64_t begin, uint64_t end) const {
    for (const auto& [a, b] : gaps_) {
      if (a <= begin && end <= b) return true;
    }
    return false;
  }

  // The first aligned offset where `size` bytes fit, preferring one that
  // touches no more sectors than the size needs; nullopt when nothing fits.
  std::optional<uint64_t> Find(uint64_t size, uint64_t align, uint64_t sector) const {
    std::optional<uint64_t> fallback;
    for (const auto& [a, b] : gaps_) {
      const uint64_t start = AlignUp(a, align);
      if (start + size > b) continue;
      if (sector == 0 || size == 0 || Sectors(start, size, sector) == (size + sector - 1) / sector) return start;
      const uint64_t snapped = AlignUp(start, std::max(sector, align));
      if (snapped + size <= b) return snapped;
      if (!fallback) fallback = start;
    }
    return fallback;
  }

 private:
  static uint64_t Sectors(uint64_t start, uint64_t size, uint64_t sector) {
    return (start + size - 1) / sector - start / sector + 1;
  }
  std::vector<std::pair<uint64_t, uint64_t>> gaps_;
};

struct Placement {
  std::vector<uint64_t> offsets;  // per file
  uint64_t index_offset = 0;
  uint64_t image_size = 0;        // even
  size_t kept = 0;
  size_t moved = 0;
};

// The image end for data ending at `used_end`: at least 1/16 free, on a
// boundary of min(sector, 4 KiB), within the capacity (unless the data itself
// does not fit).
uint64_t ImageEnd(uint64_t used_end, const RomfsLayoutOptions& layout) {
  const uint64_t minimum = AlignUp(used_end, 2);
  uint64_t end = used_end + used_end / 16;
  // Whole small sectors; on large-sector flash 4 KiB steps, so a tiny image
  // does not grow to a 128 KiB sector of padding.
  const uint64_t step = layout.sector_size ? std::min<uint64_t>(layout.sector_size, 4096) : 2;
  end = AlignUp(end, step);
  const uint64_t cap = layout.capacity & ~uint64_t{1};
  if (layout.capacity != 0 && end > cap) end = cap;
  return std::max(end, minimum);
}

Placement FreshPlacement(const LoadedFiles& files, uint64_t data_begin, uint64_t index_size, uint32_t align,
                         const RomfsLayoutOptions& layout) {
  Placement p;
  uint64_t pos = AlignUp(data_begin + data_begin / 8, align);
  p.index_offset = pos;
  pos += index_size;
  for (const Bytes& data : files.data) {
    pos = AlignUp(pos, align);
    p.offsets.push_back(pos);
    pos += data.size();
  }
  p.image_size = ImageEnd(pos, layout);
  return p;
}

// The stable layout against layout.base; "" or why it cannot be used.
std::string BasePlacement(const LoadedFiles& files, const std::vector<runtime::Sha256Hash>& hashes,
                          uint64_t data_begin, uint64_t index_size, uint32_t align, const RomfsLayoutOptions& layout,
                          Placement& p) {
  const RomfsBase& base = *layout.base;
  const uint64_t capacity = layout.capacity ? layout.capacity & ~uint64_t{1} : uint64_t{0xfffffffe};
  uint64_t image_size = std::max<uint64_t>(AlignUp(base.image.size(), 2), AlignUp(data_begin, 2));
  FreeSpace space(data_begin, capacity);
  std::map<std::string, const RomfsFileRecord*> old;
  for (const RomfsFileRecord& f : base.files) old[f.path] = &f;

  p.offsets.assign(files.targets.size(), 0);
  std::vector<bool> placed(files.targets.size(), false);
  for (size_t i = 0; i < files.targets.size(); ++i) {
    const auto it = old.find(files.targets[i]);
    if (it == old.end()) continue;
    const RomfsFileRecord& f = *it->second;
    if (f.size != files.data[i].size() || f.sha256 != hashes[i] || f.offset % align != 0 ||
        !space.IsFree(f.offset, f.offset + f.size)) {
      continue;
    }
    p.offsets[i] = f.offset;
    placed[i] = true;
    ++p.kept;
    space.Take(f.offset, f.offset + f.size);
  }
  const auto find = [&](uint64_t size) -> std::optional<uint64_t> {
    // Inside the current image first; then past its end, up to the capacity.
    FreeSpace inside = space;
    inside.Take(image_size, capacity);
    if (auto at = inside.Find(size, align, layout.sector_size)) return at;
    return space.Find(size, align, layout.sector_size);
  };
  const bool keep_index = base.index_size >= index_size && base.index_offset % align == 0 &&
                          space.IsFree(base.index_offset, base.index_offset + index_size);
  if (keep_index) {
    p.index_offset = base.index_offset;
  } else {
    const auto at = find(index_size);
    if (!at) return "no room for the file index";
    p.index_offset = *at;
  }
  space.Take(p.index_offset, p.index_offset + index_size);
  uint64_t used_end = std::max(p.index_offset + index_size, data_begin);
  uint64_t live = data_begin + index_size;
  for (size_t i = 0; i < files.targets.size(); ++i) {
    const uint64_t size = files.data[i].size();
    live += size;
    if (placed[i]) {
      used_end = std::max(used_end, p.offsets[i] + size);
      continue;
    }
    if (size == 0) {
      p.offsets[i] = AlignUp(data_begin, align);
      continue;
    }
    const auto at = find(size);
    if (!at) return "the free space ran out";
    p.offsets[i] = *at;
    ++p.moved;
    space.Take(*at, *at + size);
    used_end = std::max(used_end, *at + size);
  }
  if (used_end > image_size) image_size = std::min(ImageEnd(used_end, layout), std::max(capacity, AlignUp(used_end, 2)));
  if (live * 2 < image_size) return "more than half of the image would be free space";
  p.image_size = image_size;
  return "";
}

}  // namespace

Expected<RomfsIndexedImage> BuildIndexedRomfs(std::vector<RomfsSource> sources, const RomfsBuildOptions& options,
                                              const RomfsLayoutOptions& layout) {
  auto loaded = LoadRomfsFiles(std::move(sources), options);
  if (!loaded.ok()) return loaded.error();
  const LoadedFiles& files = loaded.value();
  const uint32_t align = options.data_align;

  // Specs for every entry (files and empty directories, in path order); the index and its
  // entries list files only: entry_of[i] is spec i's entry, or npos for a directory.
  constexpr size_t npos = static_cast<size_t>(-1);
  std::vector<runtime::RomfsFileSpec> specs(files.targets.size());
  std::vector<runtime::RomfsIndexEntry> entries;
  std::vector<size_t> entry_of(files.targets.size(), npos);
  std::vector<runtime::Sha256Hash> hashes(files.targets.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    specs[i] = {files.targets[i].c_str(), files.data[i], files.is_dir[i], 0};
    if (files.is_dir[i]) continue;
    hashes[i] = runtime::Sha256Digest(files.data[i]);
    entry_of[i] = entries.size();
    entries.push_back({files.targets[i].c_str(), files.targets[i].size(), 0,
                       static_cast<uint32_t>(files.data[i].size()), hashes[i]});
  }
  runtime::RomfsWriteOptions write_options;
  write_options.data_align = align;
  auto data_begin = runtime::RomfsDataBegin(specs, write_options);
  if (!data_begin.ok()) return Fail(std::string("ROMFS image: ") + data_begin.status().message());
  auto index_size = runtime::RomfsIndexSize(entries);
  if (!index_size.ok()) return Fail(std::string("ROMFS file index: ") + index_size.status().message());

  RomfsIndexedImage out;
  Placement p;
  if (layout.base) {
    out.compacted = BasePlacement(files, hashes, data_begin.value(), index_size.value(), align, layout, p);
  }
  if (!layout.base || !out.compacted.empty()) {
    p = FreshPlacement(files, data_begin.value(), index_size.value(), align, layout);
  }
  if (p.image_size > 0xfffffffeu) return Fail("ROMFS image: larger than 4 GiB");

  for (size_t i = 0; i < specs.size(); ++i) {
    specs[i].offset = static_cast<uint32_t>(p.offsets[i]);
    if (entry_of[i] != npos) entries[entry_of[i]].offset = specs[i].offset;
  }
  write_options.placed = true;
  write_options.image_size = static_cast<uint32_t>(p.image_size);
  write_options.fill = layout.fill;
  out.image.assign(p.image_size, layout.fill);
  if (layout.base && out.compacted.empty()) {
    write_options.keep_free_bytes = true;
    std::copy_n(layout.base->image.begin(), std::min<size_t>(layout.base->image.size(), out.image.size()),
                out.image.begin());
  }
  auto written = runtime::WriteRomfs(specs, write_options, out.image);
  if (!written.ok()) return Fail(std::string("ROMFS image: ") + written.status().message());
  const runtime::MutableByteSpan index_bytes(out.image.data() + p.index_offset, index_size.value());
  auto index_written = runtime::WriteRomfsIndex(entries, index_bytes);
  if (!index_written.ok()) return Fail(std::string("ROMFS file index: ") + index_written.status().message());
  out.index_offset = static_cast<uint32_t>(p.index_offset);
  out.index_size = index_size.value();
  out.index_sha256 = runtime::Sha256Digest(index_bytes);
  out.kept = p.kept;
  out.moved = p.moved;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (entry_of[i] == npos) continue;
    out.files.push_back({files.targets[i], specs[i].offset, entries[entry_of[i]].size, hashes[i]});
  }
  return out;
}

Expected<std::vector<RomfsFileRecord>> ReadRomfsIndex(std::span<const uint8_t> image, uint32_t offset, uint32_t size,
                                                      const std::string& source_name) {
  if (uint64_t{offset} + size > image.size()) {
    return Fail(source_name + ": file index at offset " + std::to_string(offset) + " (" + std::to_string(size) +
                " bytes) runs past the " + std::to_string(image.size()) + "-byte ROMFS image");
  }
  Diag diag;
  auto index = runtime::RomfsIndex::Open(image.subspan(offset, size), static_cast<uint32_t>(image.size()), &diag);
  if (!index.ok()) return Fail(source_name + ": " + diag.c_str());
  if (index->bytes().size() != size) {
    return Fail(source_name + ": file index is " + std::to_string(index->bytes().size()) + " bytes, the record says " +
                std::to_string(size));
  }
  std::vector<RomfsFileRecord> out;
  out.reserve(index->entry_count());
  uint32_t cursor = 0;
  runtime::RomfsIndexEntry e;
  while (index->Next(&cursor, &e)) out.push_back({std::string(e.path, e.path_len), e.offset, e.size, e.sha256});
  return out;
}

}  // namespace onedfu::host
