#include "runtime/provision_record.h"

#include "runtime/crc32.h"

namespace onedfu::runtime {
namespace {

bool SameBytes(ByteSpan a, ByteSpan b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

uint32_t RecordCrc(const uint8_t* header, ByteSpan payload) {
  return ~Crc32Update(Crc32Update(0xFFFFFFFFu, ByteSpan(header, 12)), payload);
}

// Reads the entry at the reader's position.
Result<ProvisionEntry> ReadEntry(ByteReader& in) {
  ONEDFU_TRY_ASSIGN(uint8_t key_length, in.U8());
  if (key_length == 0 || key_length > kMaxProvisionKey) return Status(StatusCode::kDataLoss, "provision: bad key length");
  ONEDFU_TRY_ASSIGN(ByteSpan key, in.Bytes(key_length));
  ONEDFU_TRY_ASSIGN(uint16_t value_length, in.U16());
  ONEDFU_TRY_ASSIGN(ByteSpan value, in.Bytes(value_length));
  return ProvisionEntry{key, value};
}

}  // namespace

size_t ProvisionRecordSize(std::span<const ProvisionEntry> entries) {
  if (entries.size() > kMaxProvisionEntries) return 0;
  size_t size = kProvisionHeaderSize;
  for (const ProvisionEntry& e : entries) {
    if (e.key.empty() || e.key.size() > kMaxProvisionKey || e.value.size() > kMaxProvisionValue) return 0;
    size += 1 + e.key.size() + 2 + e.value.size();
  }
  return size;
}

Result<size_t> EncodeProvisionRecord(std::span<const ProvisionEntry> entries, MutableByteSpan out) {
  const size_t size = ProvisionRecordSize(entries);
  if (size == 0) return Status(StatusCode::kInvalidArgument, "provision: bad entry or too many entries");
  for (size_t i = 0; i < entries.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (SameBytes(entries[i].key, entries[j].key)) return Status(StatusCode::kInvalidArgument, "provision: duplicate key");
    }
  }
  if (size > out.size()) return Status(StatusCode::kResourceExhausted, "provision: record does not fit");
  size_t at = kProvisionHeaderSize;
  for (const ProvisionEntry& e : entries) {
    out[at++] = static_cast<uint8_t>(e.key.size());
    for (uint8_t b : e.key) out[at++] = b;
    StoreLe16(&out[at], static_cast<uint16_t>(e.value.size()));
    at += 2;
    for (uint8_t b : e.value) out[at++] = b;
  }
  StoreLe32(&out[0], kProvisionMagic);
  StoreLe16(&out[4], kProvisionVersion);
  StoreLe16(&out[6], static_cast<uint16_t>(entries.size()));
  StoreLe32(&out[8], static_cast<uint32_t>(size - kProvisionHeaderSize));
  StoreLe32(&out[12], RecordCrc(out.data(), ByteSpan(out.data() + kProvisionHeaderSize, size - kProvisionHeaderSize)));
  return size;
}

Result<ProvisionReader> ProvisionReader::Open(ByteSpan region) {
  if (region.size() < kProvisionHeaderSize || LoadLe32(region.data()) != kProvisionMagic) {
    return Status(StatusCode::kNotFound, "provision: no record");
  }
  if (LoadLe16(region.data() + 4) != kProvisionVersion) return Status(StatusCode::kUnimplemented, "provision: unknown version");
  const uint16_t count = LoadLe16(region.data() + 6);
  const uint32_t length = LoadLe32(region.data() + 8);
  if (count > kMaxProvisionEntries || length > region.size() - kProvisionHeaderSize) {
    return Status(StatusCode::kDataLoss, "provision: count or length out of range");
  }
  const ByteSpan payload = region.subspan(kProvisionHeaderSize, length);
  if (RecordCrc(region.data(), payload) != LoadLe32(region.data() + 12)) return Status(StatusCode::kDataLoss, "provision: CRC mismatch");
  ByteReader in(payload);
  for (uint16_t i = 0; i < count; ++i) {
    if (!ReadEntry(in).ok()) return Status(StatusCode::kDataLoss, "provision: entry runs past the payload");
  }
  if (!in.empty()) return Status(StatusCode::kDataLoss, "provision: bytes after the last entry");
  ProvisionReader reader;
  reader.payload_ = payload;
  reader.count_ = count;
  return reader;
}

Result<ProvisionEntry> ProvisionReader::At(size_t index) const {
  if (index >= count_) return Status(StatusCode::kOutOfRange, "provision: no such entry");
  ByteReader in(payload_);
  for (size_t i = 0;; ++i) {
    ONEDFU_TRY_ASSIGN(ProvisionEntry e, ReadEntry(in));
    if (i == index) return e;
  }
}

Result<ByteSpan> ProvisionReader::Find(ByteSpan key) const {
  ByteReader in(payload_);
  for (uint16_t i = 0; i < count_; ++i) {
    ONEDFU_TRY_ASSIGN(ProvisionEntry e, ReadEntry(in));
    if (SameBytes(e.key, key)) return e.value;
  }
  return Status(StatusCode::kNotFound, "provision: no such key");
}

Result<ByteSpan> ProvisionReader::Find(const char* key) const {
  size_t n = 0;
  while (key != nullptr && key[n] != '\0') ++n;
  return Find(ByteSpan(reinterpret_cast<const uint8_t*>(key), n));
}

}  // namespace onedfu::runtime
