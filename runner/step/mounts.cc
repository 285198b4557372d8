#include "runner/step/mounts.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "core/context.h"
#include "core/ignore.h"
#include "core/remote_cache.h"
#include "core/sha256.h"
#include "runner/sandbox/rootfs.h"

namespace dfgen::step {
namespace {

std::string str(const Json& m, const char* key) {
  auto it = m.find(key);
  return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool is_context_bind(const Json& m) {
  return m.value("type", "bind") == "bind" && !m.contains("from");
}

Result<IgnoreMatcher> ignore_of(const Json& op) {
  std::string text;
  for (const auto& p : op.value("ignore", Json::array())) text += p.get<std::string>() + "\n";
  return IgnoreMatcher::parse(text, ".dockerignore");
}

// What a context bind mount selects: its source (default the whole context).
Result<context::Selection> select_source(const StepInput& in, const Json& m) {
  std::string source = str(m, "source");
  DFGEN_TRY(std::string clean, context::clean_source(source.empty() ? "." : source));
  DFGEN_TRY(IgnoreMatcher ignore, ignore_of(in.spec.op));
  DFGEN_TRY(context::Selection sel, context::select(in.spec.context, {clean}, ignore));
  if (sel.matches.size() != 1)
    return Error(fmt::format("mount source {} matches {} paths; it must name one", source, sel.matches.size()));
  return sel;
}

// "0755" -> 0755; an empty text gives `fallback`.
Result<mode_t> parse_mode(const std::string& text, mode_t fallback) {
  if (text.empty()) return fallback;
  char* end = nullptr;
  unsigned long v = std::strtoul(text.c_str(), &end, 8);
  if (*end != '\0' || v > 07777) return Error(fmt::format("invalid mount mode \"{}\" (octal, at most 07777)", text));
  return static_cast<mode_t>(v);
}

Result<uint32_t> parse_id(const std::string& text, const char* what) {
  if (text.empty()) return 0u;
  char* end = nullptr;
  unsigned long v = std::strtoul(text.c_str(), &end, 10);
  if (*end != '\0' || v > UINT32_MAX) return Error(fmt::format("invalid mount {} \"{}\" (a number)", what, text));
  return static_cast<uint32_t>(v);
}

// tmpfs size: bytes, or a number with a k/m/g suffix (tmpfs's own syntax).
Result<std::string> size_option(const std::string& size) {
  if (size.empty()) return std::string();
  size_t digits = size.find_first_not_of("0123456789");
  bool ok = digits != 0 && (digits == std::string::npos ||
                            (digits == size.size() - 1 && std::string("kKmMgG").find(size.back()) != std::string::npos));
  if (!ok) return Error(fmt::format("invalid tmpfs size \"{}\" (bytes, or a number with k, m or g)", size));
  return ",size=" + size;
}

// Copies one entry (no recursion): a dir is made, a file copied, a link remade.
// Mode and mtime are kept; ownership becomes uid:gid when `chown` is set.
Status copy_entry(const std::string& src, const std::string& dst, bool chown_to_root) {
  struct stat st;
  if (::lstat(src.c_str(), &st) != 0) return Error::sys("stat " + src);
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(dst.c_str(), 0700) != 0 && errno != EEXIST) return Error::sys("mkdir " + dst);
  } else if (S_ISLNK(st.st_mode)) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(src.c_str(), buf, sizeof buf);
    if (n < 0) return Error::sys("read link " + src);
    if (::symlink(std::string(buf, static_cast<size_t>(n)).c_str(), dst.c_str()) != 0) return Error::sys("symlink " + dst);
  } else if (S_ISREG(st.st_mode)) {
    UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!in) return Error::sys("open " + src);
    UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out) return Error::sys("create " + dst);
    for (;;) {
      ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, 1 << 30, 0);
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL)) {
        char buf[65536];
        n = ::read(in.get(), buf, sizeof buf);
        if (n > 0 && ::write(out.get(), buf, static_cast<size_t>(n)) != n) return Error::sys("write " + dst);
      }
      if (n < 0) return Error::sys("copy " + src);
      if (n == 0) break;
    }
  } else {
    return ok_status();   // devices, fifos, sockets: not copied
  }
  // Our own throwaway copy: root owns it as the context's files are in a build.
  uid_t uid = chown_to_root ? 0 : st.st_uid;
  gid_t gid = chown_to_root ? 0 : st.st_gid;
  if (::lchown(dst.c_str(), uid, gid) != 0 && errno != EPERM) return Error::sys("chown " + dst);
  if (!S_ISLNK(st.st_mode) && ::chmod(dst.c_str(), st.st_mode & 07777) != 0) return Error::sys("chmod " + dst);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  ::utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW);
  return ok_status();
}

