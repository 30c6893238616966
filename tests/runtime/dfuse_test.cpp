#include "runtime/dfuse.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/crc32.h"

namespace {

using onedfu::runtime::ByteSpan;
using onedfu::runtime::Diag;
using onedfu::runtime::DfuSuffixCrc;
using onedfu::runtime::LoadLe32;
using onedfu::runtime::Status;
using onedfu::runtime::StatusCode;
using onedfu::runtime::StoreLe16;
using onedfu::runtime::StoreLe32;
namespace dfuse = onedfu::runtime::dfuse;
using Bytes = std::vector<uint8_t>;

// Records parse events as text; element data is coalesced per element so
// chunk boundaries do not show.
class Recorder final : public dfuse::Visitor {
 public:
  Status OnTarget(uint32_t index, const dfuse::TargetInfo& t) override {
    events.push_back("target " + std::to_string(index) + " alt " + std::to_string(t.alt) +
                     (t.named ? " named '" + std::string(t.name) + "'" : " unnamed") + " size " +
                     std::to_string(t.size) + " elements " + std::to_string(t.element_count));
    return Status::Ok();
  }
  Status OnElementBegin(uint32_t target, uint32_t element, const dfuse::ElementInfo& e) override {
    char buf[96];
    std::snprintf(buf, sizeof buf, "element %u.%u at 0x%08x size %u", target, element, e.address,
                  e.size);
    events.push_back(buf);
    data.clear();
    if (reject_address && e.address == *reject_address) {
      return Status(StatusCode::kPermissionDenied, "rejected");
    }
    return Status::Ok();
  }
  Status OnElementData(ByteSpan piece) override {
    CHECK(!piece.empty());
    data.insert(data.end(), piece.begin(), piece.end());
    return Status::Ok();
  }
  Status OnElementEnd() override {
    std::string hex = "data ";
    for (uint8_t b : data) {
      char buf[3];
      std::snprintf(buf, sizeof buf, "%02x", b);
      hex += buf;
    }
    events.push_back(hex);
    events.push_back("end");
    return Status::Ok();
  }

  std::vector<std::string> events;
  Bytes data;
  const uint32_t* reject_address = nullptr;
};

class VectorSink final : public dfuse::Sink {
 public:
  Status Write(ByteSpan bytes) override {
    if (fail_after && out.size() + bytes.size() > *fail_after) {
      return Status(StatusCode::kUnavailable, "disk full");
    }
    out.insert(out.end(), bytes.begin(), bytes.end());
    ++calls;
    return Status::Ok();
  }
  Bytes out;
  int calls = 0;
  const size_t* fail_after = nullptr;
};

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 13);
  return b;
}

Bytes Write(std::span<const dfuse::WriterTarget> targets, const dfuse::Suffix& suffix = {}) {
  VectorSink sink;
  const Status s = dfuse::WriteFile(targets, suffix, sink);
  REQUIRE(s.ok());
  REQUIRE(sink.out.size() == dfuse::FileSize(targets));
  return sink.out;
}

// Recompute dwCRC after editing a file.
void Reseal(Bytes& file) {
  StoreLe32(file.data() + file.size() - 4, DfuSuffixCrc(ByteSpan(file).first(file.size() - 4)));
}

std::string ParseError(const Bytes& file, StatusCode expected_code) {
  Recorder r;
  Diag diag;
  const Status s = dfuse::ParseFile(file, r, &diag);
  CHECK(s.code() == expected_code);
  return diag.c_str();
}

// One target, two elements: e0 @0x08000000 10 bytes, e1 @0x08004000 7 bytes.
// Offsets: target prefix 11, e0 header 285, e1 header 303, suffix 318, size 334.
const Bytes kData0 = Pattern(10, 1);
const Bytes kData1 = Pattern(7, 2);
Bytes SmallFile() {
  const dfuse::WriterElement elements[] = {{0x08000000, kData0}, {0x08004000, kData1}};
  const dfuse::WriterTarget targets[] = {{0, "ST...", elements}};
  dfuse::Suffix suffix;
  suffix.vid = 0x0483;
  suffix.pid = 0xdf11;
  suffix.bcd_device = 0x0200;
  return Write(targets, suffix);
}
constexpr size_t kTargetSizeAt = 11 + 266;
constexpr size_t kElementCountAt = 11 + 270;

