#include "runner/sandbox/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "core/fs.h"
#include "runner/sandbox/bundle.h"
#include "runner/sandbox/network.h"
#include "runner/sandbox/reap.h"
#include "runner/sandbox/rootfs.h"
#include "runner/userns/userns.h"

extern char** environ;

namespace dfgen::sandbox {

namespace {

// SIGINT/SIGTERM/SIGHUP while containers run: the handler makes a pipe
// readable (never drained), so every run() waiting on it kills its container.
// Installed while at least one run() is active; the previous handlers are
// restored after the last.
class InterruptGuard {
 public:
  InterruptGuard() {
    std::lock_guard lock(mu_);
    if (users_++ > 0) return;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) { read_fd_ = write_fd_ = -1; return; }
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    signal_ = 0;
    struct sigaction sa{};
    sa.sa_handler = &InterruptGuard::handle;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~InterruptGuard() {
    std::lock_guard lock(mu_);
    if (--users_ > 0) return;
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
    if (read_fd_ >= 0) { ::close(read_fd_); ::close(write_fd_); }
    read_fd_ = write_fd_ = -1;
  }
  static int fd() { return read_fd_; }
  static int signal_number() { return signal_; }

 private:
  static void handle(int sig) {
    signal_ = sig;
    int saved = errno;
    if (write_fd_ >= 0) (void)!::write(write_fd_, "x", 1);
    errno = saved;
  }
  static constexpr std::array<int, 3> kSignals = {SIGINT, SIGTERM, SIGHUP};
  static inline std::mutex mu_;
  static inline int users_ = 0;
  static inline int read_fd_ = -1;
  static inline int write_fd_ = -1;
  static inline volatile sig_atomic_t signal_ = 0;
  static inline struct sigaction old_[3];
};

std::string unique_id() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  return fmt::format("dfgen-{}-{}-{:08x}", ::getpid(), counter++, rd());
}

// Spawns argv with the given stdin, stdout/stderr inherited, in its own
// process group (a terminal's ^C reaches us, and we decide what runc does).
Result<pid_t> spawn(const std::vector<std::string>& args, int stdin_fd) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (stdin_fd >= 0) posix_spawn_file_actions_adddup2(&fa, stdin_fd, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Error::sys("start " + args[0], rc);
  return pid;
}

// The exit code of a process (128+signal when killed).
Result<int> wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Error::sys("wait for process");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs a short runc command (kill, delete), its output discarded.
void runc_quietly(const std::vector<std::string>& args) {
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto pid = spawn(args, null.get());
  if (pid.ok()) (void)wait_exit(*pid);
}

// Waits for `pid`, or for an interrupt (then returns nullopt).
Result<std::optional<int>> wait_or_interrupt(pid_t pid) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  for (;;) {
    struct pollfd fds[2] = {{InterruptGuard::fd(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    // Without pidfds (Linux < 5.3) poll the child every 50 ms.
    int n = ::poll(fds, pidfd ? 2 : 1, pidfd ? -1 : 50);
    if (n < 0 && errno != EINTR) return Error::sys("poll");
    if (n > 0 && (fds[0].revents & POLLIN)) return std::optional<int>();
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r < 0 && errno != EINTR) return Error::sys("wait for runc");
    if (r == pid) return std::optional<int>(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
}

// Kills and deletes the container when dfrun dies without saying it is done
// (SIGKILL, a crash): runc runs in its own process group, so nothing else
// would stop it, and its state dir and cgroups would stay. The guard is a
// shell in a session of its own (a kill of our session or group misses it)
// reading a pipe only we write: first runc's pid, then "done" once we have
// dealt with the container ourselves. EOF before "done" means we died: it
// repeats `runc delete --force` while runc lives (it may still be creating
// the container), once more after, then removes what a runc killed before it
// recorded the container leaves: its state dir and empty cgroups. Without a
// pid (we died right after starting runc) it repeats the delete for 2 s.
class ContainerGuard {
 public:
  // `runc`: the runc command line before its subcommand; `state`: its --root.
  static Result<ContainerGuard> start(const std::vector<std::string>& runc, const std::string& state,
                                      const std::string& id) {
    static const char* kScript =
        "read -r pid || pid=\n"
        "read -r word && [ \"$word\" = done ] && exit 0\n"
        "id=$1; state=$2; shift 2; n=0\n"
        "while [ $n -lt 600 ]; do\n"
        "  \"$@\" delete --force \"$id\"\n"
        "  if [ -n \"$pid\" ]; then kill -0 \"$pid\" || break; elif [ $n -ge 40 ]; then break; fi\n"
        "  sleep 0.05; n=$((n + 1))\n"
        "done\n"
        "\"$@\" delete --force \"$id\"\n"
        "rm -rf \"$state/$id\"\n"
        "for d in /sys/fs/cgroup/\"$id\" /sys/fs/cgroup/*/\"$id\"; do\n"
        "  n=0; while [ -d \"$d\" ] && ! rmdir \"$d\" && [ $n -lt 20 ]; do sleep 0.05; n=$((n + 1)); done\n"
        "done\n"
        "exit 0\n";
    std::vector<std::string> args = {"sh", "-c", kScript, "dfrun-container-guard", id, state};
    args.insert(args.end(), runc.begin(), runc.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return Error::sys("pipe");
    UniqueFd read_end(p[0]), write_end(p[1]);
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null) return Error::sys("open /dev/null");
    pid_t pid = ::fork();
    if (pid < 0) return Error::sys("fork");
    if (pid == 0) {
      // Only async-signal-safe calls: other threads may hold locks.
      ::setsid();
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(s, SIG_DFL);
      if (::dup2(read_end.get(), 0) < 0 || ::dup2(null.get(), 1) < 0 || ::dup2(null.get(), 2) < 0) ::_exit(127);
      ::execve("/bin/sh", argv.data(), environ);
      ::_exit(127);
    }
    return ContainerGuard(pid, std::move(write_end));
  }
  ContainerGuard(ContainerGuard&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), pipe_(std::move(o.pipe_)), watching_(o.watching_) {}
  ContainerGuard& operator=(ContainerGuard&&) = delete;
  ~ContainerGuard() { release(); }

  void watch(pid_t runc_pid) {
    say(fmt::format("{}\n", runc_pid));
    watching_ = true;
  }
  // We dealt with the container: the guard exits without acting. It is
  // reaped on a detached thread: the step need not wait for a shell to be
  // scheduled and exit (if this process ends first, init reaps it).
  void release() {
    if (pid_ < 0) return;
    say(watching_ ? "done\n" : "0\ndone\n");
    pipe_.reset();
    reap_in_background(pid_);
    pid_ = -1;
  }

 private:
  ContainerGuard(pid_t pid, UniqueFd pipe) : pid_(pid), pipe_(std::move(pipe)) {}
  void say(const std::string& line) {
    if (pipe_) (void)!::write(pipe_.get(), line.data(), line.size());
  }
  pid_t pid_ = -1;
  UniqueFd pipe_;
  bool watching_ = false;
};

// runc's own failure (bad config, mount refused...) from its JSON log, as
// opposed to the process exiting non-zero.
std::optional<std::string> runc_error(const std::string& log_path) {
  auto log = read_file(log_path);
  if (!log.ok()) return std::nullopt;
  std::optional<std::string> last;
  size_t i = 0;
  while (i < log->size()) {
    size_t j = log->find('\n', i);
    if (j == std::string::npos) j = log->size();
    auto line = Json::parse(log->substr(i, j - i), nullptr, false);
    if (line.is_object() && line.value("level", "") == "error") last = line.value("msg", "");
    i = j + 1;
  }
  return last;
}

// Feeds `data` to the write end of a pipe, then closes it. A process that
// exits without reading everything gives EPIPE, which ends the feed.
void feed(UniqueFd fd, std::string data) {
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

Result<int> run_runc(const std::string& bundle, const std::string& stdin_data, bool rootless) {
  std::string id = unique_id();
  std::string state = path_join(bundle, "runc");
  std::string log = path_join(bundle, "runc.log");
  // Rootless: runc shares our user namespace and leaves cgroups alone (the
  // cgroup fs is not ours to write).
  std::vector<std::string> runc = {"runc", "--root", state};
  if (rootless) runc.push_back("--rootless=true");
  std::vector<std::string> args = runc;
  args.insert(args.end(), {"--log", log, "--log-format", "json", "run", "--bundle", bundle, id});

  UniqueFd stdin_read, stdin_write;
  if (stdin_data.empty()) {
    stdin_read.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!stdin_read) return Error::sys("open /dev/null");
  } else {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return Error::sys("pipe");
    stdin_read.reset(p[0]);
    stdin_write.reset(p[1]);
  }
  InterruptGuard interrupts;
  DFGEN_TRY(ContainerGuard guard, ContainerGuard::start(runc, state, id));
  DFGEN_TRY(pid_t pid, spawn(args, stdin_read.get()));
  guard.watch(pid);
  stdin_read.reset();
  std::thread feeder;
  if (stdin_write) feeder = std::thread(feed, std::move(stdin_write), stdin_data);

  auto waited = wait_or_interrupt(pid);
  if (!waited.ok() || !waited->has_value()) {
    // Interrupted (or lost track of runc): the container must not outlive us.
    std::vector<std::string> kill = runc, del = runc;
    kill.insert(kill.end(), {"kill", id, "KILL"});
    del.insert(del.end(), {"delete", "--force", id});
    runc_quietly(kill);
    (void)wait_exit(pid);
    runc_quietly(del);
    if (feeder.joinable()) feeder.join();
    if (!waited.ok()) return std::move(waited).error();
    Error e(fmt::format("interrupted by signal {}; container killed",
                        static_cast<int>(InterruptGuard::signal_number())));
    e.exit_code = 128 + InterruptGuard::signal_number();
    return e;
  }
  if (feeder.joinable()) feeder.join();
  int code = **waited;
  if (code != 0) {
    if (auto msg = runc_error(log)) return Error("runc: " + *msg);
  }
  return code;
}

}  // namespace

Result<int> run(const ContainerSpec& spec, const std::string& work_dir) {
  if (spec.process.args.empty()) return Error("run container: no command");
  DFGEN_TRY(std::string rootfs, absolute_path(spec.rootfs));
  DFGEN_TRY(std::string bundle, absolute_path(work_dir));
  ContainerSpec s = spec;
  s.rootfs = rootfs;

  BundleFiles files{path_join(bundle, "hosts"), path_join(bundle, "resolv.conf"), "",
                    userns::in_user_namespace()};
  if (spec.privileged && files.rootless)
    return Error("RUN --security=insecure needs a build run as root: a rootless build cannot grant "
                 "the container more than its own user namespace has");
  std::optional<PrivateNetwork> net;
  if (spec.network == Network::Private) {
    // Without slirp4netns a private network has only loopback, like None.
    if (std::string slirp = find_slirp4netns(); !slirp.empty()) {
      // Root opens any device; a rootless slirp4netns needs the tun device
      // open to all, as udev makes it on most hosts.
      if (files.rootless && ::access("/dev/net/tun", R_OK | W_OK) != 0) {
        return Error(fmt::format("open /dev/net/tun for slirp4netns: {}: rootless builds need it "
                                 "open to all users (`chmod 0666 /dev/net/tun` as root, as udev "
                                 "sets it on most hosts)",
                                 std::strerror(errno)));
      }
      DFGEN_TRY(auto n, PrivateNetwork::create(path_join(bundle, "netns"), slirp));
      net.emplace(std::move(n));
      files.netns = net->path();
    }
  }
  auto host_resolv = read_file("/etc/resolv.conf");
  DFGEN_TRY(std::string hosts, hosts_file(s));
  DFGEN_CHECK(write_file(files.hosts, hosts));
  DFGEN_CHECK(write_file(files.resolv_conf,
                                resolv_conf(host_resolv.ok() ? *host_resolv : "", net.has_value())));
  DFGEN_CHECK(mkdir_in_root(rootfs, s.process.cwd.empty() ? "/" : s.process.cwd));
  for (const auto& m : s.mounts) {
    if (!path_exists(m.source)) return Error(fmt::format("bind mount source {}: not found", m.source));
  }

  Json config = oci_config(s, files);
  DFGEN_CHECK(write_file(path_join(bundle, "config.json"), config.dump(2)));
  MountStubs stubs(rootfs, mount_destinations(config));
  auto result = run_runc(bundle, spec.process.stdin_data, files.rootless);
  stubs.cleanup();
  return result;
}

}  // namespace dfgen::sandbox
