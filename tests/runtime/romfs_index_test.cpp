// ROMFS file index (runtime/romfs_index.h): golden bytes, round trip, and
// the parser's refusals, each naming the entry at fault.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "runtime/romfs_index.h"

using namespace onedfu::runtime;

namespace {

using Bytes = std::vector<uint8_t>;

RomfsIndexEntry Entry(const char* path, uint32_t offset, uint32_t size, uint8_t hash_byte) {
  RomfsIndexEntry e;
  e.path = path;
  e.path_len = std::strlen(path);
  e.offset = offset;
  e.size = size;
  e.sha256.fill(hash_byte);
  return e;
}

Bytes Write(const std::vector<RomfsIndexEntry>& entries) {
  auto size = RomfsIndexSize(entries);
  REQUIRE(size.ok());
  Bytes out(size.value(), 0xee);
  auto written = WriteRomfsIndex(entries, out);
  REQUIRE(written.ok());
  REQUIRE(written.value() == out.size());
  return out;
}

std::string Why(const Bytes& table, uint32_t image_size, StatusCode expected) {
  Diag diag;
  auto index = RomfsIndex::Open(table, image_size, &diag);
  REQUIRE_FALSE(index.ok());
  CHECK(index.status().code() == expected);
  return diag.c_str();
}

}  // namespace

TEST_CASE("romfs index: golden bytes of a two-file table") {
  const Bytes table = Write({Entry("a.txt", 0x40, 3, 0x11), Entry("lib/b.mpy", 0x48, 0x1234, 0x22)});
  Bytes expected = {0x93, 0x5a, 0x1c, 0x7d,  // magic 0x7d1c5a93
                    0x01, 0x00, 0x00, 0x00,  // version 1
                    0x02, 0x00, 0x00, 0x00,  // 2 entries
                    0x70, 0x00, 0x00, 0x00};  // 16 + (41 + 5) + (41 + 9) = 112 bytes
  const auto entry = [&](uint32_t offset, uint32_t size, uint8_t hash, const char* path) {
    for (int i = 0; i < 4; ++i) expected.push_back(static_cast<uint8_t>(offset >> (8 * i)));
    for (int i = 0; i < 4; ++i) expected.push_back(static_cast<uint8_t>(size >> (8 * i)));
    expected.insert(expected.end(), 32, hash);
    expected.push_back(static_cast<uint8_t>(std::strlen(path)));
    expected.insert(expected.end(), path, path + std::strlen(path));
  };
  entry(0x40, 3, 0x11, "a.txt");
  entry(0x48, 0x1234, 0x22, "lib/b.mpy");
  CHECK(table == expected);
}

TEST_CASE("romfs index: parse(write(x)) == x, Find, and a table inside a longer span") {
  const std::vector<RomfsIndexEntry> entries = {Entry("a", 8, 0, 1), Entry("a.b", 16, 5, 2), Entry("a/b", 24, 7, 3),
                                                Entry("z/y/x.mpy", 4096, 100, 4)};
  Bytes table = Write(entries);
  const size_t table_size = table.size();
  table.resize(table_size + 100, 0xff);  // the rest of a flash region
  auto index = RomfsIndex::Open(table, 8192, nullptr);
  REQUIRE(index.ok());
  CHECK(index->entry_count() == 4);
  CHECK(index->bytes().size() == table_size);
  uint32_t cursor = 0;
  RomfsIndexEntry e;
  size_t i = 0;
  while (index->Next(&cursor, &e)) {
    REQUIRE(i < entries.size());
    CHECK(std::string(e.path, e.path_len) == entries[i].path);
    CHECK(e.offset == entries[i].offset);
    CHECK(e.size == entries[i].size);
    CHECK(e.sha256 == entries[i].sha256);
    ++i;
  }
  CHECK(i == entries.size());
  auto found = index->Find("a/b");
  REQUIRE(found.ok());
  CHECK(found->offset == 24);
  CHECK(index->Find("a/c").status().code() == StatusCode::kNotFound);
  CHECK(index->Find("0").status().code() == StatusCode::kNotFound);

  auto empty = RomfsIndex::Open(Write({}), 0, nullptr);
  REQUIRE(empty.ok());
  CHECK(empty->entry_count() == 0);
}

