// RUN --mount (docs/mounts.md): the op's "mounts" list set up on the host and
// handed to the sandbox as bind mounts.
//
//   bind    a throwaway copy of context files (after the ignore rules), or a
//           stage / image root (an overlay with its own throwaway upper dir);
//           read-only unless `rw`. Nothing written there is kept.
//   cache   $STORE/cache-mounts/<sha256 hex of id>/data, kept across builds,
//           never in a layer nor in the key; `sharing` takes a flock. Made
//           from a --cache-from snapshot of the id when one exists.
//   tmpfs   a tmpfs mounted in the step's scratch dir.
//   secret  the value read now (never earlier: the spec holds only where it
//           comes from, io.secrets) onto a tmpfs, or into the environment.
//   ssh     the build's ssh agent, through a proxy socket (ssh_mount.h).
//
// The key: bind mounts of the context add their files' digests (run_inputs),
// `from` stages their keys (io.from "mountN", like COPY --from). Cache
// contents and secret values never enter it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/json.h"
#include "core/result.h"
#include "core/store.h"
#include "runner/sandbox/sandbox.h"
#include "runner/step/executors.h"
#include "runner/step/ssh_mount.h"
#include "runner/step/workspace.h"

namespace dfgen::step {

// Digests of what the RUN reads outside its parent: the context files its
// bind mounts select ([] when none, so a RUN without mounts keeps its key).
Result<Json> run_inputs(const StepInput& in);

// The dir of the cache mount `id` in the store: $STORE/cache-mounts/<sha256
// hex of id>, holding `data` (what the RUN sees) and `id`.
std::string cache_mount_dir(const Store& store, const std::string& id);

// dfgen --cache-to ...,cache-mounts=ID (docs/remote-cache.md): the cache
// mount's data dir written as a layer blob into the store, under an exclusive
// lock (waits until no step uses it). nullopt when no RUN of this store has
// made the id. A new cache dir is seeded from such a layer when the spec has
// --cache-from sources that hold one (MountSetup::create_cache).
Result<std::optional<Layer>> snapshot_cache_mount(Store& store, const std::string& id);

// A tmpfs mounted on a host dir; unmounted (lazily) when it goes.
class TmpfsMount {
 public:
  static Result<TmpfsMount> mount(const std::string& dir, const std::string& options);
  TmpfsMount(TmpfsMount&& o) noexcept : dir_(std::move(o.dir_)) { o.dir_.clear(); }
  TmpfsMount& operator=(TmpfsMount&&) = delete;
  ~TmpfsMount();
  const std::string& dir() const { return dir_; }

 private:
  explicit TmpfsMount(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// The mounts of one RUN, ready on the host. Owns everything it set up (stage
// overlays, tmpfs mounts, cache locks, copies under `scratch`): all released
// when it goes, which must be before `scratch` is removed.
class RunMounts {
 public:
  // `scratch`: an empty dir of the step, removed by the caller afterwards.
  static Result<RunMounts> prepare(Store& store, const StepInput& in, const std::string& scratch);
  RunMounts(RunMounts&&) = default;

  const std::vector<sandbox::BindMount>& binds() const { return binds_; }
  const std::vector<std::string>& env() const { return env_; }   // secrets as "K=V"
  // A tmpfs dir for the runtime bundle when a secret is in play (its
  // config.json holds secret env values): "" when none is needed.
  const std::string& private_dir() const { return private_dir_; }

 private:
  RunMounts() = default;
  friend struct MountSetup;
  std::vector<sandbox::BindMount> binds_;
  std::vector<std::string> env_;
  std::string private_dir_;
  // Released in reverse order: tmpfs mounts, stage overlays, then cache locks.
  std::vector<UniqueFd> locks_;
  std::vector<Workspace> sources_;
  std::vector<TmpfsMount> tmpfs_;
  SshMounts ssh_;   // its proxies stop first
};

}  // namespace dfgen::step
