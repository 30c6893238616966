// Host DfuSe file model on top of the runtime parser/writer.
#include "host/dfuse_file.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace onedfu::host {
namespace {

namespace rd = runtime::dfuse;

// Builds a DfuseImage from parse events. Counts and sizes in the headers are
// untrusted: reservations are capped by the input actually given, so a header
// claiming a 4 GiB element costs nothing before the parser finds it truncated.
class Collector final : public rd::Visitor {
 public:
  explicit Collector(size_t input_size) : input_size_(input_size) {}

  runtime::Status OnTarget(uint32_t, const rd::TargetInfo& info) override {
    DfuseTarget t;
    t.alt = info.alt;
    t.named = info.named;
    if (info.named) t.name.assign(info.name, strnlen(info.name, rd::kTargetNameSize));
    t.elements.reserve(std::min<size_t>(info.element_count, input_size_ / rd::kElementHeaderSize));
    targets.push_back(std::move(t));
    return runtime::Status::Ok();
  }
  runtime::Status OnElementBegin(uint32_t, uint32_t, const rd::ElementInfo& info) override {
    DfuseElement e;
    e.address = info.address;
    e.data.reserve(std::min<size_t>(info.size, input_size_));
    targets.back().elements.push_back(std::move(e));
    return runtime::Status::Ok();
  }
  runtime::Status OnElementData(runtime::ByteSpan piece) override {
    Bytes& data = targets.back().elements.back().data;
    data.insert(data.end(), piece.begin(), piece.end());
    return runtime::Status::Ok();
  }

  std::vector<DfuseTarget> targets;

 private:
  size_t input_size_;
};

class VectorSink final : public rd::Sink {
 public:
  explicit VectorSink(Bytes& out) : out_(out) {}
  runtime::Status Write(runtime::ByteSpan bytes) override {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    return runtime::Status::Ok();
  }

 private:
  Bytes& out_;
};

}  // namespace

Expected<DfuseImage> ParseDfuse(std::span<const uint8_t> bytes, const std::string& source_name) {
  Collector collector(bytes.size());
  runtime::Diag diag;
  auto info = rd::ParseFileInfo(bytes, collector, &diag);
  if (!info.ok()) {
    return Fail(source_name + ": " + (diag.empty() ? info.status().message() : diag.c_str()));
  }
  DfuseImage image;
  image.targets = std::move(collector.targets);
  image.suffix = info->suffix;
  image.image_size_includes_suffix = info->image_size_includes_suffix;
  return image;
}

Expected<Bytes> SerializeDfuseChecked(const DfuseImage& image) {
  // Views over the image: names cut to 255 chars, unnamed targets get null.
  std::vector<std::string> names;
  std::vector<std::vector<rd::WriterElement>> elements;
  std::vector<rd::WriterTarget> targets;
  names.reserve(image.targets.size());
  elements.reserve(image.targets.size());
  targets.reserve(image.targets.size());
  for (const DfuseTarget& t : image.targets) {
    names.push_back(t.name.substr(0, std::min(t.name.size(), rd::kTargetNameSize)));
    // A name with an embedded NUL is cut there (the file field is NUL-terminated).
    names.back().resize(strnlen(names.back().c_str(), names.back().size()));
    auto& es = elements.emplace_back();
    es.reserve(t.elements.size());
    for (const DfuseElement& e : t.elements) es.push_back({e.address, e.data});
    rd::WriterTarget wt;
    wt.alt = t.alt;
    wt.name = t.named ? names.back().c_str() : nullptr;
    wt.elements = es;
    targets.push_back(wt);
  }
  rd::Suffix suffix = image.suffix;
  suffix.bcd_dfu = rd::kBcdDfuSe;
  Bytes out;
  const uint64_t size = rd::FileSize(targets);
  if (size <= out.max_size()) out.reserve(static_cast<size_t>(size));
  VectorSink sink(out);
  const runtime::Status s = rd::WriteFile(targets, suffix, sink);
  if (!s.ok()) return Fail(std::string("writing DfuSe file: ") + s.message());
  return out;
}

Bytes SerializeDfuse(const DfuseImage& image) {
  auto out = SerializeDfuseChecked(image);
  return out.ok() ? std::move(out).value() : Bytes{};
}

}  // namespace onedfu::host
