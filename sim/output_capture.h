// OutputCapture: redirects this process's stdout and stderr (and so a child's) into a
// temporary file while alive, so `onedfu-sim powercut` shows dfu-util's output only when it
// failed; and Tail, the part of such output worth quoting. Host only.
#pragma once

#include <cstddef>
#include <string>

namespace onedfu::sim {

// Redirects stdout and stderr while alive (when enabled); Finish() restores them and returns
// what was written.
class OutputCapture {
 public:
  explicit OutputCapture(bool enabled);
  ~OutputCapture() { Finish(); }
  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;

  std::string Finish();

 private:
  int fd_ = -1;
  int saved_out_ = -1;
  int saved_err_ = -1;
};

// The last `count` non-empty lines of `text` (dfu-util's progress bars end in '\r'), indented.
std::string Tail(const std::string& text, size_t count);

}  // namespace onedfu::sim
