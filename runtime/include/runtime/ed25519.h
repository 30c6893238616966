// Ed25519 (RFC 8032) signature verification for the bootloader.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace onedfu::runtime {

inline constexpr size_t kEd25519PublicKeySize = 32;  // bytes, RFC 8032 encoding
inline constexpr size_t kEd25519SignatureSize = 64;  // R (32) || S (32)

using Ed25519PublicKey = std::array<uint8_t, kEd25519PublicKeySize>;

}  // namespace onedfu::runtime
