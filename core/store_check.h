// Keeping a store healthy: `dfrun check [--repair]` and `dfrun prune`
// (see docs/robustness.md).
//
// The garbage-collection lock: every `dfrun step` holds a shared flock on
// $STORE/locks/gc.lock while it runs (GcLock::shared); prune and
// check --repair hold it exclusively (GcLock::exclusive), so they never run
// while a step is between writing a blob and recording it in a cache entry
// or tag, and never delete a temp dir a step is working in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs.h"
#include "core/result.h"
#include "core/store.h"

namespace dfgen {

// flock(2) on locks/gc.lock, shared or exclusive, released on destruction.
class GcLock {
 public:
  static Result<GcLock> shared(const Store& store);      // blocks
  static Result<GcLock> exclusive(const Store& store);   // blocks
  GcLock(GcLock&&) = default;
  GcLock& operator=(GcLock&&) = default;
 private:
  static Result<GcLock> acquire(const Store& store, int how);
  explicit GcLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Marks a cache entry as used now (its mtime is the LRU clock of prune).
// A missing entry is not an error.
Status touch_cache_entry(const Store& store, std::string_view key);

struct CheckOptions {
  bool repair = false;
  // Temp entries older than this are left over by killed processes: repair
  // removes them (killing a leftover runc container and unmounting first).
  int64_t stale_after_seconds = 300;
};

struct CheckReport {
  std::vector<std::string> problems;   // corruption: `dfrun check` exits 1
  std::vector<std::string> warnings;   // garbage that is harmless (temp leftovers)
  std::vector<std::string> removed;    // what --repair removed
};

// Verifies every blob's digest, the names in snapshots/, every cache entry
// (parses, its layer blob exists), every tag (manifest, config and layers
// exist) and reports temp leftovers. With `repair`, takes the GC lock
// exclusively and removes what is broken.
Result<CheckReport> check_store(const Store& store, const CheckOptions& opts);

struct PruneOptions {
  // Keep cache entries, most recently used first, while everything kept
  // stays under this many bytes. Unset: keep every cache entry.
  std::optional<int64_t> keep_bytes;
  // Nothing younger than this is deleted: blobs of an import or pull that has
  // not tagged yet, cache entries a build in flight still relies on.
  int64_t grace_seconds = 600;
};

struct PruneReport {
  std::vector<std::string> removed;   // one line per removed item
  int64_t freed_bytes = 0;
  int64_t kept_bytes = 0;
};

// Deletes blobs, snapshots and cache entries not reachable from a tag or a
// kept cache entry, and stale temp entries. Holds the GC lock exclusively.
Result<PruneReport> prune_store(const Store& store, const PruneOptions& opts);

// "10GB", "512MiB", "1.5g", "4096" (bytes). Units are powers of 1024, like
// Docker's --keep-storage.
Result<int64_t> parse_size(std::string_view text);

}  // namespace dfgen
