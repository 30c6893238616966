// ROMFS reader and writer. Hand-made images follow the layout MicroPython's
// mpremote (tools/mpremote/mpremote/romfs.py) produces and extmod/vfs_rom.c
// reads; the writer's output is checked by a test-local decoder and
// round-tripped through the reader.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/romfs.h"

using namespace onedfu::runtime;

namespace {

using Bytes = std::vector<uint8_t>;

// ---- test-local format helpers (independent of the code under test) ----

Bytes Enc(uint64_t v) {
  Bytes out{static_cast<uint8_t>(v & 0x7f)};
  for (v >>= 7; v != 0; v >>= 7) out.insert(out.begin(), static_cast<uint8_t>(0x80 | (v & 0x7f)));
  return out;
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes Str(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes Rec(uint64_t kind, const Bytes& payload) { return Cat({Enc(kind), Enc(payload.size()), payload}); }
Bytes FileRec(const std::string& name, const Bytes& data) {
  return Rec(5, Cat({Enc(name.size()), Str(name), Rec(2, data)}));
}
Bytes DirRec(const std::string& name, const Bytes& children) {
  return Rec(4, Cat({Enc(name.size()), Str(name), children}));
}
// The image record, made even the way mpremote does it: one 0x80 before the length.
Bytes Image(const Bytes& payload) {
  Bytes len = Enc(payload.size());
  if ((3 + len.size() + payload.size()) % 2 == 1) len.insert(len.begin(), 0x80);
  return Cat({{0xd2, 0xcd, 0x31}, len, payload});
}

// Independent varuint decoder for raw checks of the writer output.
uint64_t Dec(const Bytes& b, size_t& pos) {
  uint64_t v = 0;
  uint8_t byte;
  do {
    REQUIRE(pos < b.size());
    byte = b[pos++];
    v = (v << 7) | (byte & 0x7f);
  } while (byte & 0x80);
  return v;
}

struct Seen {
  std::string path;
  bool is_dir;
  std::string name;
  Bytes data;
  const uint8_t* ptr;
  uint32_t offset;
};

class Collect final : public RomfsReader::WalkVisitor {
 public:
  Status OnEntry(const char* path, const RomfsEntry& entry) override {
    seen.push_back({path, entry.is_dir, std::string(entry.name, entry.name_len),
                    Bytes(entry.data.begin(), entry.data.end()), entry.data.data(), entry.data_offset});
    return Status::Ok();
  }
  std::vector<Seen> seen;
};

std::vector<std::string> Paths(const std::vector<Seen>& seen) {
  std::vector<std::string> out;
  for (const Seen& s : seen) out.push_back(s.path + (s.is_dir ? "/" : ""));
  return out;
}

// The reader views `image`: keep it alive while the reader is used.
Result<RomfsReader> OpenBytes(const Bytes& image, Diag* diag = nullptr) { return RomfsReader::Open(image, diag); }

Status WalkBytes(const Bytes& image, Collect& collect, Diag* diag = nullptr) {
  auto reader = OpenBytes(image, diag);
  if (!reader.ok()) return reader.status();
  return reader->Walk(collect, diag);
}

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seed + i * 7);
  return out;
}

Result<Bytes> Write(const std::vector<RomfsFileSpec>& files, const RomfsWriteOptions& options = {},
                    uint8_t fill = 0xaa) {
  auto size = RomfsImageSize(files, options);
  if (!size.ok()) return size.status();
  Bytes out(size.value() + 16, fill);
  auto written = WriteRomfs(files, options, out);
  if (!written.ok()) return written.status();
  REQUIRE(written.value() == size.value());
  out.resize(written.value());
  return out;
}

}  // namespace

// ---------------------------------------------------------------- varuint

