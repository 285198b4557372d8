#include "core/statcache.h"

#include <time.h>

#include "core/fs.h"
#include "core/sha256.h"

namespace dfgen {
namespace {

constexpr int kVersion = 1;

int64_t ns_of(const struct timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

int64_t realtime_ns() {
  struct timespec t;
  ::clock_gettime(CLOCK_REALTIME, &t);
  return ns_of(t);
}

Json entry_json(const StatKey& k, const std::string& digest) {
  return Json{{"dev", k.dev},           {"ino", k.ino},   {"size", k.size}, {"mtime", k.mtime_ns},
              {"ctime", k.ctime_ns},    {"mode", k.mode}, {"digest", digest}};
}

}  // namespace

StatKey StatKey::of(const struct stat& st) {
  return StatKey{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                 static_cast<int64_t>(st.st_size), ns_of(st.st_mtim),
                 ns_of(st.st_ctim),                static_cast<uint32_t>(st.st_mode)};
}

std::string stat_cache_dir(const std::string& store_root) {
  return path_join(store_root, "cache/stat");
}

std::map<std::string, StatCache::Entry> StatCache::load(const std::string& file, const std::string& root) {
  std::map<std::string, Entry> out;
  if (!path_exists(file)) return out;
  auto j = read_json_file(file);
  // A cache: anything unexpected reads as empty and is rewritten on save.
  if (!j.ok() || !j->is_object() || j->value("version", 0) != kVersion || j->value("root", "") != root ||
      !j->contains("entries") || !(*j)["entries"].is_object())
    return out;
  for (const auto& [rel, e] : (*j)["entries"].items()) {
    if (!e.is_object()) continue;
    try {
      Entry entry{StatKey{e.at("dev").get<uint64_t>(), e.at("ino").get<uint64_t>(),
                          e.at("size").get<int64_t>(), e.at("mtime").get<int64_t>(),
                          e.at("ctime").get<int64_t>(), e.at("mode").get<uint32_t>()},
                  e.at("digest").get<std::string>()};
      if (is_sha256_digest(entry.digest)) out.emplace(rel, std::move(entry));
    } catch (const Json::exception&) {
      continue;
    }
  }
  return out;
}

Result<StatCache> StatCache::open(const std::string& cache_dir, const std::string& root, Reader reader,
                                  Clock clock) {
  DFGEN_CHECK(make_dirs(cache_dir));
  std::string file = path_join(cache_dir, sha256_hex(root) + ".json");
  if (!reader) reader = [](const std::string& path) { return sha256_file(path); };
  if (!clock) clock = realtime_ns;
  StatCache cache(std::move(file), root, std::move(reader), std::move(clock));
  cache.entries_ = load(cache.file_, root);
  return cache;
}

Result<std::string> StatCache::digest(const std::string& rel, const struct stat& st) {
  StatKey key = StatKey::of(st);
  auto it = entries_.find(rel);
  if (it != entries_.end() && it->second.key == key) return it->second.digest;

  std::string path = path_join(root_, rel);
  int64_t started = clock_();
  ++reads_;
  DFGEN_TRY(std::string digest, reader_(path));
  struct stat after;
  if (::lstat(path.c_str(), &after) != 0) return Error::sys("stat " + path);
  bool unchanged = StatKey::of(after) == key;
  bool racy = key.mtime_ns > started - kRacyWindowNs || key.ctime_ns > started - kRacyWindowNs;
  if (unchanged && !racy) {
    entries_[rel] = Entry{key, digest};
    learned_[rel] = Entry{key, digest};
  }
  return digest;
}

Status StatCache::save() {
  if (learned_.empty()) return ok_status();
  DFGEN_TRY(FileLock lock, FileLock::acquire(file_ + ".lock"));
  std::map<std::string, Entry> merged = load(file_, root_);
  for (const auto& [rel, e] : learned_) merged[rel] = e;
  Json entries = Json::object();
  for (const auto& [rel, e] : merged) entries[rel] = entry_json(e.key, e.digest);
  Json doc{{"version", kVersion}, {"root", root_}, {"entries", std::move(entries)}};
  DFGEN_CHECK(write_file_atomic(file_, doc.dump() + "\n"));
  learned_.clear();
  return ok_status();
}

}  // namespace dfgen
