#include "runner/userns/userns.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

namespace dfgen::userns {
namespace {

TEST(ParseSubid, ByNameOrUidInFileOrder) {
  const std::string file =
      "# comment\n"
      "alice:100000:65536\n"
      "bob:165536:65536\n"
      "1001:231072:1000\n"
      "alice:300000:10\n"
      "broken line\n"
      "alice:x:5\n"
      "alice:400000:0\n";
  auto r = parse_subid(file, "alice", 1001);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].start, 100000u);
  EXPECT_EQ(r[0].count, 65536u);
  EXPECT_EQ(r[1].start, 231072u);
  EXPECT_EQ(r[1].count, 1000u);
  EXPECT_EQ(r[2].start, 300000u);
  EXPECT_EQ(r[2].count, 10u);
  EXPECT_TRUE(parse_subid(file, "carol", 1002).empty());
  EXPECT_TRUE(parse_subid("", "alice", 1001).empty());
}

TEST(MapArgs, RootIsTheUserThenRangesBackToBack) {
  std::vector<std::string> want = {"0", "1000", "1", "1", "100000", "65536", "65537", "300000", "10"};
  EXPECT_EQ(map_args(1000, {{100000, 65536}, {300000, 10}}), want);
  EXPECT_EQ(map_args(1000, {}), (std::vector<std::string>{"0", "1000", "1"}));
}

TEST(ExplainUnshare, NamesTheSysctlAtFault) {
  std::map<std::string, std::string> sysctls;
  auto read = [&](const std::string& k) -> std::optional<std::string> {
    auto it = sysctls.find(k);
    if (it == sysctls.end()) return std::nullopt;
    return it->second;
  };
  EXPECT_EQ(explain_unshare_failure(EPERM, read), "create user namespace: Operation not permitted");
  sysctls["kernel/unprivileged_userns_clone"] = "0";
  EXPECT_EQ(explain_unshare_failure(EPERM, read),
            "create user namespace: Operation not permitted: unprivileged user namespaces are "
            "disabled (sysctl kernel.unprivileged_userns_clone=0); enable them with `sysctl -w "
            "kernel.unprivileged_userns_clone=1` (as root)");
  sysctls["kernel/unprivileged_userns_clone"] = "1";
  sysctls["user/max_user_namespaces"] = "0";
  EXPECT_EQ(explain_unshare_failure(ENOSPC, read),
            "create user namespace: No space left on device: user namespaces are disabled (sysctl "
            "user.max_user_namespaces=0); allow them with `sysctl -w "
            "user.max_user_namespaces=15000` (as root)");
  sysctls["user/max_user_namespaces"] = "3";
  EXPECT_EQ(explain_unshare_failure(ENOSPC, read),
            "create user namespace: No space left on device: the limit of user namespaces is "
            "reached (sysctl user.max_user_namespaces=3)");
  sysctls["kernel/apparmor_restrict_unprivileged_userns"] = "1";
  EXPECT_NE(explain_unshare_failure(EACCES, read).find("kernel.apparmor_restrict_unprivileged_userns=1"),
            std::string::npos);
}

TEST(InUserNamespace, FalseInTheInitialOneTrueInANewOne) {
  // The tests run as root in the initial user namespace.
  ASSERT_EQ(::getuid(), 0u);
  EXPECT_FALSE(in_user_namespace());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWUSER) != 0) ::_exit(2);
    ::_exit(in_user_namespace() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ReexecAsRoot, RootGoesOnInThisProcess) {
  char arg0[] = "dfrun";
  char* argv[] = {arg0, nullptr};
  auto r = reexec_as_root(argv);
  ASSERT_TRUE(r.ok()) << r.error().render();
  EXPECT_FALSE(r->has_value());
}

}  // namespace
}  // namespace dfgen::userns
