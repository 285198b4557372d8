// Replays a fuzz target's seed corpus (tests/fuzz/corpus/TARGET) through the
// target's LLVMFuzzerTestOneInput in the normal (gtest) build: each seed must
// come back, the entry point traps on a broken promise. Include it after the
// target's _fuzz.cc, which defines the entry point.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/fs.h"

namespace dfgen::fuzz {

inline std::filesystem::path corpus_dir(const std::string& target) {
  return std::filesystem::path(DFGEN_SOURCE_DIR) / "tests/fuzz/corpus" / target;
}

// How many seeds were replayed (a test asserts a floor, so an emptied corpus fails).
inline int replay_corpus(const std::string& target) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(corpus_dir(target))) {
    auto bytes = read_file(e.path().string());
    EXPECT_TRUE(bytes.ok()) << e.path();
    if (!bytes.ok()) continue;
    SCOPED_TRACE(e.path().string());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
    ++n;
  }
  return n;
}

}  // namespace dfgen::fuzz
