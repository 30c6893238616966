// A trusting bootloader (TrustPolicy): signed records only, key rotation,
// anti-rollback counter log, verified-once boots; records signed by OpenSSL
// (host/signing.h) and checked by the device code.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "bootloader/boot.h"
#include "bootloader/boot_state.h"
#include "host/signing.h"
#include "rig.h"
#include "test_support.h"

using namespace onedfu;
using namespace onedfu::test;
using bootloader::BootReason;
using bootloader::TrustPolicy;

namespace {

struct Keys {
  testing::TempDir dir;
  host::SigningKey k1, k2;
  Keys() {
    for (int i = 1; i <= 2; ++i) {
      auto pair = host::GenerateKeyPair(dir.path / ("k" + std::to_string(i)));
      REQUIRE(pair.ok());
      auto key = host::LoadSigningKey(pair->private_pem);
      REQUIRE(key.ok());
      (i == 1 ? k1 : k2) = *key;
    }
  }
};

// Installs two segments and a record (signed by `key` when given, with `counter`).
void Install(Rig& rig, const host::SigningKey* key, uint32_t counter = 0, const char* board_id = "pybd-sf6") {
  const std::vector<Element> segments = {{kText0, Pattern(4000, 1)}, {kText1, Pattern(3000, 2)}};
  for (const Element& e : segments) {
    FakeFlash& f = e.address >= kQspiBase ? rig.qspi : rig.internal;
    REQUIRE(f.Preload(e.address, e.data));
  }
  std::vector<uint8_t> element = MakeRecordElement(segments, "3.1.4", "{\"v\":1}", board_id);
  auto decoded = runtime::DecodeBootRecord(element, nullptr);
  REQUIRE(decoded.ok());
  runtime::BootRecord record = decoded.value();
  record.security_counter = counter;
  if (key != nullptr) REQUIRE(host::SignBootRecord(*key, record).ok());
  REQUIRE(runtime::EncodeBootRecord(record, element).ok());
  REQUIRE(rig.qspi.Preload(kRecord, element));
}

// Changes record byte `offset` (XOR `mask`) and fixes the CRC, as an attacker would.
void Tamper(Rig& rig, uint32_t offset, uint8_t mask) {
  std::vector<uint8_t> bytes = rig.Peek(kRecord, runtime::kRecordSize);
  bytes[offset] ^= mask;
  runtime::StoreLe32(bytes.data() + runtime::kCrcOffset, runtime::BootRecordCrc(bytes));
  REQUIRE(rig.qspi.Preload(kRecord, bytes));
}

bootloader::BootDecision Decide(Rig& rig, const TrustPolicy& policy) {
  return bootloader::Decide(rig.board, rig.memories, false, &policy);
}

std::string Message(const bootloader::BootDecision& d) { return d.message.c_str(); }

}  // namespace

TEST_CASE("trust: only records signed by a built-in key boot; each refusal says why") {
  Keys keys;
  const std::vector<runtime::Ed25519PublicKey> k1{keys.k1.public_key};
  const std::vector<runtime::Ed25519PublicKey> k2{keys.k2.public_key};
  const std::vector<runtime::Ed25519PublicKey> both{keys.k2.public_key, keys.k1.public_key};

  SUBCASE("signed by the key: starts, signature checked") {
    Rig rig;
    Install(rig, &keys.k1);
    auto d = Decide(rig, TrustPolicy{k1});
    CHECK_MESSAGE(d.start_application, Message(d));
    CHECK(d.signature_checked);
    // A bootloader without keys boots it too.
    CHECK(bootloader::Decide(rig.board, rig.memories, false).start_application);
  }
  SUBCASE("unsigned") {
    Rig rig;
    Install(rig, nullptr);
    auto d = Decide(rig, TrustPolicy{k1});
    CHECK(d.reason == BootReason::kUnsigned);
    CHECK(Message(d) == "boot record is not signed; this bootloader boots only signed packages");
  }
  SUBCASE("wrong key") {
    Rig rig;
    Install(rig, &keys.k1);
    auto d = Decide(rig, TrustPolicy{k2});
    CHECK(d.reason == BootReason::kBadSignature);
    CHECK(Message(d) == "boot record signed by an unknown key");
  }
  SUBCASE("key rotation: any built-in key") {
    Rig rig;
    Install(rig, &keys.k1);
    CHECK(Decide(rig, TrustPolicy{both}).start_application);
    Install(rig, &keys.k2);
    CHECK(Decide(rig, TrustPolicy{both}).start_application);
    CHECK(Decide(rig, TrustPolicy{k1}).reason == BootReason::kBadSignature);
  }
  SUBCASE("flipped bit in the signature") {
    Rig rig;
    Install(rig, &keys.k1);
    Tamper(rig, runtime::kSignatureOffset + 40, 0x08);
    auto d = Decide(rig, TrustPolicy{k1});
    CHECK(d.reason == BootReason::kBadSignature);
    CHECK(Message(d) == "boot record signature does not verify");
  }
  SUBCASE("flipped bit in a hashed field (segment SHA-256, ROMFS, manifest hash, counter)") {
    for (uint32_t offset : {runtime::kSegmentsOffset + 8 + 5, runtime::kManifestShaOffset + 1,
                            runtime::kSecurityCounterOffset}) {
      CAPTURE(offset);
      Rig rig;
      Install(rig, &keys.k1);
      Tamper(rig, offset, 0x01);
      CHECK(Decide(rig, TrustPolicy{k1}).reason == BootReason::kBadSignature);
    }
  }
  SUBCASE("a validly signed record from another board") {
    Rig rig;
    Install(rig, &keys.k1, 0, "pybv10");
    CHECK(Decide(rig, TrustPolicy{k1}).reason == BootReason::kWrongBoard);
  }
  SUBCASE("rollback: a lower counter than the board booted") {
    Rig rig;
    Install(rig, &keys.k1, 3);
    TrustPolicy policy{k1};
    policy.min_security_counter = 5;
    auto d = Decide(rig, policy);
    CHECK(d.reason == BootReason::kRollback);
    CHECK(Message(d) == "rollback: security counter 3 is below the board's 5");
    policy.min_security_counter = 3;
    d = Decide(rig, policy);
    CHECK(d.start_application);
    CHECK(d.security_counter == 3);
  }
}

