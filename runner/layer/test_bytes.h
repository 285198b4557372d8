// Test data for the layer tests: bytes that do not compress, the same on
// every run (xorshift64).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dfgen::layer {

inline std::string incompressible_bytes(size_t size) {
  std::string out(size, '\0');
  uint64_t x = 88172645463325252ull;
  for (auto& c : out) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

}  // namespace dfgen::layer
