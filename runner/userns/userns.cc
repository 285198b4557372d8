#include "runner/userns/userns.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "core/fs.h"

extern char** environ;

namespace dfgen::userns {

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

std::optional<uint32_t> parse_u32(const std::string& s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::string user_name(uid_t uid) {
  struct passwd pw{}, *found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found) return pw.pw_name;
  return std::to_string(uid);
}

// `tool` on PATH, else in the usual system dirs (runuser and sudo may give a
// short PATH); "" when absent.
std::string find_tool(const std::string& tool) {
  const char* env = std::getenv("PATH");
  std::string dirs = std::string(env ? env : "") + ":/usr/bin:/usr/sbin:/bin:/sbin";
  std::istringstream in(dirs);
  for (std::string dir; std::getline(in, dir, ':');) {
    if (dir.empty()) continue;
    std::string candidate = path_join(dir, tool);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

Result<std::vector<IdRange>> ranges_for(const std::string& file, const char* kind,
                                        const std::string& name, uid_t uid) {
  auto content = read_file(file);
  std::vector<IdRange> ranges;
  if (content.ok()) ranges = parse_subid(*content, name, uid);
  if (ranges.empty()) {
    return Error(fmt::format(
        "no subordinate {} range for {} in {}: add one with `usermod --add-subuids 100000-165535 "
        "--add-subgids 100000-165535 {}` (as root)",
        kind, name, file, name));
  }
  return ranges;
}

// Runs a map helper, its output captured for the error.
Status run_map_tool(const std::string& tool, pid_t pid, const std::vector<std::string>& triples) {
  std::vector<std::string> args = {tool, std::to_string(pid)};
  args.insert(args.end(), triples.begin(), triples.end());
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Error::sys("pipe");
  UniqueFd out_r(out[0]), out_w(out[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 2);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child = -1;
  int rc = ::posix_spawn(&child, tool.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Error::sys("start " + tool, rc);
  out_w.reset();
  std::string said;
  char buf[512];
  for (ssize_t n; (n = ::read(out_r.get(), buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    said.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {}
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok_status();
  std::string cmd;
  for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  return Error(fmt::format("{} failed: {}", cmd, said.empty() ? "no output" : trim(said)));
}

// The child reports a failure as "<errno> <what>" on the status pipe.
[[noreturn]] void child_fail(int fd, const char* what) {
  int err = errno;
  std::string msg = fmt::format("{} {}", err, what);
  (void)!::write(fd, msg.data(), msg.size());
  ::_exit(125);
}

[[noreturn]] void child_main(int status_w, int go_r, char** argv) {
  if (::unshare(CLONE_NEWUSER) != 0) child_fail(status_w, "unshare");
  if (::write(status_w, "U", 1) != 1) ::_exit(125);
  char c;
  if (::read(go_r, &c, 1) != 1) ::_exit(125);   // the parent could not map us
  if (::setresgid(0, 0, 0) != 0) child_fail(status_w, "become gid 0 in the user namespace");
  if (::setgroups(0, nullptr) != 0) child_fail(status_w, "drop supplementary groups");
  if (::setresuid(0, 0, 0) != 0) child_fail(status_w, "become uid 0 in the user namespace");
  if (::unshare(CLONE_NEWNS) != 0) child_fail(status_w, "create mount namespace");
  // Our overlays and netns pins stay ours.
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    child_fail(status_w, "make mounts private");
  // Set after the uid change (which clears it): we go when the parent goes.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  ::execv("/proc/self/exe", argv);
  child_fail(status_w, "execute /proc/self/exe");
}

volatile pid_t g_child = -1;
void forward_signal(int sig) {
  int saved = errno;
  if (g_child > 0) ::kill(g_child, sig);
  errno = saved;
}

// Reads the status pipe until EOF (the child exec'd or exited).
std::string read_all(int fd) {
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 125;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::optional<std::string> read_proc_sys(const std::string& name) {
  auto v = read_file("/proc/sys/" + name);
  if (!v.ok()) return std::nullopt;
  return trim(*v);
}

Error child_error(const std::string& report) {
  size_t space = report.find(' ');
  int err = std::atoi(report.substr(0, space).c_str());
  std::string what = space == std::string::npos ? "set up" : report.substr(space + 1);
  if (what == "unshare") return Error(explain_unshare_failure(err, read_proc_sys));
  return Error::sys(what, err).context("enter user namespace");
}

}  // namespace

std::vector<IdRange> parse_subid(const std::string& content, const std::string& name, uint32_t id) {
  std::vector<IdRange> out;
  std::istringstream in(content);
  std::string id_text = std::to_string(id);
  for (std::string line; std::getline(in, line);) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    size_t a = line.find(':');
    size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string who = line.substr(0, a);
    if (who != name && who != id_text) continue;
    auto start = parse_u32(line.substr(a + 1, b - a - 1));
    auto count = parse_u32(line.substr(b + 1));
    if (!start || !count || *count == 0) continue;
    out.push_back({*start, *count});
  }
  return out;
}

std::vector<std::string> map_args(uint32_t id, const std::vector<IdRange>& ranges) {
  std::vector<std::string> out = {"0", std::to_string(id), "1"};
  uint64_t inside = 1;
  for (const auto& r : ranges) {
    if (inside + r.count > UINT32_MAX) break;
    out.insert(out.end(), {std::to_string(inside), std::to_string(r.start), std::to_string(r.count)});
    inside += r.count;
  }
  return out;
}

bool in_user_namespace() {
  auto map = read_file("/proc/self/uid_map");
  if (!map.ok()) return false;
  std::istringstream in(*map);
  uint64_t inside = 0, outside = 0, count = 0;
  if (!(in >> inside >> outside >> count)) return true;   // a new namespace, not mapped yet
  uint64_t more;
  bool single = !(in >> more);
  return !(single && inside == 0 && outside == 0 && count == 4294967295ull);
}

std::string explain_unshare_failure(
    int err, const std::function<std::optional<std::string>(const std::string&)>& read_sysctl) {
  std::string base = fmt::format("create user namespace: {}", std::strerror(err));
  if (read_sysctl("kernel/unprivileged_userns_clone") == "0") {
    return base + ": unprivileged user namespaces are disabled (sysctl "
                  "kernel.unprivileged_userns_clone=0); enable them with `sysctl -w "
                  "kernel.unprivileged_userns_clone=1` (as root)";
  }
  if (read_sysctl("user/max_user_namespaces") == "0") {
    return base + ": user namespaces are disabled (sysctl user.max_user_namespaces=0); allow "
                  "them with `sysctl -w user.max_user_namespaces=15000` (as root)";
  }
  if (read_sysctl("kernel/apparmor_restrict_unprivileged_userns") == "1") {
    return base + ": AppArmor restricts unprivileged user namespaces (sysctl "
                  "kernel.apparmor_restrict_unprivileged_userns=1); allow them with `sysctl -w "
                  "kernel.apparmor_restrict_unprivileged_userns=0` or an AppArmor profile for "
                  "dfrun that grants `userns,`";
  }
  if (err == ENOSPC) {
    return base + fmt::format(": the limit of user namespaces is reached (sysctl "
                              "user.max_user_namespaces={})",
                              read_sysctl("user/max_user_namespaces").value_or("?"));
  }
  return base;
}

Result<std::optional<int>> reexec_as_root(char** argv, const Host& host) {
  if (::geteuid() == 0) return std::optional<int>();
  uid_t uid = ::getuid();
  gid_t gid = ::getgid();
  std::string name = user_name(uid);
  std::string what = fmt::format("run dfrun as {} (not root)", name);
  // Every missing piece is named before anything starts.
  std::string newuidmap = find_tool("newuidmap"), newgidmap = find_tool("newgidmap");
  for (const auto& [tool, path] : {std::pair{"newuidmap", newuidmap}, {"newgidmap", newgidmap}}) {
    if (path.empty()) {
      return Error(fmt::format("{} not found on PATH, /usr/bin or /usr/sbin: install it (Debian, "
                               "Ubuntu: apt-get install uidmap; Fedora: shadow-utils)",
                               tool))
          .context(what);
    }
  }
  auto uids = ranges_for(host.subuid, "uid", name, uid);
  if (!uids.ok()) return std::move(uids).error().context(what);
  auto gids = ranges_for(host.subgid, "gid", name, uid);
  if (!gids.ok()) return std::move(gids).error().context(what);

  int status_pipe[2], go_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0 || ::pipe2(go_pipe, O_CLOEXEC) != 0)
    return Error::sys("pipe");
  UniqueFd status_r(status_pipe[0]), status_w(status_pipe[1]);
  UniqueFd go_r(go_pipe[0]), go_w(go_pipe[1]);
  pid_t pid = ::fork();
  if (pid < 0) return Error::sys("fork");
  if (pid == 0) child_main(status_w.get(), go_r.get(), argv);
  status_w.reset();
  go_r.reset();

  char first = 0;
  ssize_t n;
  while ((n = ::read(status_r.get(), &first, 1)) < 0 && errno == EINTR) {}
  if (n != 1 || first != 'U') {
    std::string report = n == 1 ? std::string(1, first) + read_all(status_r.get()) : "";
    wait_child(pid);
    if (report.empty()) return Error("enter user namespace: helper process died").context(what);
    return child_error(report).context(what);
  }
  Status mapped = run_map_tool(newuidmap, pid, map_args(uid, *uids));
  if (mapped.ok()) mapped = run_map_tool(newgidmap, pid, map_args(gid, *gids));
  if (!mapped.ok()) {
    go_w.reset();   // the child exits
    wait_child(pid);
    return std::move(mapped).error().context(what);
  }

  // Forward the signals that should reach the inner dfrun (it kills its
  // containers on them) from here on.
  g_child = pid;
  struct sigaction sa{}, old[3];
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  const int signals[3] = {SIGINT, SIGTERM, SIGHUP};
  for (int i = 0; i < 3; ++i) ::sigaction(signals[i], &sa, &old[i]);
  Status started = ok_status();
  if (::write(go_w.get(), "G", 1) != 1) started = Error::sys("start user namespace child");
  go_w.reset();
  std::string report = read_all(status_r.get());
  int code = wait_child(pid);
  for (int i = 0; i < 3; ++i) ::sigaction(signals[i], &old[i], nullptr);
  g_child = -1;
  if (!started.ok()) return std::move(started).error().context(what);
  if (!report.empty()) return child_error(report).context(what);
  return std::optional<int>(code);
}

}  // namespace dfgen::userns
