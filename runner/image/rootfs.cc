// export_rootfs (type=local): the layers applied in order into one tree.
//
// Each layer is extracted (layer::extract_layer, overlay form) into a scratch
// dir beside the destination and merged into the tree by rename: a whiteout
// (0/0 character device) removes the path below it, an opaque dir replaces
// the lower one. Same file system throughout, so nothing is copied twice.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <algorithm>
#include <vector>

#include "runner/image/image.h"
#include "runner/layer/layer.h"

namespace dfgen::image {

namespace {

constexpr const char* kOpaqueXattrs[] = {"trusted.overlay.opaque", "user.overlay.opaque"};

Result<std::vector<std::string>> list_dir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Error::sys("open directory " + dir);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Error::sys("read directory " + dir, err);
  std::sort(names.begin(), names.end());
  return names;
}

bool is_whiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

bool is_opaque(const std::string& path) {
  for (const char* name : kOpaqueXattrs) {
    char v[4];
    ssize_t n = ::lgetxattr(path.c_str(), name, v, sizeof v);
    if (n == 1 && v[0] == 'y') return true;
  }
  return false;
}

Status copy_dir_metadata(const std::string& src, const struct stat& st, const std::string& dst) {
  if (::lchown(dst.c_str(), st.st_uid, st.st_gid) != 0) return Error::sys("chown " + dst);
  if (::chmod(dst.c_str(), st.st_mode & 07777) != 0) return Error::sys("chmod " + dst);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::sys("set times of " + dst);
  return ok_status();
}

// A tree moved in whole: drop the whiteouts and opaque markers it carries
// (there is nothing below them to hide).
Status strip_overlay_marks(const std::string& dir) {
  for (const char* name : kOpaqueXattrs) ::lremovexattr(dir.c_str(), name);
  DFGEN_TRY(std::vector<std::string> names, list_dir(dir));
  for (const std::string& n : names) {
    std::string p = path_join(dir, n);
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) return Error::sys("stat " + p);
    if (is_whiteout(st)) {
      if (::unlink(p.c_str()) != 0) return Error::sys("remove " + p);
    } else if (S_ISDIR(st.st_mode)) {
      DFGEN_CHECK(strip_overlay_marks(p));
    }
  }
  return ok_status();
}

// Applies the overlay-form tree `upper` onto `lower`, consuming `upper`.
Status merge_into(const std::string& upper, const std::string& lower) {
  DFGEN_TRY(std::vector<std::string> names, list_dir(upper));
  for (const std::string& n : names) {
    std::string src = path_join(upper, n), dst = path_join(lower, n);
    struct stat st, dst_st;
    if (::lstat(src.c_str(), &st) != 0) return Error::sys("stat " + src);
    bool dst_exists = ::lstat(dst.c_str(), &dst_st) == 0;
    if (is_whiteout(st)) {
      if (dst_exists) DFGEN_CHECK(remove_all(dst));
      continue;
    }
    if (S_ISDIR(st.st_mode) && dst_exists && S_ISDIR(dst_st.st_mode) && !is_opaque(src)) {
      DFGEN_CHECK(merge_into(src, dst));
      DFGEN_CHECK(copy_dir_metadata(src, st, dst));
      continue;
    }
    if (dst_exists) DFGEN_CHECK(remove_all(dst));
    if (::rename(src.c_str(), dst.c_str()) != 0) return Error::sys("move " + src + " to " + dst);
    if (S_ISDIR(st.st_mode)) DFGEN_CHECK(strip_overlay_marks(dst));
  }
  return ok_status();
}

Status build_rootfs(Store& store, const ImageRecord& rec, const std::string& work,
                    const std::string& root) {
  if (::mkdir(root.c_str(), 0755) != 0) return Error::sys("create " + root);
  for (size_t i = 0; i < rec.layers.size(); ++i) {
    const Descriptor& l = rec.layers[i];
    DFGEN_TRY(std::string got, sha256_file(store.blob_path(l.digest)));
    if (got != l.digest) return Error(fmt::format("layer blob {} is corrupt: content hashes to {}", l.digest, got));
    std::string dir = path_join(work, "layer-" + std::to_string(i));
    if (::mkdir(dir.c_str(), 0755) != 0) return Error::sys("create " + dir);
    Status s = layer::extract_layer(store.blob_path(l.digest), dir);
    if (!s.ok()) return std::move(s).error().context("layer " + l.digest);
    DFGEN_CHECK(merge_into(dir, root));
    DFGEN_CHECK(remove_all(dir));
  }
  return ok_status();
}

}  // namespace

Status export_rootfs(Store& store, const Descriptor& manifest, const std::string& dest_dir) {
  auto run = [&]() -> Status {
    DFGEN_TRY(ImageRecord rec, load_image(store, manifest));
    std::string parent = dirname_of(dest_dir);
    DFGEN_CHECK(make_dirs(parent));
    DFGEN_TRY(TempDir work, TempDir::create(parent, ".dfgen-rootfs"));
    std::string root = path_join(work.path(), "rootfs");
    DFGEN_CHECK(build_rootfs(store, rec, work.path(), root));

    struct stat st;
    if (::lstat(dest_dir.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return Error(dest_dir + " exists and is not a directory");
      DFGEN_TRY(std::vector<std::string> names, list_dir(dest_dir));
      if (!names.empty()) return merge_into(root, dest_dir);   // overlay an existing tree
      if (::rmdir(dest_dir.c_str()) != 0) return Error::sys("replace empty " + dest_dir);
    }
    if (::rename(root.c_str(), dest_dir.c_str()) != 0) return Error::sys("rename rootfs to " + dest_dir);
    return fsync_dir(parent);
  };
  Status s = run();
  if (!s.ok()) return std::move(s).error().context("export root file system to " + dest_dir);
  return s;
}

}  // namespace dfgen::image

namespace dfgen::image {

Status unpack_image(Store& store, const Descriptor& manifest) {
  DFGEN_TRY(ImageRecord rec, load_image(store, manifest));
  if (rec.layers.size() != rec.diff_ids.size())
    return Error(fmt::format("unpack {}: {} layers but {} diff_ids", manifest.digest, rec.layers.size(),
                             rec.diff_ids.size()));
  for (size_t i = 0; i < rec.layers.size(); ++i)
    DFGEN_CHECK(layer::ensure_snapshot(store, rec.layers[i], rec.diff_ids[i]));
  return ok_status();
}

}  // namespace dfgen::image
