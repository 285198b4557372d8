// Replays the ignore fuzzer's seed corpus (tests/fuzz/corpus/ignore) through
// its entry point in the normal build: every seed parses or fails cleanly,
// and the may_include_below() promise holds on each (the entry point traps
// otherwise). The fuzzer itself is built by tests/fuzz/run.sh.
#include <gtest/gtest.h>

#include "core/fs.h"
#include "tests/fuzz/ignore_fuzz.cc"
#include "tests/fuzz/replay.h"

namespace {

TEST(IgnoreCorpus, EverySeedReplays) { EXPECT_GE(dfgen::fuzz::replay_corpus("ignore"), 7); }

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
