#include "runner/sandbox/bundle.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>

#include "core/fs.h"

namespace dfgen::sandbox {

namespace {

// Docker's default capability set.
const char* const kDefaultCaps[] = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER",           "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",  "CAP_SETFCAP",          "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
};

// Docker's masked and read-only paths under /proc and /sys.
const char* const kMaskedPaths[] = {
    "/proc/asound",        "/proc/acpi",        "/proc/kcore",       "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list",  "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi",          "/sys/firmware",     "/sys/devices/virtual/powercap",
};
const char* const kReadonlyPaths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

// The capabilities by number, for privileged containers.
const char* const kAllCaps[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

// Our own bounding set (CapBnd of /proc/self/status): a privileged container
// gets every capability in it. runc cannot grant one we lack (dfrun may run
// in a container that dropped some), nor one the kernel does not know.
uint64_t own_bounding_set() {
  auto status = read_file("/proc/self/status");
  if (!status.ok()) return 0;
  size_t at = status->find("\nCapBnd:");
  if (at == std::string::npos) return 0;
  return std::strtoull(status->c_str() + at + 8, nullptr, 16);
}

Json capabilities(bool privileged) {
  Json caps = Json::array();
  if (!privileged) {
    for (const char* c : kDefaultCaps) caps.push_back(c);
    return caps;
  }
  uint64_t bounding = own_bounding_set();
  for (size_t i = 0; i < std::size(kAllCaps); ++i)
    if (bounding & (uint64_t{1} << i)) caps.push_back(kAllCaps[i]);
  return caps;
}

Json mount(const std::string& dest, const std::string& type, const std::string& source,
           std::vector<std::string> options) {
  return Json{{"destination", dest}, {"type", type}, {"source", source}, {"options", options}};
}

Json mounts(const ContainerSpec& spec, const BundleFiles& files) {
  Json m = Json::array();
  m.push_back(mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}));
  m.push_back(mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  m.push_back(mount("/dev/pts", "devpts", "devpts",
                    {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  m.push_back(mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  m.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  // sysfs belongs to a network namespace: the host's is bound read-only when
  // sharing it (runc falls back to a bind mount when sysfs is refused).
  // Rootless, a sysfs mount needs a netns our user namespace owns and no
  // hidden parts of the host's: the host's is bound read-only instead.
  if (files.rootless) {
    m.push_back(mount("/sys", "bind", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}));
  } else {
    m.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", spec.privileged ? "rw" : "ro"}));
  }
  m.push_back(mount("/etc/resolv.conf", "bind", files.resolv_conf, {"rbind", "ro", "nosuid", "nodev", "noexec"}));
  m.push_back(mount("/etc/hosts", "bind", files.hosts, {"rbind", "ro", "nosuid", "nodev", "noexec"}));
  for (const auto& b : spec.mounts) {
    m.push_back(mount(b.destination, "bind", b.source, {"rbind", b.readonly ? "ro" : "rw"}));
  }
  return m;
}

Json namespaces(const ContainerSpec& spec, const BundleFiles& files) {
  Json ns = Json::array();
  for (const char* type : {"pid", "ipc", "uts", "mount"}) ns.push_back({{"type", type}});
  if (spec.network != Network::Host) {
    Json net{{"type", "network"}};
    if (!files.netns.empty()) net["path"] = files.netns;
    ns.push_back(std::move(net));
  }
  return ns;
}

}  // namespace

Json oci_config(const ContainerSpec& spec, const BundleFiles& files) {
  const ProcessSpec& p = spec.process;
  // Docker's 1048576 open files, unless our own hard limit is lower (raising
  // it would need CAP_SYS_RESOURCE in the init user namespace).
  struct rlimit ours{};
  uint64_t nofile = 1048576;
  if (::getrlimit(RLIMIT_NOFILE, &ours) == 0 && ours.rlim_max != RLIM_INFINITY) {
    nofile = std::min<uint64_t>(nofile, ours.rlim_max);
  }
  Json caps = capabilities(spec.privileged);
  Json process{
      {"terminal", false},
      {"user", {{"uid", p.uid}, {"gid", p.gid}, {"additionalGids", p.additional_gids}}},
      {"args", p.args},
      {"env", p.env},
      {"cwd", p.cwd.empty() ? "/" : p.cwd},
      {"capabilities",
       {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
      {"rlimits", Json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", nofile}, {"soft", nofile}}})},
      {"noNewPrivileges", false},
  };
  // Devices: deny all; runc adds its defaults (null, zero, full, tty, random,
  // urandom). Privileged: all allowed, nothing masked.
  Json linux_config{
      {"namespaces", namespaces(spec, files)},
      {"maskedPaths", spec.privileged ? Json::array() : Json(kMaskedPaths)},
      {"readonlyPaths", spec.privileged ? Json::array() : Json(kReadonlyPaths)},
      {"resources", {{"devices", Json::array({{{"allow", spec.privileged}, {"access", "rwm"}}})}}},
  };
  return Json{
      {"ociVersion", "1.0.2"},
      {"process", std::move(process)},
      {"root", {{"path", spec.rootfs}, {"readonly", false}}},
      {"hostname", spec.hostname},
      {"mounts", mounts(spec, files)},
      {"linux", std::move(linux_config)},
  };
}

Result<std::string> hosts_file(const ContainerSpec& spec) {
  std::string out = "127.0.0.1\tlocalhost";
  if (!spec.hostname.empty() && spec.hostname != "localhost") out += " " + spec.hostname;
  out += "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const auto& h : spec.extra_hosts) {
    auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == h.size()) {
      return Error(fmt::format("invalid extra host \"{}\": want name:ip", h));
    }
    out += fmt::format("{}\t{}\n", h.substr(colon + 1), h.substr(0, colon));
  }
  return out;
}

std::string resolv_conf(const std::string& host_resolv_conf, bool slirp) {
  if (slirp) return "nameserver 10.0.2.3\n";
  return host_resolv_conf;
}

std::vector<std::string> mount_destinations(const Json& config) {
  std::vector<std::string> out;
  for (const auto& m : config.at("mounts")) out.push_back(m.at("destination").get<std::string>());
  return out;
}

}  // namespace dfgen::sandbox
