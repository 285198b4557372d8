// Runs real containers: needs root, runc and the busybox fixture
// (scripts/fixtures.sh busybox, made on demand).
#include "runner/sandbox/sandbox.h"

#include <fcntl.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <functional>
#include <optional>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/fs.h"
#include "tests/fixtures/fixtures.h"

namespace dfgen::sandbox {
namespace {

using ::testing::HasSubstr;

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create("/tmp", "sandbox-test");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    dir_.emplace(std::move(dir).value());
    rootfs_ = path_join(dir_->path(), "rootfs");
    work_ = path_join(dir_->path(), "work");
    ASSERT_TRUE(make_dirs(rootfs_).ok());
    ASSERT_TRUE(make_dirs(work_).ok());
    std::string tar = dfgen::testing::fixture("busybox", /*rootfs=*/true);
    ASSERT_FALSE(tar.empty()) << "scripts/fixtures.sh busybox failed";
    std::string cmd = "tar -xf " + tar + " -C " + rootfs_;
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    spec_.rootfs = rootfs_;
    spec_.process.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    spec_.network = Network::None;
  }

  // Runs the spec with our stdout going to a file; returns exit code + output.
  std::pair<int, std::string> run_capturing(const std::vector<std::string>& args) {
    spec_.process.args = args;
    std::string out_path = path_join(dir_->path(), "stdout");
    fflush(stdout);
    UniqueFd saved(::dup(1));
    UniqueFd out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ::dup2(out.get(), 1);
    auto r = run(spec_, work_);
    ::dup2(saved.get(), 1);
    EXPECT_TRUE(r.ok()) << r.error().message;
    auto text = read_file(out_path);
    return {r.ok() ? *r : -1, text.ok() ? *text : ""};
  }

  std::optional<TempDir> dir_;
  std::string rootfs_, work_;
  ContainerSpec spec_;
};

TEST_F(SandboxTest, ExitCodeAndOutput) {
  auto [code, out] = run_capturing({"sh", "-c", "echo hi; exit 3"});
  EXPECT_EQ(code, 3);
  EXPECT_EQ(out, "hi\n");
}

TEST_F(SandboxTest, EnvAndCreatedCwd) {
  spec_.process.env.push_back("GREETING=hello world");
  spec_.process.cwd = "/work/dir";
  auto [code, out] = run_capturing({"sh", "-c", "echo \"$GREETING\"; pwd"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "hello world\n/work/dir\n");
  EXPECT_TRUE(is_directory(rootfs_ + "/work/dir"));
}

TEST_F(SandboxTest, UserAndGroups) {
  spec_.process.uid = 1000;
  spec_.process.gid = 1001;
  spec_.process.additional_gids = {1002, 65534};
  auto [code, out] = run_capturing({"sh", "-c", "id -u; id -g; id -G"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "1000\n1001\n1001 1002 65534\n");
}

TEST_F(SandboxTest, StdinData) {
  spec_.process.stdin_data = "line one\nline two\n";
  auto [code, out] = run_capturing({"sh", "-c", "wc -l; echo done"});
  EXPECT_EQ(code, 0);
  EXPECT_THAT(out, HasSubstr("2\ndone\n"));
}

TEST_F(SandboxTest, StdinIsEmptyWithoutData) {
  auto [code, out] = run_capturing({"sh", "-c", "cat; echo end"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "end\n");
}

TEST_F(SandboxTest, BindMounts) {
  std::string src = path_join(dir_->path(), "shared");
  ASSERT_TRUE(make_dirs(src).ok());
  ASSERT_TRUE(write_file_atomic(src + "/in.txt", "from host\n").ok());
  spec_.mounts.push_back({src, "/mnt/ro", true});
  spec_.mounts.push_back({src, "/mnt/rw", false});
  auto [code, out] = run_capturing(
      {"sh", "-c", "cat /mnt/ro/in.txt; touch /mnt/ro/x 2>/dev/null || echo ro; "
                   "echo back > /mnt/rw/out.txt"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "from host\nro\n");
  auto back = read_file(src + "/out.txt");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "back\n");
  // The mount points runc made are not left in the rootfs.
  EXPECT_FALSE(path_exists(rootfs_ + "/mnt/ro"));
}

TEST_F(SandboxTest, HostsHostnameAndNoStubsLeft) {
  spec_.hostname = "builder";
  spec_.extra_hosts = {"db:10.1.2.3"};
  ASSERT_EQ(::unlink((rootfs_ + "/etc/passwd").c_str()), 0);
  auto [code, out] = run_capturing({"sh", "-c", "hostname; grep -c builder /etc/hosts; grep db /etc/hosts"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "builder\n1\n10.1.2.3\tdb\n");
  EXPECT_FALSE(path_exists(rootfs_ + "/etc/hosts"));
  EXPECT_FALSE(path_exists(rootfs_ + "/etc/resolv.conf"));
}

TEST_F(SandboxTest, NetworkNoneHasOnlyLoopback) {
  auto [code, out] = run_capturing({"sh", "-c", "ls /sys/class/net"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "lo\n");
}

// A TCP listener on `ip` (any port); accepts nothing, connects succeed.
struct Listener {
  explicit Listener(const char* ip) {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, ip, &a.sin_addr);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd.get(), 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  UniqueFd fd;
  int port = 0;
};

// The host's first non-loopback IPv4 address.
std::string host_address() {
  ifaddrs* list = nullptr;
  std::string out;
  if (::getifaddrs(&list) != 0) return out;
  for (auto* i = list; i && out.empty(); i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK)) continue;
    char buf[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    out = buf;
  }
  ::freeifaddrs(list);
  return out;
}

TEST_F(SandboxTest, PrivateNetworkReachesOutButNotHostLoopback) {
  std::string ip = host_address();
  ASSERT_FALSE(ip.empty());
  Listener outside(ip.c_str());
  Listener loopback("127.0.0.1");
  spec_.network = Network::Private;
  auto [code, out] = run_capturing(
      {"sh", "-c", fmt::format("nc -w 3 {} {} -e /bin/true && echo out-ok; "
                               "nc -w 3 10.0.2.2 {} -e /bin/true || echo host-lo-blocked; "
                               "nc -w 3 127.0.0.1 {} -e /bin/true || echo lo-is-own",
                               ip, outside.port, loopback.port, loopback.port)});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "out-ok\nhost-lo-blocked\nlo-is-own\n");
}

TEST_F(SandboxTest, InterruptKillsTheContainer) {
  spec_.process.args = {"sleep", "60"};
  std::thread killer([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    ::kill(::getpid(), SIGTERM);
  });
  auto start = std::chrono::steady_clock::now();
  auto r = run(spec_, work_);
  killer.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "interrupted by signal 15; container killed");
  EXPECT_EQ(r.error().exit_code, 143);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  // runc knows no container any more.
  std::string list = "runc --root " + work_ + "/runc list -q > " + work_ + "/list";
  ASSERT_EQ(std::system(list.c_str()), 0);
  auto ids = read_file(work_ + "/list");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, "");
}

TEST_F(SandboxTest, MissingCommandIsTheProcessError) {
  spec_.process.args = {"/no/such/binary"};
  auto r = run(spec_, work_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("runc: "));
  EXPECT_THAT(r.error().message, HasSubstr("/no/such/binary"));
}

}  // namespace
}  // namespace dfgen::sandbox
