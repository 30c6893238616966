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

Expected<Bytes> ReadFile(const std::filesystem::path& path);

// Writes `data` to a temporary file beside `path`, flushes it and renames it
// over `path`: a failure never leaves a partial file or clobbers the old one.
Outcome WriteFileAtomic(const std::filesystem::path& path, std::span<const uint8_t> data);

// Streams a file into place: bytes go to a temporary file beside `path`;
// Commit() flushes and renames it over `path`. Destroying an uncommitted
// writer removes the temporary file, so the old `path` is never clobbered.
class AtomicFileWriter {
 public:
  static Expected<std::unique_ptr<AtomicFileWriter>> Open(const std::filesystem::path& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  Outcome Write(std::span<const uint8_t> data);
  Outcome Commit();

 private:
  AtomicFileWriter(std::filesystem::path path, std::string temp, int fd);
  Outcome Flush();
  Outcome WriteAll(std::span<const uint8_t> data);

  std::filesystem::path path_;
  std::string temp_;
  int fd_ = -1;
  std::vector<uint8_t> buffer_;
};

}  // namespace onedfu::host
