#include "output_capture.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <vector>

namespace onedfu::sim {

OutputCapture::OutputCapture(bool enabled) {
  if (!enabled) return;
  std::fflush(stdout);
  std::fflush(stderr);
  std::cout.flush();
  std::cerr.flush();
  char path[] = "/tmp/onedfu-powercut-XXXXXX";
  fd_ = mkstemp(path);
  if (fd_ < 0) return;
  unlink(path);
  saved_out_ = dup(1);
  saved_err_ = dup(2);
  dup2(fd_, 1);
  dup2(fd_, 2);
}

std::string OutputCapture::Finish() {
  if (fd_ < 0) return "";
  std::fflush(stdout);
  std::fflush(stderr);
  dup2(saved_out_, 1);
  dup2(saved_err_, 2);
  close(saved_out_);
  close(saved_err_);
  std::string text;
  char buffer[4096];
  lseek(fd_, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd_, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<size_t>(n));
  close(fd_);
  fd_ = -1;
  return text;
}

std::string Tail(const std::string& text, size_t count) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (const size_t cr = line.rfind('\r'); cr != std::string::npos) line.erase(0, cr + 1);
    if (!line.empty()) lines.push_back(line);
  }
  std::string out;
  for (size_t i = lines.size() > count ? lines.size() - count : 0; i < lines.size(); ++i) out += "\n    " + lines[i];
  return out;
}

}  // namespace onedfu::sim