TEST_CASE("romfs varuint: known encodings, padding, limits") {
  struct Case {
    uint32_t value;
    Bytes bytes;
  };
  const Case cases[] = {
      {0, {0x00}},
      {127, {0x7f}},
      {128, {0x81, 0x00}},
      {300, {0x82, 0x2c}},
      {kRomfsMagicKind, {0xd2, 0xcd, 0x31}},  // DESIGN.md: 0x14a6b1 encodes as d2 cd 31
      {0xffffffffu, {0x8f, 0xff, 0xff, 0xff, 0x7f}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    CHECK(RomfsVarUintSize(c.value) == c.bytes.size());
    uint8_t buf[8] = {};
    REQUIRE(EncodeRomfsVarUint(c.value, buf) == c.bytes.size());
    CHECK(Bytes(buf, buf + c.bytes.size()) == c.bytes);
    ByteReader reader(c.bytes);
    auto v = ReadRomfsVarUint(reader);
    REQUIRE(v.ok());
    CHECK(v.value() == c.value);
    CHECK(reader.empty());
  }

  SUBCASE("padding with leading 0x80") {
    uint8_t buf[8] = {};
    REQUIRE(EncodeRomfsVarUint(5, buf, 4) == 4);
    CHECK(Bytes(buf, buf + 4) == Bytes{0x80, 0x80, 0x80, 0x05});
    REQUIRE(EncodeRomfsVarUint(300, buf, 5) == 5);
    CHECK(Bytes(buf, buf + 5) == Bytes{0x80, 0x80, 0x80, 0x82, 0x2c});
    const Bytes padded = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x82, 0x2c, 0x99};
    ByteReader reader(padded);
    auto v = ReadRomfsVarUint(reader);
    REQUIRE(v.ok());
    CHECK(v.value() == 300);
    CHECK(reader.position() == 8);
  }
  SUBCASE("output too small") {
    uint8_t buf[2] = {};
    CHECK(EncodeRomfsVarUint(0x4000, buf) == 0);      // needs 3 bytes
    CHECK(EncodeRomfsVarUint(1, buf, 3) == 0);        // padding does not fit
  }
  SUBCASE("truncated or over 32 bits: error, reader does not move") {
    const Bytes truncated = {0x81, 0x82};
    ByteReader r1(truncated);
    CHECK(ReadRomfsVarUint(r1).status().code() == StatusCode::kOutOfRange);
    CHECK(r1.position() == 0);
    const Bytes big = {0x90, 0x80, 0x80, 0x80, 0x00};  // 2^32
    ByteReader r2(big);
    CHECK(ReadRomfsVarUint(r2).status().code() == StatusCode::kOutOfRange);
    CHECK(r2.position() == 0);
  }
}

// ------------------------------------------------- reading mpremote images

TEST_CASE("romfs reader: image laid out like mpremote's make_romfs") {
  // Source directory: a.txt = "hi!", lib/m.mpy = 4d 06 00 1f. mpremote lists
  // each directory sorted, writes files with their data verbatim (kind 2)
  // inside the file record, directories as kind 4 holding nested records,
  // and pads the image length varuint with one 0x80 when the total is odd.
  const Bytes image = {
      0xd2, 0xcd, 0x31,  // offset 0: kind 0x14a6b1 (the ROMFS record)
      0x80, 0x21,        // offset 3: payload length 33, padded: 3 + 2 + 33 = 38 is even
      // offset 5: file record, payload 11 bytes
      0x05, 0x0b, 0x05, 'a', '.', 't', 'x', 't',  // kind 5, len 11, name_len 5, "a.txt"
      0x02, 0x03, 'h', 'i', '!',                  // offset 13: kind 2 (verbatim), len 3; data at 15
      // offset 18: directory record, payload 18 bytes
      0x04, 0x12, 0x03, 'l', 'i', 'b',            // kind 4, len 18, name_len 3, "lib"
      0x05, 0x0c, 0x05, 'm', '.', 'm', 'p', 'y',  // offset 24: nested file, len 12, "m.mpy"
      0x02, 0x04, 0x4d, 0x06, 0x00, 0x1f,         // offset 32: kind 2, len 4; data at 34
  };
  REQUIRE(image.size() == 38);
  CHECK(image == Image(Cat({FileRec("a.txt", Str("hi!")), DirRec("lib", FileRec("m.mpy", {0x4d, 0x06, 0x00, 0x1f}))})));

  Diag diag;
  auto reader = RomfsReader::Open(image, &diag);
  REQUIRE_MESSAGE(reader.ok(), diag.c_str());
  CHECK(reader->image().size() == 38);
  CHECK(reader->payload().size() == 33);
  CHECK(reader->payload_offset() == 5);

  Collect collect;
  REQUIRE_MESSAGE(reader->Walk(collect, &diag).ok(), diag.c_str());
  CHECK(Paths(collect.seen) == std::vector<std::string>{"a.txt", "lib/", "lib/m.mpy"});
  CHECK(collect.seen[0].data == Str("hi!"));
  CHECK(collect.seen[0].offset == 15);
  CHECK(collect.seen[0].ptr == image.data() + 15);
  CHECK(collect.seen[1].name == "lib");
  CHECK(collect.seen[1].data.empty());
  CHECK(collect.seen[2].name == "m.mpy");
  CHECK(collect.seen[2].offset == 34);
  CHECK(collect.seen[2].data == Bytes{0x4d, 0x06, 0x00, 0x1f});

  auto m = reader->Lookup("/lib/m.mpy");
  REQUIRE(m.ok());
  CHECK_FALSE(m->is_dir);
  CHECK(m->data.data() == image.data() + 34);
  CHECK(m->data.size() == 4);
  CHECK(std::string(m->name, m->name_len) == "m.mpy");
  auto a = reader->Lookup("a.txt");
  REQUIRE(a.ok());
  CHECK(a->data_offset == 15);
}

