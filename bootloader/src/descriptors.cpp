#include "bootloader/descriptors.h"

#include "bootloader/dfu.h"
#include "bootloader/usb.h"

namespace onedfu::bootloader {

using runtime::Board;
using runtime::MutableByteSpan;
using runtime::Result;
using runtime::Status;
using runtime::StatusCode;
using runtime::StoreLe16;

size_t BuildDeviceDescriptor(const Board& board, MutableByteSpan out) {
  if (out.size() < kDeviceDescriptorSize) return 0;
  uint8_t* p = out.data();
  p[0] = kDeviceDescriptorSize;
  p[1] = kDescriptorDevice;
  StoreLe16(p + 2, 0x0200);  // bcdUSB
  p[4] = 0;                  // bDeviceClass: per interface
  p[5] = 0;
  p[6] = 0;
  p[7] = 64;                 // bMaxPacketSize0
  StoreLe16(p + 8, board.vid);
  StoreLe16(p + 10, board.pid);
  StoreLe16(p + 12, board.bcd_device);
  p[14] = kStringManufacturer;
  p[15] = kStringProduct;
  p[16] = kStringSerial;
  p[17] = 1;  // bNumConfigurations
  return kDeviceDescriptorSize;
}

size_t BuildFunctionalDescriptor(MutableByteSpan out) {
  if (out.size() < kFunctionalDescriptorSize) return 0;
  uint8_t* p = out.data();
  p[0] = kFunctionalDescriptorSize;
  p[1] = kDescriptorDfuFunctional;
  p[2] = kDfuAttributes;
  StoreLe16(p + 3, 0x00ff);  // wDetachTimeOut, ms
  StoreLe16(p + 5, kTransferSize);
  StoreLe16(p + 7, kDfuVersion);
  return kFunctionalDescriptorSize;
}

size_t BuildConfigDescriptor(MutableByteSpan out) {
  if (out.size() < kConfigDescriptorSize) return 0;
  uint8_t* p = out.data();
  // Configuration.
  p[0] = 9;
  p[1] = kDescriptorConfiguration;
  StoreLe16(p + 2, kConfigDescriptorSize);  // wTotalLength
  p[4] = 1;     // bNumInterfaces
  p[5] = 1;     // bConfigurationValue
  p[6] = 0;     // iConfiguration
  p[7] = 0x80;  // bmAttributes: bus powered
  p[8] = 50;    // bMaxPower: 100 mA
  // Interface 0, alt 0: DFU mode.
  p[9] = 9;
  p[10] = kDescriptorInterface;
  p[11] = 0;     // bInterfaceNumber
  p[12] = 0;     // bAlternateSetting
  p[13] = 0;     // bNumEndpoints
  p[14] = 0xfe;  // application specific
  p[15] = 0x01;  // DFU
  p[16] = 0x02;  // DFU mode
  p[17] = kStringLayout;
  return 18 + BuildFunctionalDescriptor(out.subspan(18));
}

namespace {

// Bounded ASCII appender; `failed` latches once the capacity is exceeded.
class TextOut {
 public:
  TextOut(char* out, size_t capacity) : out_(out), capacity_(capacity) {}

  void Put(char c) {
    if (out_ == nullptr || size_ + 1 >= capacity_) {
      failed_ = true;
      return;
    }
    out_[size_++] = c;
    out_[size_] = '\0';
  }
  void Str(const char* s) {
    while (s && *s) Put(*s++);
  }
  // Decimal, zero-padded to at least `width` digits.
  void Dec(uint32_t v, int width) {
    char digits[10];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n < width) digits[n++] = '0';
    while (n > 0) Put(digits[--n]);
  }
  // "0x" + 8 upper-case hex digits (the form ST and dfu-util use).
  void Hex32(uint32_t v) {
    static constexpr char kDigits[] = "0123456789ABCDEF";
    Put('0');
    Put('x');
    for (int shift = 28; shift >= 0; shift -= 4) Put(kDigits[(v >> shift) & 0xf]);
  }

  size_t size() const { return size_; }
  bool failed() const { return failed_; }