struct Sample {
  Bytes d0 = Pattern(5, 10), d2 = Pattern(13, 20), d3 = Pattern(1, 30), d4 = Pattern(1021, 40);
  dfuse::WriterElement t0[3] = {{0x08000000, d0}, {0x08004000, {}}, {0x08020000, d2}};
  dfuse::WriterElement t1[2] = {{0x90000000, d3}, {0x90001001, d4}};
  std::string long_name = std::string(255, 'n');
  dfuse::WriterTarget targets[4] = {
      {0, "Internal Flash", t0}, {1, nullptr, t1}, {3, "", {}}, {7, long_name.c_str(), {}}};
};

}  // namespace

TEST_CASE("dfuse: writer output matches the UM0391 layout built by hand") {
  const Bytes data = {0xaa, 0xbb, 0xcc};
  const dfuse::WriterElement elements[] = {{0x08001234, data}};
  const dfuse::WriterTarget targets[] = {{5, "AB", elements}};
  dfuse::Suffix suffix;
  suffix.bcd_device = 0x1122;
  suffix.pid = 0x3344;
  suffix.vid = 0x5566;
  const Bytes file = Write(targets, suffix);

  Bytes expected = {'D', 'f', 'u', 'S', 'e', 1, 0, 0, 0, 0, 1};
  StoreLe32(expected.data() + 6, 11 + 274 + 8 + 3);  // without the suffix
  const Bytes target_prefix_head = {'T', 'a', 'r', 'g', 'e', 't', 5, 1, 0, 0, 0, 'A', 'B'};
  expected.insert(expected.end(), target_prefix_head.begin(), target_prefix_head.end());
  expected.resize(11 + 11 + 255, 0);
  const Bytes tail = {8 + 3, 0, 0, 0, 1, 0, 0, 0, 0x34, 0x12, 0x00, 0x08, 3, 0, 0, 0,
                      0xaa,  0xbb, 0xcc, 0x22, 0x11, 0x44, 0x33, 0x66, 0x55, 0x1a, 0x01,
                      'U',   'F', 'D', 16, 0, 0, 0, 0};
  expected.insert(expected.end(), tail.begin(), tail.end());
  Reseal(expected);
  CHECK(file == expected);
  // dwCRC is the uninverted register: the bitwise NOT of zlib's CRC-32.
  CHECK(LoadLe32(file.data() + file.size() - 4) ==
        ~onedfu::runtime::Crc32(ByteSpan(file).first(file.size() - 4)));
}

TEST_CASE("dfuse: parse(write(x)) gives back x") {
  Sample s;
  dfuse::Suffix suffix;
  suffix.vid = 0x1209;
  suffix.pid = 0xbeef;
  suffix.bcd_device = 0x0001;
  const Bytes file = Write(s.targets, suffix);

  Recorder r;
  Diag diag;
  auto info = dfuse::ParseFileInfo(file, r, &diag);
  REQUIRE_MESSAGE(info.ok(), diag.c_str());
  CHECK_FALSE(info->image_size_includes_suffix);
  CHECK(info->suffix.vid == 0x1209);
  CHECK(info->suffix.pid == 0xbeef);
  CHECK(info->suffix.bcd_device == 0x0001);
  CHECK(info->suffix.bcd_dfu == 0x011A);
  CHECK(info->suffix.crc == LoadLe32(file.data() + file.size() - 4));

  // Expected events, derived from the writer input.
  std::vector<std::string> expected;
  uint32_t ti = 0;
  for (const auto& t : s.targets) {
    uint64_t size = 0;
    for (const auto& e : t.elements) size += 8 + e.data.size();
    expected.push_back("target " + std::to_string(ti) + " alt " + std::to_string(t.alt) +
                       (t.name ? " named '" + std::string(t.name) + "'" : " unnamed") + " size " +
                       std::to_string(size) + " elements " + std::to_string(t.elements.size()));
    uint32_t ei = 0;
    for (const auto& e : t.elements) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "element %u.%u at 0x%08x size %zu", ti, ei++, e.address,
                    e.data.size());
      expected.push_back(buf);
      std::string hex = "data ";
      for (uint8_t b : e.data) {
        std::snprintf(buf, sizeof buf, "%02x", b);
        hex += buf;
      }
      expected.push_back(hex);
      expected.push_back("end");
    }
    ++ti;
  }
  CHECK(r.events == expected);
  CHECK(file.size() == 11 + 4 * 274 + (8 * 5 + 5 + 13 + 1 + 1021) + 16);
  CHECK(LoadLe32(file.data() + 6) == file.size() - 16);
}

TEST_CASE("dfuse: a file with no targets") {
  const Bytes file = Write({});
  CHECK(file.size() == 27);
  Recorder r;
  CHECK(dfuse::ParseFile(file, r, nullptr).ok());
  CHECK(r.events.empty());
}

