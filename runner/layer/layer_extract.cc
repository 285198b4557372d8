// Layer blob -> directory, safely. Every entry is placed by walking its
// parents from the destination one component at a time with
// openat(O_NOFOLLOW | O_DIRECTORY): a symlink (or anything else that is not a
// directory) in a parent position is refused, and ".." is refused before any
// walk, so nothing a layer says can reach outside the destination. Symlinks
// themselves are created as written: they are only ever followed inside the
// container. Nodes are created by us (not archive_write_disk), metadata set
// with *at calls that do not follow the final component.
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <vector>

#include "core/fs.h"
#include "core/sha256.h"
#include "runner/layer/layer.h"
#include "runner/layer/layer_internal.h"

namespace dfgen::layer {

namespace {

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;

// "a/./b//c" -> {"a","b","c"}; leading "/" dropped (absolute paths are taken
// relative to the destination); ".." anywhere is an error.
Result<std::vector<std::string>> split_entry_path(std::string_view path, std::string_view what) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view c = path.substr(start, end - start);
    if (c == "..") return Error(fmt::format("{} \"{}\" escapes the destination (\"..\")", what, path));
    if (!c.empty() && c != ".") parts.emplace_back(c);
    start = end + 1;
  }
  return parts;
}

std::string join_parts(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i ? "/" : "") + parts[i];
  return out;
}

// Opens the directory made of the first `n` components, never following a
// symlink; creates missing directories (0755) when `create` is set.
Result<UniqueFd> open_dir_in(int root, const std::vector<std::string>& parts, size_t n, bool create) {
  UniqueFd cur(::fcntl(root, F_DUPFD_CLOEXEC, 0));
  if (!cur) return Error::sys("dup destination fd");
  for (size_t i = 0; i < n; ++i) {
    const char* name = parts[i].c_str();
    int fd = ::openat(cur.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur.get(), name, 0755) != 0 && errno != EEXIST)
        return Error::sys("create directory " + join_parts(parts, i + 1));
      fd = ::openat(cur.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
      int err = errno;
      struct stat st;
      if ((err == ELOOP || err == ENOTDIR) && ::fstatat(cur.get(), name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode))
        return Error(fmt::format("\"{}\" is a symbolic link; layer entries may not go through one",
                                 join_parts(parts, i + 1)));
      return Error::sys("open directory " + join_parts(parts, i + 1), err);
    }
    cur.reset(fd);
  }
  return cur;
}

// rm -rf of `name` inside `dirfd`, without following symlinks.
Status remove_at(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? ok_status() : Error::sys("stat " + name);
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0) return Error::sys("remove " + name);
    return ok_status();
  }
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error::sys("open directory " + name);
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(fd), ::closedir);
  if (!d) {
    ::close(fd);
    return Error::sys("open directory " + name);
  }
  std::vector<std::string> children;
  while (dirent* e = ::readdir(d.get())) {
    std::string n = e->d_name;
    if (n != "." && n != "..") children.push_back(std::move(n));
  }
  for (const std::string& c : children) DFGEN_CHECK(remove_at(::dirfd(d.get()), c));
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0) return Error::sys("remove " + name);
  return ok_status();
}

std::string proc_path(int dirfd, const std::string& name) {
  return fmt::format("/proc/self/fd/{}/{}", dirfd, name);
}

Status set_opaque(int dirfd, const std::string& name) {
  auto set = [&](const char* key) {
    return name.empty() ? ::fsetxattr(dirfd, key, "y", 1, 0)
                        : ::lsetxattr(proc_path(dirfd, name).c_str(), key, "y", 1, 0);
  };
  if (set(kOpaqueXattrs[0]) == 0) return ok_status();
  // Without CAP_SYS_ADMIN (rootless), overlay reads the user.* form.
  if (errno == EPERM && set(kOpaqueXattrs[1]) == 0) return ok_status();
  return Error::sys("mark directory opaque");
}

