// Replays the ignore fuzzer's seed corpus (tests/fuzz/corpus/ignore) through
// its entry point in the normal build: every seed parses or fails cleanly,
// and the may_include_below() promise holds on each (the entry point traps
// otherwise). The fuzzer itself is built by tests/fuzz/run.sh.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/fs.h"
#include "tests/fuzz/ignore_fuzz.cc"

namespace {

namespace fs = std::filesystem;

TEST(IgnoreCorpus, EverySeedReplays) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(DFGEN_SOURCE_DIR) / "tests/fuzz/corpus/ignore")) {
    auto bytes = dfgen::read_file(e.path().string());
    ASSERT_TRUE(bytes.ok()) << e.path();
    SCOPED_TRACE(e.path().string());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
    ++n;
  }
  EXPECT_GE(n, 7);
}

TEST(IgnoreCorpus, SeedsMeanWhatTheySay) {
  auto m = dfgen::IgnoreMatcher::parse("node_modules\n*.log\n!important.log\n", ".dockerignore");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->excluded("node_modules/x"));
  EXPECT_TRUE(m->excluded("a.log"));
  EXPECT_FALSE(m->excluded("important.log"));
  EXPECT_FALSE(m->may_include_below("node_modules"));
  EXPECT_FALSE(dfgen::IgnoreMatcher::parse("[\n", ".dockerignore").ok());
}

}  // namespace
