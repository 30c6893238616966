// File helpers for the host tools. Errors name the path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "packer/expected.h"

namespace onedfu::packer {

using Bytes = std::vector<uint8_t>;

Expected<Bytes> ReadFile(const std::filesystem::path& path);

// Writes `data` to a temporary file beside `path`, flushes it and renames it
// over `path`: a failure never leaves a partial file or clobbers the old one.
Outcome WriteFileAtomic(const std::filesystem::path& path, std::span<const uint8_t> data);

}  // namespace onedfu::packer
