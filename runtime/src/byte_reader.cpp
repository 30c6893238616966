#include "runtime/byte_reader.h"

namespace onedfu::runtime {

namespace {
constexpr Status kShort(StatusCode::kOutOfRange, "runs past end of data");
}  // namespace

Result<uint8_t> ByteReader::U8() {
  if (remaining() < 1) return kShort;
  return bytes_[pos_++];
}

Result<uint16_t> ByteReader::U16() {
  if (remaining() < 2) return kShort;
  const uint16_t v = LoadLe16(bytes_.data() + pos_);
  pos_ += 2;
  return v;
}

Result<uint32_t> ByteReader::U32() {
  if (remaining() < 4) return kShort;
  const uint32_t v = LoadLe32(bytes_.data() + pos_);
  pos_ += 4;
  return v;
}

Result<ByteSpan> ByteReader::Bytes(size_t n) {
  if (remaining() < n) return kShort;
  const ByteSpan out = bytes_.subspan(pos_, n);
  pos_ += n;
  return out;
}

Status ByteReader::Skip(size_t n) {
  if (remaining() < n) return kShort;
  pos_ += n;
  return Status::Ok();
}

bool ByteReader::Consume(const char* literal) {
  size_t n = 0;
  while (literal[n] != '\0') ++n;
  if (remaining() < n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (bytes_[pos_ + i] != static_cast<uint8_t>(literal[i])) return false;
  }
  pos_ += n;
  return true;
}

}  // namespace onedfu::runtime
