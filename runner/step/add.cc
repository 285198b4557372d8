// ADD: what it does beyond COPY. A local tar archive (plain, gzip, bzip2, xz,
// zstd: whatever libarchive reads) is extracted into the destination
// directory instead of copied; http(s) URLs are downloaded with libcurl and
// git repositories cloned with the git command.
//
// Extraction is confined to the destination as if it were the root of the
// file system (openat2 RESOLVE_IN_ROOT against the destination's fd, as
// BuildKit untars in a chroot of the destination): an entry with ".." is
// refused, and absolute paths or symlinks in the archive resolve inside the
// destination, so nothing the archive says can land outside it.
#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <vector>

#include "core/fs.h"
#include "core/sha256.h"
#include "runner/step/executors.h"
#include "runner/step/in_root.h"

extern char** environ;

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
    return Error(fmt::format("read {}: {}", rel, layer::archive_message(a.get())));
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
    if (rc < ARCHIVE_WARN) return Error(fmt::format("read {}: {}", what, layer::archive_message(a)));
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
      // As Docker's untar (BuildKit's ADD): the link entry's own owner, mode
      // and time go to the inode it shares (no mode for a link to a symlink).
      struct stat linked;
      bool to_symlink = ::fstatat(parent.get(), n, &linked, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(linked.st_mode);
      return apply_entry_meta(parent.get(), name, meta, to_symlink);
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

std::string without_fragment(const std::string& s) { return s.substr(0, s.find('#')); }

bool is_git_source(const std::string& s) {
  std::string u = without_fragment(s);
  return s.rfind("git@", 0) == 0 || s.rfind("git://", 0) == 0 || s.rfind("ssh://", 0) == 0 ||
         (u.find("://") != std::string::npos && u.size() > 4 && u.compare(u.size() - 4, 4, ".git") == 0);
}

// Downloads and clones of this process (one dfrun step), by source: the key's
// inputs and the copy read the same bytes.
struct Download {
  std::string dir, name, digest;
  int64_t mtime = -1;   // Last-Modified, or -1
};
std::map<std::string, Download>& downloads() {
  static std::map<std::string, Download> d;
  return d;
}
const std::string& scratch_dir() {
  static TempDir dir = [] {
    auto d = TempDir::create("/tmp", "dfrun-add");
    return d.ok() ? std::move(d).value() : TempDir::create(".", "dfrun-add").value();
  }();
  return dir.path();
}

size_t write_to_fd(char* data, size_t size, size_t n, void* fd) {
  size_t len = size * n, done = 0;
  while (done < len) {
    ssize_t w = ::write(*static_cast<int*>(fd), data + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return 0;   // curl reports a write error
    done += static_cast<size_t>(w);
  }
  return len;
}

// ADD https://...: the file name is the URL path's base name ("__unnamed__" without one).
std::string url_file_name(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  size_t scheme = path.find("://");
  path = scheme == std::string::npos ? path : path.substr(scheme + 3);
  size_t slash = path.find('/');
  path = slash == std::string::npos ? "" : path.substr(slash);
  while (!path.empty() && path.back() == '/') path.pop_back();
  std::string base = path.substr(path.rfind('/') + 1);
  return base.empty() || base == "." ? "__unnamed__" : base;
}

Result<Download> download(const std::string& url) {
  auto it = downloads().find(url);
  if (it != downloads().end()) return it->second;
  DFGEN_TRY(TempDir dir, TempDir::create(scratch_dir(), "url"));
  Download d{dir.release(), url_file_name(url), "", -1};
  std::string path = path_join(d.dir, d.name);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return Error::sys("create " + path);
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return Error("curl_easy_init failed");
  int raw = fd.get();
  char err[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  // A URL from a Dockerfile: http(s) only, also where it redirects, a bounded
  // number of redirects, and a stalled server fails the step instead of
  // hanging the build.
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_FILETIME, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write_to_fd);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &raw);
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK)
    return Error(fmt::format("ADD {}: download failed: {}", url, err[0] ? err : curl_easy_strerror(rc)));
  long filetime = -1;
  curl_easy_getinfo(curl.get(), CURLINFO_FILETIME, &filetime);
  d.mtime = filetime;
  if (::close(fd.release()) != 0) return Error::sys("close " + path);
  DFGEN_TRY(d.digest, sha256_file(path));
  downloads().emplace(url, d);
  return d;
}

// Runs argv (no shell) in `cwd`; its output goes to `log`, quoted in the error when it fails.
Status run_tool(const std::vector<std::string>& argv, const std::string& log, const std::string& cwd = "") {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    errno = rc;
    return Error::sys("run " + argv[0]);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return Error::sys("wait for " + argv[0]);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok_status();
  auto out = read_file(log);
  std::string text = out.ok() ? *out : "";
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return Error(fmt::format("{} failed: {}", cmd, text));
}

