#include "runner/sandbox/rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

namespace dfgen::sandbox {

namespace {

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string c = path.substr(i, j - i);
    if (!c.empty() && c != ".") {
      if (c == "..") {
        if (!out.empty()) out.pop_back();   // lexically, never above the root
      } else {
        out.push_back(std::move(c));
      }
    }
    i = j + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i ? "/" : "") + parts[i];
  return out.empty() ? "." : out;
}

int sys_openat2(int dirfd, const char* path, int flags) {
  struct open_how how{};
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

}  // namespace

Result<UniqueFd> open_in_root_nofollow(const std::string& rootfs, const std::string& path,
                                       int flags) {
  UniqueFd dir(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return Error::sys("open rootfs " + rootfs);
  auto parts = components(path);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    UniqueFd next(::openat(dir.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) return Error::sys(fmt::format("open {} in {}", join(parts, i + 1), rootfs));
    dir = std::move(next);
  }
  const char* last = parts.empty() ? "." : parts.back().c_str();
  UniqueFd fd(::openat(dir.get(), last, flags | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return Error::sys(fmt::format("open {} in {}", join(parts, parts.size()), rootfs));
  return fd;
}

Result<UniqueFd> open_in_root(const std::string& rootfs, const std::string& path, int flags) {
  UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return Error::sys("open rootfs " + rootfs);
  std::string rel = join(components(path), components(path).size());
  int fd = sys_openat2(root.get(), rel.c_str(), flags);
  if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {   // no openat2 (or a seccomp filter)
    return open_in_root_nofollow(rootfs, path, flags);
  }
  if (fd < 0) return Error::sys(fmt::format("open {} in {}", rel, rootfs));
  return UniqueFd(fd);
}

Status mkdir_in_root(const std::string& rootfs, const std::string& path, uid_t uid, gid_t gid) {
  auto parts = components(path);
  for (size_t i = 1; i <= parts.size(); ++i) {
    std::string prefix = join(parts, i);
    auto existing = open_in_root(rootfs, prefix, O_PATH | O_DIRECTORY);
    if (existing.ok()) continue;
    if (existing.error().sys_errno != ENOENT) return std::move(existing).error();
    DFGEN_TRY(UniqueFd parent, open_in_root(rootfs, join(parts, i - 1), O_PATH | O_DIRECTORY));
    if (::mkdirat(parent.get(), parts[i - 1].c_str(), 0755) != 0 && errno != EEXIST) {
      return Error::sys(fmt::format("create {} in {}", prefix, rootfs));
    }
    if ((uid != 0 || gid != 0) &&
        ::fchownat(parent.get(), parts[i - 1].c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return Error::sys(fmt::format("chown {} in {}", prefix, rootfs));
    }
  }
  return ok_status();
}

MountStubs::MountStubs(std::string rootfs, const std::vector<std::string>& destinations)
    : rootfs_(std::move(rootfs)) {
  for (const auto& dest : destinations) {
    auto parts = components(dest);
    for (size_t i = 1; i <= parts.size(); ++i) {
      std::string prefix = join(parts, i);
      struct stat st;
      if (::lstat(path_join(rootfs_, prefix).c_str(), &st) != 0) {
        if (std::find(missing_.begin(), missing_.end(), prefix) == missing_.end()) {
          missing_.push_back(prefix);
        }
        break;
      }
      if (!S_ISDIR(st.st_mode)) break;   // a symlink or file: runc resolves it, not ours
    }
  }
}

namespace {

// Removes `name` under `dirfd` if it's an empty file or holds only such; true
// when it is gone.
bool remove_if_stub(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT;
  if (S_ISREG(st.st_mode)) return st.st_size == 0 && ::unlinkat(dirfd, name.c_str(), 0) == 0;
  if (!S_ISDIR(st.st_mode)) return false;
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  DIR* d = ::fdopendir(fd);
  if (!d) { ::close(fd); return false; }
  std::vector<std::string> children;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") children.push_back(n);
  }
  bool all = true;
  for (const auto& c : children) all = remove_if_stub(::dirfd(d), c) && all;
  ::closedir(d);
  return all && ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) == 0;
}

}  // namespace

void MountStubs::cleanup() {
  // Deepest first, so /dev/shm goes before /dev.
  std::sort(missing_.begin(), missing_.end(), std::greater<>());
  for (const auto& rel : missing_) {
    auto parent = open_in_root(rootfs_, dirname_of("/" + rel), O_PATH | O_DIRECTORY);
    if (!parent.ok()) continue;
    UniqueFd dir(::openat(parent->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) remove_if_stub(dir.get(), basename_of(rel));
  }
  missing_.clear();
}

}  // namespace dfgen::sandbox