TEST_CASE("dfuse: stream parser in every chunk size 1..17 matches whole-file parse") {
  Sample s;
  const Bytes file = Write(s.targets);
  Recorder whole;
  REQUIRE(dfuse::ParseFile(file, whole, nullptr).ok());
  for (size_t chunk = 1; chunk <= 17; ++chunk) {
    CAPTURE(chunk);
    Recorder r;
    dfuse::StreamParser parser(r);
    Diag diag;
    for (size_t at = 0; at < file.size(); at += chunk) {
      const size_t n = std::min(chunk, file.size() - at);
      REQUIRE_MESSAGE(parser.Feed(ByteSpan(file).subspan(at, n), &diag).ok(), diag.c_str());
    }
    REQUIRE_MESSAGE(parser.Finish(&diag).ok(), diag.c_str());
    CHECK(r.events == whole.events);
    CHECK(parser.bytes_seen() == file.size());
    CHECK(parser.suffix().crc == LoadLe32(file.data() + file.size() - 4));
    CHECK_FALSE(parser.image_size_includes_suffix());
  }
}

TEST_CASE("dfuse: DFUImageSize counting the suffix (dfuse-pack style) is accepted") {
  Bytes file = SmallFile();
  StoreLe32(file.data() + 6, 334);
  Reseal(file);
  Recorder r;
  auto info = dfuse::ParseFileInfo(file, r, nullptr);
  REQUIRE(info.ok());
  CHECK(info->image_size_includes_suffix);
  CHECK(r.events.size() == 1 + 2 * 3);  // target; begin, data, end per element
}

TEST_CASE("dfuse: truncation errors say where") {
  const Bytes file = SmallFile();
  REQUIRE(file.size() == 334);
  SUBCASE("prefix, streamed") {
    Recorder r;
    dfuse::StreamParser p(r);
    Diag diag;
    REQUIRE(p.Feed(ByteSpan(file).first(5), &diag).ok());
    CHECK(p.Finish(&diag).code() == StatusCode::kOutOfRange);
    CHECK(std::string(diag.c_str()) == "prefix: truncated, file ends after 5 of 11 bytes");
  }
  SUBCASE("whole file shorter than a suffix") {
    CHECK(ParseError(Bytes(file.begin(), file.begin() + 5), StatusCode::kOutOfRange) ==
          "suffix: file is 5 bytes, shorter than the suffix");
  }
  SUBCASE("target prefix, streamed") {
    Recorder r;
    dfuse::StreamParser p(r);
    Diag diag;
    REQUIRE(p.Feed(ByteSpan(file).first(100), &diag).ok());
    CHECK(p.Finish(&diag).code() == StatusCode::kOutOfRange);
    CHECK(std::string(diag.c_str()) ==
          "target 0 (offset 11): truncated target prefix, file ends after 89 of 274 bytes");
  }
  SUBCASE("missing target") {
    Bytes f = file;
    f[10] = 2;
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kOutOfRange) ==
          "target 1 (offset 318): truncated target prefix, file ends after 0 of 274 bytes");
  }
  SUBCASE("missing element header") {
    Bytes f = file;
    StoreLe32(f.data() + kElementCountAt, 3);
    StoreLe32(f.data() + kTargetSizeAt, 33 + 8);
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kOutOfRange) ==
          "target 0, element 2 (offset 318): truncated element header, file ends after 0 of 8 "
          "bytes");
  }
  SUBCASE("element runs past the end") {
    Bytes f = file;
    StoreLe32(f.data() + 303 + 4, 100);
    StoreLe32(f.data() + kTargetSizeAt, 33 + 93);
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kOutOfRange) ==
          "target 0, element 1 at 0x08004000: size 100 runs past end of file (offset 303)");
  }
  SUBCASE("suffix cut short, streamed") {
    Recorder r;
    dfuse::StreamParser p(r);
    Diag diag;
    REQUIRE(p.Feed(ByteSpan(file).first(file.size() - 3), &diag).ok());
    CHECK(p.Finish(&diag).code() == StatusCode::kOutOfRange);
    CHECK(std::string(diag.c_str()) ==
          "suffix: truncated, file ends 13 bytes after the last target (offset 318), expected 16");
  }
}

