#include "runner/sandbox/network.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "runner/sandbox/reap.h"

extern char** environ;

namespace dfgen::sandbox {

namespace {

// In the calling (forked) process: enter a new netns, bring lo up, pin it.
// Returns 0 or an errno for the parent.
int make_netns_child(const char* ns_path) {
  if (::unshare(CLONE_NEWNET) != 0) return errno;
  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return errno;
  struct ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) return errno;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) return errno;
  ::close(sock);
  // Same mount namespace as the parent: the pin is visible there.
  if (::mount("/proc/self/ns/net", ns_path, nullptr, MS_BIND, nullptr) != 0) return errno;
  return 0;
}

Status wait_ready(int fd, pid_t pid) {
  struct pollfd p{fd, POLLIN, 0};
  int n;
  do { n = ::poll(&p, 1, 10000); } while (n < 0 && errno == EINTR);
  if (n == 0) return Error("slirp4netns: not ready after 10s");
  char c;
  if (::read(fd, &c, 1) != 1) {
    int status = 0;
    ::waitpid(pid, &status, WNOHANG);
    return Error("slirp4netns exited before configuring the network (see its log beside the netns)");
  }
  return ok_status();
}

}  // namespace

std::string find_slirp4netns() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t i = 0;
  while (i <= dirs.size()) {
    size_t j = dirs.find(':', i);
    if (j == std::string::npos) j = dirs.size();
    std::string candidate = path_join(dirs.substr(i, j - i), "slirp4netns");
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    i = j + 1;
  }
  return "";
}

Result<PrivateNetwork> PrivateNetwork::create(const std::string& ns_path,
                                              const std::string& slirp_binary) {
  {
    UniqueFd pin(::open(ns_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!pin) return Error::sys("create netns pin " + ns_path);
  }
  PrivateNetwork net(ns_path);   // from here on, the destructor cleans up
  pid_t pid = ::fork();
  if (pid < 0) return Error::sys("fork");
  if (pid == 0) ::_exit(make_netns_child(ns_path.c_str()));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Error::sys("wait for netns helper");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    net.ns_path_.clear();
    ::unlink(ns_path.c_str());
    return Error::sys("create network namespace", WIFEXITED(status) ? WEXITSTATUS(status) : EINTR);
  }
  if (slirp_binary.empty()) return net;

  int ready[2], exit_pipe[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return Error::sys("pipe");
  // Above fd 4, so the dup2s below don't clobber one another.
  UniqueFd ready_r(ready[0]), ready_w(::fcntl(ready[1], F_DUPFD_CLOEXEC, 10));
  ::close(ready[1]);
  if (::pipe2(exit_pipe, O_CLOEXEC) != 0) return Error::sys("pipe");
  UniqueFd exit_r(::fcntl(exit_pipe[0], F_DUPFD_CLOEXEC, 10));
  ::close(exit_pipe[0]);
  if (!ready_w || !exit_r) return Error::sys("dup pipe");
  net.slirp_exit_.reset(exit_pipe[1]);
  // The child's fds 3 and 4: the exit pipe's read end and the ready pipe.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, exit_r.get(), 3);
  posix_spawn_file_actions_adddup2(&fa, ready_w.get(), 4);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  // Its chatter goes to a log beside the pin.
  std::string log = ns_path + ".slirp4netns.log";
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<std::string> args = {slirp_binary, "--configure", "--mtu=65520",
                                   "--disable-host-loopback", "--exit-fd=3", "--ready-fd=4",
                                   "--netns-type=path", ns_path, "tap0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t slirp = -1;
  int rc = ::posix_spawn(&slirp, slirp_binary.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Error::sys("start " + slirp_binary, rc);
  net.slirp_pid_ = slirp;
  ready_w.reset();
  exit_r.reset();
  DFGEN_CHECK(wait_ready(ready_r.get(), slirp));
  return net;
}

PrivateNetwork::PrivateNetwork(PrivateNetwork&& o) noexcept
    : ns_path_(std::move(o.ns_path_)), slirp_pid_(o.slirp_pid_), slirp_exit_(std::move(o.slirp_exit_)) {
  o.ns_path_.clear();
  o.slirp_pid_ = -1;
}

PrivateNetwork::~PrivateNetwork() {
  if (slirp_pid_ > 0) {
    // slirp4netns exits when the exit fd closes, but its exit takes the
    // kernel ~15 ms (tearing down the tap device): a step need not wait for
    // that. A detached thread reaps it; if this process ends first, init does.
    slirp_exit_.reset();
    reap_in_background(slirp_pid_);
  }
  if (!ns_path_.empty()) {
    ::umount2(ns_path_.c_str(), MNT_DETACH);
    ::unlink(ns_path_.c_str());
  }
}

}  // namespace dfgen::sandbox
