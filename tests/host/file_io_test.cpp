// File helpers: what ReadFile refuses (instead of reading forever), and how
// the atomic writer treats what already sits at the output path.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>

#include "host/file_io.h"
#include "test_support.h"

namespace onedfu::host {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteBytes;

std::string ErrorOf(const Expected<Bytes>& r) { return r.ok() ? "ok" : r.error().message; }

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

TEST_CASE("ReadFile refuses what would read forever, and files over the cap") {
  TempDir dir;
  const fs::path fifo = dir.path / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(ErrorOf(ReadFile(fifo)) == fifo.string() + ": is a FIFO, expected a regular file");
  CHECK(ErrorOf(ReadFile("/dev/zero")) == "/dev/zero: is a character device, expected a regular file");
  CHECK(ErrorOf(ReadFile(dir.path)) == dir.path.string() + ": is a directory, expected a file");
  const fs::path file = WriteBytes(dir.path / "f.bin", Bytes(100, 7));
  CHECK(ReadFile(file, 100).ok());
  CHECK(ErrorOf(ReadFile(file, 99)) == file.string() + ": larger than 99 bytes, the most onedfu reads from a file");
  // A file that reports no size is read with the same cap.
  auto proc = ReadFile("/proc/self/status", 10);
  CHECK(ErrorOf(proc) == "/proc/self/status: larger than 10 bytes, the most onedfu reads from a file");
  CHECK(ReadFile("/proc/self/status").ok());
}

TEST_CASE("WriteFileAtomic writes through symbolic links, refuses special files, keeps the mode") {
  TempDir dir;
  const Bytes data = {1, 2, 3};
  // Through a link: the target is replaced, the link stays a link.
  const fs::path real = WriteBytes(dir.path / "real.dfu", Bytes{9});
  fs::create_symlink("real.dfu", dir.path / "link.dfu");
  REQUIRE(WriteFileAtomic(dir.path / "link.dfu", data).ok());
  CHECK(fs::is_symlink(dir.path / "link.dfu"));
  CHECK(*ReadFile(real) == data);
  // A dangling link creates its target; a chain of links is followed to the end.
  fs::create_directories(dir.path / "sub");
  fs::create_symlink("sub/new.dfu", dir.path / "dangling.dfu");
  fs::create_symlink(dir.path / "dangling.dfu", dir.path / "chain.dfu");
  REQUIRE(WriteFileAtomic(dir.path / "chain.dfu", data).ok());
  CHECK(fs::is_symlink(dir.path / "chain.dfu"));
  CHECK(fs::is_symlink(dir.path / "dangling.dfu"));
  CHECK(*ReadFile(dir.path / "sub/new.dfu") == data);

  // Special files are refused and left as they are (a FIFO stands in for /dev/null).
  const fs::path fifo = dir.path / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  Outcome refused = WriteFileAtomic(fifo, data);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message == fifo.string() + ": is a FIFO; refusing to replace it with the output");
  CHECK(fs::is_fifo(fifo));
  fs::create_symlink("fifo", dir.path / "to-fifo");
  refused = WriteFileAtomic(dir.path / "to-fifo", data);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message == (dir.path / "to-fifo").string() + " (via symbolic link to " + fifo.string() +
                                       "): is a FIFO; refusing to replace it with the output");
  refused = WriteFileAtomic(dir.path / "sub", data);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("is a directory; refusing") != std::string::npos);
  CHECK(fs::is_directory(dir.path / "sub"));

  // The mode of a replaced file is kept; a new file gets 0666 minus the umask.
  const fs::path kept = WriteBytes(dir.path / "kept.dfu", Bytes{9});
  fs::permissions(kept, static_cast<fs::perms>(0640));
  REQUIRE(WriteFileAtomic(kept, data).ok());
  CHECK(ModeOf(kept) == 0640);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  REQUIRE(WriteFileAtomic(dir.path / "fresh.dfu", data).ok());
  CHECK(ModeOf(dir.path / "fresh.dfu") == (0666 & ~mask));
}

}  // namespace
}  // namespace onedfu::host