struct Meta {
  uid_t uid;
  gid_t gid;
  mode_t perm;
  int64_t mtime;
  bool symlink;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

Meta meta_of(archive_entry* e) {
  Meta m{static_cast<uid_t>(archive_entry_uid(e)), static_cast<gid_t>(archive_entry_gid(e)),
         static_cast<mode_t>(archive_entry_perm(e) & 07777), archive_entry_mtime(e),
         archive_entry_filetype(e) == AE_IFLNK, {}};
  archive_entry_xattr_reset(e);
  const char* name;
  const void* value;
  size_t size;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
    if (!is_overlay_xattr(name)) m.xattrs.emplace_back(name, std::string(static_cast<const char*>(value), size));
  return m;
}

// Owner, xattrs, mode, times of `name` in `dirfd` ("" = dirfd itself).
Status apply_meta(int dirfd, const std::string& name, const Meta& m) {
  const char* n = name.empty() ? "" : name.c_str();
  int empty = name.empty() ? AT_EMPTY_PATH : 0;
  if (::fchownat(dirfd, n, m.uid, m.gid, AT_SYMLINK_NOFOLLOW | empty) != 0) return Error::sys("chown");
  std::string p = proc_path(dirfd, name);
  for (const auto& [key, value] : m.xattrs) {
    int rc = name.empty() ? ::fsetxattr(dirfd, key.c_str(), value.data(), value.size(), 0)
                          : ::lsetxattr(p.c_str(), key.c_str(), value.data(), value.size(), 0);
    if (rc != 0 && errno != ENOTSUP) return Error::sys("set xattr " + key);
  }
  if (name.empty()) {
    if (::fchmod(dirfd, m.perm) != 0) return Error::sys("chmod");
  } else if (!m.symlink && ::chmod(p.c_str(), m.perm) != 0) {
    return Error::sys("chmod");
  }
  struct timespec times[2] = {{m.mtime, 0}, {m.mtime, 0}};
  if (name.empty()) {
    if (::futimens(dirfd, times) != 0) return Error::sys("set times");
  } else if (::utimensat(dirfd, n, times, AT_SYMLINK_NOFOLLOW) != 0) {
    return Error::sys("set times");
  }
  return ok_status();
}

Status write_data(struct archive* a, int fd, int64_t size) {
  const void* buf;
  size_t len;
  la_int64_t offset;
  for (;;) {
    int rc = archive_read_data_block(a, &buf, &len, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) return Error(archive_message(a, "read error"));
    const char* p = static_cast<const char*>(buf);
    while (len > 0) {
      ssize_t n = ::pwrite(fd, p, len, offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Error::sys("write");
      }
      p += n;
      len -= static_cast<size_t>(n);
      offset += n;
    }
  }
  if (::ftruncate(fd, size) != 0) return Error::sys("truncate");
  return ok_status();
}

class Extractor {
 public:
  Extractor(struct archive* a, int root) : a_(a), root_(root) {}