// cp -a of a tree (the root `src` itself included as `dst`).
Status copy_tree(const std::string& src, const std::string& dst) {
  DFGEN_CHECK(copy_entry(src, dst, false));
  struct stat st;
  if (::lstat(src.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return ok_status();
  DIR* d = ::opendir(src.c_str());
  if (!d) return Error::sys("read dir " + src);
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) DFGEN_CHECK(copy_tree(path_join(src, n), path_join(dst, n)));
  // Writing children moved the dir's mtime: put it back.
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  ::utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW);
  return ok_status();
}

// `path` inside `root` as a host path, resolved inside the root (symlinks
// included): the mount source can't lead out of the stage.
Result<std::string> host_path_in(const std::string& root, const std::string& path) {
  auto fd = sandbox::open_in_root(root, path.empty() ? "/" : path, O_PATH | O_CLOEXEC);
  if (!fd.ok()) return Error(fmt::format("mount source {}: not found in the stage", path.empty() ? "/" : path));
  char buf[PATH_MAX];
  std::string link = fmt::format("/proc/self/fd/{}", fd->get());
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n < 0) return Error::sys("resolve mount source " + path);
  std::string resolved(buf, static_cast<size_t>(n));
  DFGEN_TRY(std::string abs_root, absolute_path(root));
  if (resolved != abs_root && !resolved.starts_with(abs_root + "/"))
    return Error(fmt::format("mount source {} leaves the stage", path));
  return resolved;
}

// Where secrets come from, as dfgen wrote it: io.secrets of the spec file
// ({"ID": {"src": FILE} | {"env": VAR}}). Only the executor reads this entry.
Result<Json> secret_sources(const Spec& spec) {
  if (spec.path.empty()) return Json::object();
  DFGEN_TRY(Json j, read_json_file(spec.path));
  Json io = j.value("io", Json::object());
  Json s = io.value("secrets", Json::object());
  return s.is_object() ? s : Json::object();
}

// The secret's value; nullopt when it was not provided.
Result<std::optional<std::string>> secret_value(const Json& sources, const std::string& id) {
  if (!sources.contains(id)) return std::optional<std::string>();
  const Json& s = sources[id];
  if (s.contains("src")) {
    std::string src = s["src"].get<std::string>();
    if (!path_exists(src)) return std::optional<std::string>();
    auto v = read_file(src);
    if (!v.ok()) return std::move(v).error().context(fmt::format("secret {}", id));
    return std::optional<std::string>(std::move(*v));
  }
  if (s.contains("env")) {
    const char* v = std::getenv(s["env"].get<std::string>().c_str());
    if (!v) return std::optional<std::string>();
    return std::optional<std::string>(v);
  }
  return std::optional<std::string>();
}

std::string cache_root(const Store& store) { return path_join(store.root(), "cache-mounts"); }

// Where dfgen --cache-from looks: the spec's "cache"."from" sources (outside
// the op, never in the key).
Result<std::vector<Json>> cache_sources(const Spec& spec) {
  if (spec.path.empty()) return std::vector<Json>();
  DFGEN_TRY(Json j, read_json_file(spec.path));
  Json cache = j.value("cache", Json::object());
  Json from = cache.is_object() ? cache.value("from", Json::array()) : Json::array();
  if (!from.is_array()) return std::vector<Json>();
  return from.get<std::vector<Json>>();
}

