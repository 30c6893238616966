// DfuSe file parser (streaming) and writer. See runtime/dfuse.h for the format.
#include "runtime/dfuse.h"

#include <cstring>

#include "runtime/crc32.h"

namespace onedfu::runtime::dfuse {
namespace {

constexpr Status kTruncated(StatusCode::kOutOfRange, "DfuSe file truncated");
constexpr Status kBadSignature(StatusCode::kInvalidArgument, "DfuSe signature mismatch");
constexpr Status kBadVersion(StatusCode::kUnimplemented, "DfuSe prefix bVersion is not 1");
constexpr Status kBadSize(StatusCode::kOutOfRange, "DfuSe sizes do not match");
constexpr Status kOverCap(StatusCode::kOutOfRange, "DfuSe element count over the cap");
constexpr Status kBadSuffix(StatusCode::kInvalidArgument, "DfuSe suffix invalid");
constexpr Status kBadCrc(StatusCode::kDataLoss, "DfuSe suffix CRC mismatch");
constexpr Status kBadName(StatusCode::kInvalidArgument, "DfuSe target name longer than 255");

constexpr size_t kSuffixCrcOffset = kSuffixSize - 4;  // dwCRC within the suffix

bool Matches(const uint8_t* p, const char* literal) {
  for (size_t i = 0; literal[i] != '\0'; ++i) {
    if (p[i] != static_cast<uint8_t>(literal[i])) return false;
  }
  return true;
}

// Checks the 16 suffix bytes; `computed_crc` is DfuSuffixCrc of every file
// byte before the dwCRC field.
Status CheckSuffix(const uint8_t* s, uint32_t computed_crc, Suffix* out, Diag* diag) {
  Suffix suffix;
  suffix.bcd_device = LoadLe16(s);
  suffix.pid = LoadLe16(s + 2);
  suffix.vid = LoadLe16(s + 4);
  suffix.bcd_dfu = LoadLe16(s + 6);
  suffix.crc = LoadLe32(s + kSuffixCrcOffset);
  if (!Matches(s + 8, "UFD")) {
    if (diag) diag->Str("suffix: signature is not \"UFD\"");
    return kBadSuffix;
  }
  if (s[11] != kSuffixSize) {
    if (diag) diag->Str("suffix: bLength ").Dec(s[11]).Str(", expected 16");
    return kBadSuffix;
  }
  if (suffix.bcd_dfu != kBcdDfuSe) {
    if (diag) diag->Str("suffix: bcdDFU ").Hex(suffix.bcd_dfu, 4).Str(" is not DfuSe (0x011a)");
    return kBadSuffix;
  }
  if (suffix.crc != computed_crc) {
    if (diag) {
      diag->Str("suffix: CRC ").Hex(suffix.crc).Str(" does not match computed ").Hex(computed_crc);
    }
    return kBadCrc;
  }
  *out = suffix;
  return Status::Ok();
}

}  // namespace

// ---- StreamParser ----

StreamParser::StreamParser(Visitor& visitor) : visitor_(visitor) {}

Status StreamParser::Fail(Status status, const Diag& diag, Diag* out) {
  error_ = status;
  error_diag_ = diag;
  state_ = State::kFailed;
  if (out) *out = diag;
  return status;
}

Status StreamParser::Sticky(Diag* out) const {
  if (out) *out = error_diag_;
  return error_;
}

void StreamParser::DescribeElement(Diag& d) const {
  d.Str("target ").Dec(target_index_).Str(", element ").Dec(element_index_);
}

size_t StreamParser::HeaderSize() const {
  switch (state_) {
    case State::kPrefix: return kPrefixSize;
    case State::kTargetPrefix: return kTargetPrefixSize;
    case State::kElementHeader: return kElementHeaderSize;
    default: return 0;
  }
}

Status StreamParser::Feed(ByteSpan chunk, Diag* out) {
  if (state_ == State::kFailed) return Sticky(out);
  if (state_ == State::kDone) {
    Diag d;
    d.Str("data after the end of the file (offset ").Dec(offset_).Str(")");
    return Fail(kBadSize, d, out);
  }
  const uint8_t* p = chunk.data();
  size_t n = chunk.size();
  while (n > 0) {
    switch (state_) {
      case State::kPrefix:
      case State::kTargetPrefix:
      case State::kElementHeader: {
        const size_t need = HeaderSize() - header_have_;
        const size_t take = n < need ? n : need;
        std::memcpy(header_ + header_have_, p, take);
        crc_ = Crc32Update(crc_, ByteSpan(p, take));
        header_have_ += take;
        offset_ += take;
        p += take;
        n -= take;
        if (header_have_ == HeaderSize()) {
          header_have_ = 0;
          const Status s = FinishHeader(out);
          if (!s.ok()) return s;
        }
        break;
      }
      case State::kElementData: {
        const size_t take = n < element_left_ ? n : element_left_;
        const ByteSpan piece(p, take);
        crc_ = Crc32Update(crc_, piece);
        offset_ += take;
        p += take;
        n -= take;
        element_left_ -= static_cast<uint32_t>(take);
        if (const Status s = visitor_.OnElementData(piece); !s.ok()) {
          Diag d;
          DescribeElement(d);
          d.Str(" at ").Hex(element_.address).Str(": rejected by the consumer");
          return Fail(s, d, out);
        }
        if (element_left_ == 0) {
          const Status s = EndElement(out);
          if (!s.ok()) return s;
        }
        break;
      }
      case State::kSuffix: {
        // Keep the first 16 bytes; count any extra for the error message.
        if (header_have_ < kSuffixSize) {
          const size_t need = kSuffixSize - header_have_;
          const size_t take = n < need ? n : need;
          std::memcpy(header_ + header_have_, p, take);
          header_have_ += take;
          offset_ += take;
          p += take;
          n -= take;
        } else {
          offset_ += n;
          n = 0;
        }
        break;
      }
      case State::kDone:
      case State::kFailed:
        return Status(StatusCode::kInternal, "DfuSe parser state");
    }
  }
  return Status::Ok();
}

Status StreamParser::FinishHeader(Diag* out) {
  const uint8_t* h = header_;
  switch (state_) {
    case State::kPrefix: {
      if (!Matches(h, "DfuSe")) {
        Diag d;
        d.Str("prefix: signature is not \"DfuSe\"");
        return Fail(kBadSignature, d, out);
      }
      if (h[5] != kPrefixVersion) {
        Diag d;
        d.Str("prefix: bVersion ").Dec(h[5]).Str(", expected 1");
        return Fail(kBadVersion, d, out);
      }
      image_size_ = LoadLe32(h + 6);
      target_count_ = h[10];
      target_index_ = 0;
      return NextTarget(out);
    }
    case State::kTargetPrefix: {
      if (!Matches(h, "Target")) {
        Diag d;
        d.Str("target ").Dec(target_index_).Str(" (offset ").Dec(target_offset_);
        d.Str("): signature is not \"Target\"");
        return Fail(kBadSignature, d, out);
      }
      TargetInfo info;
      info.alt = h[6];
      info.named = LoadLe32(h + 7) != 0;
      if (info.named) {
        std::memcpy(info.name, h + 11, kTargetNameSize);
        info.name[kTargetNameSize] = '\0';
      }
      info.size = LoadLe32(h + 11 + kTargetNameSize);
      info.element_count = LoadLe32(h + 11 + kTargetNameSize + 4);
      if (info.element_count > kMaxElementsPerTarget) {
        Diag d;
        d.Str("target ").Dec(target_index_).Str(" (offset ").Dec(target_offset_).Str("): ");
        d.Dec(info.element_count).Str(" elements, over the cap of ").Dec(kMaxElementsPerTarget);
        return Fail(kOverCap, d, out);
      }
      target_size_ = info.size;
      target_left_ = info.size;
      element_count_ = info.element_count;
      element_index_ = 0;
      if (const Status s = visitor_.OnTarget(target_index_, info); !s.ok()) {
        Diag d;
        d.Str("target ").Dec(target_index_).Str(": rejected by the consumer");
        return Fail(s, d, out);
      }
      return NextElement(out);
    }
    case State::kElementHeader: {
      element_.address = LoadLe32(h);
      element_.size = LoadLe32(h + 4);
      const uint64_t needed = kElementHeaderSize + uint64_t{element_.size};
      if (needed > target_left_) {
        Diag d;
        DescribeElement(d);
        d.Str(" at ").Hex(element_.address).Str(": size ").Dec(element_.size);
        d.Str(" runs past dwTargetSize ").Dec(target_size_).Str(" (offset ").Dec(element_offset_);
        d.Str(")");
        return Fail(kBadSize, d, out);
      }
      target_left_ -= needed;
      if (const Status s = visitor_.OnElementBegin(target_index_, element_index_, element_);
          !s.ok()) {
        Diag d;
        DescribeElement(d);
        d.Str(" at ").Hex(element_.address).Str(": rejected by the consumer");
        return Fail(s, d, out);
      }
      element_left_ = element_.size;
      if (element_left_ == 0) return EndElement(out);
      state_ = State::kElementData;
      return Status::Ok();
    }
    default:
      return Status(StatusCode::kInternal, "DfuSe parser state");
  }
}

Status StreamParser::EndElement(Diag* out) {
  if (const Status s = visitor_.OnElementEnd(); !s.ok()) {
    Diag d;
    DescribeElement(d);
    d.Str(" at ").Hex(element_.address).Str(": rejected by the consumer");
    return Fail(s, d, out);
  }
  ++element_index_;
  return NextElement(out);
}

Status StreamParser::NextElement(Diag* out) {
  if (element_index_ < element_count_) {
    state_ = State::kElementHeader;
    element_offset_ = offset_;
    return Status::Ok();
  }
  if (target_left_ != 0) {
    Diag d;
    d.Str("target ").Dec(target_index_).Str(": dwTargetSize ").Dec(target_size_);
    d.Str(" does not match its elements (").Dec(target_size_ - target_left_);
    d.Str(" bytes with headers)");
    return Fail(kBadSize, d, out);
  }
  ++target_index_;
  return NextTarget(out);
}

Status StreamParser::NextTarget(Diag* out) {
  if (target_index_ < target_count_) {
    state_ = State::kTargetPrefix;
    target_offset_ = offset_;
    return Status::Ok();
  }
  image_end_ = offset_;
  if (image_size_ == image_end_) {
    image_size_includes_suffix_ = false;
  } else if (image_size_ == image_end_ + kSuffixSize) {
    image_size_includes_suffix_ = true;
  } else {
    Diag d;
    d.Str("prefix: DFUImageSize ").Dec(image_size_).Str(" matches neither ").Dec(image_end_);
    d.Str(" (without suffix) nor ").Dec(image_end_ + kSuffixSize).Str(" (with suffix)");
    return Fail(kBadSize, d, out);
  }
  state_ = State::kSuffix;
  header_have_ = 0;
  return Status::Ok();
}

Status StreamParser::Finish(Diag* out) {
  Diag d;
  switch (state_) {
    case State::kFailed:
      return Sticky(out);
    case State::kDone:
      d.Str("Finish called twice");
      return Fail(Status(StatusCode::kFailedPrecondition, "DfuSe parser already finished"), d,
                  out);
    case State::kPrefix:
      d.Str("prefix: truncated, file ends after ").Dec(header_have_).Str(" of 11 bytes");
      return Fail(kTruncated, d, out);
    case State::kTargetPrefix:
      d.Str("target ").Dec(target_index_).Str(" (offset ").Dec(target_offset_);
      d.Str("): truncated target prefix, file ends after ").Dec(header_have_);
      d.Str(" of 274 bytes");
      return Fail(kTruncated, d, out);
    case State::kElementHeader:
      DescribeElement(d);
      d.Str(" (offset ").Dec(element_offset_).Str("): truncated element header, file ends after ");
      d.Dec(header_have_).Str(" of 8 bytes");
      return Fail(kTruncated, d, out);
    case State::kElementData:
      DescribeElement(d);
      d.Str(" at ").Hex(element_.address).Str(": size ").Dec(element_.size);
      d.Str(" runs past end of file (offset ").Dec(element_offset_).Str(")");
      return Fail(kTruncated, d, out);
    case State::kSuffix:
      break;
  }
  const uint64_t after = offset_ - image_end_;
  if (after < kSuffixSize) {
    d.Str("suffix: truncated, file ends ").Dec(after).Str(" bytes after the last target (offset ");
    d.Dec(image_end_).Str("), expected 16");
    return Fail(kTruncated, d, out);
  }
  if (after > kSuffixSize) {
    d.Str("trailing bytes: ").Dec(after).Str(" bytes follow the last target (offset ");
    d.Dec(image_end_).Str("), expected the 16-byte suffix");
    return Fail(kBadSize, d, out);
  }
  const uint32_t computed = Crc32Update(crc_, ByteSpan(header_, kSuffixCrcOffset));
  if (const Status s = CheckSuffix(header_, computed, &suffix_, &d); !s.ok()) {
    return Fail(s, d, out);
  }
  state_ = State::kDone;
  return Status::Ok();
}

// ---- whole-file helpers ----

Result<Suffix> ReadSuffix(ByteSpan file, Diag* diag) {
  DiagClear(diag);
  if (file.size() < kSuffixSize) {
    if (diag) diag->Str("suffix: file is ").Dec(file.size()).Str(" bytes, shorter than the suffix");
    return kTruncated;
  }
  const size_t at = file.size() - kSuffixSize;
  const uint32_t computed = DfuSuffixCrc(file.first(file.size() - 4));
  Suffix suffix;
  ONEDFU_TRY(CheckSuffix(file.data() + at, computed, &suffix, diag));
  return suffix;
}

Result<FileInfo> ParseFileInfo(ByteSpan file, Visitor& visitor, Diag* diag) {
  DiagClear(diag);
  ONEDFU_TRY(ReadSuffix(file, diag));
  StreamParser parser(visitor);
  const size_t image = file.size() - kSuffixSize;
  ONEDFU_TRY(parser.Feed(file.first(image), diag));
  if (!parser.image_complete()) return parser.Finish(diag);  // reports the truncation
  ONEDFU_TRY(parser.Feed(file.subspan(image), diag));
  ONEDFU_TRY(parser.Finish(diag));
  FileInfo info;
  info.suffix = parser.suffix();
  info.image_size_includes_suffix = parser.image_size_includes_suffix();
  return info;
}

Status ParseFile(ByteSpan file, Visitor& visitor, Diag* diag) {
  return ParseFileInfo(file, visitor, diag).status();
}

// ---- writer ----

namespace {

// Forwards to the sink and keeps the running DfuSuffixCrc.
class CrcSink {
 public:
  explicit CrcSink(Sink& sink) : sink_(sink) {}
  Status Write(ByteSpan bytes) {
    if (bytes.empty()) return Status::Ok();
    crc_ = Crc32Update(crc_, bytes);
    return sink_.Write(bytes);
  }
  uint32_t crc() const { return crc_; }

