// Paths inside a root file system, resolved inside it: symlinks (absolute
// ones included) never lead out of the root. Uses openat2(RESOLVE_IN_ROOT).
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/fs.h"
#include "core/result.h"

namespace dfgen::step {

// Opens `path` (relative to the root, or absolute meaning the root's /) with
// `flags`. Returns an fd or the errno as an Error (sys_errno set).
Result<UniqueFd> open_in_root(int root_fd, std::string_view path, int flags, mode_t mode = 0);

// Opens the directory `path`, creating missing components (mode 0755,
// owner uid:gid) when `create` is set.
Result<UniqueFd> open_dir_in_root(int root_fd, std::string_view path, bool create,
                                  uid_t uid = 0, gid_t gid = 0);

// stat of `path` following symlinks inside the root; nullopt when it does not exist.
std::optional<struct stat> stat_in_root(int root_fd, std::string_view path);

// Splits "/a/b/c" into ("/a/b", "c").
std::pair<std::string, std::string> split_parent(std::string_view path);

}  // namespace dfgen::step