  Status entry(archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    if (!raw) return Error("entry without a path");
    DFGEN_TRY(auto parts, split_entry_path(raw, "path"));
    if (parts.empty()) {   // "./": the destination itself
      dirs_[""] = meta_of(e);
      return ok_status();
    }
    std::string name = parts.back();
    DFGEN_TRY(UniqueFd parent, open_dir_in(root_, parts, parts.size() - 1, true));
    std::string rel = join_parts(parts, parts.size());

    if (name == kOpaqueMarker) {
      return set_opaque(parent.get(), "");
    }
    if (name.rfind(kWhiteoutPrefix, 0) == 0) {
      std::string target = name.substr(std::string_view(kWhiteoutPrefix).size());
      if (target.empty() || target == "." || target == "..")
        return Error(fmt::format("invalid whiteout \"{}\"", raw));
      DFGEN_CHECK(remove_at(parent.get(), target));
      if (::mknodat(parent.get(), target.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
        return Error::sys("create whiteout " + target);
      return ok_status();
    }

    const char* hardlink = archive_entry_hardlink(e);
    if (hardlink) return link(parent.get(), name, hardlink);

    mode_t type = archive_entry_filetype(e);
    struct stat st;
    bool exists = ::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && !(type == AE_IFDIR && S_ISDIR(st.st_mode))) DFGEN_CHECK(remove_at(parent.get(), name));
    const char* n = name.c_str();
    switch (type) {
      case AE_IFDIR:
        if (!(exists && S_ISDIR(st.st_mode)) && ::mkdirat(parent.get(), n, 0700) != 0)
          return Error::sys("create directory");
        dirs_[rel] = meta_of(e);   // applied at the end: children change a dir's mtime
        return ok_status();
      case AE_IFREG: {
        UniqueFd fd(::openat(parent.get(), n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd) return Error::sys("create file");
        DFGEN_CHECK(write_data(a_, fd.get(), archive_entry_size(e)));
        if (::close(fd.release()) != 0) return Error::sys("close file");
        break;
      }
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target || ::symlinkat(target, parent.get(), n) != 0) return Error::sys("create symlink");
        break;
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: {
        mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
        dev_t dev = type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
        if (::mknodat(parent.get(), n, kind | 0600, dev) != 0) return Error::sys("create node");
        break;
      }
      default:
        return Error(fmt::format("unsupported entry type {:o}", static_cast<unsigned>(type)));
    }
    return apply_meta(parent.get(), name, meta_of(e));
  }

  // Directory metadata last, deepest first.
  Status finish() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      DFGEN_TRY(auto parts, split_entry_path(it->first, "path"));
      if (parts.empty()) {
        DFGEN_CHECK(apply_meta(root_, "", it->second));
        continue;
      }
      DFGEN_TRY(UniqueFd parent, open_dir_in(root_, parts, parts.size() - 1, false));
      struct stat st;
      if (::fstatat(parent.get(), parts.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
        continue;   // replaced later in the same layer
      auto st2 = apply_meta(parent.get(), parts.back(), it->second);
      if (!st2.ok()) return std::move(st2).error().context(fmt::format("entry \"{}\"", it->first));
    }
    return ok_status();
  }

 private:
  Status link(int parent, const std::string& name, const char* target_raw) {
    DFGEN_TRY(auto tparts, split_entry_path(target_raw, "hardlink target"));
    if (tparts.empty()) return Error(fmt::format("hardlink target \"{}\" is the destination itself", target_raw));
    auto tparent = open_dir_in(root_, tparts, tparts.size() - 1, false);
    if (!tparent.ok()) return std::move(tparent).error().context(fmt::format("hardlink target \"{}\"", target_raw));
    struct stat st;
    if (::fstatat(tparent->get(), tparts.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return Error(fmt::format("hardlink target \"{}\" is not in the layer", target_raw));
    if (S_ISDIR(st.st_mode)) return Error(fmt::format("hardlink target \"{}\" is a directory", target_raw));
    DFGEN_CHECK(remove_at(parent, name));
    if (::linkat(tparent->get(), tparts.back().c_str(), parent, name.c_str(), 0) != 0)
      return Error::sys(fmt::format("link to \"{}\"", target_raw));
    return ok_status();
  }

  struct archive* a_;
  int root_;
  std::map<std::string, Meta> dirs_;
};

}  // namespace

namespace {

// Extracts the tar that `a` (opened) reads into `dest`.
Status extract_from(struct archive* a, const std::string& dest, const std::string& what) {
  UniqueFd root(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return Error::sys(what + ": open " + dest);
  Extractor x(a, root.get());
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(a, &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) return Error(fmt::format("{}: {}", what, archive_message(a)));
    auto st = x.entry(e);
    if (!st.ok()) {
      const char* p = archive_entry_pathname(e);
      return std::move(st).error().context(fmt::format("{}: entry \"{}\"", what, p ? p : ""));
    }
  }
  if (auto st = x.finish(); !st.ok()) return std::move(st).error().context(what);
  return ok_status();
}

// A layer blob read once: its bytes hashed as they are read (the digest),
// decompressed by a raw libarchive reader (any filter), the uncompressed
// stream hashed (the diff_id) and handed to the tar reader. The readers'
// errors are kept, not returned: the blob's digest is checked first.
class VerifyingReader {
 public:
  static Result<std::unique_ptr<VerifyingReader>> open(const std::string& path) {
    std::unique_ptr<VerifyingReader> r(new VerifyingReader);
    r->fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!r->fd_) return Error::sys("open " + path);
    struct archive* raw = r->raw_.get();
    archive_read_support_filter_all(raw);
    archive_read_support_format_raw(raw);
    if (archive_read_open(raw, r.get(), nullptr, read_blob, nullptr) != ARCHIVE_OK) {
      r->raw_error_ = archive_message(raw, "cannot open");
      return r;
    }
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(raw, &e);
    if (rc == ARCHIVE_EOF) r->eof_ = true;
    else if (rc != ARCHIVE_OK) r->raw_error_ = archive_message(raw, "unreadable layer");
    if (!r->raw_error_.empty()) return r;
    struct archive* tar = r->tar_.get();
    archive_read_support_filter_none(tar);
    archive_read_support_format_tar(tar);
    if (archive_read_open(tar, r.get(), nullptr, read_tar, nullptr) != ARCHIVE_OK)
      r->tar_error_ = archive_message(tar);
    return r;
  }
  // The tar reader; null when the stream could not be opened as a tar (error()).
  struct archive* tar() { return raw_error_.empty() && tar_error_.empty() ? tar_.get() : nullptr; }
  // Why the compressed stream could not be read ("" if it could).
  const std::string& raw_error() const { return raw_error_; }
  const std::string& tar_error() const { return tar_error_; }

  // Reads what the tar reader left (end-of-archive padding, trailing bytes)
  // and returns {digest, diff_id} (diff_id is meaningless after a raw_error).
  Result<std::pair<std::string, std::string>> finish() {
    const void* buf;
    size_t len;
    while (!eof_ && raw_error_.empty()) next(&buf, &len);
    char tail[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd_.get(), tail, sizeof tail);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error::sys("read layer blob");
      if (n == 0) break;
      blob_hash_.update(tail, static_cast<size_t>(n));
    }
    return std::make_pair(blob_hash_.digest(), tar_hash_.digest());
  }

 private:
  VerifyingReader() : raw_(archive_read_new(), archive_read_free), tar_(archive_read_new(), archive_read_free) {}

  static la_ssize_t read_blob(struct archive* a, void* data, const void** out) {
    auto* r = static_cast<VerifyingReader*>(data);
    for (;;) {
      ssize_t n = ::read(r->fd_.get(), r->in_.data(), r->in_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        archive_set_error(a, errno, "read layer blob");
        return -1;
      }
      r->blob_hash_.update(r->in_.data(), static_cast<size_t>(n));
      *out = r->in_.data();
      return n;
    }
  }
  // The next block of the uncompressed stream; len 0 at its end or on an error.
  void next(const void** buf, size_t* len) {
    la_int64_t offset;
    *len = 0;
    int rc = archive_read_data_block(raw_.get(), buf, len, &offset);
    if (rc == ARCHIVE_EOF) {
      eof_ = true;
      *len = 0;
    } else if (rc != ARCHIVE_OK) {
      raw_error_ = archive_message(raw_.get(), "compressed stream is truncated or corrupt");
      *len = 0;
    } else {
      tar_hash_.update(*buf, *len);
    }
  }
  static la_ssize_t read_tar(struct archive* a, void* data, const void** out) {
    auto* r = static_cast<VerifyingReader*>(data);
    size_t len = 0;
    while (len == 0) {
      if (r->eof_) return 0;
      r->next(out, &len);
      if (!r->raw_error_.empty()) {
        archive_set_error(a, EIO, "%s", r->raw_error_.c_str());
        return -1;
      }
    }
    return static_cast<la_ssize_t>(len);
  }

  UniqueFd fd_;
  ArchivePtr raw_, tar_;
  std::vector<char> in_ = std::vector<char>(1 << 17);
  Sha256 blob_hash_, tar_hash_;
  bool eof_ = false;
  std::string raw_error_, tar_error_;
};

}  // namespace

Status extract_layer(const std::string& blob_path, const std::string& dest) {
  std::string what = "extract layer " + blob_path;
  ArchivePtr a(archive_read_new(), archive_read_free);
  if (!a) return Error(what + ": archive_read_new failed");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), blob_path.c_str(), 1 << 16) != ARCHIVE_OK)
    return Error(fmt::format("{}: {}", what, archive_message(a.get())));
  return extract_from(a.get(), dest, what);
}

