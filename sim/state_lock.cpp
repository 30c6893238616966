#include "state_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <system_error>
#include <vector>

#include "host/file_io.h"

namespace onedfu::sim {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTestbedNote = ".umockdev-testbed";

std::string ReadHolder(int fd) {
  char text[128] = {};
  const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
  std::string holder(text, n > 0 ? static_cast<size_t>(n) : 0);
  while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
  return holder;
}

}  // namespace

host::Expected<std::unique_ptr<StateLock>> StateLock::Acquire(const fs::path& state, const std::string& board_id) {
  std::error_code ec;
  fs::create_directories(state, ec);
  if (ec) return host::Fail(state.string() + ": cannot create the state directory: " + ec.message());
  const fs::path path = state / ".lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return host::Fail(path.string() + ": cannot open: " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string message;
    if (err == EWOULDBLOCK) {
      const std::string holder = ReadHolder(fd);
      message = "state directory " + state.string() + " is in use by another onedfu-sim (" +
                (holder.empty() ? std::string("starting") : holder) +
                "): wait for it to finish or use another --state";
    } else {
      message = path.string() + ": cannot lock: " + std::strerror(err);
    }
    ::close(fd);
    return host::Fail(message);
  }
  const std::string holder = "pid " + std::to_string(::getpid()) + ", board " + board_id + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, holder.data(), holder.size(), 0) != static_cast<ssize_t>(holder.size())) {
    const std::string message = path.string() + ": cannot write: " + std::strerror(errno);
    ::close(fd);
    return host::Fail(message);
  }
  return std::unique_ptr<StateLock>(new StateLock(state, fd));
}

StateLock::~StateLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

void StateLock::NoteTestbed(const std::string& root) const {
  if (root.empty()) return;
  const std::string text = root + "\n";
  (void)host::WriteFileAtomic(state_ / kTestbedNote,
                              std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

void StateLock::ForgetTestbed() const {
  std::error_code ec;
  fs::remove(state_ / kTestbedNote, ec);
}

size_t StateLock::CleanStaleFiles() const {
  size_t removed = 0;
  std::error_code ec;
  if (auto note = host::ReadFile(state_ / kTestbedNote, 4096); note.ok()) {
    std::string root(note.value().begin(), note.value().end());
    while (!root.empty() && root.back() == '\n') root.pop_back();
    const fs::path dir(root);
    if (dir.is_absolute() && dir.filename().string().rfind("umockdev.", 0) == 0 && fs::is_directory(dir, ec)) {
      if (fs::remove_all(dir, ec) > 0 && !ec) ++removed;
    }
  }
  std::vector<fs::path> stale = {state_ / kTestbedNote};
  for (fs::directory_iterator it(state_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(".stats.json.", 0) == 0 || name == "stats.json") stale.push_back(it->path());
  }
  for (const fs::path& path : stale) {
    std::error_code remove_ec;
    if (fs::remove(path, remove_ec) && !remove_ec) ++removed;
  }
  return removed;
}

}  // namespace onedfu::sim