// Waits for `op` (LOCK_SH / LOCK_EX, maybe | LOCK_NB) on an open lock file.
int flock_retry(int fd, int op) {
  int rc;
  while ((rc = ::flock(fd, op)) != 0 && errno == EINTR) {}
  return rc;
}

}  // namespace

std::string cache_mount_dir(const Store& store, const std::string& id) {
  return path_join(cache_root(store), sha256_hex(id));
}

Result<std::optional<Layer>> snapshot_cache_mount(Store& store, const std::string& id) {
  std::string path = cache_mount_dir(store, id);
  if (!is_directory(path)) return std::optional<Layer>();
  std::string lock_path = path + ".lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock) return Error::sys("open " + lock_path);
  if (flock_retry(lock.get(), LOCK_EX) != 0) return Error::sys("lock " + lock_path);
  auto info = layer::write_layer(store, path_join(path, "data"));
  if (!info.ok()) return std::move(info).error().context("cache mount " + id);
  return std::optional<Layer>(Layer{info->blob, info->diff_id});
}

Result<TmpfsMount> TmpfsMount::mount(const std::string& dir, const std::string& options) {
  DFGEN_CHECK(make_dirs(dir));
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0)
    return Error::sys("mount tmpfs on " + dir);
  return TmpfsMount(dir);
}

TmpfsMount::~TmpfsMount() {
  if (!dir_.empty()) ::umount2(dir_.c_str(), MNT_DETACH);
}

Result<Json> run_inputs(const StepInput& in) {
  Json inputs = Json::array();
  for (const auto& m : in.spec.op.value("mounts", Json::array())) {
    if (!is_context_bind(m)) continue;
    DFGEN_TRY(context::Selection sel, select_source(in, m));
    DFGEN_CHECK(append_digests(in, sel, inputs));
  }
  return inputs;
}

// Sets up each mount kind; one instance per prepare() call.
struct MountSetup {
  Store& store;
  const StepInput& in;
  const std::string& scratch;
  RunMounts& out;
  Json secrets = Json::object();
  std::vector<Json> cache_from;   // --cache-from sources: snapshots of cache mounts
  int n = 0;   // index of the mount being set up

  std::string dir(const char* what) const { return path_join(scratch, fmt::format("mount{}-{}", n, what)); }

  // The root of the mount's `from` stage or image, mounted: io.from "mountN".
  Result<std::string> from_root() {
    auto it = in.from.find(fmt::format("mount{}", n));
    if (it == in.from.end()) return Error(fmt::format("mount {}: its from stage is not in the spec", n));
    DFGEN_TRY(Workspace ws, Workspace::open(store, it->second.layers));
    out.sources_.push_back(std::move(ws));
    return out.sources_.back().root();
  }

  Status bind(const Json& m) {
    std::string target = str(m, "target");
    if (target.empty()) return Error("bind mount needs a target");
    bool readonly = m.value("readonly", true);
    std::string source;
    if (m.contains("from")) {
      DFGEN_TRY(std::string root, from_root());
      DFGEN_TRY(source, host_path_in(root, str(m, "source")));
    } else {
      // A copy of the selected context files: the ignore rules hold, and `rw`
      // writes go nowhere.
      DFGEN_TRY(context::Selection sel, select_source(in, m));
      const context::Match& match = sel.matches.front();
      source = dir("context");
      DFGEN_CHECK(copy_entry(path_join(in.spec.context, match.path), source, true));
      std::string prefix = match.path == "." ? "" : match.path + "/";
      for (const auto& f : match.files)
        DFGEN_CHECK(copy_entry(path_join(in.spec.context, f), path_join(source, f.substr(prefix.size())), true));
    }
    out.binds_.push_back({source, target, readonly});
    return ok_status();
  }