// "url#ref:subdir" -> url, ref, subdir (BuildKit's fragment syntax).
struct GitRef {
  std::string remote, ref, subdir;
};
GitRef parse_git_ref(const std::string& source) {
  GitRef g{without_fragment(source), "", ""};
  if (source.find('#') != std::string::npos) {
    std::string frag = source.substr(source.find('#') + 1);
    g.ref = frag.substr(0, frag.find(':'));
    if (frag.find(':') != std::string::npos) g.subdir = frag.substr(frag.find(':') + 1);
  }
  return g;
}

struct Clone {
  std::string dir, commit;
};
std::map<std::string, Clone>& clones() {
  static std::map<std::string, Clone> c;
  return c;
}

// A clone of the repository checked out at its ref (the default branch without one).
Result<Clone> clone(const std::string& source) {
  auto it = clones().find(source);
  if (it != clones().end()) return it->second;
  GitRef g = parse_git_ref(source);
  // Never wait for a password or a host key: dfrun runs under Ninja, with no one to answer.
  ::setenv("GIT_TERMINAL_PROMPT", "0", 0);
  ::setenv("GIT_SSH_COMMAND", "ssh -o BatchMode=yes", 0);
  DFGEN_TRY(TempDir dir, TempDir::create(scratch_dir(), "git"));
  Clone c{dir.release(), ""};
  std::string tree = path_join(c.dir, "tree"), log = path_join(c.dir, "log");
  DFGEN_CHECK(run_tool({"git", "clone", "--quiet", "--recurse-submodules", "--", g.remote, tree}, log));
  if (!g.ref.empty())
    DFGEN_CHECK(run_tool({"git", "-c", "advice.detachedHead=false", "checkout", "--quiet", g.ref, "--"}, log, tree));
  DFGEN_CHECK(run_tool({"git", "rev-parse", "HEAD"}, log, tree));
  DFGEN_TRY(c.commit, read_file(log));
  while (!c.commit.empty() && c.commit.back() == '\n') c.commit.pop_back();
  clones().emplace(source, c);
  return c;
}

std::string source_text(const Json& s) { return s.contains("url") ? s.value("url", "") : s.value("context", ""); }

}  // namespace

bool is_remote_source(const Json& source) { return source.contains("url") || is_git_source(source_text(source)); }

Status check_add_sources(const Json& op) {
  std::string checksum = op.value("checksum", "");
  if (!checksum.empty() && !is_sha256_digest(checksum))
    return Error(fmt::format("invalid checksum digest format: {} (expected sha256:<64 hex digits>)", checksum));
  for (const auto& s : op.value("sources", Json::array())) {
    if (!is_remote_source(s)) continue;
    if (!checksum.empty() && is_git_source(source_text(s)))
      return Error("ADD --checksum with a git source is not supported yet: pin the commit in the URL (repo.git#<commit>)");
    if (op.value("link", false) == true)
      return Error("ADD --link with a URL or git source is not supported yet");
  }
  return ok_status();
}

Result<Json> remote_inputs(const Json& op) {
  Json inputs = Json::array();
  std::string checksum = op.value("checksum", "");
  for (const auto& s : op.value("sources", Json::array())) {
    if (!is_remote_source(s)) continue;
    std::string text = source_text(s);
    if (is_git_source(text)) {
      DFGEN_TRY(Clone c, clone(text));
      inputs.push_back({text, c.commit});
    } else if (!checksum.empty()) {
      inputs.push_back({text, checksum});   // the pinned content is the key; fetched on a miss
    } else {
      DFGEN_TRY(Download d, download(text));
      inputs.push_back({text, d.digest, d.mtime});
    }
  }
  return inputs;
}

Result<FetchedSource> fetch_remote(const Json& source, const Json& op) {
  std::string text = source_text(source);
  if (is_git_source(text)) {
    DFGEN_TRY(Clone c, clone(text));
    GitRef g = parse_git_ref(text);
    std::string root = path_join(c.dir, "tree");
    if (!op.value("keep_git_dir", false)) DFGEN_CHECK(remove_all(path_join(root, ".git")));
    if (!g.subdir.empty()) root = path_join(root, g.subdir);
    return FetchedSource{dirname_of(root), basename_of(root), true, ""};
  }
  DFGEN_TRY(Download d, download(text));
  std::string checksum = op.value("checksum", "");
  if (!checksum.empty() && checksum != d.digest)
    return Error(fmt::format("ADD {}: digest mismatch: the content is {}, --checksum says {}", text, d.digest, checksum));
  std::string path = path_join(d.dir, d.name);
  if (::chmod(path.c_str(), 0600) != 0) return Error::sys("chmod " + path);
  time_t mtime = d.mtime >= 0 ? static_cast<time_t>(d.mtime) : 0;   // no Last-Modified: 0, reproducible
  struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
  if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) return Error::sys("set times of " + path);
  return FetchedSource{d.dir, d.name, false, d.name};
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
    if (rc < ARCHIVE_WARN) return Error(fmt::format("ADD {}: {}", rel, layer::archive_message(a.get())));
    DFGEN_CHECK(unpacker.entry(e));
  }
  return unpacker.finish();
}

}  // namespace dfgen::step
