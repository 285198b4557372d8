// ADD: what it does beyond COPY. A local tar archive (plain, gzip, bzip2, xz,
// zstd: whatever libarchive reads) is extracted into the destination
// directory instead of copied; URL and git sources are refused for now.
//
// Extraction is confined to the destination as if it were the root of the
// file system (openat2 RESOLVE_IN_ROOT against the destination's fd, as
// BuildKit untars in a chroot of the destination): an entry with ".." is
// refused, and absolute paths or symlinks in the archive resolve inside the
// destination, so nothing the archive says can land outside it.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <map>
#include <memory>

#include "runner/step/executors.h"
#include "runner/step/in_root.h"

namespace dfgen::step {
namespace {

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;

// A reader over the file `rel` in `dir_fd` (not followed if a link); the
// caller keeps `fd` open as long as the reader.
Result<ArchivePtr> open_archive(int dir_fd, const std::string& rel, UniqueFd& fd) {
  fd.reset(::openat(dir_fd, rel.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return Error::sys("open " + rel);
  ArchivePtr a(archive_read_new(), archive_read_free);
  if (!a) return Error("archive_read_new failed");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_fd(a.get(), fd.get(), 1 << 16) != ARCHIVE_OK)
    return Error(fmt::format("read {}: {}", rel, archive_error_string(a.get())));
  return a;
}

// "a/./b//c" -> "a/b/c"; ".." anywhere is refused.
Result<std::string> clean_entry(const char* raw, const std::string& archive) {
  std::string path = raw ? raw : "";
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string c = path.substr(start, end - start);
    if (c == "..")
      return Error(fmt::format("ADD {}: entry \"{}\" would land outside the destination", archive, path));
    if (!c.empty() && c != ".") out += (out.empty() ? "" : "/") + c;
    start = end + 1;
  }
  return out;
}

struct EntryMeta {
  uid_t uid;
  gid_t gid;
  mode_t perm;
  struct timespec mtime;
};

Status apply_entry_meta(int dir_fd, const std::string& name, const EntryMeta& m, bool symlink) {
  if (::fchownat(dir_fd, name.c_str(), m.uid, m.gid, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::sys("chown " + name);
  if (!symlink && ::fchmodat(dir_fd, name.c_str(), m.perm, 0) != 0) return Error::sys("chmod " + name);
  struct timespec times[2] = {m.mtime, m.mtime};
  if (::utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::sys("set times of " + name);
  return ok_status();
}

Status write_entry_data(struct archive* a, int fd, const std::string& what) {
  const void* buf;
  size_t len;
  la_int64_t offset;
  for (;;) {
    int rc = archive_read_data_block(a, &buf, &len, &offset);
    if (rc == ARCHIVE_EOF) return ok_status();
    if (rc < ARCHIVE_WARN) return Error(fmt::format("read {}: {}", what, archive_error_string(a)));
    const char* p = static_cast<const char*>(buf);
    while (len > 0) {
      ssize_t n = ::pwrite(fd, p, len, offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error::sys("write " + what);
      }
      p += n;
      len -= static_cast<size_t>(n);
      offset += n;
    }
  }
}

// rm of `name` in dir_fd when it is in the way (a directory only if empty:
// like tar, a non-empty directory is not replaced by a file).
Status remove_existing(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return ok_status();
  if (::unlinkat(dir_fd, name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0)
    return Error::sys("replace " + name);
  return ok_status();
}

class Unpacker {
 public:
  Unpacker(struct archive* a, int dest_fd, const CopyOwner& owner, std::string archive)
      : a_(a), dest_fd_(dest_fd), owner_(owner), archive_(std::move(archive)) {}

  Status entry(archive_entry* e) {
    DFGEN_TRY(std::string path, clean_entry(archive_entry_pathname(e), archive_));
    EntryMeta meta{owner_.set ? owner_.uid : static_cast<uid_t>(archive_entry_uid(e)),
                   owner_.set ? owner_.gid : static_cast<gid_t>(archive_entry_gid(e)),
                   static_cast<mode_t>(archive_entry_perm(e) & 07777),
                   {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
    if (path.empty()) {   // "./": the destination itself
      dirs_[""] = meta;
      return ok_status();
    }
    auto [parent_path, name] = split_parent("/" + path);
    DFGEN_TRY(UniqueFd parent, open_dir_in_root(dest_fd_, parent_path, true));
    const char* n = name.c_str();
    if (const char* hardlink = archive_entry_hardlink(e)) {
      DFGEN_TRY(std::string target, clean_entry(hardlink, archive_));
      auto [tparent_path, tname] = split_parent("/" + target);
      DFGEN_TRY(UniqueFd tparent, open_dir_in_root(dest_fd_, tparent_path, false));
      DFGEN_CHECK(remove_existing(parent.get(), name));
      if (::linkat(tparent.get(), tname.c_str(), parent.get(), n, 0) != 0)
        return Error::sys(fmt::format("link {} to {}", path, target));
      return ok_status();
    }
    mode_t type = archive_entry_filetype(e);
    struct stat st;
    bool is_dir = ::fstatat(parent.get(), n, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    if (type == AE_IFDIR) {
      if (!is_dir) {
        DFGEN_CHECK(remove_existing(parent.get(), name));
        if (::mkdirat(parent.get(), n, 0700) != 0) return Error::sys("create directory " + path);
      }
      dirs_[path] = meta;   // applied at the end: children change a dir's mtime
      return ok_status();
    }
    DFGEN_CHECK(remove_existing(parent.get(), name));
    switch (type) {
      case AE_IFREG: {
        UniqueFd fd(::openat(parent.get(), n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd) return Error::sys("create " + path);
        DFGEN_CHECK(write_entry_data(a_, fd.get(), path));
        if (::ftruncate(fd.get(), archive_entry_size(e)) != 0) return Error::sys("truncate " + path);
        if (::close(fd.release()) != 0) return Error::sys("close " + path);
        break;
      }
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target || ::symlinkat(target, parent.get(), n) != 0) return Error::sys("create symlink " + path);
        break;
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: {
        mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
        dev_t dev = type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
        if (::mknodat(parent.get(), n, kind | 0600, dev) != 0) return Error::sys("create node " + path);
        break;
      }
      default:
        return Error(fmt::format("ADD {}: entry \"{}\" has an unsupported type", archive_, path));
    }
    return apply_entry_meta(parent.get(), name, meta, type == AE_IFLNK);
  }

  // Directory metadata last, deepest first.
  Status finish() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      if (it->first.empty()) continue;   // the destination keeps its own metadata
      auto [parent_path, name] = split_parent("/" + it->first);
      DFGEN_TRY(UniqueFd parent, open_dir_in_root(dest_fd_, parent_path, false));
      struct stat st;
      if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
        continue;   // replaced later in the same archive
      DFGEN_CHECK(apply_entry_meta(parent.get(), name, it->second, false));
    }
    return ok_status();
  }

 private:
  struct archive* a_;
  int dest_fd_;
  const CopyOwner& owner_;
  std::string archive_;
  std::map<std::string, EntryMeta> dirs_;
};

bool is_git_source(const std::string& s) {
  return s.rfind("git@", 0) == 0 || s.rfind("git://", 0) == 0 || s.rfind("ssh://", 0) == 0 ||
         (s.find("://") != std::string::npos && s.size() > 4 && s.compare(s.size() - 4, 4, ".git") == 0);
}

}  // namespace

Status check_add_sources(const Json& op) {
  for (const auto& s : op.value("sources", Json::array())) {
    std::string text = s.contains("url") ? s.value("url", "") : s.value("context", "");
    if (s.contains("url") || is_git_source(text)) {
      const char* what = is_git_source(text) ? "a git repository" : "a URL";
      return Error(fmt::format(
          "ADD from {} ({}) is not supported yet: fetch it in a RUN step, or download it into the "
          "build context and ADD or COPY the file",
          what, text));
    }
  }
  return ok_status();
}

Result<bool> is_archive(int dir_fd, const std::string& rel) {
  struct stat st;
  if (::fstatat(dir_fd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Error::sys("stat " + rel);
  if (!S_ISREG(st.st_mode) || st.st_size == 0) return false;
  UniqueFd fd;
  auto a = open_archive(dir_fd, rel, fd);
  if (!a.ok()) return false;   // libarchive recognises no format: a plain file
  archive_entry* e = nullptr;
  int rc = archive_read_next_header(a->get(), &e);
  return rc == ARCHIVE_OK || rc == ARCHIVE_WARN;
}

Status extract_archive(int src_dir_fd, const std::string& rel, int root_fd, const std::string& dest,
                       const CopyOwner& owner) {
  // As BuildKit: directories the ADD creates for dest belong to --chown's owner.
  DFGEN_TRY(UniqueFd dest_fd, open_dir_in_root(root_fd, dest, true, owner.set ? owner.uid : 0,
                                               owner.set ? owner.gid : 0));
  UniqueFd fd;
  DFGEN_TRY(ArchivePtr a, open_archive(src_dir_fd, rel, fd));
  Unpacker unpacker(a.get(), dest_fd.get(), owner, rel);
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) return Error(fmt::format("ADD {}: {}", rel, archive_error_string(a.get())));
    DFGEN_CHECK(unpacker.entry(e));
  }
  return unpacker.finish();
}

}  // namespace dfgen::step
