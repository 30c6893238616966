// Replays every file of a corpus directory through a libFuzzer harness, so the
// corpora run as ordinary tests under gcc. Exit 0 when all inputs ran; a crash
// or sanitizer report fails the test. An empty or missing corpus is a failure:
// a replay that runs nothing must not pass.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  size_t count = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(argv[1], ec)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    ++count;
  }
  if (ec || count == 0) {
    std::fprintf(stderr, "%s: no corpus inputs replayed (%s)\n", argv[1], ec ? ec.message().c_str() : "empty");
    return 1;
  }
  std::printf("replayed %zu inputs from %s\n", count, argv[1]);
  return 0;
}
