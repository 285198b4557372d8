// USER resolution, with the semantics of runc's GetExecUser (which Docker and
// BuildKit use): names must exist, numbers need not; supplementary groups
// only when no group is given.
#include <fcntl.h>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <limits>

#include "runner/sandbox/rootfs.h"
#include "runner/sandbox/sandbox.h"

namespace dfgen::sandbox {

namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  for (;;) {
    size_t j = s.find(sep, i);
    out.emplace_back(s.substr(i, j == std::string_view::npos ? s.npos : j - i));
    if (j == std::string_view::npos) return out;
    i = j + 1;
  }
}

// A decimal id in 0..2^31-1, or nothing.
std::optional<uint32_t> parse_id(std::string_view s) {
  uint32_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 2147483647u) return std::nullopt;
  return v;
}

struct PasswdEntry { std::string name; uint32_t uid, gid; std::string home; };
struct GroupEntry { std::string name; uint32_t gid; std::vector<std::string> members; };

std::vector<PasswdEntry> parse_passwd(std::string_view text) {
  std::vector<PasswdEntry> out;
  for (const auto& line : split(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    auto f = split(line, ':');
    if (f.size() < 4) continue;
    auto uid = parse_id(f[2]), gid = parse_id(f[3]);
    if (!uid || !gid) continue;
    out.push_back({f[0], *uid, *gid, f.size() > 5 && !f[5].empty() ? f[5] : "/"});
  }
  return out;
}

std::vector<GroupEntry> parse_group(std::string_view text) {
  std::vector<GroupEntry> out;
  for (const auto& line : split(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    auto f = split(line, ':');
    if (f.size() < 3) continue;
    auto gid = parse_id(f[2]);
    if (!gid) continue;
    GroupEntry g{f[0], *gid, {}};
    if (f.size() > 3 && !f[3].empty()) g.members = split(f[3], ',');
    out.push_back(std::move(g));
  }
  return out;
}

// The file's text, "" when absent (as runc: a rootfs without /etc/passwd
// still runs numeric users).
Result<std::string> read_in_root(const std::string& rootfs, const std::string& path) {
  auto fd = open_in_root(rootfs, path, O_RDONLY);
  if (!fd.ok()) {
    if (fd.error().sys_errno == ENOENT) return std::string();
    return std::move(fd).error();
  }
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys(fmt::format("read {} in {}", path, rootfs));
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

Result<User> resolve_user(const std::string& rootfs, const std::string& spec) {
  std::string user_arg = spec, group_arg;
  if (auto colon = spec.find(':'); colon != std::string::npos) {
    user_arg = spec.substr(0, colon);
    group_arg = spec.substr(colon + 1);
  }
  DFGEN_TRY(std::string passwd_text, read_in_root(rootfs, "/etc/passwd"));
  DFGEN_TRY(std::string group_text, read_in_root(rootfs, "/etc/group"));
  auto passwd = parse_passwd(passwd_text);
  auto groups = parse_group(group_text);

  User user;   // root, gid 0, home "/"
  std::string user_name;
  auto uid_arg = parse_id(user_arg);
  const PasswdEntry* found = nullptr;
  for (const auto& e : passwd) {
    bool match = user_arg.empty() ? e.uid == 0 : uid_arg ? e.uid == *uid_arg : e.name == user_arg;
    if (match) { found = &e; break; }
  }
  if (found) {
    user.uid = found->uid;
    user.gid = found->gid;
    user.home = found->home;
    user_name = found->name;
  } else if (!user_arg.empty()) {
    if (!uid_arg) {
      return Error(fmt::format("unable to find user {}: no matching entries in passwd file",
                               user_arg));
    }
    user.uid = *uid_arg;
  }

  if (!group_arg.empty()) {
    auto gid_arg = parse_id(group_arg);
    const GroupEntry* g = nullptr;
    for (const auto& e : groups) {
      if (gid_arg ? e.gid == *gid_arg : e.name == group_arg) { g = &e; break; }
    }
    if (g) {
      user.gid = g->gid;
    } else if (gid_arg) {
      user.gid = *gid_arg;
    } else {
      return Error(fmt::format("unable to find group {}: no matching entries in group file",
                               group_arg));
    }
  } else if (!user_name.empty()) {
    for (const auto& e : groups) {
      if (std::find(e.members.begin(), e.members.end(), user_name) != e.members.end() &&
          std::find(user.additional_gids.begin(), user.additional_gids.end(), e.gid) ==
              user.additional_gids.end()) {
        user.additional_gids.push_back(e.gid);
      }
    }
  }
  return user;
}

}  // namespace dfgen::sandbox