 private:
  Sink& sink_;
  uint32_t crc_ = 0xFFFFFFFFu;
};

size_t NameLength(const char* name) {  // capped at kTargetNameSize + 1
  size_t n = 0;
  while (n <= kTargetNameSize && name[n] != '\0') ++n;
  return n;
}

uint64_t TargetSize(const WriterTarget& t) {
  uint64_t size = 0;
  for (const WriterElement& e : t.elements) size += kElementHeaderSize + e.data.size();
  return size;
}

uint64_t ImageSize(std::span<const WriterTarget> targets) {
  uint64_t size = kPrefixSize;
  for (const WriterTarget& t : targets) size += kTargetPrefixSize + TargetSize(t);
  return size;
}

}  // namespace

uint64_t FileSize(std::span<const WriterTarget> targets) {
  return ImageSize(targets) + kSuffixSize;
}

Status WriteFile(std::span<const WriterTarget> targets, const Suffix& suffix, Sink& sink) {
  if (suffix.bcd_dfu != kBcdDfuSe) return kBadSuffix;
  if (targets.size() > kMaxTargets) return Status(StatusCode::kOutOfRange, "DfuSe: over 255 targets");
  for (const WriterTarget& t : targets) {
    if (t.elements.size() > kMaxElementsPerTarget) return kOverCap;
    if (t.name && NameLength(t.name) > kTargetNameSize) return kBadName;
    for (const WriterElement& e : t.elements) {
      if (e.data.size() > UINT32_MAX) return Status(StatusCode::kOutOfRange, "DfuSe: element over 4 GiB");
    }
    if (TargetSize(t) > UINT32_MAX) return Status(StatusCode::kOutOfRange, "DfuSe: target over 4 GiB");
  }
  const uint64_t image_size = ImageSize(targets);
  if (image_size > UINT32_MAX) return Status(StatusCode::kOutOfRange, "DfuSe: file over 4 GiB");

  CrcSink out(sink);
  uint8_t prefix[kPrefixSize] = {'D', 'f', 'u', 'S', 'e', kPrefixVersion};
  StoreLe32(prefix + 6, static_cast<uint32_t>(image_size));
  prefix[10] = static_cast<uint8_t>(targets.size());
  ONEDFU_TRY(out.Write(prefix));

  for (const WriterTarget& t : targets) {
    uint8_t tp[kTargetPrefixSize] = {'T', 'a', 'r', 'g', 'e', 't', t.alt};
    if (t.name) {
      StoreLe32(tp + 7, 1);
      std::memcpy(tp + 11, t.name, NameLength(t.name));
    }
    StoreLe32(tp + 11 + kTargetNameSize, static_cast<uint32_t>(TargetSize(t)));
    StoreLe32(tp + 11 + kTargetNameSize + 4, static_cast<uint32_t>(t.elements.size()));
    ONEDFU_TRY(out.Write(tp));
    for (const WriterElement& e : t.elements) {
      uint8_t eh[kElementHeaderSize];
      StoreLe32(eh, e.address);
      StoreLe32(eh + 4, static_cast<uint32_t>(e.data.size()));
      ONEDFU_TRY(out.Write(eh));
      ONEDFU_TRY(out.Write(e.data));
    }
  }

  uint8_t sfx[kSuffixSize];
  StoreLe16(sfx, suffix.bcd_device);
  StoreLe16(sfx + 2, suffix.pid);
  StoreLe16(sfx + 4, suffix.vid);
  StoreLe16(sfx + 6, suffix.bcd_dfu);
  sfx[8] = 'U';
  sfx[9] = 'F';
  sfx[10] = 'D';
  sfx[11] = kSuffixSize;
  ONEDFU_TRY(out.Write(ByteSpan(sfx, kSuffixCrcOffset)));
  StoreLe32(sfx + kSuffixCrcOffset, out.crc());
  return sink.Write(ByteSpan(sfx + kSuffixCrcOffset, 4));
}

}  // namespace onedfu::runtime::dfuse
