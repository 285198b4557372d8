// Replays the layer fuzzer's seed corpus (tests/fuzz/corpus/layer) through its
// entry point in the normal build (it traps when anything outside the
// destination changed), and checks that the hostile seeds are refused.
// The fuzzer itself is built by tests/fuzz/run.sh.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/fs.h"
#include "tests/fuzz/layer_fuzz.cc"
#include "tests/fuzz/replay.h"

namespace {

namespace fs = std::filesystem;

TEST(LayerCorpus, EverySeedReplaysWithoutTouchingOutside) { EXPECT_GE(dfgen::fuzz::replay_corpus("layer"), 15); }

TEST(LayerCorpus, HostileSeedsAreRefused) {
  for (const char* seed : {"dotdot_escape.tar", "symlink_parent_escape.tar", "symlink_parent_escape.tar.gz",
                           "symlink_abs_escape.tar", "hardlink_outside.tar", "hardlink_abs.tar",
                           "hardlink_through_symlink.tar", "replace_dir_with_link.tar", "whiteout_dotdot.tar",
                           "truncated.tar.gz", "not_a_tar", "null_error_message"}) {
    SCOPED_TRACE(seed);
    auto dir = dfgen::TempDir::create(fs::temp_directory_path().string(), "layer-corpus");
    ASSERT_TRUE(dir.ok());
    auto st = dfgen::layer::extract_layer((dfgen::fuzz::corpus_dir("layer") / seed).string(), dir->path());
    EXPECT_FALSE(st.ok());
  }
  for (const char* seed : {"plain_tree.tar", "plain_tree.tar.gz", "whiteouts.tar.zst", "devices_fifo.tar",
                           "absolute_path.tar", "gnu_longname.tar", "xattrs.tar"}) {
    SCOPED_TRACE(seed);
    auto dir = dfgen::TempDir::create(fs::temp_directory_path().string(), "layer-corpus");
    ASSERT_TRUE(dir.ok());
    auto st = dfgen::layer::extract_layer((dfgen::fuzz::corpus_dir("layer") / seed).string(), dir->path());
    EXPECT_TRUE(st.ok()) << st.error().render();
  }
}

// The store's way in (ensure_snapshot: one pass that extracts while it
// verifies digest and diff_id) refuses the same seeds and takes the others.
TEST(LayerCorpus, SnapshotsRefuseTheSameSeeds) {
  auto dir = dfgen::TempDir::create(fs::temp_directory_path().string(), "layer-corpus-store");
  ASSERT_TRUE(dir.ok());
  auto store = dfgen::Store::open(dir->path() + "/store");
  ASSERT_TRUE(store.ok());
  auto snapshot = [&](const char* seed) -> dfgen::Status {
    auto bytes = dfgen::read_file((dfgen::fuzz::corpus_dir("layer") / seed).string());
    if (!bytes.ok()) return std::move(bytes).error();
    DFGEN_TRY(dfgen::Descriptor d, store->put_blob(*bytes, dfgen::kOciLayerGzip));
    auto diff_id = dfgen::layer::layer_diff_id(store->blob_path(d.digest));
    return dfgen::layer::ensure_snapshot(*store, d, diff_id.ok() ? *diff_id : dfgen::sha256_digest(seed));
  };
  for (const char* seed : {"dotdot_escape.tar", "symlink_parent_escape.tar.gz", "symlink_abs_escape.tar",
                           "hardlink_outside.tar", "whiteout_dotdot.tar", "truncated.tar.gz", "not_a_tar"}) {
    SCOPED_TRACE(seed);
    EXPECT_FALSE(snapshot(seed).ok());
  }
  for (const char* seed : {"plain_tree.tar", "plain_tree.tar.gz", "whiteouts.tar.zst", "xattrs.tar"}) {
    SCOPED_TRACE(seed);
    auto st = snapshot(seed);
    EXPECT_TRUE(st.ok()) << st.error().render();
  }
}

}  // namespace
