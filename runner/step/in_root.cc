#include "runner/step/in_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace dfgen::step {
namespace {

std::string relative(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return path.empty() ? std::string(".") : std::string(path);
}

}  // namespace

Result<UniqueFd> open_in_root(int root_fd, std::string_view path, int flags, mode_t mode) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = relative(path);
  for (;;) {
    long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno == EINTR || errno == EAGAIN) continue;
    return Error::sys("open " + std::string(path));
  }
}

std::pair<std::string, std::string> split_parent(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  auto pos = path.find_last_of('/');
  if (pos == std::string_view::npos) return {"/", std::string(path)};
  std::string parent(path.substr(0, pos));
  if (parent.empty()) parent = "/";
  return {parent, std::string(path.substr(pos + 1))};
}

Result<UniqueFd> open_dir_in_root(int root_fd, std::string_view path, bool create, uid_t uid,
                                  gid_t gid) {
  auto fd = open_in_root(root_fd, path, O_RDONLY | O_DIRECTORY);
  if (fd.ok() || !create || fd.error().sys_errno != ENOENT) return fd;
  auto [parent, name] = split_parent(path);
  if (name.empty() || name == "." || name == "..") return fd;
  DFGEN_TRY(UniqueFd parent_fd, open_dir_in_root(root_fd, parent, create, uid, gid));
  if (::mkdirat(parent_fd.get(), name.c_str(), 0755) != 0) {
    if (errno != EEXIST) return Error::sys("create directory " + std::string(path));
  } else if (::fchmodat(parent_fd.get(), name.c_str(), 0755, 0) != 0) {   // whatever dfrun's umask
    return Error::sys("chmod " + std::string(path));
  }
  if (::fchownat(parent_fd.get(), name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::sys("chown " + std::string(path));
  return open_in_root(root_fd, path, O_RDONLY | O_DIRECTORY);
}

std::optional<struct stat> stat_in_root(int root_fd, std::string_view path) {
  auto fd = open_in_root(root_fd, path, O_PATH);
  if (!fd.ok()) return std::nullopt;
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return std::nullopt;
  return st;
}

}  // namespace dfgen::step
