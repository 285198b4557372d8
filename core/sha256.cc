#include "core/sha256.h"

#include <fcntl.h>
#include <unistd.h>

// OpenSSL's own SHA-256 functions, not EVP: the first EVP digest loads and
// initialises OpenSSL's provider and algorithm tables (~1.5 ms, a third of a
// cache-hit `dfrun step`); these run the same assembly (SHA-NI, AVX2) with no
// set-up. OpenSSL 3 marks them deprecated, hence the define.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include "core/fs.h"

namespace dfgen {

struct Sha256::Impl {
  SHA256_CTX ctx;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) { SHA256_Init(&impl_->ctx); }
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t size) { SHA256_Update(&impl_->ctx, data, size); }

std::string Sha256::hex() {
  unsigned char md[SHA256_DIGEST_LENGTH];
  unsigned int len = SHA256_DIGEST_LENGTH;
  SHA256_Final(md, &impl_->ctx);
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(digits[md[i] >> 4]);
    out.push_back(digits[md[i] & 15]);
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex();
}

Result<std::string> sha256_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::sys("open " + path);
  Sha256 h;
  DFGEN_CHECK(read_chunks(fd.get(), path, [&](const char* data, size_t size) {
    h.update(data, size);
    return ok_status();
  }));
  return h.digest();
}

bool is_sha256_digest(std::string_view d) {
  if (d.size() != 71 || d.substr(0, 7) != "sha256:") return false;
  for (char c : d.substr(7))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace dfgen
