// SHA-256 through OpenSSL, streaming. Digests print as "sha256:<64 hex>".
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace dfgen {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Finishes the hash; the object may not be updated afterwards.
  std::string hex();                     // 64 lowercase hex digits
  std::string digest() { return "sha256:" + hex(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);
inline std::string sha256_digest(std::string_view data) { return "sha256:" + sha256_hex(data); }
Result<std::string> sha256_file(const std::string& path);   // "sha256:..."

// "sha256:<64 hex>" -> true. Anything else (other algorithms, bad length) -> false.
bool is_sha256_digest(std::string_view digest);
// The hex part of a valid digest.
inline std::string_view digest_hex(std::string_view digest) { return digest.substr(7); }

}  // namespace dfgen
