#include "runner/snapshot/overlay.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.h"
#include "runner/userns/userns.h"

namespace dfgen::snapshot {

namespace {

// mount(2) copies at most one page of option data (terminating NUL included).
constexpr size_t kMaxMountData = 4095;

// The directory both `a` and `b` live in ("/" at worst); both absolute.
std::string common_parent(const std::string& a, const std::string& b) {
  size_t n = 0, last_slash = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) {
    if (a[n] == '/') last_slash = n;
    ++n;
  }
  // A whole component in common when one path ends where the other has a '/'.
  if ((n == a.size() && (n == b.size() || b[n] == '/')) ||
      (n == b.size() && a[n] == '/')) {
    last_slash = n;
  }
  return last_slash == 0 ? "/" : a.substr(0, last_slash);
}

std::string relative_to(const std::string& parent, const std::string& path) {
  if (parent == path) return ".";
  if (parent == "/") return path.substr(1);
  return path.substr(parent.size() + 1);
}

// Overlay's option parser splits on ',' and its lowerdir list on ':'; a
// backslash escapes ':' (and itself). A ',' can't be passed this way.
Result<std::string> escape_option_path(const std::string& path) {
  if (path.find(',') != std::string::npos) {
    return Error("overlay: path contains ',' which mount options can't carry: " + path);
  }
  std::string out;
  for (char c : path) {
    if (c == ':' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

struct Layout {
  std::vector<std::string> lowers;  // top first, as overlay wants them
  std::string upper, work;
  bool userxattr = false;           // rootless: user.overlay.* instead of trusted.overlay.*
};

Result<std::string> option_data(const Layout& l) {
  std::string data = "lowerdir=";
  for (size_t i = 0; i < l.lowers.size(); ++i) {
    DFGEN_TRY(std::string p, escape_option_path(l.lowers[i]));
    if (i) data += ':';
    data += p;
  }
  DFGEN_TRY(std::string up, escape_option_path(l.upper));
  DFGEN_TRY(std::string wk, escape_option_path(l.work));
  data += ",upperdir=" + up + ",workdir=" + wk;
  if (l.userxattr) data += ",userxattr";
  return data;
}

// mount(2) from inside `dir` so relative option paths resolve there. The
// chdir happens in a child process: our own cwd (shared by all our threads)
// never changes.
Status mount_in_dir(const std::string& dir, const std::string& data, const std::string& target) {
  pid_t pid = ::fork();
  if (pid < 0) return Error::sys("fork");
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(200);
    if (::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) != 0) {
      ::_exit(errno & 0xff);
    }
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Error::sys("wait for mount helper");
  }
  if (!WIFEXITED(status)) return Error("mount helper died");
  int code = WEXITSTATUS(status);
  if (code == 200) return Error::sys("chdir " + dir, ENOENT);
  if (code != 0) return Error::sys("mount overlay on " + target, code);
  return ok_status();
}

// The new mount API adds lower dirs one by one ("lowerdir+", Linux 6.8), so
// no page limit applies. Used for stacks too long for mount(2).
Status mount_with_fsconfig(const std::vector<std::string>& lowers_top_first,
                           const std::string& upper, const std::string& work,
                           bool userxattr, const std::string& target) {
  UniqueFd fs(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fs) return Error::sys("fsopen overlay");
  auto set = [&](const char* key, const std::string& value) -> Status {
    if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0) {
      return Error::sys(fmt::format("overlay option {}={}", key, value));
    }
    return ok_status();
  };
  for (const auto& l : lowers_top_first) DFGEN_CHECK(set("lowerdir+", l));
  DFGEN_CHECK(set("upperdir", upper));
  DFGEN_CHECK(set("workdir", work));
  if (userxattr && ::fsconfig(fs.get(), FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) != 0) {
    return Error::sys("overlay option userxattr");
  }
  if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return Error::sys("create overlay");
  }
  UniqueFd mnt(::fsmount(fs.get(), FSMOUNT_CLOEXEC, 0));
  if (!mnt) return Error::sys("fsmount overlay");
  if (::move_mount(mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return Error::sys("move overlay mount to " + target);
  }
  return ok_status();
}

Status do_mount(const std::vector<std::string>& lowers_top_first, const std::string& upper,
                const std::string& work, bool userxattr, const std::string& target) {
  // 1. Absolute paths, when they fit.
  Layout abs{lowers_top_first, upper, work, userxattr};
  DFGEN_TRY(std::string data, option_data(abs));
  if (data.size() <= kMaxMountData) {
    if (::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) != 0) {
      return Error::sys("mount overlay on " + target);
    }
    return ok_status();
  }
  // 2. Paths relative to the dir all of them share, mounted from there.
  std::string parent = upper;
  for (const auto& p : lowers_top_first) parent = common_parent(parent, p);
  parent = common_parent(parent, work);
  Layout rel;
  rel.userxattr = userxattr;
  for (const auto& p : lowers_top_first) rel.lowers.push_back(relative_to(parent, p));
  rel.upper = relative_to(parent, upper);
  rel.work = relative_to(parent, work);
  DFGEN_TRY(data, option_data(rel));
  if (data.size() <= kMaxMountData) return mount_in_dir(parent, data, target);
  // 3. One lower dir at a time through the new mount API.
  Status st = mount_with_fsconfig(lowers_top_first, upper, work, userxattr, target);
  if (st.ok()) return st;
  return Error(fmt::format(
      "{} lower dirs need {} bytes of mount options, over the limit of {} "
      "(and the kernel refused them one by one: {}); merge layers first",
      lowers_top_first.size(), data.size(), kMaxMountData, st.error().message));
}

}  // namespace

