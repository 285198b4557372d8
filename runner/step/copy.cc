// COPY and ADD: context files, heredocs and paths of other stages copied into
// the step's root with Docker's rules (a directory source copies its contents;
// a destination ending in "/", several sources, or an existing directory
// receive sources by their base name; missing parents are created).
#include <climits>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "core/context.h"
#include "core/fs.h"
#include "core/sha256.h"
#include "runner/sandbox/sandbox.h"
#include "runner/step/executors.h"
#include "runner/step/in_root.h"
#include "runner/step/workspace.h"

namespace dfgen::step {
namespace {

Result<IgnoreMatcher> op_ignore(const Json& op) {
  std::string text;
  for (const auto& p : op.value("ignore", Json::array())) text += p.get<std::string>() + "\n";
  return IgnoreMatcher::parse(text, ".dockerignore");
}

bool has_context_sources(const Json& op) {
  for (const auto& s : op.value("sources", Json::array()))
    if (s.contains("context") && !is_remote_source(s)) return true;
  return false;
}

// --chmod: an octal mode, or symbolic clauses as chmod(1) with a umask of 0
// ("u+x", "a=r", "go-w,u=rwX", "g=u"), applied to each source's own mode.
class ModeSpec {
 public:
  static Result<std::optional<ModeSpec>> parse(const std::string& text);
  mode_t apply(mode_t current, bool is_dir) const;

 private:
  struct Action {
    char op;           // '+', '-', '='
    std::string perms; // letters of "rwxXst", or one of "ugo" (copy that class's bits)
  };
  struct Clause {
    mode_t who;        // bits the clause may touch
    std::vector<Action> actions;
  };
  std::optional<mode_t> octal_;
  std::vector<Clause> clauses_;
};

Result<std::optional<ModeSpec>> ModeSpec::parse(const std::string& text) {
  if (text.empty()) return std::optional<ModeSpec>();
  ModeSpec spec;
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    unsigned long v = text.size() > 5 || text.find_first_of("89") != std::string::npos
                          ? 010000 : std::stoul(text, nullptr, 8);
    if (v > 07777)
      return Error(fmt::format("invalid chmod parameter: '{}'. it should be octal string and between 0 and 07777", text));
    spec.octal_ = static_cast<mode_t>(v);
    return std::optional<ModeSpec>(std::move(spec));
  }
  auto invalid = [&](const std::string& why) {
    return Error(fmt::format("invalid --chmod={}: {} (use an octal mode or clauses like u+x,go-w,a=rX)", text, why));
  };
  size_t i = 0;
  for (;;) {
    Clause c{0, {}};
    for (; i < text.size() && std::string_view("ugoa").find(text[i]) != std::string_view::npos; ++i)
      c.who |= text[i] == 'u' ? 04700 : text[i] == 'g' ? 02070 : text[i] == 'o' ? 01007 : 07777;
    if (c.who == 0) c.who = 07777;
    while (i < text.size() && (text[i] == '+' || text[i] == '-' || text[i] == '=')) {
      Action a{text[i++], ""};
      if (i < text.size() && std::string_view("ugo").find(text[i]) != std::string_view::npos) {
        a.perms = text[i++];
      } else {
        for (; i < text.size() && std::string_view("rwxXst").find(text[i]) != std::string_view::npos; ++i)
          a.perms += text[i];
      }
      c.actions.push_back(std::move(a));
    }
    if (c.actions.empty()) return invalid(i < text.size() ? fmt::format("unexpected '{}'", text[i]) : "missing +, - or =");
    spec.clauses_.push_back(std::move(c));
    if (i == text.size()) break;
    if (text[i] != ',') return invalid(fmt::format("unexpected '{}'", text[i]));
    if (++i == text.size()) return invalid("empty clause");
  }
  return std::optional<ModeSpec>(std::move(spec));
}

mode_t ModeSpec::apply(mode_t current, bool is_dir) const {
  if (octal_) return *octal_;
  mode_t mode = current & 07777;
  for (const auto& c : clauses_) {
    for (const auto& a : c.actions) {
      mode_t bits = 0;
      if (a.perms.size() == 1 && std::string_view("ugo").find(a.perms[0]) != std::string_view::npos) {
        int shift = a.perms[0] == 'u' ? 6 : a.perms[0] == 'g' ? 3 : 0;
        mode_t rwx = (mode >> shift) & 07;
        bits = rwx << 6 | rwx << 3 | rwx;
      } else {
        for (char p : a.perms) {
          if (p == 'r') bits |= 0444;
          if (p == 'w') bits |= 0222;
          if (p == 'x' || (p == 'X' && (is_dir || (current & 0111)))) bits |= 0111;
          if (p == 's') bits |= 06000;
          if (p == 't') bits |= 01000;
        }
      }
      bits &= c.who;
      if (a.op == '+') mode |= bits;
      else if (a.op == '-') mode &= ~bits;
      else mode = (mode & ~c.who) | bits;
    }
  }
  return mode;
}

struct CopyOptions {
  CopyOwner owner;
  std::optional<ModeSpec> chmod;
  // Files with several links already copied by this COPY: (dev, inode) -> dest.
  // A file met again is linked to its first copy, as BuildKit keeps hard links.
  std::map<std::pair<dev_t, ino_t>, std::string>* links = nullptr;
};

// A context file as copy_inputs hashed it for the step's key.
struct Hashed {
  StatKey key;
  std::string digest;
};

// Per spec (copy_inputs and execute_copy run in the same process on the same
// Spec): what execute_copy checks the bytes it writes against.
std::map<const Spec*, std::map<std::string, Hashed>>& hashed_files() {
  static std::map<const Spec*, std::map<std::string, Hashed>> files;
  return files;
}

// COPY's context files go into the layer straight from the context
// (layer::ExternalFile), not through the snapshot's upper dir: creating
// thousands of inodes there was most of a large COPY's time. Directories,
// links, other stages' files and anything replacing an existing path are
// still made in the root, so the layer's bytes are the same as before.
struct Direct {
  int context_fd = -1;
  std::string root_dir;                            // the mounted root
  const std::map<std::string, Hashed>* hashed = nullptr;
  std::map<std::string, layer::ExternalFile> files;   // by tar name