  // The --cache-from snapshot of the cache mount `id` extracted into the new
  // dir `data`; false when no source has one. A source that cannot be read
  // is a warning, as for steps: the cache then starts as without it.
  Result<bool> import_snapshot(const std::string& data, const std::string& id) {
    if (cache_from.empty()) return false;
    auto layer = remote_cache::import_mount(store, cache_from, id);
    if (!layer.ok()) {
      std::fprintf(stderr, "dfrun: warning: cache mount %s: %s\n", id.c_str(), layer.error().render().c_str());
      return false;
    }
    if (!*layer) return false;
    DFGEN_TRY(Descriptor blob, Descriptor::from_json(**layer));
    DFGEN_CHECK(make_dirs(data));
    auto st = layer::extract_layer(store.blob_path(blob.digest), data);
    if (!st.ok()) return std::move(st).error().context("cache mount " + id);
    std::fprintf(stderr, "cache mount %s: seeded from the build cache (%s)\n", id.c_str(), blob.digest.c_str());
    return true;
  }

  // Creates the cache dir once, atomically: made aside, seeded (from a
  // --cache-from snapshot of the id, else from `from`), renamed.
  Status create_cache(const std::string& path, const std::string& id, const Json& m) {
    DFGEN_TRY(mode_t mode, parse_mode(str(m, "mode"), 0755));
    DFGEN_TRY(uint32_t uid, parse_id(str(m, "uid"), "uid"));
    DFGEN_TRY(uint32_t gid, parse_id(str(m, "gid"), "gid"));
    DFGEN_TRY(TempDir tmp, TempDir::create(dirname_of(path), "new"));
    std::string data = path_join(tmp.path(), "data");
    // An imported snapshot already holds what the id's users wrote, seed included.
    DFGEN_TRY(bool imported, import_snapshot(data, id));
    if (!imported && m.contains("from")) {
      DFGEN_TRY(std::string root, from_root());
      DFGEN_TRY(std::string seed, host_path_in(root, str(m, "source")));
      DFGEN_CHECK(copy_tree(seed, data));
    } else if (!imported) {
      DFGEN_CHECK(make_dirs(data));
    }
    if (::chown(data.c_str(), uid, gid) != 0) return Error::sys("chown " + data);
    if (::chmod(data.c_str(), mode) != 0) return Error::sys("chmod " + data);
    DFGEN_CHECK(write_file_atomic(path_join(tmp.path(), "id"), id + "\n"));
    if (::rename(tmp.path().c_str(), path.c_str()) == 0) {
      tmp.release();
    } else if (errno != EEXIST && errno != ENOTEMPTY) {
      return Error::sys("create cache mount dir " + path);
    }   // else another build made it first: ours goes with tmp
    return ok_status();
  }