TEST_CASE("romfs reader: data pointer into a top-level data record (mpremote mkdata)") {
  // mpremote's mkdata() appends a kind-2 record to the top level and returns
  // the data's offset within the ROMFS payload; mkfile(name, (size, offset))
  // then stores a kind-3 pointer. vfs_rom resolves the offset from the
  // payload start (the byte after the image length varuint).
  const Bytes image = {
      0xd2, 0xcd, 0x31, 0x0e,                // 14-byte payload, total 18 (even)
      0x02, 0x04, 'D', 'A', 'T', 'A',        // payload offset 0: kind 2, "DATA" at payload offset 2
      0x05, 0x06, 0x01, 'p',                 // file "p", payload 6 bytes
      0x03, 0x02, 0x04, 0x02,                // kind 3, len 2: size 4, offset 2
  };
  Diag diag;
  auto reader = RomfsReader::Open(image, &diag);
  REQUIRE(reader.ok());
  Collect collect;
  REQUIRE_MESSAGE(reader->Walk(collect, &diag).ok(), diag.c_str());
  REQUIRE(collect.seen.size() == 1);  // the top-level data record is not an entry
  CHECK(collect.seen[0].path == "p");
  CHECK(collect.seen[0].data == Str("DATA"));
  CHECK(collect.seen[0].offset == 6);  // 4-byte header + payload offset 2
  auto p = reader->Lookup("p");
  REQUIRE(p.ok());
  CHECK(p->data.data() == image.data() + 6);
}

TEST_CASE("romfs reader: unknown kinds and padding are skipped, kind 0 stops a list") {
  const Bytes payload = Cat({
      Rec(1, Str("comment")),                       // padding at top level
      Rec(0x7e, Str("future")),                     // unknown kind
      Bytes{0x80, 0x80, 0x09, 0x01, 0xee},          // unknown kind 9, padded varuint, 1 byte
      Rec(300, Bytes(3, 0x11)),                     // unknown two-byte kind
      Rec(5, Cat({Enc(1), Str("f"), Rec(1, Str("pad")), Rec(9, Str("meta")), Rec(2, Str("xyz")),
                  Rec(2, Str("second data record is ignored"))})),
      Rec(4, Cat({Enc(1), Str("d"), Rec(1, {}), FileRec("g", Str("G")), Rec(0, {}), FileRec("hidden", Str("H"))})),
      Rec(0, {}),
      FileRec("after_unused", Str("no")),
  });
  const Bytes image = Image(payload);
  Collect collect;
  Diag diag;
  REQUIRE_MESSAGE(WalkBytes(image, collect, &diag).ok(), diag.c_str());
  CHECK(Paths(collect.seen) == std::vector<std::string>{"f", "d/", "d/g"});
  CHECK(collect.seen[0].data == Str("xyz"));
  auto reader = OpenBytes(image);
  REQUIRE(reader.ok());
  CHECK(reader->Lookup("d/g").ok());
  CHECK(reader->Lookup("d/hidden").status().code() == StatusCode::kNotFound);
  CHECK(reader->Lookup("after_unused").status().code() == StatusCode::kNotFound);
}

