// File helpers for the host tools. Errors name the path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "host/expected.h"

namespace onedfu::host {

using Bytes = std::vector<uint8_t>;

// Nothing larger can be placed in a 32-bit address space.
inline constexpr uint64_t kMaxInputSize = uint64_t{1} << 32;
// Board and package JSON files.
inline constexpr uint64_t kMaxJsonSize = uint64_t{16} << 20;

// Reads a whole regular file (symbolic links followed). Refuses, naming the
// path, anything else (a FIFO or a device such as /dev/zero would read
// forever; a directory) and a file of more than `max_size` bytes.
Expected<Bytes> ReadFile(const std::filesystem::path& path, uint64_t max_size = kMaxInputSize);

// Writes `data` to a temporary file beside `path`, flushes it and renames it
// over `path`: a failure never leaves a partial file or clobbers the old one.
// See AtomicFileWriter for symbolic links, special files and the mode.
Outcome WriteFileAtomic(const std::filesystem::path& path, std::span<const uint8_t> data);

// Streams a file into place: bytes go to a temporary file beside `path`;
// Commit() flushes and renames it over `path`. Destroying an uncommitted
// writer removes the temporary file, so the old `path` is never clobbered.
// A symbolic link at `path` is written through (its target is replaced, the
// link stays; a dangling link creates its target); anything at the end that
// is not a regular file (a device such as /dev/null, a FIFO, a directory) is
// refused. A replaced file keeps its mode (and owner, where allowed); a new
// file gets 0666 minus the umask.
class AtomicFileWriter {
 public:
  static Expected<std::unique_ptr<AtomicFileWriter>> Open(const std::filesystem::path& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  Outcome Write(std::span<const uint8_t> data);
  Outcome Commit();

 private:
  AtomicFileWriter(std::filesystem::path path, std::filesystem::path target, std::string temp, int fd);
  Outcome Flush();
  Outcome WriteAll(std::span<const uint8_t> data);

  std::filesystem::path path_;    // as given, for messages
  std::filesystem::path target_;  // what is replaced: `path` with symbolic links followed
  std::string temp_;
  int fd_ = -1;
  std::vector<uint8_t> buffer_;
};

// A temporary directory, removed with its contents when this object goes away.
class TempDir {
 public:
  TempDir() = default;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

  // Creates `<temp dir>/<prefix>-XXXXXX` (TMPDIR, else /tmp). The error names the path.
  static Expected<TempDir> Create(const std::string& prefix);

 private:
  std::filesystem::path path_;
};

}  // namespace onedfu::host