  Status cache(const Json& m) {
    std::string target = str(m, "target");
    if (target.empty()) return Error("cache mount needs a target");
    std::string id = str(m, "id").empty() ? target : str(m, "id");
    std::string sharing = str(m, "sharing").empty() ? "shared" : str(m, "sharing");
    if (sharing != "shared" && sharing != "private" && sharing != "locked")
      return Error(fmt::format("invalid cache sharing \"{}\" (shared, private or locked)", sharing));
    std::string root = cache_root(store);
    DFGEN_CHECK(make_dirs(root));
    std::string path = path_join(root, sha256_hex(id));
    if (!is_directory(path)) DFGEN_CHECK(create_cache(path, id, m));

    // shared: many at once (a shared flock, so a `locked` user waits for
    // them); locked: one at a time; private: this one alone, or a fresh dir.
    std::string lock_path = path + ".lock";
    UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!lock) return Error::sys("open " + lock_path);
    int op = sharing == "shared" ? LOCK_SH : sharing == "locked" ? LOCK_EX : LOCK_EX | LOCK_NB;
    int rc = flock_retry(lock.get(), op);
    std::string source = path_join(path, "data");
    if (rc != 0) {
      if (errno != EWOULDBLOCK) return Error::sys("lock " + lock_path);
      // private and busy: a throwaway instance made as a new cache would be.
      std::string fresh = dir("private-cache");
      std::string aside = path_join(fresh, "c");
      DFGEN_CHECK(make_dirs(fresh));
      DFGEN_CHECK(create_cache(aside, id, m));
      source = path_join(aside, "data");
    } else {
      out.locks_.push_back(std::move(lock));
    }
    out.binds_.push_back({source, target, m.value("readonly", false)});
    return ok_status();
  }

  Status tmpfs(const Json& m) {
    std::string target = str(m, "target");
    if (target.empty()) return Error("tmpfs mount needs a target");
    DFGEN_TRY(std::string size, size_option(str(m, "size")));
    DFGEN_TRY(TmpfsMount t, TmpfsMount::mount(dir("tmpfs"), "mode=1777" + size));
    out.tmpfs_.push_back(std::move(t));
    out.binds_.push_back({out.tmpfs_.back().dir(), target, m.value("readonly", false)});
    return ok_status();
  }

  // A tmpfs for secret files and the runtime bundle, made once.
  Result<std::string> private_dir() {
    if (out.private_dir_.empty()) {
      DFGEN_TRY(TmpfsMount t, TmpfsMount::mount(path_join(scratch, "private"), "mode=0700,size=64m"));
      out.tmpfs_.push_back(std::move(t));
      out.private_dir_ = out.tmpfs_.back().dir();
    }
    return out.private_dir_;
  }

  Status secret(const Json& m) {
    std::string target = str(m, "target");
    std::string env = str(m, "env");
    std::string id = str(m, "id").empty() ? basename_of(target) : str(m, "id");
    if (id.empty()) return Error("secret mount needs an id or a target");
    DFGEN_TRY(auto value, secret_value(secrets, id));
    if (!value) {
      if (m.value("required", false))
        return Error(fmt::format("secret {}: required but not provided (dfgen --secret id={},src=FILE|env=VAR)", id, id));
      return ok_status();   // as BuildKit: an optional secret that is missing is not mounted
    }
    DFGEN_TRY(std::string priv, private_dir());   // the bundle goes there too
    if (!env.empty()) {
      out.env_.push_back(env + "=" + *value);
      if (target.empty()) return ok_status();
    }
    if (target.empty()) target = "/run/secrets/" + id;
    DFGEN_TRY(mode_t mode, parse_mode(str(m, "mode"), 0400));
    DFGEN_TRY(uint32_t uid, parse_id(str(m, "uid"), "uid"));
    DFGEN_TRY(uint32_t gid, parse_id(str(m, "gid"), "gid"));
    std::string file = path_join(priv, fmt::format("secret{}", n));
    DFGEN_CHECK(write_file_atomic(file, *value, 0600));
    if (::chown(file.c_str(), uid, gid) != 0) return Error::sys("chown secret file");
    if (::chmod(file.c_str(), mode) != 0) return Error::sys("chmod secret file");
    out.binds_.push_back({file, target, true});
    return ok_status();
  }

  Status one(const Json& m) {
    std::string type = m.value("type", "bind");
    if (type == "bind") return bind(m);
    if (type == "cache") return cache(m);
    if (type == "tmpfs") return tmpfs(m);
    if (type == "secret") return secret(m);
    if (type == "ssh") return add_ssh_mount(m, in.spec, dir("ssh"), out.ssh_, out.binds_, out.env_);
    return Error(fmt::format("unknown mount type \"{}\"", type));
  }
};

Result<RunMounts> RunMounts::prepare(Store& store, const StepInput& in, const std::string& scratch) {
  RunMounts out;
  const Json mounts = in.spec.op.value("mounts", Json::array());
  if (mounts.empty()) return out;
  DFGEN_CHECK(make_dirs(scratch));
  MountSetup setup{store, in, scratch, out};
  DFGEN_TRY(setup.secrets, secret_sources(in.spec));
  DFGEN_TRY(setup.cache_from, cache_sources(in.spec));
  for (const auto& m : mounts) {
    auto st = setup.one(m);
    if (!st.ok()) {
      std::string target = str(m, "target");
      std::string what = fmt::format("--mount type={}{}", m.value("type", "bind"), target.empty() ? "" : ",target=" + target);
      return std::move(st).error().context(what);
    }
    ++setup.n;
  }
  return out;
}

}  // namespace dfgen::step
