// Replays the shell fuzzer's seed corpus (tests/fuzz/corpus/shell) through
// its entry point in the normal build: every seed expands or fails cleanly,
// expand_word and expand_words agree on success (the entry point traps
// otherwise), and the ignore half parses or fails. The fuzzer itself is built
// by tests/fuzz/run.sh.
#include <gtest/gtest.h>

#include "core/fs.h"
#include "tests/fuzz/shell_fuzz.cc"
#include "tests/fuzz/replay.h"

namespace {

TEST(ShellCorpus, EverySeedReplays) { EXPECT_GE(dfgen::fuzz::replay_corpus("shell"), 6); }

// The seeds reach what they are named for: both escape characters, and
// expansions that succeed as well as ones that fail.
TEST(ShellCorpus, SeedsMeanWhatTheySay) {
  static const std::map<std::string, std::string> vars = {{"A", "a b*c"}, {"EMPTY", ""}};
  auto lookup = dfgen::shell::map_lookup(vars);
  dfgen::shell::Options backslash, backtick;
  backtick.escape = '`';
  auto a = dfgen::shell::expand_word("${A:-x} ${EMPTY:+y}", lookup, backslash);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, "a b*c ");
  auto b = dfgen::shell::expand_word("C:`\\dir", lookup, backtick);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, "C:\\dir");
  EXPECT_FALSE(dfgen::shell::expand_word("${A:?must be set} ${MISSING?no}", lookup, backslash).ok());
  EXPECT_FALSE(dfgen::shell::expand_word("\"unterminated ${A", lookup, backslash).ok());
}

}  // namespace
