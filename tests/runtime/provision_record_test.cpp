// The provision record (runtime/provision_record.h): encode, read in place, damage detected.
#include "runtime/provision_record.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

using namespace onedfu::runtime;
using Bytes = std::vector<uint8_t>;

ByteSpan Span(const std::string& s) { return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
std::string Text(ByteSpan b) { return std::string(b.begin(), b.end()); }

const std::string kSerial = "serial", kSerialValue = "SIM000000001", kKey = "key", kKeyValue = std::string("k\0y,\"1\"", 7);

Bytes Encoded(size_t region = 4096) {
  const ProvisionEntry entries[] = {{Span(kSerial), Span(kSerialValue)}, {Span(kKey), Span(kKeyValue)}};
  Bytes out(region, 0xff);
  auto n = EncodeProvisionRecord(entries, out);
  REQUIRE(n.ok());
  CHECK(n.value() == ProvisionRecordSize(entries));
  CHECK(n.value() == kProvisionHeaderSize + (1 + 6 + 2 + 12) + (1 + 3 + 2 + 7));
  return out;
}

TEST_CASE("provision record: encode, then read every entry back in place") {
  const Bytes region = Encoded();
  auto reader = ProvisionReader::Open(region);
  REQUIRE(reader.ok());
  CHECK(reader->count() == 2);
  auto serial = reader->Find("serial");
  REQUIRE(serial.ok());
  CHECK(Text(serial.value()) == kSerialValue);
  CHECK(serial.value().data() >= region.data());  // a view into the region, no copy
  auto key = reader->Find(Span(kKey));
  REQUIRE(key.ok());
  CHECK(Text(key.value()) == kKeyValue);  // bytes, NUL and quotes included
  CHECK(reader->Find("missing").status().code() == StatusCode::kNotFound);
  auto second = reader->At(1);
  REQUIRE(second.ok());
  CHECK(Text(second->key) == kKey);
  CHECK(reader->At(2).status().code() == StatusCode::kOutOfRange);
}

TEST_CASE("provision record: erased region, damaged byte, bad lengths and other versions are refused") {
  const Bytes erased(4096, 0xff);
  CHECK(ProvisionReader::Open(erased).status().code() == StatusCode::kNotFound);
  CHECK(ProvisionReader::Open(ByteSpan()).status().code() == StatusCode::kNotFound);
  const Bytes good = Encoded();
  for (size_t at : {size_t{6}, size_t{8}, size_t{12}, kProvisionHeaderSize + 3, size_t{40}}) {
    Bytes bad = good;
    bad[at] ^= 0x01;
    CHECK(ProvisionReader::Open(bad).status().code() == StatusCode::kDataLoss);
  }
  Bytes version = good;
  version[4] = 2;
  CHECK(ProvisionReader::Open(version).status().code() == StatusCode::kUnimplemented);
  // A payload length past the region.
  const Bytes small(good.begin(), good.begin() + 20);
  CHECK(ProvisionReader::Open(small).status().code() == StatusCode::kDataLoss);
}

TEST_CASE("provision record: bad entries and a too small buffer are refused when encoding") {
  Bytes out(4096);
  const std::string empty, long_key(kMaxProvisionKey + 1, 'k');
  const ProvisionEntry no_key[] = {{Span(empty), Span(kSerialValue)}};
  CHECK(EncodeProvisionRecord(no_key, out).status().code() == StatusCode::kInvalidArgument);
  const ProvisionEntry too_long[] = {{Span(long_key), Span(kSerialValue)}};
  CHECK(EncodeProvisionRecord(too_long, out).status().code() == StatusCode::kInvalidArgument);
  const ProvisionEntry twice[] = {{Span(kKey), Span(kSerialValue)}, {Span(kKey), Span(kKeyValue)}};
  CHECK(EncodeProvisionRecord(twice, out).status().code() == StatusCode::kInvalidArgument);
  const ProvisionEntry one[] = {{Span(kSerial), Span(kSerialValue)}};
  Bytes tiny(kProvisionHeaderSize + 5);
  CHECK(EncodeProvisionRecord(one, tiny).status().code() == StatusCode::kResourceExhausted);
}

}  // namespace
