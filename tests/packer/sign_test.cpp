// Signed packages on the host: onedfu keygen, pack --sign / --security-counter,
// verify --key, inspect's signer; the signature checked by the openssl command
// (a real peer) over the signed message the record defines.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "host/file_io.h"
#include "host/signing.h"
#include "runtime/boot_record.h"
#include "test_support.h"

namespace onedfu::packer {
namespace {

namespace fs = std::filesystem;
using testing::RunShell;
using testing::TempDir;

const fs::path kSource = ONEDFU_SOURCE_DIR;
const std::string kOnedfu = std::string(ONEDFU_BINARY_DIR) + "/packer/onedfu";
const std::string kDemo = (kSource / "manifests/examples/pybd-sf6-demo.json").string();

// The record element's bytes: the last kRecordSize bytes that start with the record magic.
host::Bytes RecordBytes(const host::Bytes& dfu) {
  uint8_t magic[4];
  runtime::StoreLe32(magic, runtime::kBootRecordMagic);
  for (size_t i = dfu.size() - runtime::kRecordSize; i-- > 0;) {
    if (std::equal(magic, magic + 4, dfu.begin() + static_cast<std::ptrdiff_t>(i))) {
      return host::Bytes(dfu.begin() + static_cast<std::ptrdiff_t>(i),
                         dfu.begin() + static_cast<std::ptrdiff_t>(i + runtime::kRecordSize));
    }
  }
  FAIL("no record in the package");
  return {};
}

TEST_CASE("keygen, pack --sign, verify --key, inspect: signer and counter; openssl agrees") {
  TempDir dir;
  const std::string k1 = (dir.path / "k1").string();
  const std::string k2 = (dir.path / "k2").string();
  auto made = RunShell(kOnedfu + " keygen --out " + k1);
  REQUIRE_MESSAGE(made.status == 0, made.output);
  REQUIRE(RunShell(kOnedfu + " keygen --out " + k2).status == 0);
  CHECK(fs::exists(k1 + ".pem"));
  CHECK((fs::status(k1 + ".pem").permissions() & fs::perms::others_read) == fs::perms::none);
  auto again = RunShell(kOnedfu + " keygen --out " + k1);
  CHECK(again.status == 1);
  CHECK(again.output.find("not overwriting") != std::string::npos);

  auto pub = host::LoadPublicKey(k1 + ".pub.pem");
  REQUIRE(pub.ok());
  const std::string fingerprint = host::KeyFingerprint(*pub);
  CHECK(made.output.find(fingerprint) != std::string::npos);
  // The private PEM yields the same public key.
  auto priv = host::LoadSigningKey(k1 + ".pem");
  REQUIRE(priv.ok());
  CHECK(priv->public_key == *pub);

  const std::string signed_dfu = (dir.path / "s.dfu").string();
  auto packed = RunShell(kOnedfu + " pack " + kDemo + " --sign " + k1 + ".pem --security-counter 7 -o " + signed_dfu);
  REQUIRE_MESSAGE(packed.status == 0, packed.output);

  auto ok = RunShell(kOnedfu + " verify " + signed_dfu + " --key " + k1 + ".pub.pem");
  CHECK_MESSAGE(ok.status == 0, ok.output);
  CHECK(ok.output.find("signature valid") != std::string::npos);
  // Key rotation on the host side: any of the given keys will do.
  CHECK(RunShell(kOnedfu + " verify " + signed_dfu + " --key " + k2 + ".pub.pem --key " + k1 + ".pub.pem").status == 0);
  auto wrong = RunShell(kOnedfu + " verify " + signed_dfu + " --key " + k2 + ".pub.pem");
  CHECK(wrong.status == 1);
  CHECK(wrong.output.find("not by a key given with --key") != std::string::npos);
  // Without --key a signed package is still an intact package.
  CHECK(RunShell(kOnedfu + " verify " + signed_dfu).status == 0);

  auto inspected = RunShell(kOnedfu + " inspect --json " + signed_dfu + " 2>/dev/null");
  REQUIRE(inspected.status == 0);
  const auto j = nlohmann::json::parse(inspected.output);
  CHECK(j["record"]["signed"] == true);
  CHECK(j["record"]["key_fingerprint"] == fingerprint);
  CHECK(j["record"]["security_counter"] == 7);
  auto text = RunShell(kOnedfu + " inspect " + signed_dfu);
  CHECK(text.output.find("signed (Ed25519), key fingerprint " + fingerprint) != std::string::npos);

  // openssl's own command checks the signature over the message the record defines.
  auto dfu = host::ReadFile(signed_dfu);
  REQUIRE(dfu.ok());
  const host::Bytes record = RecordBytes(*dfu);
  const host::Bytes message = host::SignedMessageOf(record);
  REQUIRE(message.size() == runtime::kSignedSize);
  testing::WriteBytes(dir.path / "msg.bin", message);
  testing::WriteBytes(dir.path / "sig.bin", host::Bytes(record.begin() + runtime::kSignatureOffset,
                                                        record.begin() + runtime::kSignatureEnd));
  const std::string openssl = "openssl pkeyutl -verify -pubin -inkey " + k1 + ".pub.pem -rawin -in " +
                              (dir.path / "msg.bin").string() + " -sigfile " + (dir.path / "sig.bin").string();
  auto peer = RunShell(openssl);
  CHECK_MESSAGE(peer.status == 0, peer.output);
  // ... and refuses it for the other key.
  CHECK(RunShell("openssl pkeyutl -verify -pubin -inkey " + k2 + ".pub.pem -rawin -in " +
                 (dir.path / "msg.bin").string() + " -sigfile " + (dir.path / "sig.bin").string())
            .status != 0);

  const std::string unsigned_dfu = (dir.path / "u.dfu").string();
  REQUIRE(RunShell(kOnedfu + " pack " + kDemo + " -o " + unsigned_dfu).status == 0);
  auto not_signed = RunShell(kOnedfu + " verify " + unsigned_dfu + " --key " + k1 + ".pub.pem");
  CHECK(not_signed.status == 1);
  CHECK(not_signed.output.find("not signed") != std::string::npos);
  CHECK(RunShell(kOnedfu + " inspect " + unsigned_dfu).output.find("unsigned") != std::string::npos);
}

TEST_CASE("the signature covers every hashed field; the revoke block and CRC are outside it") {
  TempDir dir;
  REQUIRE(RunShell(kOnedfu + " keygen --out " + (dir.path / "k").string()).status == 0);
  auto key = host::LoadSigningKey(dir.path / "k.pem");
  REQUIRE(key.ok());
  runtime::BootRecord record;
  REQUIRE(runtime::SetBootText(record.board_id, "pybd-sf6").ok());
  record.segment_count = 1;
  record.segments[0] = {0x08008000, 4096, {}};
  record.romfs = {0x90100000, 8192, {}};
  record.manifest_length = 10;
  record.security_counter = 3;
  REQUIRE(host::SignBootRecord(*key, record).ok());
  host::Bytes bytes(runtime::kRecordSize);
  REQUIRE(runtime::EncodeBootRecord(record, bytes).ok());
  const auto signature = record.signature;
  CHECK(host::VerifyMessage(key->public_key, host::SignedMessageOf(bytes), signature));

  // Revoking (programming the revoke block) leaves the signed message unchanged.
  host::Bytes revoked = bytes;
  std::fill(revoked.begin() + runtime::kRevokeOffset, revoked.begin() + runtime::kRevokeOffset + runtime::kRevokeSize, 0);
  CHECK(host::SignedMessageOf(revoked) == host::SignedMessageOf(bytes));

  // A flipped bit anywhere in the signed fields breaks it.
  for (uint32_t offset : {runtime::kFlagsOffset, runtime::kBoardIdOffset, runtime::kRomfsOffset + 8,
                          runtime::kManifestShaOffset, runtime::kIndexOffset + 8, runtime::kSecurityCounterOffset,
                          runtime::kSegmentsOffset + 8}) {
    CAPTURE(offset);
    host::Bytes flipped = bytes;
    flipped[offset] ^= 0x01;
    CHECK_FALSE(host::VerifyMessage(key->public_key, host::SignedMessageOf(flipped), signature));
  }
  auto bad = signature;
  bad[17] ^= 0x20;
  CHECK_FALSE(host::VerifyMessage(key->public_key, host::SignedMessageOf(bytes), bad));

  // The decoded record keeps the signer and the counter.
  auto decoded = runtime::DecodeBootRecord(bytes, nullptr);
  REQUIRE(decoded.ok());
  CHECK(decoded->Signed());
  CHECK(decoded->security_counter == 3);
  CHECK(decoded->key_id == host::KeyId(key->public_key));
  CHECK(decoded->signature == signature);
  // An unsigned record with bytes in the signature block is damaged, not signed.
  host::Bytes stray = bytes;
  runtime::StoreLe32(stray.data() + runtime::kFlagsOffset, 0);
  runtime::StoreLe32(stray.data() + runtime::kCrcOffset, runtime::BootRecordCrc(stray));
  CHECK(runtime::DecodeBootRecord(stray, nullptr).status().code() == runtime::StatusCode::kInvalidArgument);
}

TEST_CASE("bad key files are refused naming the file") {
  TempDir dir;
  const fs::path junk = testing::WriteBytes(dir.path / "junk.pem", host::Bytes{'n', 'o', 'p', 'e'});
  auto loaded = host::LoadSigningKey(junk);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().message.find("junk.pem") != std::string::npos);
  auto missing = RunShell(kOnedfu + " pack " + kDemo + " --sign " + (dir.path / "none.pem").string() + " -o " +
                          (dir.path / "x.dfu").string());
  CHECK(missing.status == 1);
  CHECK(missing.output.find("none.pem") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path / "x.dfu"));
  // An RSA key is not an Ed25519 key.
  REQUIRE(RunShell("openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out " + (dir.path / "rsa.pem").string() +
                   " 2>/dev/null")
              .status == 0);
  auto rsa = host::LoadSigningKey(dir.path / "rsa.pem");
  REQUIRE_FALSE(rsa.ok());
  CHECK(rsa.error().message.find("not an Ed25519 key") != std::string::npos);
}

}  // namespace
}  // namespace onedfu::packer
