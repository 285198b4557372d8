#include "core/context.h"

#include <dirent.h>
#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <optional>

#include "core/fs.h"

namespace dfgen::context {
namespace {

bool has_wildcard(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

std::vector<std::string> split_path(std::string_view p) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    if (end > start) parts.emplace_back(p.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::string join_rel(const std::string& dir, const std::string& name) {
  return dir.empty() || dir == "." ? name : dir + "/" + name;
}

Result<std::vector<std::string>> list_dir(const std::string& abs) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(abs.c_str()), ::closedir);
  if (!d) return Error::sys("read directory " + abs);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d.get())) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The part of `path` below `base` ("." for the root), for --exclude matching.
std::string relative_to(const std::string& base, const std::string& path) {
  if (base.empty() || base == ".") return path;
  return path.size() > base.size() ? path.substr(base.size() + 1) : std::string();
}

// `rel` (relative to the root) with every symlink in it resolved inside the
// root, as BuildKit resolves a source's parent directories: an absolute
// target or ".." never leaves the context. "" when the root itself.
Result<std::string> resolve_in_root(const std::string& root, const std::string& rel) {
  std::vector<std::string> done;
  std::vector<std::string> todo = split_path(rel);
  std::reverse(todo.begin(), todo.end());
  int links = 0;
  while (!todo.empty()) {
    std::string part = std::move(todo.back());
    todo.pop_back();
    if (part == ".") continue;
    if (part == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    done.push_back(part);
    std::string cur;
    for (const auto& d : done) cur = join_rel(cur, d);
    struct stat st;
    if (::lstat(path_join(root, cur).c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) continue;
    if (++links > 40) return Error(fmt::format("too many levels of symbolic links in {}", rel));
    char buf[4096];
    ssize_t n = ::readlink(path_join(root, cur).c_str(), buf, sizeof buf);
    if (n < 0) return Error::sys("read link " + cur);
    std::string target(buf, static_cast<size_t>(n));
    done.pop_back();
    if (target.starts_with('/')) done.clear();
    auto more = split_path(target);
    for (auto it = more.rbegin(); it != more.rend(); ++it) todo.push_back(*it);
  }
  std::string out;
  for (const auto& d : done) out = join_rel(out, d);
  return out;
}

struct Walker {
  const std::string& root;
  const IgnoreMatcher& ignore;
  Selection& out;
  const IgnoreMatcher* exclude = nullptr;
  std::string exclude_base;   // entries are matched against exclude relative to this

  bool excluded_by_option(const std::string& path) const {
    if (!exclude) return false;
    std::string rel = relative_to(exclude_base, path);
    return !rel.empty() && exclude->excluded(rel);
  }
  bool option_may_include_below(const std::string& path) const {
    return exclude->may_include_below(relative_to(exclude_base, path));
  }

  Status walk(const std::string& rel, std::vector<std::string>& files) {
    std::string abs = path_join(root, rel);
    out.walked_dirs.push_back(abs);
    DFGEN_TRY(auto names, list_dir(abs));
    for (const auto& n : names) {
      std::string child = join_rel(rel, n);
      struct stat st;
      if (::lstat(path_join(root, child).c_str(), &st) != 0) return Error::sys("stat " + child);
      bool dir = S_ISDIR(st.st_mode);
      if (ignore.excluded(child)) {
        if (dir && ignore.may_include_below(child)) DFGEN_CHECK(walk(child, files));
        continue;
      }
      if (excluded_by_option(child)) {
        if (dir && option_may_include_below(child)) DFGEN_CHECK(walk(child, files));
        continue;
      }
      files.push_back(child);
      if (dir) DFGEN_CHECK(walk(child, files));
    }
    return ok_status();
  }

  // Matches pattern components [i..] below `rel`, appending top-level matches.
  Status expand(const std::vector<std::string>& parts, size_t i, const std::string& rel,
                std::vector<std::string>& found) {
    if (i == parts.size()) {
      found.push_back(rel.empty() ? "." : rel);
      return ok_status();
    }
    const std::string& part = parts[i];
    if (!has_wildcard(part)) {
      std::string child = join_rel(rel, part);
      // A parent position never follows a symlink out of the context.
      if (i + 1 < parts.size()) {
        DFGEN_TRY(child, resolve_in_root(root, child));
      }
      if (path_exists(path_join(root, child))) return expand(parts, i + 1, child, found);
      return ok_status();
    }
    std::string abs = path_join(root, rel.empty() ? "." : rel);
    if (!is_directory(abs)) return ok_status();
    out.walked_dirs.push_back(abs);
    DFGEN_TRY(auto names, list_dir(abs));
    for (const auto& n : names) {
      if (::fnmatch(part.c_str(), n.c_str(), FNM_PATHNAME) != 0) continue;
      std::string child = join_rel(rel, n);
      if (i + 1 < parts.size()) {
        auto resolved = resolve_in_root(root, child);
        if (!resolved.ok()) continue;   // a link loop matches nothing below it
        child = std::move(*resolved);
      }
      DFGEN_CHECK(expand(parts, i + 1, child, found));
    }
    return ok_status();
  }
};

}  // namespace

Result<std::string> clean_source(const std::string& source) {
  std::vector<std::string> out;
  for (auto& part : split_path(source)) {
    if (part == ".") continue;
    if (part == "..") {
      if (out.empty()) return Error(fmt::format("forbidden path outside the build context: {}", source));
      out.pop_back();
      continue;
    }
    out.push_back(part);
  }
  if (out.empty()) return std::string(".");
  std::string s;
  for (auto& p : out) s = s.empty() ? p : s + "/" + p;
  return s;
}

std::vector<std::string> Selection::all_files() const {
  std::vector<std::string> all;
  for (const auto& m : matches) {
    if (!m.is_dir) all.push_back(m.path);
    all.insert(all.end(), m.files.begin(), m.files.end());
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

Result<Selection> select(const std::string& root, const std::vector<std::string>& patterns,
                         const IgnoreMatcher& ignore) {
  return select(root, patterns, ignore, SelectOptions{});
}

Result<Selection> select(const std::string& root, const std::vector<std::string>& patterns,
                         const IgnoreMatcher& ignore, const SelectOptions& options) {
  Selection sel;
  Walker w{root, ignore, sel, options.exclude, ""};
  for (size_t i = 0; i < patterns.size(); ++i) {
    const std::string& pattern = patterns[i];
    std::string pivot = i < options.pivots.size() ? options.pivots[i] : "";
    DFGEN_TRY(std::string cleaned, clean_source(pattern));
    std::vector<std::string> found;
    if (cleaned == ".") {
      found.push_back(".");
    } else {
      DFGEN_CHECK(w.expand(split_path(cleaned), 0, "", found));
    }
    std::erase_if(found, [&](const std::string& p) {
      if (p != "." && ignore.excluded(p)) return true;
      if (!options.exclude || p == ".") return false;
      if (!pivot.empty()) {
        w.exclude_base = pivot;
        return w.excluded_by_option(p);
      }
      return has_wildcard(cleaned) && options.exclude->excluded(p.substr(p.rfind('/') + 1));
    });
    if (found.empty()) {
      // BuildKit allows a wildcard that matches nothing (AllowEmptyWildcard):
      // the source adds nothing (the classic builder's "no source files were
      // specified" is not BuildKit's).
      if (has_wildcard(cleaned)) continue;
      return Error(fmt::format("file not found in build context or excluded by .dockerignore: {}", pattern));
    }
    for (auto& p : found) {
      Match m;
      m.path = p;
      m.pattern = i;
      struct stat st;
      if (pivot.empty() && ::lstat(path_join(root, p).c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
        // BuildKit follows a source that is a symlink (FollowSymlinks), inside
        // the context; a dangling one is copied as the link it is.
        auto target = resolve_in_root(root, p);
        if (target.ok() && path_exists(path_join(root, target->empty() ? "." : *target))) {
          m.name = p.substr(p.rfind('/') + 1);
          m.path = target->empty() ? "." : *target;
        }
      }
      m.is_dir = ::lstat(path_join(root, m.path).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      w.exclude_base = pivot.empty() ? m.path : pivot;
      if (m.is_dir) DFGEN_CHECK(w.walk(m.path == "." ? "" : m.path, m.files));
      sel.matches.push_back(std::move(m));
    }
  }
  std::sort(sel.walked_dirs.begin(), sel.walked_dirs.end());
  sel.walked_dirs.erase(std::unique(sel.walked_dirs.begin(), sel.walked_dirs.end()), sel.walked_dirs.end());
  return sel;
}

Result<Selection> select_op(const std::string& root, const Json& op, const IgnoreMatcher& ignore) {
  std::vector<std::string> patterns, pivots;
  for (const auto& s : op.value("sources", Json::array())) {
    if (!s.contains("context")) continue;
    patterns.push_back(s["context"]);
    pivots.push_back(s.value("pivot", ""));
  }
  std::string text;
  for (const auto& p : op.value("exclude", Json::array())) text += p.get<std::string>() + "\n";
  std::optional<IgnoreMatcher> exclude;
  if (!text.empty()) {
    DFGEN_TRY(IgnoreMatcher m, IgnoreMatcher::parse(text, "--exclude"));
    exclude.emplace(std::move(m));
  }
  return select(root, patterns, ignore, SelectOptions{exclude ? &*exclude : nullptr, pivots});
}

}  // namespace dfgen::context
