// DfuSe file format (ST UM0391), all little-endian:
//
//   prefix         11 bytes  "DfuSe", u8 bVersion = 1, u32 DFUImageSize, u8 bTargets
//   bTargets x {
//     target prefix 274 bytes "Target", u8 bAlternateSetting, u32 bTargetNamed,
//                             char[255] szTargetName, u32 dwTargetSize, u32 dwNbElements
//     dwNbElements x { u32 dwElementAddress, u32 dwElementSize, data[dwElementSize] }
//   }
//   suffix         16 bytes  u16 bcdDevice, u16 idProduct, u16 idVendor, u16 bcdDFU = 0x011A,
//                            "UFD", u8 bLength = 16, u32 dwCRC
//
// dwTargetSize counts the target's elements including their 8-byte headers.
// dwCRC = DfuSuffixCrc (init 0xFFFFFFFF, no final XOR) of every byte but the last 4.
// DFUImageSize: we write prefix + targets WITHOUT the suffix; readers accept
// both conventions (dfu-util's dfuse-pack counts the suffix).
//
// Embedded-safe: no heap. The parser reports events to a Visitor; the writer
// streams to a Sink. Every parse error fills the optional Diag with where it
// happened, e.g. "target 0, element 3 at 0x08004000: size 70000 runs past end
// of file (offset 1234)".
//
// Status codes: kInvalidArgument (bad signature/field), kOutOfRange (truncated,
// runs past end, sizes disagree, trailing bytes, over a cap), kDataLoss (CRC),
// kUnimplemented (prefix bVersion != 1). Visitor errors are returned unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "runtime/byte_reader.h"
#include "runtime/diag.h"
#include "runtime/status.h"

namespace onedfu::runtime::dfuse {

inline constexpr size_t kPrefixSize = 11;
inline constexpr size_t kTargetPrefixSize = 274;
inline constexpr size_t kElementHeaderSize = 8;
inline constexpr size_t kSuffixSize = 16;
inline constexpr size_t kTargetNameSize = 255;  // szTargetName field, bytes
inline constexpr uint16_t kBcdDfuSe = 0x011A;
inline constexpr uint8_t kPrefixVersion = 1;
inline constexpr uint32_t kMaxTargets = 255;  // bTargets is a u8
inline constexpr uint32_t kMaxElementsPerTarget = 65536;

struct Suffix {
  uint16_t bcd_device = 0xffff;
  uint16_t pid = 0xffff;
  uint16_t vid = 0xffff;
  uint16_t bcd_dfu = kBcdDfuSe;
  uint32_t crc = 0;  // dwCRC as read; ignored by the writer (it computes its own)
  friend bool operator==(const Suffix&, const Suffix&) = default;
};

struct TargetInfo {
  uint8_t alt = 0;     // bAlternateSetting
  bool named = false;  // bTargetNamed != 0
  // NUL-terminated szTargetName (up to 255 chars); empty when !named.
  char name[kTargetNameSize + 1] = {};
  uint32_t size = 0;           // dwTargetSize, bytes (elements incl. headers)
  uint32_t element_count = 0;  // dwNbElements
};

struct ElementInfo {
  uint32_t address = 0;  // dwElementAddress
  uint32_t size = 0;     // dwElementSize, bytes of data
};

// Parse events, in file order: OnTarget, then for each element OnElementBegin,
// OnElementData zero or more times (consecutive pieces of the element's data,
// together exactly ElementInfo::size bytes; several pieces when streaming),
// OnElementEnd. A non-OK return stops the parse and is returned as is.
// Pieces point into the caller's buffer and are valid only during the call.
class Visitor {
 public:
  virtual Status OnTarget(uint32_t target_index, const TargetInfo& target) {
    (void)target_index;
    (void)target;
    return Status::Ok();
  }
  virtual Status OnElementBegin(uint32_t target_index, uint32_t element_index,
                                const ElementInfo& element) {
    (void)target_index;
    (void)element_index;
    (void)element;
    return Status::Ok();
  }
  virtual Status OnElementData(ByteSpan piece) {
    (void)piece;
    return Status::Ok();
  }
  virtual Status OnElementEnd() { return Status::Ok(); }

 protected:
  ~Visitor() = default;
};

// Incremental parser for a file arriving in chunks of any size (1 byte and
// up). Events are delivered as soon as the bytes are there, i.e. BEFORE the
// suffix CRC has been checked (Finish does that): a consumer that must not act
// on corrupt data has to stage it until Finish returns OK. Errors are sticky:
// after a failure every call returns the same status (and Diag text).
class StreamParser {
 public:
  explicit StreamParser(Visitor& visitor);

