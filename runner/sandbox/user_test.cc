#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>

#include <gtest/gtest.h>

#include "core/fs.h"
#include "runner/sandbox/rootfs.h"
#include "runner/sandbox/sandbox.h"

namespace dfgen::sandbox {
namespace {

constexpr const char* kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "app:x:1000:1000::/home/app:/bin/sh\n"
    "nohome:x:1001:1001::::\n"
    "broken line\n";
constexpr const char* kGroup =
    "root:x:0:\n"
    "daemon:x:1:\n"
    "app:x:1000:\n"
    "docker:x:999:app,daemon\n"
    "video:x:44:app\n"
    "staff:x:50:\n";

class ResolveUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("/tmp", "user-test");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(dir).value());
    ASSERT_TRUE(make_dirs(dir_->path() + "/etc").ok());
    ASSERT_TRUE(write_file_atomic(dir_->path() + "/etc/passwd", kPasswd).ok());
    ASSERT_TRUE(write_file_atomic(dir_->path() + "/etc/group", kGroup).ok());
  }
  std::string resolve(const std::string& user) {
    auto r = resolve_user(dir_->path(), user);
    if (!r.ok()) return "error: " + r.error().message;
    std::string out = fmt::format("{}:{} home={}", r->uid, r->gid, r->home);
    for (auto g : r->additional_gids) out += fmt::format(" +{}", g);
    return out;
  }
  std::optional<TempDir> dir_;
};

TEST_F(ResolveUserTest, Table) {
  struct Case { const char* user; const char* want; };
  const Case cases[] = {
      {"", "0:0 home=/root"},
      {"root", "0:0 home=/root"},
      {"app", "1000:1000 home=/home/app +999 +44"},
      {"1000", "1000:1000 home=/home/app +999 +44"},
      {"daemon", "1:1 home=/usr/sbin +999"},
      {"nohome", "1001:1001 home=/"},
      {"4242", "4242:0 home=/"},
      {"4242:4343", "4242:4343 home=/"},
      {"app:staff", "1000:50 home=/home/app"},
      {"app:50", "1000:50 home=/home/app"},
      {"1000:777", "1000:777 home=/home/app"},
      {"foo", "error: unable to find user foo: no matching entries in passwd file"},
      {"app:nogroup", "error: unable to find group nogroup: no matching entries in group file"},
      {"-1", "error: unable to find user -1: no matching entries in passwd file"},
      {"99999999999", "error: unable to find user 99999999999: no matching entries in passwd file"},
  };
  for (const auto& c : cases) EXPECT_EQ(resolve(c.user), c.want) << "USER " << c.user;
}

TEST_F(ResolveUserTest, NoPasswdFileAllowsNumbersOnly) {
  ASSERT_EQ(::unlink((dir_->path() + "/etc/passwd").c_str()), 0);
  EXPECT_EQ(resolve("123:45"), "123:45 home=/");
  EXPECT_EQ(resolve("app"), "error: unable to find user app: no matching entries in passwd file");
}

TEST_F(ResolveUserTest, SymlinkedPasswdStaysInsideTheRootfs) {
  // /etc/passwd -> /outside/passwd must read <rootfs>/outside/passwd, never the host's.
  ASSERT_EQ(::unlink((dir_->path() + "/etc/passwd").c_str()), 0);
  ASSERT_EQ(::symlink("/../../../../outside/passwd", (dir_->path() + "/etc/passwd").c_str()), 0);
  ASSERT_TRUE(make_dirs(dir_->path() + "/outside").ok());
  ASSERT_TRUE(write_file_atomic(dir_->path() + "/outside/passwd", "inside:x:7:8::/in:/bin/sh\n").ok());
  EXPECT_EQ(resolve("inside"), "7:8 home=/in");
  EXPECT_EQ(resolve("root"), "error: unable to find user root: no matching entries in passwd file");
}

TEST(OpenInRoot, FallbackRefusesSymlinks) {
  auto dir = TempDir::create("/tmp", "root-test");
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(make_dirs(dir->path() + "/etc").ok());
  ASSERT_TRUE(write_file_atomic(dir->path() + "/etc/real", "x").ok());
  ASSERT_EQ(::symlink("/etc/real", (dir->path() + "/etc/link").c_str()), 0);
  EXPECT_TRUE(open_in_root_nofollow(dir->path(), "/etc/real", O_RDONLY).ok());
  auto link = open_in_root_nofollow(dir->path(), "/etc/link", O_RDONLY);
  ASSERT_FALSE(link.ok());
  EXPECT_EQ(link.error().sys_errno, ELOOP);
  auto up = open_in_root_nofollow(dir->path(), "/../../etc/real", O_RDONLY);
  EXPECT_TRUE(up.ok());   // ".." stops at the root, lexically
}

TEST(MkdirInRoot, MakesMissingDirsInsideTheRoot) {
  auto dir = TempDir::create("/tmp", "root-test");
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(make_dirs(dir->path() + "/a").ok());
  ASSERT_EQ(::symlink("/", (dir->path() + "/a/up").c_str()), 0);
  ASSERT_TRUE(mkdir_in_root(dir->path(), "/a/up/b/c", 12, 34).ok());
  // The symlink to "/" led to the rootfs, not the host's root.
  struct stat st;
  ASSERT_EQ(::stat((dir->path() + "/b/c").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 12u);
  EXPECT_EQ(st.st_gid, 34u);
  EXPECT_FALSE(path_exists("/b/c"));
}

}  // namespace
}  // namespace dfgen::sandbox
