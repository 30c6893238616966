// Fuzz harness for the DfuSe parser/writer. Invariants (trap on violation):
//  - whole-file ParseFile and StreamParser (odd chunk sizes) agree on
//    success, and on success report identical events;
//  - a file that parses re-serializes (packer SerializeDfuse) to a file that
//    parses to the same image, and serializing that again is byte-stable.
// The input is also run with its dwCRC recomputed, so the fuzzer reaches the
// structure parser without having to forge a CRC.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "host/dfuse_file.h"
#include "runtime/crc32.h"
#include "runtime/dfuse.h"
#include "fuzz_check.h"

using onedfu::fuzz::FuzzCheck;

namespace {

using onedfu::runtime::ByteSpan;
using onedfu::runtime::Status;
namespace dfuse = onedfu::runtime::dfuse;

class Recorder final : public dfuse::Visitor {
 public:
  Status OnTarget(uint32_t index, const dfuse::TargetInfo& t) override {
    events.push_back("T" + std::to_string(index) + "/" + std::to_string(t.alt) + "/" +
                     std::to_string(t.named) + "/" + t.name + "/" + std::to_string(t.size) + "/" +
                     std::to_string(t.element_count));
    return Status::Ok();
  }
  Status OnElementBegin(uint32_t target, uint32_t element, const dfuse::ElementInfo& e) override {
    events.push_back("E" + std::to_string(target) + "." + std::to_string(element) + "@" +
                     std::to_string(e.address) + "+" + std::to_string(e.size));
    events.emplace_back("D");
    return Status::Ok();
  }
  Status OnElementData(ByteSpan piece) override {
    FuzzCheck(!piece.empty() && !events.empty());
    events.back().append(reinterpret_cast<const char*>(piece.data()), piece.size());
    return Status::Ok();
  }
  Status OnElementEnd() override {
    events.emplace_back("end");
    return Status::Ok();
  }
  std::vector<std::string> events;
};

void CheckFile(ByteSpan file) {
  Recorder whole;
  const bool whole_ok = dfuse::ParseFile(file, whole, nullptr).ok();

  Recorder streamed;
  dfuse::StreamParser parser(streamed);
  bool stream_ok = true;
  size_t at = 0;
  for (size_t step = 1; at < file.size() && stream_ok; step = step % 13 + 1) {
    const size_t n = step < file.size() - at ? step : file.size() - at;
    stream_ok = parser.Feed(file.subspan(at, n), nullptr).ok();
    at += n;
  }
  if (stream_ok) stream_ok = parser.Finish(nullptr).ok();

  FuzzCheck(whole_ok == stream_ok);
  if (!whole_ok) return;
  FuzzCheck(whole.events == streamed.events);

  auto image = onedfu::host::ParseDfuse(file, "fuzz");
  FuzzCheck(image.ok());
  const onedfu::host::Bytes again = onedfu::host::SerializeDfuse(*image);
  FuzzCheck(!again.empty());
  auto reparsed = onedfu::host::ParseDfuse(again, "again");
  FuzzCheck(reparsed.ok());
  FuzzCheck(reparsed->targets == image->targets);
  FuzzCheck(reparsed->suffix.vid == image->suffix.vid && reparsed->suffix.pid == image->suffix.pid &&
        reparsed->suffix.bcd_device == image->suffix.bcd_device);
  FuzzCheck(!reparsed->image_size_includes_suffix);
  FuzzCheck(onedfu::host::SerializeDfuse(*reparsed) == again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckFile(ByteSpan(data, size));
  if (size >= dfuse::kSuffixSize) {
    std::vector<uint8_t> sealed(data, data + size);
    onedfu::runtime::StoreLe32(
        sealed.data() + size - 4,
        onedfu::runtime::DfuSuffixCrc(ByteSpan(sealed).first(size - 4)));
    CheckFile(sealed);
  }
  return 0;
}