 private:
  char* out_;
  size_t capacity_;
  size_t size_ = 0;
  bool failed_ = false;
};

int Digits(uint32_t v) {
  int n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

void PutRun(TextOut& text, uint32_t count, uint32_t size, char letter, int size_width) {
  char unit = ' ';
  uint32_t value = size;
  if (size % (1024u * 1024u) == 0) {
    unit = 'M';
    value = size / (1024u * 1024u);
  } else if (size % 1024u == 0) {
    unit = 'K';
    value = size / 1024u;
  }
  text.Dec(count, 2);
  text.Put('*');
  text.Dec(value, size_width);
  text.Put(unit);
  text.Put(letter);
}

}  // namespace

Result<size_t> BuildLayoutString(const Board& board, char* out, size_t capacity) {
  if (board.memory_count == 0 || board.memory_count > runtime::kMaxMemories) {
    return Status(StatusCode::kInvalidArgument, "board has no memories");
  }
  TextOut text(out, capacity);
  text.Put('@');
  text.Str(board.memories[0].label);
  text.Str("  ");
  for (uint8_t m = 0; m < board.memory_count; ++m) {
    const runtime::Memory& memory = board.memories[m];
    text.Put('/');
    text.Hex32(memory.base);
    text.Put('/');
    // Size digits: 5 minus the digits of the memory's largest sector count
    // (at least 2), so "04*032K" and "512*04K" keep ST's look.
    uint32_t max_count = 0;
    for (uint8_t g = 0; g < memory.sector_group_count && g < runtime::kMaxSectorGroups; ++g) {
      if (memory.sectors[g].count > max_count) max_count = memory.sectors[g].count;
    }
    const int count_digits = Digits(max_count) < 2 ? 2 : Digits(max_count);
    const int size_width = 5 - count_digits < 2 ? 2 : 5 - count_digits;
    uint64_t address = memory.base;
    bool first = true;
    uint32_t run_count = 0;
    uint32_t run_size = 0;
    char run_letter = 0;
    for (uint8_t g = 0; g < memory.sector_group_count && g < runtime::kMaxSectorGroups; ++g) {
      const runtime::SectorGroup& group = memory.sectors[g];
      for (uint32_t s = 0; s < group.count; ++s, address += group.size) {
        const char letter = board.FirstReadOnly(address, group.size) == address + group.size ? 'g' : 'a';
        if (run_count > 0 && group.size == run_size && letter == run_letter) {
          ++run_count;
          continue;
        }
        if (run_count > 0) {
          if (!first) text.Put(',');
          PutRun(text, run_count, run_size, run_letter, size_width);
          first = false;
        }
        run_count = 1;
        run_size = group.size;
        run_letter = letter;
      }
    }
    if (run_count > 0) {
      if (!first) text.Put(',');
      PutRun(text, run_count, run_size, run_letter, size_width);
    }
  }
  if (text.failed()) return Status(StatusCode::kResourceExhausted, "layout string does not fit its buffer");
  if (text.size() > kMaxStringChars) {
    return Status(StatusCode::kResourceExhausted, "layout string longer than a string descriptor allows");
  }
  return text.size();
}

size_t BuildStringDescriptor(const char* text, MutableByteSpan out) {
  if (out.size() < 2) return 0;
  size_t chars = 0;
  const size_t room = (out.size() - 2) / 2;
  while (text && text[chars] != '\0' && chars < kMaxStringChars && chars < room) {
    out[2 + 2 * chars] = static_cast<uint8_t>(text[chars]);
    out[3 + 2 * chars] = 0;
    ++chars;
  }
  out[0] = static_cast<uint8_t>(2 + 2 * chars);
  out[1] = kDescriptorString;
  return 2 + 2 * chars;
}

size_t BuildLanguageDescriptor(MutableByteSpan out) {
  if (out.size() < 4) return 0;
  out[0] = 4;
  out[1] = kDescriptorString;
  StoreLe16(out.data() + 2, 0x0409);
  return 4;
}

}  // namespace onedfu::bootloader
