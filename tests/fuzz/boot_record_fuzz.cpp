// Fuzz harness for the boot record codec. Invariants (trap on violation):
//  - decoding never reports success for a revoked record;
//  - a record that decodes re-encodes to exactly the same 2048 bytes, and
//    decoding that gives the same record.
// The input is also run zero-padded to kRecordSize with its CRC fixed, so the
// fuzzer reaches the field checks without forging a CRC.
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/boot_record.h"
#include "fuzz_check.h"

using onedfu::fuzz::FuzzCheck;

namespace {

using namespace onedfu::runtime;

void CheckRecord(ByteSpan bytes) {
  Diag diag;
  auto decoded = DecodeBootRecord(bytes, &diag);
  if (!decoded.ok()) {
    FuzzCheck(!diag.empty());
    return;
  }
  FuzzCheck(!IsRevoked(bytes));
  std::vector<uint8_t> encoded(kRecordSize);
  FuzzCheck(EncodeBootRecord(*decoded, encoded).ok());
  FuzzCheck(std::memcmp(encoded.data(), bytes.data(), kRecordSize) == 0);
  auto again = DecodeBootRecord(encoded, nullptr);
  FuzzCheck(again.ok() && *again == *decoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckRecord(ByteSpan(data, size));
  std::vector<uint8_t> fixed(kRecordSize, 0);
  std::memcpy(fixed.data(), data, size < kRecordSize ? size : kRecordSize);
  StoreLe32(fixed.data() + kCrcOffset, BootRecordCrc(fixed));
  CheckRecord(fixed);
  return 0;
}
