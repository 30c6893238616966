// Ed25519 package signing on the host: key files, signatures, fingerprints.
// The one host file that uses OpenSSL (libcrypto, host/src/signing.cpp); no
// hand-written host crypto. The device verifies with runtime/ed25519.h.
//
// Key files: PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----", NAME.pem) and
// SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----", NAME.pub.pem), as
// `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write them.
// A key's fingerprint is the SHA-256 of its raw 32-byte public key, the
// record's key_id (runtime/boot_record.h).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "host/expected.h"
#include "runtime/boot_record.h"
#include "runtime/byte_reader.h"
#include "runtime/ed25519.h"

namespace onedfu::host {

using runtime::Ed25519PublicKey;
using Ed25519Signature = std::array<uint8_t, runtime::kEd25519SignatureSize>;

struct SigningKey {
  std::array<uint8_t, 32> seed{};  // the RFC 8032 private key
  Ed25519PublicKey public_key{};
};

struct KeyPairFiles {
  std::filesystem::path private_pem;  // NAME.pem
  std::filesystem::path public_pem;   // NAME.pub.pem
  Ed25519PublicKey public_key{};
};

// Generates a key pair and writes NAME.pem (mode 0600) and NAME.pub.pem for
// `name` = NAME. Refuses to overwrite an existing file.
Expected<KeyPairFiles> GenerateKeyPair(const std::filesystem::path& name);

// Reads an Ed25519 private key PEM. Errors name the file ("not an Ed25519
// private key", unreadable).
Expected<SigningKey> LoadSigningKey(const std::filesystem::path& pem);

// Reads an Ed25519 public key PEM (a private key PEM is accepted too: its
// public half).
Expected<Ed25519PublicKey> LoadPublicKey(const std::filesystem::path& pem);

Expected<Ed25519Signature> SignMessage(const SigningKey& key, runtime::ByteSpan message);

// OpenSSL's verdict (the device's is runtime::Ed25519Verify; tests compare them).
bool VerifyMessage(const Ed25519PublicKey& key, runtime::ByteSpan message, const Ed25519Signature& signature);

// SHA-256 of the raw public key: the record's key_id.
std::array<uint8_t, runtime::kKeyIdSize> KeyId(const Ed25519PublicKey& key);
// Lower-case hex of KeyId (64 digits).
std::string KeyFingerprint(const Ed25519PublicKey& key);
std::string KeyIdHex(const std::array<uint8_t, runtime::kKeyIdSize>& key_id);

// Signs `record` with `key`: sets kRecordFlagSigned, key_id and signature
// (over the signed message of the encoded record, runtime/boot_record.h).
Outcome SignBootRecord(const SigningKey& key, runtime::BootRecord& record);

// The signed message of an encoded record (kSignedSize bytes).
std::vector<uint8_t> SignedMessageOf(runtime::ByteSpan record_bytes);

}  // namespace onedfu::host
