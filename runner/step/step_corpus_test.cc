// Replays the step fuzzer's seed corpus (tests/fuzz/corpus/step): spec and
// result bytes through execute_spec and read_result, confined to a scratch
// store; each must succeed or fail with an error, never crash. The fuzzer
// itself is built by tests/fuzz/run.sh.
#include <gtest/gtest.h>

#include "core/fs.h"
#include "tests/fuzz/step_fuzz.cc"
#include "tests/fuzz/replay.h"

namespace {

TEST(StepCorpus, EverySeedReplays) { EXPECT_GE(dfgen::fuzz::replay_corpus("step"), 14); }

}  // namespace
