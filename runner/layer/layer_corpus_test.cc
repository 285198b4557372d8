// Replays the layer fuzzer's seed corpus (tests/fuzz/corpus/layer) through its
// entry point in the normal build (it traps when anything outside the
// destination changed), and checks that the hostile seeds are refused.
// The fuzzer itself is built by tests/fuzz/run.sh.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/fs.h"
#include "tests/fuzz/layer_fuzz.cc"

namespace {

namespace fs = std::filesystem;

fs::path corpus() { return fs::path(DFGEN_SOURCE_DIR) / "tests/fuzz/corpus/layer"; }

TEST(LayerCorpus, EverySeedReplaysWithoutTouchingOutside) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(corpus())) {
    auto bytes = dfgen::read_file(e.path().string());
    ASSERT_TRUE(bytes.ok()) << e.path();
    SCOPED_TRACE(e.path().string());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
    ++n;
  }
  EXPECT_GE(n, 15);
}

TEST(LayerCorpus, HostileSeedsAreRefused) {
  for (const char* seed : {"dotdot_escape.tar", "symlink_parent_escape.tar", "symlink_parent_escape.tar.gz",
                           "symlink_abs_escape.tar", "hardlink_outside.tar", "hardlink_abs.tar",
                           "hardlink_through_symlink.tar", "replace_dir_with_link.tar", "whiteout_dotdot.tar",
                           "truncated.tar.gz", "not_a_tar", "null_error_message"}) {
    SCOPED_TRACE(seed);
    auto dir = dfgen::TempDir::create(fs::temp_directory_path().string(), "layer-corpus");
    ASSERT_TRUE(dir.ok());
    auto st = dfgen::layer::extract_layer((corpus() / seed).string(), dir->path());
    EXPECT_FALSE(st.ok());
  }
  for (const char* seed : {"plain_tree.tar", "plain_tree.tar.gz", "whiteouts.tar.zst", "devices_fifo.tar",
                           "absolute_path.tar", "gnu_longname.tar", "xattrs.tar"}) {
    SCOPED_TRACE(seed);
    auto dir = dfgen::TempDir::create(fs::temp_directory_path().string(), "layer-corpus");
    ASSERT_TRUE(dir.ok());
    auto st = dfgen::layer::extract_layer((corpus() / seed).string(), dir->path());
    EXPECT_TRUE(st.ok()) << st.error().render();
  }
}

}  // namespace
