// Needs root (mounts overlayfs), as the runner's tests do in CI.
#include "runner/snapshot/overlay.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <filesystem>
#include <functional>
#include <optional>

#include <gtest/gtest.h>

#include "core/fs.h"
#include "runner/userns/test_util.h"
#include "runner/userns/userns.h"

namespace dfgen::snapshot {
namespace {

class OverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("/tmp", "overlay-test");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    dir_.emplace(std::move(dir).value());
    for (const char* d : {"upper", "work", "merged"}) ASSERT_TRUE(make_dirs(path(d)).ok());
  }
  std::string path(const std::string& rel) const { return path_join(dir_->path(), rel); }
  void write(const std::string& rel, const std::string& data) {
    ASSERT_TRUE(make_dirs(dirname_of(path(rel))).ok());
    ASSERT_TRUE(write_file_atomic(path(rel), data).ok());
  }
  static bool is_whiteout(const std::string& p) {
    struct stat st;
    return ::lstat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
  }
  std::string read(const std::string& rel) {
    auto r = read_file(path(rel));
    return r.ok() ? *r : "<" + r.error().message + ">";
  }
  std::optional<TempDir> dir_;
};

TEST_F(OverlayTest, ThreeLowersWithWhiteoutAndOpaqueDir) {
  write("l1/a/gone", "1");
  write("l1/a/kept", "1");
  write("l1/d/old", "1");
  write("l1/over", "bottom");
  // l2 deletes a/gone and replaces d wholesale.
  ASSERT_TRUE(make_dirs(path("l2/a")).ok());
  ASSERT_EQ(::mknod(path("l2/a/gone").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  write("l2/d/new", "2");
  ASSERT_EQ(::setxattr(path("l2/d").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  write("l3/over", "top");

  auto m = OverlayMount::mount({path("l1"), path("l2"), path("l3")}, path("upper"),
                               path("work"), path("merged"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->target(), path("merged"));
  EXPECT_FALSE(path_exists(path("merged/a/gone")));
  EXPECT_EQ(read("merged/a/kept"), "1");
  EXPECT_FALSE(path_exists(path("merged/d/old")));
  EXPECT_EQ(read("merged/d/new"), "2");
  EXPECT_EQ(read("merged/over"), "top");  // the last lower given is the top

  // Writes land in upper; deleting a lower file leaves a whiteout there.
  ASSERT_TRUE(write_file_atomic(path("merged/created"), "new").ok());
  ASSERT_EQ(::unlink(path("merged/a/kept").c_str()), 0);
  EXPECT_EQ(read("upper/created"), "new");
  EXPECT_TRUE(is_whiteout(path("upper/a/kept")));
  EXPECT_EQ(read("l1/a/kept"), "1");

  ASSERT_TRUE(m->unmount().ok());
  EXPECT_FALSE(path_exists(path("merged/created")));
  EXPECT_TRUE(m->target().empty());
}

std::string xattr(const std::string& path, const char* name) {
  char buf[16];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

// Rootless: overlay is mounted with userxattr, so it reads and writes its
// marks as user.overlay.* (trusted.overlay.* means nothing to it there).
TEST_F(OverlayTest, InAUserNamespaceUsesUserXattrs) {
  write("l1/a/gone", "1");
  write("l1/d/old", "1");
  write("l1/t/old", "1");
  write("l1/r/old", "1");
  ASSERT_TRUE(make_dirs(path("l2/d")).ok());
  ASSERT_TRUE(make_dirs(path("l2/t")).ok());
  write("l2/d/new", "2");
  ASSERT_EQ(::setxattr(path("l2/d").c_str(), "user.overlay.opaque", "y", 1, 0), 0);
  ASSERT_EQ(::setxattr(path("l2/t").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  int code = userns::run_in_new_user_namespace([&] {
    CHILD_REQUIRE(userns::in_user_namespace());
    auto m = OverlayMount::mount({path("l1"), path("l2")}, path("upper"), path("work"), path("merged"));
    if (!m.ok()) std::fprintf(stderr, "%s\n", m.error().message.c_str());
    CHILD_REQUIRE(m.ok());
    CHILD_REQUIRE(!path_exists(path("merged/d/old")));   // user.overlay.opaque honoured
    CHILD_REQUIRE(path_exists(path("merged/t/old")));    // trusted.overlay.opaque not
    // A deleted lower file: a whiteout; a replaced dir: opaque, the user.* way.
    CHILD_REQUIRE(::unlink(path("merged/a/gone").c_str()) == 0);
    CHILD_REQUIRE(remove_all(path("merged/r")).ok());
    CHILD_REQUIRE(::mkdir(path("merged/r").c_str(), 0755) == 0);
    CHILD_REQUIRE(is_whiteout(path("upper/a/gone")));
    CHILD_REQUIRE(xattr(path("upper/r"), "user.overlay.opaque") == "y");
    CHILD_REQUIRE(m->unmount().ok());
    return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(xattr(path("upper/r"), "trusted.overlay.opaque"), "");
}

TEST_F(OverlayTest, NoLowersMountsAnEmptyRoot) {
  {
    auto m = OverlayMount::mount({}, path("upper"), path("work"), path("merged"));
    ASSERT_TRUE(m.ok()) << m.error().message;
    ASSERT_TRUE(write_file_atomic(path("merged/f"), "x").ok());
    EXPECT_EQ(read("upper/f"), "x");
  }  // unmounted by the destructor
  EXPECT_FALSE(path_exists(path("merged/f")));
  // The temporary empty lower dir is gone.
  int entries = 0;
  for (const char* d : {"upper", "work", "merged"}) entries += path_exists(path(d));
  EXPECT_EQ(entries, 3);
  auto listing = std::filesystem::directory_iterator(dir_->path());
  EXPECT_EQ(std::distance(begin(listing), end(listing)), 3);
}

// Many layers with long names: absolute paths would pass the one-page mount
// option limit.
void mount_stack(const std::string& root, int layers, int name_width, const std::string& work_parent) {
  std::vector<std::string> lowers;
  for (int i = 0; i < layers; ++i) {
    std::string dir = path_join(root, fmt::format("snapshots/{:0{}x}", i, name_width));
    ASSERT_TRUE(make_dirs(dir).ok());
    ASSERT_TRUE(write_file_atomic(path_join(dir, fmt::format("f{}", i)), "x").ok());
    ASSERT_TRUE(write_file_atomic(path_join(dir, "top"), std::to_string(i)).ok());
    lowers.push_back(dir);
  }
  auto m = OverlayMount::mount(lowers, path_join(work_parent, "upper"),
                               path_join(work_parent, "work"), path_join(work_parent, "merged"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto top = read_file(path_join(work_parent, "merged/top"));
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(*top, std::to_string(layers - 1));
  for (int i = 0; i < layers; ++i) {
    EXPECT_TRUE(path_exists(path_join(work_parent, fmt::format("merged/f{}", i)))) << i;
  }
}

TEST_F(OverlayTest, SixtyLayerStackMounts) {
  // 60 * ~75 bytes of absolute paths: over a page; relative ones (50) fit.
  mount_stack(dir_->path(), 60, 40, dir_->path());
}

TEST_F(OverlayTest, StackBeyondOnePageOfRelativePathsMounts) {
  // 200 * ~75 bytes even relative: added one by one through fsconfig.
  mount_stack(dir_->path(), 200, 64, dir_->path());
}

TEST(OverlayMove, MovedMountUnmountsOnce) {
  auto dir = TempDir::create("/tmp", "overlay-test");
  ASSERT_TRUE(dir.ok());
  for (const char* d : {"l", "u", "w", "m"}) ASSERT_TRUE(make_dirs(path_join(dir->path(), d)).ok());
  auto m = OverlayMount::mount({path_join(dir->path(), "l")}, path_join(dir->path(), "u"),
                               path_join(dir->path(), "w"), path_join(dir->path(), "m"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  OverlayMount moved = std::move(m).value();
  EXPECT_TRUE(moved.unmount().ok());
  EXPECT_TRUE(moved.unmount().ok());
}

TEST(OverlayErrors, MissingLowerIsAClearError) {
  auto dir = TempDir::create("/tmp", "overlay-test");
  ASSERT_TRUE(dir.ok());
  auto m = OverlayMount::mount({"/nonexistent/lower"}, dir->path(), dir->path(), dir->path());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, "resolve /nonexistent/lower: No such file or directory");
}

}  // namespace
}  // namespace dfgen::snapshot