  // Consume the next `chunk` of the file.
  Status Feed(ByteSpan chunk, Diag* diag);
  // End of file: checks that the structure is complete, then the suffix:
  // "UFD", bLength 16, bcdDFU 0x011A, dwCRC, DFUImageSize (either convention),
  // and that no bytes follow the suffix. Call once.
  Status Finish(Diag* diag);

  // Valid after Finish returned OK.
  const Suffix& suffix() const { return suffix_; }
  bool image_size_includes_suffix() const { return image_size_includes_suffix_; }
  // Bytes fed so far.
  uint64_t bytes_seen() const { return offset_; }
  // True once every target has been parsed and only the suffix may follow.
  bool image_complete() const { return state_ == State::kSuffix || state_ == State::kDone; }

 private:
  enum class State : uint8_t {
    kPrefix, kTargetPrefix, kElementHeader, kElementData, kSuffix, kDone, kFailed
  };

  Status Fail(Status status, const Diag& diag, Diag* out);
  Status Sticky(Diag* out) const;
  size_t HeaderSize() const;        // bytes of the header the state collects
  Status FinishHeader(Diag* out);   // a header in header_ is complete
  Status EndElement(Diag* out);
  Status NextElement(Diag* out);
  Status NextTarget(Diag* out);
  void DescribeElement(Diag& d) const;

  Visitor& visitor_;
  State state_ = State::kPrefix;
  Status error_;
  Diag error_diag_;
  uint64_t offset_ = 0;         // file offset of the next byte to consume
  uint32_t crc_ = 0xFFFFFFFFu;  // DfuSuffixCrc state over the bytes before the suffix
  uint8_t header_[kTargetPrefixSize] = {};  // staging for prefix/target/element/suffix bytes
  size_t header_have_ = 0;
  uint32_t image_size_ = 0;     // DFUImageSize
  uint32_t target_count_ = 0;   // bTargets
  uint32_t target_index_ = 0;
  uint64_t target_offset_ = 0;  // file offset of the current target prefix
  uint32_t target_size_ = 0;    // dwTargetSize
  uint64_t target_left_ = 0;    // dwTargetSize bytes not yet accounted for
  uint32_t element_count_ = 0;  // dwNbElements
  uint32_t element_index_ = 0;
  uint64_t element_offset_ = 0;  // file offset of the current element header
  ElementInfo element_{};
  uint32_t element_left_ = 0;  // data bytes of the current element still to come
  uint64_t image_end_ = 0;     // file offset where the suffix starts
  Suffix suffix_{};
  bool image_size_includes_suffix_ = false;
};

// Checks only the suffix of a whole file: size >= 16, "UFD", bLength 16,
// bcdDFU 0x011A and dwCRC. Returns the suffix fields (crc = dwCRC).
Result<Suffix> ReadSuffix(ByteSpan file, Diag* diag);

// Whole-file parse: checks suffix + CRC first (no events for a corrupt file),
// then walks the structure, reporting events to `visitor`. Accepts exactly
// what StreamParser accepts.
Status ParseFile(ByteSpan file, Visitor& visitor, Diag* diag);

// Parse a whole file and also return its suffix and DFUImageSize convention.
struct FileInfo {
  Suffix suffix;
  bool image_size_includes_suffix = false;
};
Result<FileInfo> ParseFileInfo(ByteSpan file, Visitor& visitor, Diag* diag);

// ---- writer ----

struct WriterElement {
  uint32_t address = 0;
  ByteSpan data;  // not owned; must stay valid during WriteFile
};

struct WriterTarget {
  uint8_t alt = 0;
  const char* name = nullptr;  // null = unnamed; otherwise <= 255 chars, NUL-terminated
  std::span<const WriterElement> elements;
};

// Byte sink for the writer. A non-OK return aborts WriteFile with that status.
class Sink {
 public:
  virtual Status Write(ByteSpan bytes) = 0;

 protected:
  ~Sink() = default;
};

// Total file size in bytes, suffix included (no validation).
uint64_t FileSize(std::span<const WriterTarget> targets);

// Writes the whole file to `sink`: DFUImageSize WITHOUT the suffix, dwCRC
// computed while streaming (suffix.crc is ignored). Validates first and writes
// nothing on kInvalidArgument (name too long, suffix.bcd_dfu not kBcdDfuSe) / kOutOfRange (more than 255
// targets, more than kMaxElementsPerTarget elements, a size over u32).
// Element data is passed to the sink without copying.
Status WriteFile(std::span<const WriterTarget> targets, const Suffix& suffix, Sink& sink);

}  // namespace onedfu::runtime::dfuse