TEST_CASE("romfs index: the writer refuses unsorted, duplicate and malformed paths") {
  Bytes out(4096);
  CHECK(WriteRomfsIndex(std::vector{Entry("b", 8, 1, 0), Entry("a", 16, 1, 0)}, out).status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(WriteRomfsIndex(std::vector{Entry("a", 8, 1, 0), Entry("a", 16, 1, 0)}, out).status().code() ==
        StatusCode::kInvalidArgument);
  for (const char* bad : {"/a", "a/", "a//b", "./a", "a/..", ""}) {
    CAPTURE(bad);
    CHECK_FALSE(WriteRomfsIndex(std::vector{Entry(bad, 8, 1, 0)}, out).ok());
  }
  Bytes small(20);
  CHECK(WriteRomfsIndex(std::vector{Entry("a", 8, 1, 0)}, small).status().code() == StatusCode::kResourceExhausted);
}

TEST_CASE("romfs index: the parser refuses damaged tables and says where") {
  const Bytes good = Write({Entry("a.txt", 0x40, 3, 0x11), Entry("lib/b.mpy", 0x48, 0x100, 0x22)});
  REQUIRE(RomfsIndex::Open(good, 0x1000, nullptr).ok());
  SUBCASE("short") {
    CHECK(Why(Bytes(good.begin(), good.begin() + 10), 0, StatusCode::kOutOfRange) ==
          "romfs index: 10 bytes, shorter than its 16-byte header");
    CHECK(Why(Bytes(good.begin(), good.end() - 1), 0, StatusCode::kOutOfRange) ==
          "romfs index: total size 112 outside 16..111");
  }
  SUBCASE("magic and version") {
    Bytes b = good;
    b[0] ^= 1;
    CHECK(Why(b, 0, StatusCode::kInvalidArgument) == "romfs index: magic 0x7d1c5a92, expected 0x7d1c5a93");
    b = good;
    b[4] = 2;
    CHECK(Why(b, 0, StatusCode::kUnimplemented) == "romfs index: version 2 not supported (1)");
  }
  SUBCASE("entry count") {
    Bytes b = good;
    b[8] = 3;
    CHECK(Why(b, 0, StatusCode::kOutOfRange) == "romfs index: entry 2 at byte 112 runs past the table");
    b[8] = 1;
    CHECK(Why(b, 0, StatusCode::kInvalidArgument) == "romfs index: entries end at byte 62, total size says 112");
    b[8] = 0;
    b[10] = 0x10;
    CHECK(Why(b, 0, StatusCode::kResourceExhausted) == "romfs index: 1048576 entries, over the cap of 65536");
  }
  SUBCASE("path length running past the table") {
    Bytes b = good;
    b[62 + 40] = 200;
    CHECK(Why(b, 0, StatusCode::kOutOfRange) == "romfs index: entry 1 at byte 62 runs past the table");
  }
  SUBCASE("bad path, order") {
    Bytes b = good;
    b[62 + 41] = '/';
    CHECK(Why(b, 0, StatusCode::kInvalidArgument) == "romfs index: entry 1 at byte 62: bad path");
    b = good;
    b[62 + 41] = 'a';  // "aib/b.mpy" still sorts after "a.txt"; make it sort before
    b[62 + 42] = '\0';
    CHECK(Why(b, 0, StatusCode::kInvalidArgument) == "romfs index: entry 1 at byte 62: bad path");
    b = good;
    b[62 + 41] = 'A';  // "Aib/b.mpy" < "a.txt"
    CHECK(Why(b, 0, StatusCode::kInvalidArgument) ==
          "romfs index: entry 1 at byte 62: path not after the previous one");
  }
  SUBCASE("data outside the image") {
    CHECK(Why(good, 0x147, StatusCode::kInvalidArgument) ==
          "romfs index: entry 1: data at 72 size 256 outside the 327-byte image");
  }
}
