// Paths inside a container's root file system, resolved inside it: a symlink
// in the rootfs can't lead out to the host's files.
#pragma once

#include <string>
#include <vector>

#include "core/fs.h"
#include "core/result.h"

namespace dfgen::sandbox {

// Opens `path` (absolute or relative, inside the rootfs) with openat2's
// RESOLVE_IN_ROOT: ".." and absolute symlinks stop at the rootfs. Where the
// kernel lacks openat2, falls back to open_in_root_nofollow.
Result<UniqueFd> open_in_root(const std::string& rootfs, const std::string& path, int flags);
// The fallback: walks component by component and refuses symlinks.
Result<UniqueFd> open_in_root_nofollow(const std::string& rootfs, const std::string& path,
                                       int flags);

// mkdir -p of `path` inside the rootfs (mode 0755, owned by uid:gid for the
// dirs it makes).
Status mkdir_in_root(const std::string& rootfs, const std::string& path, uid_t uid = 0,
                     gid_t gid = 0);

// Mount points runc creates in the rootfs (an empty /etc/resolv.conf, a /dev
// dir...) must not end up in the layer: records which of the destinations are
// missing before the run, and removes the empty stubs afterwards.
class MountStubs {
 public:
  MountStubs(std::string rootfs, const std::vector<std::string>& destinations);
  // Removes the recorded paths that are still empty files or trees of empty
  // dirs; anything the process put there stays.
  void cleanup();
 private:
  std::string rootfs_;
  std::vector<std::string> missing_;   // relative to rootfs, first missing component
};

}  // namespace dfgen::sandbox
