#include "core/statcache.h"

#include <time.h>

#include <cstring>
#include <string_view>

#include "core/fs.h"
#include "core/sha256.h"

namespace dfgen {
namespace {

// The file starts with this magic; the format version is its last bytes.
constexpr std::string_view kMagic = "DFGSTAT\x02";

int64_t ns_of(const struct timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

int64_t realtime_ns() {
  struct timespec t;
  ::clock_gettime(CLOCK_REALTIME, &t);
  return ns_of(t);
}

// Fixed-width fields in host byte order: the cache never leaves the machine.
template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void put_str(std::string& out, std::string_view s) {
  put(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Reads fields from a buffer; any overrun sets `bad` and yields zeros.
struct FieldReader {
  std::string_view data;
  size_t pos = 0;
  bool bad = false;
  template <typename T>
  T get() {
    T v{};
    if (data.size() - pos < sizeof v) {
      bad = true;
      return v;
    }
    std::memcpy(&v, data.data() + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  std::string_view get_str() {
    uint32_t n = get<uint32_t>();
    if (bad || data.size() - pos < n) {
      bad = true;
      return {};
    }
    std::string_view s = data.substr(pos, n);
    pos += n;
    return s;
  }
};

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
  auto data = read_file(file);
  // A cache: anything unexpected reads as empty and is rewritten on save.
  if (!data.ok() || std::string_view(*data).substr(0, kMagic.size()) != kMagic) return out;
  FieldReader r{*data, kMagic.size()};
  if (r.get_str() != root) return out;
  uint64_t count = r.get<uint64_t>();
  for (uint64_t i = 0; i < count && !r.bad; ++i) {
    std::string_view rel = r.get_str();
    StatKey key;
    key.dev = r.get<uint64_t>();
    key.ino = r.get<uint64_t>();
    key.size = r.get<int64_t>();
    key.mtime_ns = r.get<int64_t>();
    key.ctime_ns = r.get<int64_t>();
    key.mode = r.get<uint32_t>();
    std::string_view digest = r.get_str();
    if (r.bad) break;
    if (is_sha256_digest(digest)) out.emplace_hint(out.end(), std::string(rel), Entry{key, std::string(digest)});
  }
  if (r.bad || r.pos != r.data.size()) out.clear();   // truncated or trailing junk: start over
  return out;
}

Result<StatCache> StatCache::open(const std::string& cache_dir, const std::string& root, Reader reader,
                                  Clock clock) {
  DFGEN_CHECK(make_dirs(cache_dir));
  std::string file = path_join(cache_dir, sha256_hex(root) + ".bin");
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
  std::string doc(kMagic);
  put_str(doc, root_);
  put(doc, static_cast<uint64_t>(merged.size()));
  for (const auto& [rel, e] : merged) {
    put_str(doc, rel);
    put(doc, e.key.dev);
    put(doc, e.key.ino);
    put(doc, e.key.size);
    put(doc, e.key.mtime_ns);
    put(doc, e.key.ctime_ns);
    put(doc, e.key.mode);
    put_str(doc, e.digest);
  }
  DFGEN_CHECK(write_file_atomic(file_, doc));
  learned_.clear();
  return ok_status();
}

}  // namespace dfgen