TEST_CASE("dfuse: signature, version and suffix field errors") {
  const Bytes file = SmallFile();
  SUBCASE("prefix signature") {
    Bytes f = file;
    f[0] = 'd';
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kInvalidArgument) == "prefix: signature is not \"DfuSe\"");
  }
  SUBCASE("prefix version") {
    Bytes f = file;
    f[5] = 2;
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kUnimplemented) == "prefix: bVersion 2, expected 1");
  }
  SUBCASE("target signature") {
    Bytes f = file;
    f[11 + 5] = 'T';
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kInvalidArgument) ==
          "target 0 (offset 11): signature is not \"Target\"");
  }
  SUBCASE("UFD") {
    Bytes f = file;
    f[f.size() - 8] = 'X';
    CHECK(ParseError(f, StatusCode::kInvalidArgument) == "suffix: signature is not \"UFD\"");
  }
  SUBCASE("bLength") {
    Bytes f = file;
    f[f.size() - 5] = 17;
    CHECK(ParseError(f, StatusCode::kInvalidArgument) == "suffix: bLength 17, expected 16");
  }
  SUBCASE("bcdDFU of plain DFU 1.0") {
    Bytes f = file;
    StoreLe16(f.data() + f.size() - 10, 0x0100);
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kInvalidArgument) ==
          "suffix: bcdDFU 0x0100 is not DfuSe (0x011a)");
  }
}

TEST_CASE("dfuse: CRC damage is kDataLoss and nothing is reported to the visitor") {
  Bytes f = SmallFile();
  f[300] ^= 0x40;
  const uint32_t stored = LoadLe32(f.data() + f.size() - 4);
  const uint32_t computed = DfuSuffixCrc(ByteSpan(f).first(f.size() - 4));
  REQUIRE(stored != computed);
  char expected[96];
  std::snprintf(expected, sizeof expected, "suffix: CRC 0x%08x does not match computed 0x%08x",
                stored, computed);
  Recorder r;
  Diag diag;
  CHECK(dfuse::ParseFile(f, r, &diag).code() == StatusCode::kDataLoss);
  CHECK(std::string(diag.c_str()) == expected);
  CHECK(r.events.empty());
  auto suffix = dfuse::ReadSuffix(f, &diag);
  CHECK(suffix.status().code() == StatusCode::kDataLoss);

  // The stream parser notices at Finish, with the same text.
  dfuse::StreamParser p(r);
  REQUIRE(p.Feed(f, &diag).ok());
  CHECK(p.Finish(&diag).code() == StatusCode::kDataLoss);
  CHECK(std::string(diag.c_str()) == expected);
}

TEST_CASE("dfuse: size consistency errors") {
  const Bytes file = SmallFile();
  SUBCASE("DFUImageSize matches neither convention") {
    Bytes f = file;
    StoreLe32(f.data() + 6, 123);
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kOutOfRange) ==
          "prefix: DFUImageSize 123 matches neither 318 (without suffix) nor 334 (with suffix)");
  }
  SUBCASE("bytes between the last target and the suffix") {
    Bytes f = file;
    f.insert(f.begin() + 318, {1, 2, 3});
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kOutOfRange) ==
          "trailing bytes: 19 bytes follow the last target (offset 318), expected the 16-byte "
          "suffix");
  }
  SUBCASE("bytes after the suffix") {
    Bytes f = file;
    f.insert(f.end(), {1, 2, 3});
    CHECK(ParseError(f, StatusCode::kInvalidArgument) == "suffix: signature is not \"UFD\"");
    Recorder r;
    dfuse::StreamParser p(r);
    Diag diag;
    REQUIRE(p.Feed(f, &diag).ok());
    CHECK(p.Finish(&diag).code() == StatusCode::kOutOfRange);
    CHECK(std::string(diag.c_str()) ==
          "trailing bytes: 19 bytes follow the last target (offset 318), expected the 16-byte "
          "suffix");
  }
  SUBCASE("dwTargetSize larger than its elements") {
    Bytes f = file;
    StoreLe32(f.data() + kTargetSizeAt, 41);
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kOutOfRange) ==
          "target 0: dwTargetSize 41 does not match its elements (33 bytes with headers)");
  }
  SUBCASE("dwTargetSize smaller than its elements") {
    Bytes f = file;
    StoreLe32(f.data() + kTargetSizeAt, 32);
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kOutOfRange) ==
          "target 0, element 1 at 0x08004000: size 7 runs past dwTargetSize 32 (offset 303)");
  }
  SUBCASE("element count over the cap") {
    Bytes f = file;
    StoreLe32(f.data() + kElementCountAt, dfuse::kMaxElementsPerTarget + 1);
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kOutOfRange) ==
          "target 0 (offset 11): 65537 elements, over the cap of 65536");
  }
  SUBCASE("huge element size does not overflow") {
    Bytes f = file;
    StoreLe32(f.data() + 285 + 4, 0xFFFFFFFFu);
    StoreLe32(f.data() + kTargetSizeAt, 0xFFFFFFFFu);
    Reseal(f);
    // 8 + 0xffffffff does not wrap to fit in dwTargetSize.
    CHECK(ParseError(f, StatusCode::kOutOfRange) ==
          "target 0, element 0 at 0x08000000: size 4294967295 runs past dwTargetSize 4294967295 "
          "(offset 285)");
    StoreLe32(f.data() + 285 + 4, 0xFFFFFFF7u);
    Reseal(f);
    CHECK(ParseError(f, StatusCode::kOutOfRange) ==
          "target 0, element 0 at 0x08000000: size 4294967287 runs past end of file (offset 285)");
  }
}

