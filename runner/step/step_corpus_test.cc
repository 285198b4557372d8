// Replays the step fuzzer's seed corpus (tests/fuzz/corpus/step): spec and
// result bytes through execute_spec and read_result, confined to a scratch
// store; each must succeed or fail with an error, never crash. The fuzzer
// itself is built by tests/fuzz/run.sh.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/fs.h"
#include "tests/fuzz/step_fuzz.cc"

namespace {

namespace fs = std::filesystem;

TEST(StepCorpus, EverySeedReplays) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(DFGEN_SOURCE_DIR) / "tests/fuzz/corpus/step")) {
    auto bytes = dfgen::read_file(e.path().string());
    ASSERT_TRUE(bytes.ok()) << e.path();
    SCOPED_TRACE(e.path().string());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
    ++n;
  }
  EXPECT_GE(n, 14);
}

}  // namespace