TEST_CASE("romfs reader: Lookup paths") {
  const Bytes image = Image(Cat({FileRec("a.bin", Str("A")), DirRec("lib", Cat({DirRec("pkg", FileRec("x", Str("X"))),
                                                                                   FileRec("y", Str("Y"))}))}));
  auto reader = OpenBytes(image);
  REQUIRE(reader.ok());
  for (const char* root : {"", "/"}) {
    auto r = reader->Lookup(root);
    REQUIRE(r.ok());
    CHECK(r->is_dir);
    CHECK(r->name_len == 0);
  }
  CHECK(reader->Lookup("lib")->is_dir);
  CHECK(reader->Lookup("/lib/")->is_dir);
  CHECK(reader->Lookup("lib/pkg/x")->data.size() == 1);
  CHECK(reader->Lookup("lib/pkg/x")->data[0] == 'X');
  CHECK(reader->Lookup("lib/y")->data[0] == 'Y');
  CHECK(reader->Lookup("nope").status().code() == StatusCode::kNotFound);
  CHECK(reader->Lookup("LIB/y").status().code() == StatusCode::kNotFound);
  CHECK(reader->Lookup("lib/pk").status().code() == StatusCode::kNotFound);
  CHECK(reader->Lookup("a.bin/").status().code() == StatusCode::kNotFound);
  CHECK(reader->Lookup("a.bin/x").status().code() == StatusCode::kNotFound);
  CHECK(reader->Lookup("lib//y").status().code() == StatusCode::kInvalidArgument);
  CHECK(reader->Lookup(nullptr).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("romfs reader: Open checks the header record") {
  Diag diag;
  CHECK(OpenBytes({}, &diag).status().code() == StatusCode::kInvalidArgument);
  CHECK(OpenBytes(Bytes(64, 0xff), &diag).status().code() == StatusCode::kInvalidArgument);  // erased flash
  CHECK(OpenBytes({0xd2, 0xcd, 0x30, 0x00}, &diag).status().code() == StatusCode::kInvalidArgument);
  // vfs_rom compares the first three bytes literally: a padded kind is no ROMFS.
  CHECK(OpenBytes({0x80, 0xd2, 0xcd, 0x31, 0x00, 0x00}, &diag).status().code() == StatusCode::kInvalidArgument);
  CHECK(OpenBytes({0xd2, 0xcd, 0x31, 0x81}, &diag).status().code() == StatusCode::kOutOfRange);
  CHECK(OpenBytes({0xd2, 0xcd, 0x31, 0x08, 0, 0, 0, 0}, &diag).status().code() == StatusCode::kOutOfRange);
  CHECK(std::string(diag.c_str()).find("runs past the end") != std::string::npos);
  CHECK(OpenBytes({0xd2, 0xcd, 0x31, 0x01, 0x00}, &diag).status().code() == StatusCode::kInvalidArgument);  // 5 bytes
  CHECK(std::string(diag.c_str()).find("odd") != std::string::npos);

  // An empty ROMFS (no records) is valid; a region may extend past the image.
  // A padded zero length makes a 5-byte image: odd, even if the region goes on.
  CHECK(OpenBytes({0xd2, 0xcd, 0x31, 0x80, 0x00, 0x00}).status().code() == StatusCode::kInvalidArgument);
  const Bytes region = {0xd2, 0xcd, 0x31, 0x00, 0xff, 0xff, 0xff};
  auto reader = OpenBytes(region);
  REQUIRE(reader.ok());
  CHECK(reader->image().size() == 4);
  CHECK(reader->payload().empty());
  Collect collect;
  CHECK(reader->Walk(collect, nullptr).ok());
  CHECK(collect.seen.empty());
}

TEST_CASE("romfs reader: corrupt records are refused with a location") {
  struct Case {
    const char* what;
    Bytes payload;
    StatusCode code;
  };
  const Case cases[] = {
      {"record length past parent", {0x05, 0x20, 0x01, 'x'}, StatusCode::kOutOfRange},
      {"kind over 32 bits", {0x90, 0x80, 0x80, 0x80, 0x00, 0x00}, StatusCode::kOutOfRange},
      {"name past record", {0x05, 0x02, 0x05, 'x'}, StatusCode::kOutOfRange},
      {"file without data record", {0x05, 0x02, 0x01, 'x'}, StatusCode::kInvalidArgument},
      {"data pointer past image", {0x05, 0x06, 0x01, 'x', 0x03, 0x02, 0x7f, 0x00}, StatusCode::kOutOfRange},
      {"data pointer truncated", {0x05, 0x05, 0x01, 'x', 0x03, 0x01, 0x04}, StatusCode::kOutOfRange},
      {"nested record past parent", DirRec("d", {0x05, 0x09, 0x01}), StatusCode::kOutOfRange},
      {"duplicate file", Cat({FileRec("x", Str("1")), FileRec("x", Str("2"))}), StatusCode::kInvalidArgument},
      {"file and dir of one name", Cat({FileRec("x", Str("1")), DirRec("x", {})}), StatusCode::kInvalidArgument},
      {"name with slash", FileRec("a/b", Str("1")), StatusCode::kInvalidArgument},
      {"empty name", FileRec("", Str("1")), StatusCode::kInvalidArgument},
      {"name with NUL", FileRec(std::string("a\0b", 3), Str("1")), StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Collect collect;
    Diag diag;
    const Status s = WalkBytes(Image(c.payload), collect, &diag);
    CHECK(s.code() == c.code);
    CHECK(std::string(diag.c_str()).find("romfs") == 0);
  }
  // The data pointer bound is the payload: ending exactly at its end is fine.
  Collect collect;
  const Bytes ok = Image({0x05, 0x06, 0x01, 'x', 0x03, 0x02, 0x08, 0x00});
  REQUIRE(WalkBytes(ok, collect).ok());
  CHECK(collect.seen[0].data.size() == 8);
  const Bytes past = Image({0x05, 0x06, 0x01, 'x', 0x03, 0x02, 0x08, 0x01});
  CHECK(WalkBytes(past, collect).code() == StatusCode::kOutOfRange);
}

TEST_CASE("romfs reader: depth, path length and entry limits") {
  SUBCASE("depth") {
    // A file below `levels` directories has `levels` '/' in its path.
    auto nested = [](size_t levels) {
      Bytes inner = FileRec("f", Str("F"));
      for (size_t i = 0; i < levels; ++i) inner = DirRec("d", inner);
      return Image(inner);
    };
    Collect ok_collect;
    Diag diag;
    REQUIRE_MESSAGE(WalkBytes(nested(kRomfsMaxDepth), ok_collect, &diag).ok(), diag.c_str());
    CHECK(ok_collect.seen.back().path.size() == 2 * kRomfsMaxDepth + 1);
    Collect deep;
    CHECK(WalkBytes(nested(kRomfsMaxDepth + 1), deep, &diag).code() == StatusCode::kResourceExhausted);
    // Lookup is iterative and has no depth limit of its own.
    std::string path;
    for (size_t i = 0; i < kRomfsMaxDepth + 1; ++i) path += "d/";
    const Bytes deep_image = nested(kRomfsMaxDepth + 1);
    auto reader = OpenBytes(deep_image);
    REQUIRE(reader.ok());
    CHECK(reader->Lookup((path + "f").c_str()).ok());
  }
  SUBCASE("path length") {
    const std::string dir(200, 'd');
    Collect collect;
    REQUIRE(WalkBytes(Image(DirRec(dir, FileRec(std::string(54, 'f'), Str("1")))), collect).ok());
    CHECK(collect.seen.back().path.size() == kRomfsMaxPath);
    Collect too_long;
    CHECK(WalkBytes(Image(DirRec(dir, FileRec(std::string(55, 'f'), Str("1")))), too_long).code() ==
          StatusCode::kResourceExhausted);
  }
  SUBCASE("entries in one directory") {
    Bytes payload;
    for (size_t i = 0; i <= kRomfsMaxDirEntries; ++i) {
      const Bytes rec = FileRec("f" + std::to_string(i), {});
      payload.insert(payload.end(), rec.begin(), rec.end());
    }
    Collect collect;
    Diag diag;
    CHECK(WalkBytes(Image(payload), collect, &diag).code() == StatusCode::kResourceExhausted);
    CHECK(collect.seen.size() == kRomfsMaxDirEntries);
  }
}

TEST_CASE("romfs reader: a visitor's error stops the walk") {
  class StopAfterTwo final : public RomfsReader::WalkVisitor {
   public:
    Status OnEntry(const char*, const RomfsEntry&) override {
      return ++count == 2 ? Status(StatusCode::kFailedPrecondition, "stop") : Status::Ok();
    }
    int count = 0;
  };
  StopAfterTwo visitor;
  const Bytes image = Image(Cat({FileRec("a", {}), FileRec("b", {}), FileRec("c", {})}));
  auto reader = OpenBytes(image);
  REQUIRE(reader.ok());
  CHECK(reader->Walk(visitor, nullptr).code() == StatusCode::kFailedPrecondition);
  CHECK(visitor.count == 2);
}

TEST_CASE("romfs: RomfsImageLength finds the end of stacked images") {
  const Bytes first = Image(FileRec("a", Str("abc")));
  const Bytes second = Image(Cat({FileRec("b", Str("x")), FileRec("c", Str("yz"))}));
  Bytes region = Cat({first, second, Bytes(32, 0xff)});
  CHECK(RomfsImageLength(region) == first.size());
  CHECK(RomfsImageLength(ByteSpan(region).subspan(first.size())) == second.size());
  CHECK(RomfsImageLength(ByteSpan(region).subspan(first.size() + second.size())) == 0);  // erased
  CHECK(RomfsImageLength(ByteSpan(first).first(first.size() - 1)) == 0);                 // truncated
  CHECK(RomfsImageLength({}) == 0);
}

// ------------------------------------------------------------------ writer

TEST_CASE("romfs writer: raw bytes follow the format rules") {
  // One file "x" = "abc", data_align 8. Derived by hand from the layout:
  //   0  d2 cd 31 | 80 80 80 80 1c      header, payload length 28 as a 5-byte varuint
  //   8  05 0e 01 'x'                    file record, payload 14, name_len 1
  //  12  03 0a | 80 80 80 80 03 | 80 80 80 80 18   pointer: size 3, payload offset 24 (image 32)
  //  24  01 80 80 80 80 06               padding record wrapping the data area (6 bytes)
  //  30  00 00                           gap up to the 8-aligned data
  //  32  'a' 'b' 'c' 00                  data, then one byte to make the size even
  const Bytes abc = Str("abc");
  const std::vector<RomfsFileSpec> files = {{"x", abc}};
  auto image = Write(files);
  REQUIRE(image.ok());
  const Bytes expected = {0xd2, 0xcd, 0x31, 0x80, 0x80, 0x80, 0x80, 0x1c, 0x05, 0x0e, 0x01, 'x',
                          0x03, 0x0a, 0x80, 0x80, 0x80, 0x80, 0x03, 0x80, 0x80, 0x80, 0x80, 0x18,
                          0x01, 0x80, 0x80, 0x80, 0x80, 0x06, 0x00, 0x00, 'a',  'b',  'c',  0x00};
  CHECK(image.value() == expected);
}

TEST_CASE("romfs writer: decoding the records by hand") {
  const Bytes big = Pattern(1000, 3), small = Pattern(5, 9);
  const std::vector<RomfsFileSpec> files = {{"a.bin", small}, {"fonts/big.bin", big}};
  RomfsWriteOptions options;
  options.data_align = 16;
  auto result = Write(files, options);
  REQUIRE(result.ok());
  const Bytes& img = result.value();
  CHECK(img.size() % 2 == 0);

  size_t pos = 0;
  REQUIRE(img.size() > 8);
  CHECK(Bytes(img.begin(), img.begin() + 3) == Bytes{0xd2, 0xcd, 0x31});
  pos = 3;
  const uint64_t payload_len = Dec(img, pos);
  const size_t payload_start = pos;
  CHECK(payload_start + payload_len == img.size());

  // Reads a file record's name and pointer; checks the data in the image.
  auto check_file = [&](size_t& p, const std::string& want_name, const Bytes& want) {
    CHECK(Dec(img, p) == 5);
    const uint64_t len = Dec(img, p);
    const size_t end = p + len;
    const uint64_t name_len = Dec(img, p);
    CHECK(std::string(img.begin() + p, img.begin() + p + name_len) == want_name);
    p += name_len;
    CHECK(Dec(img, p) == 3);
    const uint64_t plen = Dec(img, p);
    const size_t pend = p + plen;
    const uint64_t size = Dec(img, p);
    const uint64_t offset = Dec(img, p);
    CHECK(p == pend);
    CHECK(p == end);
    CHECK(size == want.size());
    const size_t at = payload_start + offset;
    CHECK(at % 16 == 0);
    REQUIRE(at + size <= img.size());
    CHECK(Bytes(img.begin() + at, img.begin() + at + size) == want);
    return at;
  };

  const size_t a_at = check_file(pos, "a.bin", small);
  CHECK(Dec(img, pos) == 4);  // directory "fonts"
  const uint64_t dir_len = Dec(img, pos);
  const size_t dir_end = pos + dir_len;
  const uint64_t dir_name_len = Dec(img, pos);
  CHECK(std::string(img.begin() + pos, img.begin() + pos + dir_name_len) == "fonts");
  pos += dir_name_len;
  const size_t big_at = check_file(pos, "big.bin", big);
  CHECK(pos == dir_end);
  CHECK(big_at >= a_at + small.size());  // data in input order, no overlap
  // Last top-level record: padding that covers the rest of the image.
  CHECK(Dec(img, pos) == 1);
  const uint64_t pad_len = Dec(img, pos);
  CHECK(pos + pad_len == img.size());
  CHECK(a_at >= pos);  // data lives inside the padding record, after the tree
}

TEST_CASE("romfs writer: round trip through the reader") {
  const Bytes a = Pattern(5, 1), big = Pattern(1000, 2), foo = Pattern(33, 3), init = Pattern(7, 4),
              deep = Pattern(1, 5), z = Pattern(2, 6);
  const std::vector<RomfsFileSpec> files = {
      {"a.bin", a},       {"empty", {}},           {"fonts/big.bin", big},        {"lib/foo.mpy", foo},
      {"lib/pkg/__init__.mpy", init}, {"lib/pkg/sub/deep.bin", deep}, {"z", z},
  };
  const std::vector<std::string> expected_walk = {
      "a.bin", "empty", "fonts/", "fonts/big.bin", "lib/", "lib/foo.mpy", "lib/pkg/",
      "lib/pkg/__init__.mpy", "lib/pkg/sub/", "lib/pkg/sub/deep.bin", "z"};

  for (uint32_t align : {1u, 2u, 4u, 8u, 16u, 4096u}) {
    CAPTURE(align);
    RomfsWriteOptions options;
    options.data_align = align;
    auto result = Write(files, options);
    REQUIRE(result.ok());
    const Bytes& img = result.value();
    CHECK(img.size() % 2 == 0);

    Diag diag;
    auto reader = RomfsReader::Open(img, &diag);
    REQUIRE_MESSAGE(reader.ok(), diag.c_str());
    CHECK(reader->image().size() == img.size());
    Collect collect;
    REQUIRE_MESSAGE(reader->Walk(collect, &diag).ok(), diag.c_str());
    CHECK(Paths(collect.seen) == expected_walk);

    uint32_t previous_end = 0;
    for (const RomfsFileSpec& f : files) {
      CAPTURE(f.path);
      auto it = std::find_if(collect.seen.begin(), collect.seen.end(), [&](const Seen& s) { return s.path == f.path; });
      REQUIRE(it != collect.seen.end());
      CHECK(it->data == Bytes(f.data.begin(), f.data.end()));
      CHECK(it->offset % align == 0);
      CHECK(it->offset >= previous_end);
      previous_end = it->offset + static_cast<uint32_t>(f.data.size());
      if (!f.data.empty()) CHECK(it->ptr == img.data() + it->offset);
      auto found = reader->Lookup(f.path);
      REQUIRE(found.ok());
      CHECK(found->data_offset == it->offset);
      CHECK(found->data.size() == f.data.size());
      CHECK(found->data.data() >= img.data());
      CHECK(found->data.data() + found->data.size() <= img.data() + img.size());
    }
    CHECK(RomfsImageLength(img) == img.size());
  }
}

TEST_CASE("romfs writer: deterministic, gaps zeroed, empty image") {
  const Bytes a = Pattern(3, 1), b = Pattern(9, 2);
  const std::vector<RomfsFileSpec> files = {{"a", a}, {"d/b", b}};
  auto first = Write(files, {}, 0xaa);
  auto second = Write(files, {}, 0x55);
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(first.value() == second.value());  // different prior buffer contents, same bytes

  auto empty = Write({});
  REQUIRE(empty.ok());
  CHECK(empty.value() == Bytes{0xd2, 0xcd, 0x31, 0x80, 0x80, 0x80, 0x80, 0x00});
  auto reader = OpenBytes(empty.value());
  REQUIRE(reader.ok());
  Collect collect;
  CHECK(reader->Walk(collect, nullptr).ok());
  CHECK(collect.seen.empty());
}

TEST_CASE("romfs writer: data_start keeps data offsets stable while the tree changes") {
  const Bytes a = Pattern(40, 1), b = Pattern(17, 2);
  const std::vector<RomfsFileSpec> short_names = {{"a.mpy", a}, {"b.bin", b}};
  const std::vector<RomfsFileSpec> long_names = {{"a_much_longer_module_name.mpy", a},
                                                 {"deeper/dir/b.bin", b}};
  auto offsets = [](const Bytes& img) {
    Collect collect;
    REQUIRE(WalkBytes(img, collect).ok());
    std::vector<uint32_t> out;
    for (const Seen& s : collect.seen) {
      if (!s.is_dir) out.push_back(s.offset);
    }
    return out;
  };
  // Without a reservation the data follows the tree and moves with it.
  auto s0 = Write(short_names), l0 = Write(long_names);
  REQUIRE(s0.ok());
  REQUIRE(l0.ok());
  CHECK(offsets(s0.value()) != offsets(l0.value()));

  RomfsWriteOptions options;
  options.data_start = 256;
  auto s1 = Write(short_names, options), l1 = Write(long_names, options);
  REQUIRE(s1.ok());
  REQUIRE(l1.ok());
  CHECK(offsets(s1.value()) == offsets(l1.value()));
  CHECK(offsets(s1.value()).front() == 256);

  options.data_start = 40;  // smaller than header + tree + padding header
  CHECK(RomfsImageSize(long_names, options).status().code() == StatusCode::kResourceExhausted);
}

TEST_CASE("romfs writer: refuses bad paths and options") {
  const Bytes d = {1};
  struct Case {
    const char* what;
    std::vector<RomfsFileSpec> files;
    StatusCode code;
  };
  const std::string long_path(kRomfsMaxPath + 1, 'p');
  std::string deep;
  for (size_t i = 0; i <= kRomfsMaxDepth; ++i) deep += "d/";
  deep += "f";
  const Case cases[] = {
      {"unsorted", {{"b", d}, {"a", d}}, StatusCode::kInvalidArgument},
      {"duplicate", {{"a", d}, {"a", d}}, StatusCode::kInvalidArgument},
      {"file is also a directory", {{"a", d}, {"a/b", d}}, StatusCode::kInvalidArgument},
      {"file is also a directory, not adjacent", {{"a", d}, {"a-b", d}, {"a/b", d}}, StatusCode::kInvalidArgument},
      {"leading slash", {{"/a", d}}, StatusCode::kInvalidArgument},
      {"trailing slash", {{"a/", d}}, StatusCode::kInvalidArgument},
      {"empty component", {{"a//b", d}}, StatusCode::kInvalidArgument},
      {"dot", {{"./a", d}}, StatusCode::kInvalidArgument},
      {"dot dot", {{"a/../b", d}}, StatusCode::kInvalidArgument},
      {"empty path", {{"", d}}, StatusCode::kInvalidArgument},
      {"null path", {{nullptr, d}}, StatusCode::kInvalidArgument},
      {"path too long", {{long_path.c_str(), d}}, StatusCode::kResourceExhausted},
      {"too deep", {{deep.c_str(), d}}, StatusCode::kResourceExhausted},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    CHECK(RomfsImageSize(c.files, {}).status().code() == c.code);
    Bytes out(4096);
    CHECK(WriteRomfs(c.files, {}, out).status().code() == c.code);
  }
  // Names that merely look similar are fine.
  const std::vector<RomfsFileSpec> fine = {{"..a", d}, {"a.", d}, {"a/.b", d}};
  CHECK(RomfsImageSize(fine, {}).ok());
  // A 255-character path is the longest accepted, and reads back.
  const std::string max_path(kRomfsMaxPath, 'p');
  auto max_image = Write({{max_path.c_str(), d}});
  REQUIRE(max_image.ok());
  auto reader = OpenBytes(max_image.value());
  REQUIRE(reader.ok());
  CHECK(reader->Lookup(max_path.c_str()).ok());

  for (uint32_t align : {0u, 3u, 12u, 8192u}) {
    RomfsWriteOptions options;
    options.data_align = align;
    CHECK(RomfsImageSize({}, options).status().code() == StatusCode::kInvalidArgument);
  }

  const std::vector<RomfsFileSpec> one = {{"x", d}};
  auto size = RomfsImageSize(one, {});
  REQUIRE(size.ok());
  Bytes small(size.value() - 1);
  CHECK(WriteRomfs(one, {}, small).status().code() == StatusCode::kResourceExhausted);
}

TEST_CASE("romfs writer: entry limit per directory") {
  std::vector<std::string> names;
  for (size_t i = 0; i <= kRomfsMaxDirEntries; ++i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "d/f%05zu", i);
    names.push_back(buf);
  }
  std::vector<RomfsFileSpec> files;
  for (const std::string& n : names) files.push_back({n.c_str(), {}});
  CHECK(RomfsImageSize(files, {}).status().code() == StatusCode::kResourceExhausted);
  files.pop_back();
  CHECK(RomfsImageSize(files, {}).ok());
}

TEST_CASE("romfs writer: empty directory entries (VfsRom lists them)") {
  const Bytes d = Pattern(10, 1);
  auto image = Write({{"a.bin", d}, {"empty", {}, true}, {"lib/deep/er", {}, true}, {"lib/m.mpy", d}});
  REQUIRE(image.ok());
  Collect collect;
  REQUIRE(WalkBytes(image.value(), collect).ok());
  CHECK(Paths(collect.seen) == std::vector<std::string>{"a.bin", "empty/", "lib/", "lib/deep/", "lib/deep/er/",
                                                          "lib/m.mpy"});
  auto reader = OpenBytes(image.value());
  REQUIRE(reader.ok());
  auto empty = reader->Lookup("empty");
  REQUIRE(empty.ok());
  CHECK(empty->is_dir);
  auto file = reader->Lookup("lib/m.mpy");
  REQUIRE(file.ok());
  CHECK(Bytes(file->data.begin(), file->data.end()) == d);

  // Only directories: a tree without a data area.
  auto dirs = Write({{"x", {}, true}});
  REQUIRE(dirs.ok());
  Collect only;
  REQUIRE(WalkBytes(dirs.value(), only).ok());
  CHECK(Paths(only.seen) == std::vector<std::string>{"x/"});

  // A directory entry must be empty and hold no data.
  CHECK(RomfsImageSize(std::vector<RomfsFileSpec>{{"a", {}, true}, {"a/b", d}}, {}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(RomfsImageSize(std::vector<RomfsFileSpec>{{"a", d, true}}, {}).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(RomfsImageSize(std::vector<RomfsFileSpec>{{"a", {}, true}, {"a", d}}, {}).status().code() ==
        StatusCode::kInvalidArgument);
}
