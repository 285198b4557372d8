// A stat cache for hashing the files of a build context: an unchanged file is
// never read again. One cache file per context directory, in the store:
//
//   $STORE/cache/stat/<sha256 hex of the context's absolute path>.bin
//
// a compact binary file (read whole, no parsing beyond fixed-width fields:
// a 20,000-file context loads in milliseconds, where the JSON form of version
// 1 took a good part of a store-hit step), in host byte order:
//
//   "DFGSTAT\x02"  root (u32 length + bytes)  count (u64)
//   count x { path relative to root (u32 + bytes), dev u64, ino u64, size i64,
//             mtime ns i64, ctime ns i64, mode u32, digest "sha256:..." (u32 + bytes) }
//
// entries sorted by path. A truncated file, trailing bytes, another root or
// another magic read as an empty cache.
//
// A lookup hits only when all six stat fields match. ctime is part of the key
// because it cannot be set by a program: a file rewritten with the same size and
// its mtime restored still gets a new ctime.
//
// Racy files: a file whose mtime or ctime is within kRacyWindowNs of the
// moment it was read may still be changing inside one timestamp tick (the
// kernel stamps files with a coarse clock), so its digest is returned but not
// remembered. It is read again next time, until it has been quiet long enough.
//
// Concurrency: readers take no lock (the file is replaced atomically by
// rename). save() holds a flock on "<cache file>.lock", re-reads the file and
// merges its own entries into it, so parallel dfrun processes hashing the same
// context never lose each other's work. The cache is only a cache: a missing,
// unreadable or foreign-version file is treated as empty, and deleting the
// whole folder is always safe.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/json.h"
#include "core/result.h"

namespace dfgen {

// The identity of a file's content as the file system reports it.
struct StatKey {
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint32_t mode = 0;
  bool operator==(const StatKey&) const = default;
  static StatKey of(const struct stat& st);
};

class StatCache {
 public:
  // Reads a file's content and returns its digest ("sha256:..."): the seam
  // tests count reads through.
  using Reader = std::function<Result<std::string>(const std::string& path)>;
  // Wall-clock time in nanoseconds since the epoch.
  using Clock = std::function<int64_t()>;

  static constexpr int64_t kRacyWindowNs = 2'000'000'000;

  // The cache of the tree at `root` (absolute), kept under `cache_dir`
  // (created if missing). Never fails on a bad cache file: it starts empty.
  static Result<StatCache> open(const std::string& cache_dir, const std::string& root,
                                Reader reader = {}, Clock clock = {});

  // The digest of root/rel, a regular file whose lstat is `st`: from the
  // cache when every stat field matches, else read (and remembered when the
  // file is not racy and did not change while it was read).
  Result<std::string> digest(const std::string& rel, const struct stat& st);

  // Writes the entries learned since open() (merged with the file as it is
  // now, under the lock). Does nothing when nothing was learned.
  Status save();

  const std::string& file() const { return file_; }
  int reads() const { return reads_; }

 private:
  struct Entry {
    StatKey key;
    std::string digest;
  };
  StatCache(std::string file, std::string root, Reader reader, Clock clock)
      : file_(std::move(file)), root_(std::move(root)), reader_(std::move(reader)),
        clock_(std::move(clock)) {}
  static std::map<std::string, Entry> load(const std::string& file, const std::string& root);

  std::string file_;
  std::string root_;
  Reader reader_;
  Clock clock_;
  std::map<std::string, Entry> entries_;   // as loaded, plus what was learned
  std::map<std::string, Entry> learned_;   // written by save()
  int reads_ = 0;
};

// $STORE/cache/stat: where dfrun keeps the stat caches of a store.
std::string stat_cache_dir(const std::string& store_root);

}  // namespace dfgen
