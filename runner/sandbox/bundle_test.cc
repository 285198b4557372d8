#include "runner/sandbox/bundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace dfgen::sandbox {
namespace {

ContainerSpec spec() {
  ContainerSpec s;
  s.rootfs = "/r";
  s.process.args = {"sh", "-c", "true"};
  s.process.env = {"A=1"};
  s.process.cwd = "/src";
  s.process.uid = 5;
  s.process.gid = 6;
  s.process.additional_gids = {7};
  s.hostname = "box";
  s.mounts = {{"/host/dir", "/dev/pipes", true}};
  return s;
}

const BundleFiles kFiles{"/b/hosts", "/b/resolv.conf", ""};

std::vector<std::string> namespace_types(const Json& config) {
  std::vector<std::string> out;
  for (const auto& ns : config["linux"]["namespaces"]) out.push_back(ns["type"]);
  return out;
}

TEST(OciConfig, Process) {
  Json c = oci_config(spec(), kFiles);
  EXPECT_EQ(c["ociVersion"], "1.0.2");
  EXPECT_EQ(c["process"]["args"], Json({"sh", "-c", "true"}));
  EXPECT_EQ(c["process"]["env"], Json({"A=1"}));
  EXPECT_EQ(c["process"]["cwd"], "/src");
  EXPECT_EQ(c["process"]["user"], Json({{"uid", 5}, {"gid", 6}, {"additionalGids", {7}}}));
  EXPECT_EQ(c["process"]["terminal"], false);
  EXPECT_EQ(c["process"]["noNewPrivileges"], false);
  EXPECT_EQ(c["process"]["capabilities"]["bounding"].size(), 14u);
  EXPECT_EQ(c["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
  EXPECT_EQ(c["root"], Json({{"path", "/r"}, {"readonly", false}}));
  EXPECT_EQ(c["hostname"], "box");
  EXPECT_THAT(c["linux"]["maskedPaths"].get<std::vector<std::string>>(),
              ::testing::Contains("/proc/kcore"));
  EXPECT_THAT(c["linux"]["readonlyPaths"].get<std::vector<std::string>>(),
              ::testing::Contains("/proc/sys"));
}

TEST(OciConfig, RootlessBindsTheHostsSysReadOnly) {
  BundleFiles files = kFiles;
  files.rootless = true;
  Json c = oci_config(spec(), files);
  EXPECT_EQ(c["mounts"][5], Json({{"destination", "/sys"}, {"type", "bind"}, {"source", "/sys"},
                                  {"options", {"rbind", "nosuid", "noexec", "nodev", "ro"}}}));
  EXPECT_EQ(oci_config(spec(), kFiles)["mounts"][5]["type"], "sysfs");
}

TEST(OciConfig, PrivilegedHasEveryCapabilityAndDeviceAndNoMasks) {
  ContainerSpec s = spec();
  s.privileged = true;
  Json c = oci_config(s, kFiles);
  EXPECT_THAT(c["process"]["capabilities"]["bounding"].get<std::vector<std::string>>(),
              ::testing::IsSupersetOf({"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_CHOWN"}));
  EXPECT_EQ(c["process"]["capabilities"]["effective"], c["process"]["capabilities"]["bounding"]);
  EXPECT_EQ(c["linux"]["maskedPaths"], Json::array());
  EXPECT_EQ(c["linux"]["readonlyPaths"], Json::array());
  EXPECT_EQ(c["linux"]["resources"]["devices"], Json::array({{{"allow", true}, {"access", "rwm"}}}));
  EXPECT_EQ(c["mounts"][5]["options"], Json({"nosuid", "noexec", "nodev", "rw"}));
  Json plain = oci_config(spec(), kFiles);
  EXPECT_THAT(plain["process"]["capabilities"]["bounding"].get<std::vector<std::string>>(),
              ::testing::Not(::testing::Contains("CAP_SYS_ADMIN")));
  EXPECT_EQ(plain["linux"]["resources"]["devices"], Json::array({{{"allow", false}, {"access", "rwm"}}}));
}

TEST(OciConfig, Mounts) {
  Json c = oci_config(spec(), kFiles);
  EXPECT_EQ(mount_destinations(c),
            (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                                      "/etc/resolv.conf", "/etc/hosts", "/dev/pipes"}));
  EXPECT_EQ(c["mounts"][6]["source"], "/b/resolv.conf");
  EXPECT_EQ(c["mounts"][7]["source"], "/b/hosts");
  EXPECT_EQ(c["mounts"][8], Json({{"destination", "/dev/pipes"}, {"type", "bind"},
                                  {"source", "/host/dir"}, {"options", {"rbind", "ro"}}}));
}

TEST(OciConfig, Networks) {
  ContainerSpec s = spec();
  s.network = Network::Host;
  EXPECT_EQ(namespace_types(oci_config(s, kFiles)),
            (std::vector<std::string>{"pid", "ipc", "uts", "mount"}));
  s.network = Network::None;
  Json none = oci_config(s, kFiles);
  EXPECT_EQ(none["linux"]["namespaces"][4], Json({{"type", "network"}}));
  s.network = Network::Private;
  BundleFiles with_ns = kFiles;
  with_ns.netns = "/b/netns";
  EXPECT_EQ(oci_config(s, with_ns)["linux"]["namespaces"][4],
            Json({{"type", "network"}, {"path", "/b/netns"}}));
}

TEST(HostsFile, LocalhostHostnameAndExtras) {
  ContainerSpec s = spec();
  s.extra_hosts = {"db:10.0.0.5", "v6:fe80::1"};
  auto hosts = hosts_file(s);
  ASSERT_TRUE(hosts.ok());
  EXPECT_EQ(*hosts,
            "127.0.0.1\tlocalhost box\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            "10.0.0.5\tdb\n"
            "fe80::1\tv6\n");
  s.extra_hosts = {"nocolon"};
  auto bad = hosts_file(s);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "invalid extra host \"nocolon\": want name:ip");
}

TEST(ResolvConf, SlirpOrHost) {
  EXPECT_EQ(resolv_conf("nameserver 1.1.1.1\n", true), "nameserver 10.0.2.3\n");
  EXPECT_EQ(resolv_conf("nameserver 1.1.1.1\n", false), "nameserver 1.1.1.1\n");
}

}  // namespace
}  // namespace dfgen::sandbox