  // The tar name of `name` in the root dir open as dir_fd.
  Result<std::string> tar_name(int dir_fd, const std::string& name) const {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(fmt::format("/proc/self/fd/{}", dir_fd).c_str(), buf, sizeof buf);
    if (n < 0) return Error::sys("resolve a directory of the root");
    std::string_view dir(buf, static_cast<size_t>(n));
    if (!dir.starts_with(root_dir)) return Error("resolve a directory of the root: outside the root");
    dir.remove_prefix(root_dir.size());
    while (dir.starts_with('/')) dir.remove_prefix(1);
    return dir.empty() ? name : std::string(dir) + "/" + name;
  }
};

// --chown as BuildKit resolves it in the destination: a name takes its uid
// and primary gid from /etc/passwd, a number N means N:N; a group (name from
// /etc/group, or a number) overrides the gid.
Result<CopyOwner> resolve_chown(const std::string& root, const std::string& spec) {
  auto numeric = [](const std::string& s) {
    return !s.empty() && s.size() <= 10 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  std::string user = spec.substr(0, spec.find(':'));
  std::string group = spec.find(':') == std::string::npos ? "" : spec.substr(spec.find(':') + 1);
  CopyOwner owner{true, 0, 0};
  if (numeric(user)) {
    owner.uid = owner.gid = static_cast<uid_t>(std::stoul(user));
  } else if (!user.empty()) {
    DFGEN_TRY(sandbox::User u, sandbox::resolve_user(root, user));
    owner.uid = u.uid;
    owner.gid = u.gid;
  }
  if (numeric(group)) {
    owner.gid = static_cast<gid_t>(std::stoul(group));
  } else if (!group.empty()) {
    DFGEN_TRY(sandbox::User g, sandbox::resolve_user(root, "0:" + group));
    owner.gid = g.gid;
  }
  return owner;
}

Status copy_data(int in, int out, const std::string& what) {
  for (;;) {
    ssize_t n = ::sendfile(out, in, nullptr, 1 << 30);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("copy " + what);
    }
    if (n == 0) return ok_status();
  }
}

Status apply_meta(int dir_fd, const std::string& name, const struct stat& st, const CopyOptions& o,
                  const std::string& what) {
  uid_t uid = o.owner.set ? o.owner.uid : 0;
  gid_t gid = o.owner.set ? o.owner.gid : 0;
  if (::fchownat(dir_fd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::sys("chown " + what);
  if (!S_ISLNK(st.st_mode)) {
    mode_t mode = o.chmod ? o.chmod->apply(st.st_mode, S_ISDIR(st.st_mode)) : (st.st_mode & 07777);
    if (::fchmodat(dir_fd, name.c_str(), mode, 0) != 0) return Error::sys("chmod " + what);
  }
  struct timespec times[2] = {st.st_mtim, st.st_mtim};
  if (::utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::sys("set times of " + what);
  return ok_status();
}

// Copies one entry `src_rel` (relative to src_dir_fd; not followed if a link)
// to `dest` inside the root.
Status copy_entry(int src_dir_fd, const std::string& src_rel, int root_fd, const std::string& dest,
                  const CopyOptions& o, Direct* direct = nullptr) {
  struct stat st;
  if (::fstatat(src_dir_fd, src_rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return Error::sys("stat " + src_rel);
  auto [parent, name] = split_parent(dest);
  // As BuildKit, the directories a COPY creates on the way belong to --chown's owner.
  DFGEN_TRY(UniqueFd dir, open_dir_in_root(root_fd, parent, true, o.owner.set ? o.owner.uid : 0,
                                           o.owner.set ? o.owner.gid : 0));
  struct stat existing;
  bool exists = ::fstatat(dir.get(), name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0;
  if (direct) {
    DFGEN_TRY(std::string tar_name, direct->tar_name(dir.get(), name));
    direct->files.erase(tar_name);   // replaced by this entry, as a file in the root would be
    // A directory is replaced only when empty: its files kept outside the root count.
    if (exists && S_ISDIR(existing.st_mode) && !S_ISDIR(st.st_mode)) {
      auto below = direct->files.lower_bound(tar_name + "/");
      if (below != direct->files.end() && below->first.starts_with(tar_name + "/"))
        return Error(fmt::format("replace {}: {}", dest, std::strerror(ENOTEMPTY)));
    }
    auto hashed = direct->hashed->find(src_rel);
    // A file with other links is copied into the root, where it can be linked to (CopyOptions::links).
    if (src_dir_fd == direct->context_fd && S_ISREG(st.st_mode) && st.st_nlink == 1 && !exists &&
        hashed != direct->hashed->end()) {
      if (!(StatKey::of(st) == hashed->second.key))
        return Error(fmt::format("{} changed while the step ran: the step's cache key was computed from other "
                                 "content than it would copy; run the build again", src_rel));
      layer::ExternalFile f;
      f.name = tar_name;
      f.dir_fd = src_dir_fd;
      f.rel = src_rel;
      f.perm = o.chmod ? o.chmod->apply(st.st_mode, false) : (st.st_mode & 07777);
      f.uid = o.owner.set ? o.owner.uid : 0;
      f.gid = o.owner.set ? o.owner.gid : 0;
      f.mtime = st.st_mtim.tv_sec;
      f.expect = hashed->second.key;
      f.digest = hashed->second.digest;
      direct->files.insert_or_assign(tar_name, std::move(f));
      // The directory's times move as if the file had been created in it.
      if (::futimens(dir.get(), nullptr) != 0) return Error::sys("set times of " + parent);
      return ok_status();
    }
  }
  if (S_ISDIR(st.st_mode)) {
    if (exists && S_ISLNK(existing.st_mode)) {
      // A link to a directory stays: BuildKit copies through it (inside the root).
      auto target = stat_in_root(root_fd, dest);
      if (target && S_ISDIR(target->st_mode)) return ok_status();
    }
    if (exists && !S_ISDIR(existing.st_mode)) {
      if (::unlinkat(dir.get(), name.c_str(), 0) != 0) return Error::sys("replace " + dest);
      exists = false;
    }
    if (!exists && ::mkdirat(dir.get(), name.c_str(), 0755) != 0) return Error::sys("create " + dest);
    return apply_meta(dir.get(), name, st, o, dest);
  }
  if (exists) {
    int flags = S_ISDIR(existing.st_mode) ? AT_REMOVEDIR : 0;
    if (::unlinkat(dir.get(), name.c_str(), flags) != 0) return Error::sys("replace " + dest);
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlinkat(src_dir_fd, src_rel.c_str(), target.data(), target.size());
    if (n < 0) return Error::sys("read link " + src_rel);
    target.resize(static_cast<size_t>(n));
    if (::symlinkat(target.c_str(), dir.get(), name.c_str()) != 0) return Error::sys("create link " + dest);
  } else if (S_ISREG(st.st_mode)) {
    if (o.links && st.st_nlink > 1) {
      auto first = o.links->find({st.st_dev, st.st_ino});
      if (first != o.links->end()) {
        auto [first_parent, first_name] = split_parent(first->second);
        DFGEN_TRY(UniqueFd first_dir, open_dir_in_root(root_fd, first_parent, false));
        if (::linkat(first_dir.get(), first_name.c_str(), dir.get(), name.c_str(), 0) != 0)
          return Error::sys("link " + dest + " to " + first->second);
        return ok_status();
      }
      o.links->emplace(std::pair{st.st_dev, st.st_ino}, dest);
    }
    UniqueFd in(::openat(src_dir_fd, src_rel.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in) return Error::sys("open " + src_rel);
    UniqueFd out(::openat(dir.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) return Error::sys("create " + dest);
    DFGEN_CHECK(copy_data(in.get(), out.get(), src_rel));
    if (::close(out.release()) != 0) return Error::sys("close " + dest);
  } else {
    if (::mknodat(dir.get(), name.c_str(), st.st_mode, st.st_rdev) != 0) return Error::sys("create " + dest);
  }
  return apply_meta(dir.get(), name, st, o, dest);
}

Status write_heredoc(int root_fd, const std::string& dest, const std::string& content,
                     const CopyOptions& o) {
  auto [parent, name] = split_parent(dest);
  DFGEN_TRY(UniqueFd dir, open_dir_in_root(root_fd, parent, true, o.owner.set ? o.owner.uid : 0,
                                           o.owner.set ? o.owner.gid : 0));
  ::unlinkat(dir.get(), name.c_str(), 0);
  UniqueFd out(::openat(dir.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!out) return Error::sys("create " + dest);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(out.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("write " + dest);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(out.release()) != 0) return Error::sys("close " + dest);
  struct stat st {};
  st.st_mode = S_IFREG | 0644;   // heredoc files: 0644 and time 0 (reproducible)
  return apply_meta(dir.get(), name, st, o, dest);
}

// Every entry below `rel` (a dir, relative to dir_fd), sorted, relative to `rel`'s parent-of-contents.
Status list_tree(int dir_fd, const std::string& rel, const std::string& prefix,
                 std::vector<std::string>& out) {
  UniqueFd fd(::openat(dir_fd, rel.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return Error::sys("open " + rel);
  DIR* d = ::fdopendir(fd.release());
  if (!d) return Error::sys("read " + rel);
  std::vector<std::pair<std::string, bool>> entries;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st;
    bool dir = ::fstatat(::dirfd(d), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    entries.emplace_back(n, dir);
  }
  ::closedir(d);
  std::sort(entries.begin(), entries.end());
  for (const auto& [n, dir] : entries) {
    std::string child = prefix.empty() ? n : prefix + "/" + n;
    out.push_back(child);
    if (dir) DFGEN_CHECK(list_tree(dir_fd, rel + "/" + n, child, out));
  }
  return ok_status();
}

std::string join_dest(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// `path` inside the root at `root_dir` (open as root_fd) with its last
// component followed when it is a symlink, as a path from that root.
Result<std::string> resolve_link_in_root(int root_fd, const std::string& root_dir, const std::string& path) {
  auto [parent, name] = split_parent(path);
  DFGEN_TRY(UniqueFd pfd, open_dir_in_root(root_fd, parent, false));
  struct stat st;
  if (::fstatat(pfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(st.st_mode)) return path;
  DFGEN_TRY(UniqueFd target, open_in_root(root_fd, path, O_PATH));
  char buf[4096];
  ssize_t n = ::readlink(fmt::format("/proc/self/fd/{}", target.get()).c_str(), buf, sizeof buf);
  if (n < 0) return Error::sys("resolve " + path);
  std::string resolved(buf, static_cast<size_t>(n));
  if (!resolved.starts_with(root_dir)) return Error(fmt::format("resolve {}: outside the root", path));
  resolved = resolved.substr(root_dir.size());
  return resolved.empty() ? std::string("/") : resolved;
}

// One thing to copy: the tree `rel` below `src_fd`, with a flag for directories.
struct Item {
  int src_fd;
  std::string rel;
  bool is_dir;
  std::vector<std::string> contents;   // for dirs: entries relative to rel
  std::optional<std::string> pivot;    // --parents: rel is kept below dest from here
  bool remote = false;                 // an ADD URL or git checkout: never extracted
  std::string name;                    // the name a file gets in a dest dir (default: rel's)
};

// "b/c" for pivot "a" and path "a/b/c"; the whole path for pivot "."; "" when equal.
std::string relative_below(const std::string& pivot, const std::string& path) {
  if (pivot == ".") return path == "." ? "" : path;
  return path.size() > pivot.size() ? path.substr(pivot.size() + 1) : std::string();
}

}  // namespace

Status append_digests(const StepInput& in, const context::Selection& sel, Json& inputs) {
  for (const auto& rel : sel.all_files()) {
    std::string abs = path_join(in.spec.context, rel);
    struct stat st;
    if (::lstat(abs.c_str(), &st) != 0) return Error::sys("stat " + rel);
    Json entry = {rel, st.st_mode};
    if (S_ISREG(st.st_mode)) {
      // Through the stat cache when there is one: an unchanged file is not read.
      DFGEN_TRY(std::string digest, in.stat_cache ? in.stat_cache->digest(rel, st) : sha256_file(abs));
      hashed_files()[&in.spec].insert_or_assign(rel, Hashed{StatKey::of(st), digest});
      entry.push_back(digest);
    } else if (S_ISLNK(st.st_mode)) {
      char buf[PATH_MAX];
      ssize_t n = ::readlink(abs.c_str(), buf, sizeof buf);
      if (n < 0) return Error::sys("read link " + rel);
      entry.push_back(std::string(buf, static_cast<size_t>(n)));
    }
    inputs.push_back(std::move(entry));
  }
  return ok_status();
}

Result<Json> copy_inputs(const StepInput& in) {
  Json inputs = Json::array();
  if (in.spec.op.value("kind", "") == "add") DFGEN_CHECK(check_add_sources(in.spec.op));
  if (in.spec.op.value("kind", "") == "add") {
    DFGEN_TRY(Json remote, remote_inputs(in.spec.op));
    for (auto& r : remote) inputs.push_back(std::move(r));
  }
  if (!has_context_sources(in.spec.op)) return inputs;
  DFGEN_TRY(IgnoreMatcher ignore, op_ignore(in.spec.op));
  DFGEN_TRY(context::Selection sel, context::select_op(in.spec.context, in.spec.op, ignore));
  DFGEN_CHECK(append_digests(in, sel, inputs));
  return inputs;
}

Result<std::optional<Layer>> execute_copy(Store& store, const StepInput& in) {
  const Json& op = in.spec.op;
  // --link: the layer is built in an empty root, independent of the parent
  // (step.cc leaves the parent out of its key); the result still stacks it.
  bool link = op.value("link", false) == true;
  DFGEN_TRY(Workspace ws, Workspace::open(store, link ? std::vector<Layer>{} : in.parent.layers));
  UniqueFd root(::open(ws.root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return Error::sys("open " + ws.root());

  bool add = op.value("kind", "") == "add";
  if (add) DFGEN_CHECK(check_add_sources(op));
  CopyOptions opts;
  DFGEN_TRY(opts.chmod, ModeSpec::parse(op.value("chmod", "")));
  std::string chown = op.value("chown", "");
  if (!chown.empty()) {
    DFGEN_TRY(opts.owner, resolve_chown(ws.root(), chown));
  }

  std::vector<Item> items;
  std::vector<std::pair<std::string, std::string>> heredocs;   // name, content
  UniqueFd context_fd;
  std::optional<Workspace> source_ws;
  UniqueFd source_root;
  std::vector<UniqueFd> held;   // parents of --from and remote sources, open while items use them
  if (has_context_sources(op)) {
    context_fd.reset(::open(in.spec.context.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!context_fd) return Error::sys("open build context " + in.spec.context);
    DFGEN_TRY(IgnoreMatcher ignore, op_ignore(op));
    DFGEN_TRY(context::Selection sel, context::select_op(in.spec.context, op, ignore));
    std::vector<std::string> pivots;
    for (const auto& s : op.value("sources", Json::array()))
      if (s.contains("context") && !is_remote_source(s)) pivots.push_back(s.value("pivot", ""));
    for (auto& m : sel.matches) {
      Item item{context_fd.get(), m.path, m.is_dir, {}, std::nullopt, false, m.name};
      std::string prefix = m.path == "." ? "" : m.path + "/";
      for (auto& f : m.files) item.contents.push_back(f.substr(prefix.size()));
      if (m.pattern < pivots.size() && !pivots[m.pattern].empty()) item.pivot = pivots[m.pattern];
      items.push_back(std::move(item));
    }
  }
  for (const auto& s : op.value("sources", Json::array())) {
    if (s.contains("heredoc")) heredocs.emplace_back(s.value("name", ""), s["heredoc"]);
    if (add && is_remote_source(s)) {
      DFGEN_TRY(FetchedSource f, fetch_remote(s, op));
      UniqueFd dir(::open(f.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!dir) return Error::sys("open " + f.dir);
      Item item{dir.get(), f.rel, f.is_dir, {}, std::nullopt, true};
      if (item.is_dir) DFGEN_CHECK(list_tree(dir.get(), f.rel, "", item.contents));
      items.push_back(std::move(item));
      held.push_back(std::move(dir));
      continue;
    }
    if (!s.contains("path")) continue;
    if (!source_ws) {
      auto it = in.from.find("source");
      if (it == in.from.end()) return Error("COPY --from: the spec names no source stage");
      DFGEN_TRY(Workspace w, Workspace::open(store, it->second.layers));
      source_ws.emplace(std::move(w));
      source_root.reset(::open(source_ws->root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!source_root) return Error::sys("open " + source_ws->root());
    }
    std::string path = s["path"];
    std::string own_name = basename_of(path);   // a followed link keeps its own name in a dest dir
    auto st = stat_in_root(source_root.get(), path);
    if (!st) return Error(fmt::format("failed to compute cache key: \"{}\" not found", path));
    // As BuildKit, a source that is a symlink is followed (inside the other
    // root); links below a directory source are copied as links.
    DFGEN_TRY(path, resolve_link_in_root(source_root.get(), source_ws->root(), path));
    auto [parent, name] = split_parent(path);
    DFGEN_TRY(UniqueFd pfd, open_dir_in_root(source_root.get(), parent, false));
    Item item{pfd.get(), name, S_ISDIR(st->st_mode), {}, std::nullopt, false, own_name};
    if (item.is_dir) DFGEN_CHECK(list_tree(pfd.get(), name, "", item.contents));
    items.push_back(std::move(item));
    held.push_back(std::move(pfd));
  }

  std::optional<Direct> direct;
  if (!add && context_fd) {
    direct.emplace();
    direct->context_fd = context_fd.get();
    direct->root_dir = ws.root();
    direct->hashed = &hashed_files()[&in.spec];
  }
  Direct* dp = direct ? &*direct : nullptr;
  std::map<std::pair<dev_t, ino_t>, std::string> links;
  opts.links = &links;
  std::string dest = op.value("dest", "/");
  bool dest_is_dir = dest.back() == '/';
  // As BuildKit, directories this COPY creates for dest belong to --chown's owner.
  uid_t dest_uid = opts.owner.set ? opts.owner.uid : 0;
  gid_t dest_gid = opts.owner.set ? opts.owner.gid : 0;
  bool many = items.size() + heredocs.size() > 1;
  for (const auto& item : items) {
    std::string base = dest;   // where a directory's contents go
    if (item.pivot) {
      // --parents: the source's path below its pivot is kept under dest; the
      // directories on the way are copied with their own metadata.
      std::string below = relative_below(*item.pivot, item.rel);
      std::string walked = *item.pivot;
      size_t start = 0;
      for (size_t slash; (slash = below.find('/', start)) != std::string::npos; start = slash + 1) {
        walked = walked == "." ? below.substr(0, slash) : *item.pivot + "/" + below.substr(0, slash);
        DFGEN_CHECK(copy_entry(item.src_fd, walked, root.get(), join_dest(dest, below.substr(0, slash)), opts, dp));
      }
      if (!below.empty()) {
        base = join_dest(dest, below);
        DFGEN_CHECK(copy_entry(item.src_fd, item.rel, root.get(), base, opts, dp));
      } else {
        DFGEN_CHECK(open_dir_in_root(root.get(), dest, true, dest_uid, dest_gid));
      }
      if (!item.is_dir) continue;
    } else if (item.is_dir) {
      if (item.rel != ".") DFGEN_CHECK(copy_entry(item.src_fd, item.rel, root.get(), dest, opts, dp));
      else DFGEN_CHECK(open_dir_in_root(root.get(), dest, true, dest_uid, dest_gid));
    }
    if (item.is_dir) {
      for (const auto& c : item.contents)
        DFGEN_CHECK(copy_entry(item.src_fd, item.rel == "." ? c : item.rel + "/" + c, root.get(),
                               join_dest(base, c), opts, dp));
      continue;
    }
    // An archive is extracted into dest (a directory), not copied: by default
    // a local one; ADD --unpack=true|false decides for every source.
    if (add && op.value("unpack", !item.remote)) {
      DFGEN_TRY(bool archive, is_archive(item.src_fd, item.rel));
      if (archive) {
        DFGEN_CHECK(extract_archive(item.src_fd, item.rel, root.get(), dest, opts.owner));
        continue;
      }
    }
    std::string target = dest;
    auto existing = stat_in_root(root.get(), dest);
    if (dest_is_dir || many || (existing && S_ISDIR(existing->st_mode)))
      target = join_dest(dest, item.name.empty() ? basename_of(item.rel) : item.name);
    else if (existing) {   // a dest that is a link to a file: BuildKit writes through it
      DFGEN_TRY(target, resolve_link_in_root(root.get(), ws.root(), dest));
    }
    DFGEN_CHECK(copy_entry(item.src_fd, item.rel, root.get(), target, opts, dp));
  }
  for (const auto& [name, content] : heredocs) {
    std::string target = dest;
    auto existing = stat_in_root(root.get(), dest);
    if (dest_is_dir || many || (existing && S_ISDIR(existing->st_mode)))
      target = join_dest(dest, name);
    else if (existing) {   // written through a link to a file, as a source file is
      DFGEN_TRY(target, resolve_link_in_root(root.get(), ws.root(), dest));
    }
    if (dp) {
      auto [parent, base] = split_parent(target);
      DFGEN_TRY(UniqueFd pfd, open_dir_in_root(root.get(), parent, true, dest_uid, dest_gid));
      DFGEN_TRY(std::string tar_name, dp->tar_name(pfd.get(), base));
      dp->files.erase(tar_name);
    }
    DFGEN_CHECK(write_heredoc(root.get(), target, content, opts));
  }
  root.reset();
  std::vector<layer::ExternalFile> files;
  if (dp)
    for (auto& [name, f] : dp->files) files.push_back(std::move(f));
  return ws.commit(store, write_options(in.spec), files);
}

}  // namespace dfgen::step
