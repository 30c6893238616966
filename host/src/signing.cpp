// Ed25519 keys and signatures through OpenSSL's libcrypto (host/signing.h).
// The only host file that includes OpenSSL headers.
#include "host/signing.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <memory>
#include <sys/stat.h>

#include "host/file_io.h"
#include "runtime/sha256.h"

namespace onedfu::host {
namespace fs = std::filesystem;
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

std::string PemText(EVP_PKEY* key, bool private_key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  const int ok = private_key ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
                             : PEM_write_bio_PUBKEY(bio.get(), key);
  if (ok != 1) return {};
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

// Reads `pem` as a private key (private_key) or as a public key (then a
// private key PEM is accepted too).
Expected<Pkey> ReadPem(const fs::path& pem, bool private_key) {
  ONEDFU_PTRY(Bytes text, ReadFile(pem, 64 * 1024));
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) return Fail(pem.string() + ": out of memory");
  Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key && !private_key) {
    Bio again(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    key.reset(PEM_read_bio_PUBKEY(again.get(), nullptr, nullptr, nullptr));
  }
  if (!key) {
    return Fail(pem.string() + ": not a PEM " + (private_key ? "private" : "public") + " key");
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return Fail(pem.string() + ": not an Ed25519 key (onedfu keygen writes one)");
  }
  return key;
}

Expected<Ed25519PublicKey> RawPublic(EVP_PKEY* key, const fs::path& where) {
  Ed25519PublicKey out{};
  size_t n = out.size();
  if (EVP_PKEY_get_raw_public_key(key, out.data(), &n) != 1 || n != out.size()) {
    return Fail(where.string() + ": cannot read the Ed25519 public key");
  }
  return out;
}

Outcome WriteNew(const fs::path& path, const std::string& text, bool secret) {
  std::error_code ec;
  if (fs::exists(path, ec)) return Fail(path.string() + ": exists; not overwriting a key file");
  FILE* f = std::fopen(path.c_str(), "wx");
  if (f == nullptr) return Fail(path.string() + ": cannot create");
  if (secret) ::chmod(path.c_str(), 0600);
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) return Fail(path.string() + ": write failed");
  return Success();
}

}  // namespace

Expected<KeyPairFiles> GenerateKeyPair(const fs::path& name) {
  KeyPairFiles out;
  out.private_pem = fs::path(name.string() + ".pem");
  out.public_pem = fs::path(name.string() + ".pub.pem");
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return Fail("keygen: OpenSSL could not generate an Ed25519 key");
  const std::string priv = PemText(key.get(), true);
  const std::string pub = PemText(key.get(), false);
  if (priv.empty() || pub.empty()) return Fail("keygen: OpenSSL could not encode the key as PEM");
  ONEDFU_PTRY(out.public_key, RawPublic(key.get(), out.public_pem));
  std::error_code ec;
  if (fs::exists(out.public_pem, ec)) return Fail(out.public_pem.string() + ": exists; not overwriting a key file");
  ONEDFU_PTRY(Done a, WriteNew(out.private_pem, priv, true));
  ONEDFU_PTRY(Done b, WriteNew(out.public_pem, pub, false));
  (void)a;
  (void)b;
  return out;
}

Expected<SigningKey> LoadSigningKey(const fs::path& pem) {
  ONEDFU_PTRY(Pkey key, ReadPem(pem, true));
  SigningKey out;
  size_t n = out.seed.size();
  if (EVP_PKEY_get_raw_private_key(key.get(), out.seed.data(), &n) != 1 || n != out.seed.size()) {
    return Fail(pem.string() + ": cannot read the Ed25519 private key");
  }
  ONEDFU_PTRY(out.public_key, RawPublic(key.get(), pem));
  return out;
}

Expected<Ed25519PublicKey> LoadPublicKey(const fs::path& pem) {
  ONEDFU_PTRY(Pkey key, ReadPem(pem, false));
  return RawPublic(key.get(), pem);
}

Expected<Ed25519Signature> SignMessage(const SigningKey& key, runtime::ByteSpan message) {
  Pkey pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, key.seed.data(), key.seed.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  Ed25519Signature out{};
  size_t n = out.size();
  if (!pkey || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), out.data(), &n, message.data(), message.size()) != 1 || n != out.size()) {
    return Fail("sign: OpenSSL could not sign with the Ed25519 key");
  }
  return out;
}

bool VerifyMessage(const Ed25519PublicKey& key, runtime::ByteSpan message, const Ed25519Signature& signature) {
  Pkey pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(), message.size()) == 1;
}

std::array<uint8_t, runtime::kKeyIdSize> KeyId(const Ed25519PublicKey& key) { return runtime::Sha256Digest(key); }

std::string KeyIdHex(const std::array<uint8_t, runtime::kKeyIdSize>& key_id) {
  char hex[65];
  runtime::HexDigest(key_id, hex);
  return hex;
}

std::string KeyFingerprint(const Ed25519PublicKey& key) { return KeyIdHex(KeyId(key)); }

std::vector<uint8_t> SignedMessageOf(runtime::ByteSpan record_bytes) {
  std::vector<uint8_t> out;
  out.reserve(runtime::kSignedSize);
  runtime::ForEachSignedPiece(record_bytes,
                              [&out](runtime::ByteSpan piece) { out.insert(out.end(), piece.begin(), piece.end()); });
  return out;
}

Outcome SignBootRecord(const SigningKey& key, runtime::BootRecord& record) {
  record.flags |= runtime::kRecordFlagSigned;
  record.key_id = KeyId(key.public_key);
  record.signature = {};
  std::vector<uint8_t> bytes(runtime::kRecordSize);
  if (const auto s = runtime::EncodeBootRecord(record, bytes); !s.ok()) {
    return Fail(std::string("boot record: ") + s.message());
  }
  ONEDFU_PTRY(record.signature, SignMessage(key, SignedMessageOf(bytes)));
  return Success();
}

}  // namespace onedfu::host