TEST_CASE("security counter log: highest intact slot, torn slots skipped, never lowered, full log stops") {
  Rig rig;
  const bootloader::FlashArea area = bootloader::CounterArea(rig.board);
  REQUIRE(area.memory == 0);
  CHECK(area.address == kBootloaderEnd - bootloader::kCounterAreaSize);
  REQUIRE(rig.internal.Preload(area.address, std::vector<uint8_t>(area.size, 0xff)));
  auto read = [&] {
    auto v = bootloader::ReadSecurityCounter(rig.internal, area);
    REQUIRE(v.ok());
    return v.value();
  };
  CHECK(read() == 0);
  REQUIRE(bootloader::AdvanceSecurityCounter(rig.internal, area, 4).ok());
  CHECK(read() == 4);
  REQUIRE(bootloader::AdvanceSecurityCounter(rig.internal, area, 2).ok());  // never lowered
  CHECK(read() == 4);
  // A torn slot (power cut mid-program): neither erased nor intact; ignored, then skipped.
  const std::vector<uint8_t> torn = {0x09, 0x00, 0xff, 0x00, 0xff, 0xff, 0xff, 0xff};
  REQUIRE(rig.internal.Preload(area.address + 8, torn));
  CHECK(read() == 4);
  REQUIRE(bootloader::AdvanceSecurityCounter(rig.internal, area, 9).ok());
  CHECK(read() == 9);
  CHECK(bootloader::HighestCounter(rig.Peek(area.address, area.size), 4, 0xff) == 9);
  // Fill the log: the counter stays at the last value that fit.
  runtime::Status s = runtime::Status::Ok();
  uint32_t v = 10;
  for (; v < 10 + area.size / 8 && s.ok(); ++v) s = bootloader::AdvanceSecurityCounter(rig.internal, area, v);
  CHECK(s.code() == runtime::StatusCode::kResourceExhausted);
  CHECK(read() == v - 2);
}

TEST_CASE("counter log on ECC flash: a slot torn by a power cut faults when read, is ignored and skipped") {
  Rig rig;
  const bootloader::FlashArea area = bootloader::CounterArea(rig.board);
  runtime::Memory geometry = rig.board.memories[area.memory];
  geometry.ecc = true;
  std::vector<uint8_t> storage(geometry.size(), geometry.erased_value);
  runtime::FakeFlash flash(geometry, storage);
  REQUIRE(bootloader::AdvanceSecurityCounter(flash, area, 3).ok());
  flash.SetTornModel(runtime::TornModel::kRandom, 7);
  flash.CutPowerAfter(0, true);
  CHECK_FALSE(bootloader::AdvanceSecurityCounter(flash, area, 5).ok());  // the cut tears slot 1
  flash.ClearFaults();
  flash.PowerOn();
  uint8_t slot[8];
  CHECK(flash.Read(area.address + 8, slot).code() == runtime::StatusCode::kDataLoss);
  // The boot still reads 3 (not 0: the log is not lost with its torn slot), then advances past it.
  std::vector<runtime::FlashMemory*> memories(rig.board.memory_count, nullptr);
  memories[area.memory] = &flash;
  CHECK(bootloader::BootSecurityCounter(rig.board, memories) == 3);
  REQUIRE(bootloader::AdvanceSecurityCounter(flash, area, 5).ok());
  CHECK(bootloader::BootSecurityCounter(rig.board, memories) == 5);
}

TEST_CASE("verified once: the first boot hashes everything and asks for the marker; later boots skip the hashes") {
  Keys keys;
  const std::vector<runtime::Ed25519PublicKey> k1{keys.k1.public_key};
  Rig rig;
  Install(rig, &keys.k1, 1);
  TrustPolicy policy{k1};
  policy.remember_verified = true;
  auto first = Decide(rig, policy);
  REQUIRE(first.start_application);
  CHECK(first.bytes_hashed > 7000);
  CHECK(first.mark_verified);
  CHECK_FALSE(first.hashes_skipped);
  const bootloader::FlashArea marker = bootloader::MarkerArea(rig.board);
  REQUIRE(bootloader::MarkVerified(rig.qspi, marker, first.record_crc).ok());
  auto later = Decide(rig, policy);
  REQUIRE(later.start_application);
  CHECK(later.hashes_skipped);
  CHECK(later.bytes_hashed == 0);
  CHECK(later.signature_checked);  // the signature is still checked at every boot
  CHECK(Message(later) == "package 3.1.4: 2 segments verified on an earlier boot");

  // The marker is bound to the record: a new record (another CRC) is hashed in full again.
  Install(rig, &keys.k1, 2);
  auto updated = Decide(rig, policy);
  CHECK(updated.start_application);
  CHECK(updated.bytes_hashed > 7000);
  // A revoked record never boots, marker or not.
  std::vector<uint8_t> revoke(runtime::kRevokeSize, 0);
  REQUIRE(rig.qspi.Preload(kRecord + runtime::kRevokeOffset, revoke));
  CHECK(Decide(rig, policy).reason == BootReason::kRevoked);
}