TEST_CASE("dfuse: a visitor error stops the parse and is returned as is; errors are sticky") {
  const Bytes file = SmallFile();
  const uint32_t reject = 0x08004000;
  Recorder r;
  r.reject_address = &reject;
  Diag diag;
  CHECK(dfuse::ParseFile(file, r, &diag).code() == StatusCode::kPermissionDenied);
  CHECK(std::string(diag.c_str()) == "target 0, element 1 at 0x08004000: rejected by the consumer");
  CHECK(r.events.back() == "element 0.1 at 0x08004000 size 7");

  Recorder r2;
  r2.reject_address = &reject;
  dfuse::StreamParser p(r2);
  CHECK(p.Feed(file, &diag).code() == StatusCode::kPermissionDenied);
  Diag again;
  CHECK(p.Feed(ByteSpan(file).first(1), &again).code() == StatusCode::kPermissionDenied);
  CHECK(std::string(again.c_str()) == diag.c_str());
  CHECK(p.Finish(&again).code() == StatusCode::kPermissionDenied);
}

TEST_CASE("dfuse: Feed after a successful Finish fails") {
  const Bytes file = SmallFile();
  Recorder r;
  dfuse::StreamParser p(r);
  REQUIRE(p.Feed(file, nullptr).ok());
  REQUIRE(p.Finish(nullptr).ok());
  Diag diag;
  CHECK_FALSE(p.Feed(ByteSpan(file).first(1), &diag).ok());
  CHECK(std::string(diag.c_str()) == "data after the end of the file (offset 334)");
}

TEST_CASE("dfuse: writer validation and sink errors") {
  const Bytes data = {1, 2, 3};
  const dfuse::WriterElement elements[] = {{0x1000, data}};
  SUBCASE("name over 255 chars writes nothing") {
    const std::string name(256, 'x');
    const dfuse::WriterTarget targets[] = {{0, name.c_str(), elements}};
    VectorSink sink;
    CHECK(dfuse::WriteFile(targets, {}, sink).code() == StatusCode::kInvalidArgument);
    CHECK(sink.out.empty());
  }
  SUBCASE("more than 255 targets") {
    std::vector<dfuse::WriterTarget> targets(256);
    VectorSink sink;
    CHECK(dfuse::WriteFile(targets, {}, sink).code() == StatusCode::kOutOfRange);
    CHECK(sink.out.empty());
    targets.resize(255);
    CHECK(dfuse::WriteFile(targets, {}, sink).ok());
    Recorder r;
    CHECK(dfuse::ParseFile(sink.out, r, nullptr).ok());
    CHECK(r.events.size() == 255);
  }
  SUBCASE("bcdDFU other than DfuSe") {
    dfuse::Suffix suffix;
    suffix.bcd_dfu = 0x0100;
    const dfuse::WriterTarget targets[] = {{0, nullptr, elements}};
    VectorSink sink;
    CHECK(dfuse::WriteFile(targets, suffix, sink).code() == StatusCode::kInvalidArgument);
    CHECK(sink.out.empty());
  }
  SUBCASE("sink failure propagates") {
    const dfuse::WriterTarget targets[] = {{0, nullptr, elements}};
    const size_t limit = 290;
    VectorSink sink;
    sink.fail_after = &limit;
    CHECK(dfuse::WriteFile(targets, {}, sink).code() == StatusCode::kUnavailable);
  }
  SUBCASE("element data goes to the sink without being split or copied") {
    const Bytes big = Pattern(5000, 9);
    const dfuse::WriterElement one[] = {{0x2000, big}};
    const dfuse::WriterTarget targets[] = {{0, nullptr, one}};
    VectorSink sink;
    REQUIRE(dfuse::WriteFile(targets, {}, sink).ok());
    // prefix, target prefix, element header, data, suffix head, dwCRC
    CHECK(sink.calls == 6);
  }
}
