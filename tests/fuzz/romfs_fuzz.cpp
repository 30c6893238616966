// Fuzzes the ROMFS reader (untrusted flash contents) and, through it, the writer.
// Invariants (trap on violation):
//  - Open agrees with RomfsImageLength; the image view lies inside the input.
//  - Every entry's name and data lie inside the image; data_offset matches.
//  - After a successful Walk, Lookup of every walked path succeeds and returns
//    the same entry (same kind, same bytes at the same place).
//  - The walked files, written again with WriteRomfs, read back as the same
//    files with the same bytes; the writer may refuse only paths with a "."
//    or ".." component (names the reader accepts but the writer does not).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/romfs.h"
#include "fuzz_check.h"

using onedfu::fuzz::FuzzCheck;

using namespace onedfu::runtime;

namespace {

struct Walked {
  std::string path;
  bool is_dir;
  const uint8_t* data;
  size_t size;
  uint32_t offset;
};

class Recorder final : public RomfsReader::WalkVisitor {
 public:
  explicit Recorder(ByteSpan image) : image_(image) {}
  Status OnEntry(const char* path, const RomfsEntry& entry) override {
    const uint8_t* begin = image_.data();
    const uint8_t* end = begin + image_.size();
    const auto* name = reinterpret_cast<const uint8_t*>(entry.name);
    FuzzCheck(entry.name_len > 0 && name >= begin && name + entry.name_len <= end);
    FuzzCheck(std::strlen(path) <= kRomfsMaxPath);
    if (entry.is_dir) {
      FuzzCheck(entry.data.empty());
    } else {
      FuzzCheck(entry.data.data() >= begin && entry.data.data() + entry.data.size() <= end);
      FuzzCheck(entry.data_offset == static_cast<uint32_t>(entry.data.data() - begin));
    }
    walked.push_back({path, entry.is_dir, entry.data.data(), entry.data.size(), entry.data_offset});
    return Status::Ok();
  }
  std::vector<Walked> walked;

 private:
  ByteSpan image_;
};

bool HasDotComponent(const std::string& path) {
  size_t start = 0;
  for (;;) {
    const size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == "." || part == "..") return true;
    if (slash == std::string::npos) return false;
    start = slash + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteSpan input(data, size);
  Diag diag;
  auto reader = RomfsReader::Open(input, &diag);
  const size_t length = RomfsImageLength(input);
  if (!reader.ok()) {
    FuzzCheck(length == 0);
    return 0;
  }
  FuzzCheck(length == reader->image().size());
  FuzzCheck(reader->image().data() == data && length <= size && length % 2 == 0);
  FuzzCheck(reader->payload().data() >= data &&
                reader->payload().data() + reader->payload().size() == data + length);

  Recorder recorder(reader->image());
  if (!reader->Walk(recorder, &diag).ok()) {
    // Lookups on a corrupt image must still stay in bounds (ASan watches).
    for (const Walked& w : recorder.walked) reader->Lookup(w.path.c_str()).status().IgnoreError();
    return 0;
  }

  std::vector<const Walked*> files;
  for (const Walked& w : recorder.walked) {
    auto found = reader->Lookup(w.path.c_str());
    FuzzCheck(found.ok());
    FuzzCheck(found->is_dir == w.is_dir);
    if (!w.is_dir) {
      FuzzCheck(found->data.data() == w.data && found->data.size() == w.size);
      FuzzCheck(found->data_offset == w.offset);
      files.push_back(&w);
    }
  }

  // Write the files again and read them back.
  std::sort(files.begin(), files.end(), [](const Walked* a, const Walked* b) { return a->path < b->path; });
  std::vector<RomfsFileSpec> specs;
  for (const Walked* f : files) specs.push_back({f->path.c_str(), ByteSpan(f->data, f->size)});
  auto image_size = RomfsImageSize(specs, {});
  if (!image_size.ok()) {
    bool dotted = false;
    for (const Walked* f : files) dotted = dotted || HasDotComponent(f->path);
    FuzzCheck(dotted && image_size.status().code() == StatusCode::kInvalidArgument);
    return 0;
  }
  std::vector<uint8_t> rewritten(image_size.value());
  auto written = WriteRomfs(specs, {}, rewritten);
  FuzzCheck(written.ok() && written.value() == rewritten.size());
  auto again = RomfsReader::Open(rewritten, nullptr);
  FuzzCheck(again.ok());
  Recorder second(again->image());
  FuzzCheck(again->Walk(second, nullptr).ok());
  std::vector<const Walked*> files2;
  for (const Walked& w : second.walked) {
    if (!w.is_dir) files2.push_back(&w);
  }
  std::sort(files2.begin(), files2.end(), [](const Walked* a, const Walked* b) { return a->path < b->path; });
  FuzzCheck(files2.size() == files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    FuzzCheck(files2[i]->path == files[i]->path && files2[i]->size == files[i]->size);
    FuzzCheck(files2[i]->size == 0 || std::memcmp(files2[i]->data, files[i]->data, files[i]->size) == 0);
    FuzzCheck(files2[i]->offset % 8 == 0);
  }
  return 0;
}