Result<std::string> layer_diff_id(const std::string& blob_path) {
  std::string what = "read layer " + blob_path;
  ArchivePtr a(archive_read_new(), archive_read_free);
  if (!a) return Error(what + ": archive_read_new failed");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  auto fail = [&](const char* fallback) {
    return Error(fmt::format("{}: {}", what, archive_message(a.get(), fallback)));
  };
  if (archive_read_open_filename(a.get(), blob_path.c_str(), 1 << 16) != ARCHIVE_OK) return fail("cannot open");
  Sha256 hash;
  archive_entry* e = nullptr;
  int rc = archive_read_next_header(a.get(), &e);
  if (rc == ARCHIVE_OK) {
    const void* buf;
    size_t len;
    la_int64_t offset;
    while ((rc = archive_read_data_block(a.get(), &buf, &len, &offset)) == ARCHIVE_OK) hash.update(buf, len);
    if (rc != ARCHIVE_EOF) return fail("compressed stream is truncated or corrupt");
  } else if (rc != ARCHIVE_EOF) {
    return fail("unreadable layer");
  }
  return hash.digest();
}

Status ensure_snapshot(Store& store, const Descriptor& blob, const std::string& diff_id) {
  if (!is_sha256_digest(diff_id)) return Error(fmt::format("snapshot: invalid diff_id \"{}\"", diff_id));
  if (store.has_snapshot(diff_id)) return ok_status();
  DFGEN_TRY(FileLock lock, store.lock("snapshot-" + std::string(digest_hex(diff_id))));
  if (store.has_snapshot(diff_id)) return ok_status();   // made while we waited
  std::string what = "snapshot " + diff_id;
  if (!store.has_blob(blob.digest))
    return Error(fmt::format("{}: layer blob {} is not in the store", what, blob.digest));
  std::string path = store.blob_path(blob.digest);
  // One pass over the blob: extracted into a temp dir while its digest and
  // the digest of its uncompressed stream are computed; only a blob that
  // matches both becomes the snapshot (a mismatch leaves nothing behind).
  DFGEN_TRY(TempDir tmp, store.make_temp_dir("snapshot"));
  if (::chmod(tmp.path().c_str(), 0755) != 0) return Error::sys("chmod " + tmp.path());
  DFGEN_TRY(auto reader, VerifyingReader::open(path));
  std::string extract_what = "extract layer " + path;
  Status extracted = reader->tar() ? extract_from(reader->tar(), tmp.path(), extract_what)
                                   : Status(Error(fmt::format("{}: {}", extract_what, reader->tar_error())));
  auto digests = reader->finish();
  if (!digests.ok()) return std::move(digests).error().context(what);
  auto& [actual, tar_digest] = *digests;
  if (actual != blob.digest)
    return Error(fmt::format("{}: layer blob {} is corrupt (hashes to {})", what, blob.digest, actual));
  if (!reader->raw_error().empty())
    return Error(fmt::format("{}: read layer {}: {}", what, path, reader->raw_error()));
  // The uncompressed stream must be the one the image config names; this also
  // catches a compressed stream cut off exactly between two tar entries.
  if (tar_digest != diff_id)
    return Error(fmt::format("{}: layer blob {} unpacks to {}, not to its diff_id", what, blob.digest, tar_digest));
  if (!extracted.ok()) return std::move(extracted).error().context(what);
  std::string target = store.snapshot_path(diff_id);
  if (::rename(tmp.path().c_str(), target.c_str()) != 0)
    return Error::sys(fmt::format("move snapshot into {}", target));
  tmp.release();
  return fsync_dir(dirname_of(target));
}

}  // namespace dfgen::layer
