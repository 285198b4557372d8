// Source patterns whose parent components are symlinks: they are resolved
// inside the context root (an absolute target or ".." never leave it), so a
// link to a host directory never makes a host file a COPY source.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/context.h"
#include "core/fs.h"

namespace dfgen::context {
namespace {

namespace fs = std::filesystem;

class ContextSymlinks : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::create(fs::temp_directory_path().string(), "ctx-links");
    ASSERT_TRUE(t.ok());
    tmp_.emplace(std::move(*t));
    outside_ = tmp_->path() + "/outside";
    ctx_ = tmp_->path() + "/ctx";
    fs::create_directories(outside_);
    fs::create_directories(ctx_ + "/sub");
    ASSERT_TRUE(write_file_atomic(outside_ + "/secret", "host\n").ok());
    ASSERT_TRUE(write_file_atomic(ctx_ + "/sub/f", "f\n").ok());
    fs::create_directory_symlink(outside_, ctx_ + "/dir");        // absolute, outside
    fs::create_directory_symlink("sub", ctx_ + "/lnk");           // relative, inside
    fs::create_directory_symlink("/sub", ctx_ + "/abs");          // absolute: taken inside the root
    fs::create_directory_symlink("../../../..", ctx_ + "/up");    // climbs: stops at the root
    fs::create_directory_symlink("loop", ctx_ + "/loop");
  }

  Result<Selection> sel(const std::string& pattern) {
    return select(ctx_, {pattern}, IgnoreMatcher::none());
  }

  std::optional<TempDir> tmp_;
  std::string outside_, ctx_;
};

TEST_F(ContextSymlinks, LinkToHostDirectoryIsNotFollowedOut) {
  auto s = sel("dir/secret");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("not found"), std::string::npos) << s.error().message;
  // A wildcard matches nothing there (BuildKit allows an empty wildcard).
  auto w = sel("dir/*");
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_TRUE(w->matches.empty());
}

TEST_F(ContextSymlinks, LinksResolveInsideTheContext) {
  for (const char* p : {"lnk/f", "abs/f", "up/sub/f", "l*/f", "*/f"}) {
    SCOPED_TRACE(p);
    auto s = sel(p);
    ASSERT_TRUE(s.ok()) << s.error().message;
    for (const auto& m : s->matches) EXPECT_EQ(m.path, "sub/f");
    EXPECT_FALSE(s->matches.empty());
  }
}

TEST_F(ContextSymlinks, LoopIsAnError) {
  auto s = sel("loop/x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("symbolic links"), std::string::npos) << s.error().message;
}

// As BuildKit (FollowSymlinks; tests/differential copy-symlink-source): a
// source that is a link is followed inside the context and keeps its name.
TEST_F(ContextSymlinks, FinalLinkIsFollowedAndKeepsItsName) {
  auto s = sel("lnk");
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->matches.size(), 1u);
  EXPECT_EQ(s->matches[0].path, "sub");
  EXPECT_EQ(s->matches[0].name, "lnk");
  EXPECT_TRUE(s->matches[0].is_dir);
  EXPECT_EQ(s->matches[0].files, std::vector<std::string>{"sub/f"});
  // A link out of the context resolves inside it, where nothing is: the link
  // itself is the source, never the host directory.
  auto host = sel("dir");
  ASSERT_TRUE(host.ok()) << host.error().message;
  ASSERT_EQ(host->matches.size(), 1u);
  EXPECT_EQ(host->matches[0].path, "dir");
  EXPECT_FALSE(host->matches[0].is_dir);
}

TEST_F(ContextSymlinks, DanglingFinalLinkIsTheLinkItself) {
  fs::create_symlink("nowhere", ctx_ + "/dangling");
  auto s = sel("dangling");
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->matches.size(), 1u);
  EXPECT_EQ(s->matches[0].path, "dangling");
  EXPECT_TRUE(s->matches[0].name.empty());
}

}  // namespace
}  // namespace dfgen::context
