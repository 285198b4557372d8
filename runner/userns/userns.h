// Rootless dfrun: a user who is not root runs dfrun inside a user namespace
// where they are root (uid 0 -> their uid, 1.. -> their subordinate range from
// /etc/subuid and /etc/subgid, mapped by the setuid helpers newuidmap and
// newgidmap) and a mount namespace of its own. There overlay is mounted with
// `userxattr` and runc runs rootless. See docs/rootless.md.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace dfgen::userns {

struct IdRange {
  uint32_t start = 0;
  uint32_t count = 0;
};

// The ranges /etc/subuid (or /etc/subgid) `content` gives the user `name`
// (lines "name:start:count", or "id:start:count" for the numeric `id`), in
// file order. Malformed lines are skipped, as newuidmap does.
std::vector<IdRange> parse_subid(const std::string& content, const std::string& name, uint32_t id);

// The mapping triples for newuidmap/newgidmap: `id` is root inside, the
// ranges follow from 1 on, back to back.
std::vector<std::string> map_args(uint32_t id, const std::vector<IdRange>& ranges);

// True when this process runs in a user namespace other than the initial one
// (its uid_map is not the identity over all ids): overlay then needs
// `userxattr`, runc runs rootless, and sysfs can't always be mounted.
bool in_user_namespace();

// Why unshare(CLONE_NEWUSER) failed with `err`, naming the sysctl at fault
// when one is. `read_sysctl` gives the value of a /proc/sys path (e.g.
// "kernel/unprivileged_userns_clone") or nullopt when the kernel lacks it.
std::string explain_unshare_failure(
    int err, const std::function<std::optional<std::string>(const std::string&)>& read_sysctl);

// Where the host's pieces are; tests point them elsewhere.
struct Host {
  std::string subuid = "/etc/subuid";
  std::string subgid = "/etc/subgid";
};

// When the caller is not root: runs `argv` again (through /proc/self/exe)
// inside a new user + mount namespace as root, waits for it (forwarding
// SIGINT/SIGTERM/SIGHUP) and returns its exit code (128+signal when
// killed). When already root (also root of a user namespace) returns nullopt:
// go on in this process. A host that can't do it gives an error naming the
// missing piece (subordinate ranges, newuidmap, user namespaces disabled).
Result<std::optional<int>> reexec_as_root(char** argv, const Host& host = {});

}  // namespace dfgen::userns