Result<OverlayMount> OverlayMount::mount(const std::vector<std::string>& lowers,
                                         const std::string& upper, const std::string& work,
                                         const std::string& target) {
  DFGEN_TRY(std::string abs_upper, absolute_path(upper));
  DFGEN_TRY(std::string abs_work, absolute_path(work));
  DFGEN_TRY(std::string abs_target, absolute_path(target));
  std::vector<std::string> top_first;
  for (auto it = lowers.rbegin(); it != lowers.rend(); ++it) {
    DFGEN_TRY(std::string p, absolute_path(*it));
    top_first.push_back(std::move(p));
  }
  // Overlay needs a lower dir. An empty one, removed once mounted: the mount
  // keeps a reference to it, and an unlinked dir stays empty.
  std::string empty_lower;
  if (top_first.empty()) {
    std::string tmpl = path_join(dirname_of(abs_work), ".empty-lower.XXXXXX");
    if (!::mkdtemp(tmpl.data())) return Error::sys("create empty lower dir beside " + abs_work);
    empty_lower = tmpl;
    top_first.push_back(empty_lower);
  }
  // In a user namespace (rootless) overlay may not use trusted.* xattrs; with
  // `userxattr` it keeps opaque marks and the like in user.overlay.*.
  Status st = do_mount(top_first, abs_upper, abs_work, userns::in_user_namespace(), abs_target);
  if (!empty_lower.empty()) ::rmdir(empty_lower.c_str());
  if (!st.ok()) return std::move(st).error().context("mount overlay");
  return OverlayMount(abs_target);
}

Status OverlayMount::unmount() {
  if (target_.empty()) return ok_status();
  if (::umount2(target_.c_str(), UMOUNT_NOFOLLOW) != 0) {
    int err = errno;
    // Busy (a straggling process, an open file): detach now, freed when unused.
    if (err != EBUSY || ::umount2(target_.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
      return Error::sys("unmount " + target_, err);
    }
  }
  target_.clear();
  return ok_status();
}

OverlayMount::~OverlayMount() { (void)unmount(); }

}  // namespace dfgen::snapshot
