#include "core/store_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/sha256.h"

extern char** environ;

namespace dfgen {

namespace {


// ---- small file system helpers ----

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

int64_t now_seconds() { return static_cast<int64_t>(::time(nullptr)); }

// mtime in seconds; 0 when the path is gone.
int64_t mtime_of(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_mtime) : 0;
}

int64_t file_size(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

// Disk usage of a tree (allocated blocks), for snapshot sizes.
thread_local int64_t g_du_total = 0;
int64_t disk_usage(const std::string& path) {
  g_du_total = 0;
  ::nftw(path.c_str(), [](const char*, const struct stat* st, int, FTW*) {
    g_du_total += static_cast<int64_t>(st->st_blocks) * 512;
    return 0;
  }, 32, FTW_PHYS);
  return g_du_total;
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// ---- leftovers of killed processes in tmp/ ----

// Mount points at or below `prefix`, deepest first (from /proc/self/mountinfo;
// field 5 is the mount point, with spaces and the like octal-escaped).
std::vector<std::string> mounts_under(const std::string& prefix) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string f[5];
    for (auto& x : f) fields >> x;
    std::string point;
    for (size_t i = 0; i < f[4].size(); ++i) {
      if (f[4][i] == '\\' && i + 3 < f[4].size()) {
        point += static_cast<char>(std::stoi(f[4].substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        point += f[4][i];
      }
    }
    if (point == prefix || point.starts_with(prefix + "/")) out.push_back(point);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

// Runs a command quietly and waits for it; its failure is not ours to report.
void run_quietly(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  }
  posix_spawn_file_actions_destroy(&actions);
}

// A RUN killed with its dfrun leaves a runc container (state under the step's
// bundle: TMP/step.X/bundle/runc/<id>/) and the overlay mount. Both go first.
std::vector<std::string> release_temp_entry(const std::string& entry) {
  std::vector<std::string> done;
  std::string state = path_join(entry, "bundle/runc");
  for (const auto& id : list_dir(state)) {
    if (!path_exists(path_join(path_join(state, id), "state.json"))) continue;
    run_quietly({"runc", "--root", state, "delete", "--force", id});
    done.push_back("container " + id);
  }
  for (const auto& point : mounts_under(entry)) {
    if (::umount2(point.c_str(), MNT_DETACH) == 0) done.push_back("mount " + point);
  }
  return done;
}

// ---- index.json ----

// Drops the index entries whose ref name is in `refs`, under the index lock.
Status remove_tags(const Store& store, const std::set<std::string>& refs) {
  DFGEN_TRY(FileLock lock, store.lock("index"));
  std::string path = path_join(store.root(), "index.json");
  DFGEN_TRY(Json index, read_json_file(path));
  Json kept = Json::array();
  for (Json& e : index["manifests"])
    if (!refs.count(index_entry_ref(e))) kept.push_back(std::move(e));
  index["manifests"] = std::move(kept);
  return write_file_atomic(path, index.dump(2) + "\n");
}

// ---- reachability ----

struct Reachable {
  std::set<std::string> blobs;      // "sha256:..."
  std::set<std::string> diff_ids;   // "sha256:..."
};

void mark_config(const Store& store, const std::string& digest, Reachable& r) {
  if (!r.blobs.insert(digest).second) return;
  auto config = store.read_json_blob(digest);
  if (!config.ok() || !config->is_object()) return;
  const Json& rootfs = config->value("rootfs", Json::object());
  if (!rootfs.is_object() || !rootfs.contains("diff_ids") || !rootfs["diff_ids"].is_array()) return;
  for (const Json& id : rootfs["diff_ids"])
    if (id.is_string()) r.diff_ids.insert(id.get<std::string>());
}

// A manifest or index and everything it names that the store holds.
void mark_manifest(const Store& store, const std::string& digest, Reachable& r, int depth = 0) {
  if (depth > 4 || !r.blobs.insert(digest).second) return;
  auto doc = store.read_json_blob(digest);
  if (!doc.ok() || !doc->is_object()) return;
  if (auto m = doc->find("manifests"); m != doc->end() && m->is_array())
    for (const Json& d : *m)
      if (auto desc = Descriptor::from_json(d); desc.ok()) mark_manifest(store, desc->digest, r, depth + 1);
  if (auto c = doc->find("config"); c != doc->end())
    if (auto desc = Descriptor::from_json(*c); desc.ok()) mark_config(store, desc->digest, r);
  if (auto l = doc->find("layers"); l != doc->end() && l->is_array())
    for (const Json& d : *l)
      if (auto desc = Descriptor::from_json(d); desc.ok()) r.blobs.insert(desc->digest);
}

// A cache entry: {"version":1,"layer":null | descriptor + "diff_id"}.
struct CacheEntry {
  std::string name;   // hex of the key
  std::string path;
  int64_t mtime = 0;
  std::optional<Descriptor> layer;
  std::string diff_id;
};

Result<CacheEntry> read_cache_entry(const std::string& dir, const std::string& name) {
  CacheEntry e{name, path_join(dir, name), 0, std::nullopt, {}};
  e.mtime = mtime_of(e.path);
  DFGEN_TRY(Json j, read_json_file(e.path));
  if (!j.is_object() || j.value("version", 0) != 1) return Error("not a version 1 cache entry");
  if (j.contains("layer") && !j["layer"].is_null()) {
    DFGEN_TRY(Descriptor d, Descriptor::from_json(j["layer"]));
    e.layer = d;
    e.diff_id = j["layer"].value("diff_id", "");
    if (!is_sha256_digest(e.diff_id)) return Error("layer has no valid diff_id");
  }
  return e;
}

// ---- check, part by part ----

struct Checker {
  const Store& store;
  const CheckOptions& opts;
  CheckReport report;

  std::string dir(const char* sub) const { return path_join(store.root(), sub); }

  void problem(std::string what, const std::string& path) {
    bool removed = false;
    if (opts.repair) removed = remove_all(path).ok();
    if (removed) report.removed.push_back(path);
    report.problems.push_back(std::move(what));
  }

  // A temp leftover: harmless; repair removes it once it is stale.
  void leftover(const std::string& path, const std::string& what) {
    int64_t age = now_seconds() - mtime_of(path);
    if (opts.repair && age >= opts.stale_after_seconds) {
      for (auto& r : release_temp_entry(path)) report.removed.push_back(r);
      if (remove_all(path).ok()) report.removed.push_back(path);
      return;
    }
    bool mounted = !mounts_under(path).empty();
    report.warnings.push_back(fmt::format("{} {} ({}s old{})", what, path, age,
                                          mounted ? ", still mounted" : ""));
  }

  void blobs() {
    std::string d = dir("blobs/sha256");
    for (const auto& name : list_dir(d)) {
      std::string path = path_join(d, name);
      if (!is_hex64(name)) {
        problem(fmt::format("blob {}: not a sha256 name", path), path);
        continue;
      }
      auto actual = sha256_file(path);
      if (!actual.ok()) problem(fmt::format("blob sha256:{}: {}", name, actual.error().message), path);
      else if (*actual != "sha256:" + name)
        problem(fmt::format("blob sha256:{}: content is corrupt (hashes to {})", name, *actual), path);
    }
  }

  void snapshots() {
    std::string d = dir("snapshots");
    for (const auto& name : list_dir(d)) {
      std::string path = path_join(d, name);
      if (!is_hex64(name)) problem(fmt::format("snapshot {}: not a diff_id name", path), path);
      else if (!is_directory(path)) problem(fmt::format("snapshot {}: not a directory", path), path);
    }
  }

  void cache() {
    std::string d = dir("cache");
    for (const auto& name : list_dir(d)) {
      std::string path = path_join(d, name);
      if (is_directory(path)) continue;   // cache/stat: the stat cache (core/statcache.h)
      if (name.find(".tmp.") != std::string::npos) { leftover(path, "temp file"); continue; }
      if (!is_hex64(name)) { problem(fmt::format("cache entry {}: not a key name", path), path); continue; }
      auto e = read_cache_entry(d, name);
      if (!e.ok()) problem(fmt::format("cache entry sha256:{}: {}", name, e.error().message), path);
      else if (e->layer && !store.has_blob(e->layer->digest))
        problem(fmt::format("cache entry sha256:{}: layer blob {} is missing", name, e->layer->digest), path);
    }
  }

  void tags() {
    auto tags = store.list_tags();
    if (!tags.ok()) {
      report.problems.push_back("index.json: " + tags.error().message);
      return;
    }
    std::set<std::string> broken;
    for (const auto& [ref, desc] : *tags) {
      std::string why;
      if (!store.has_blob(desc.digest)) {
        why = "manifest " + desc.digest + " is missing";
      } else if (auto img = load_image(store, desc); !img.ok()) {
        why = img.error().message;
      } else {
        for (const auto& l : img->layers)
          if (!store.has_blob(l.digest)) { why = "layer " + l.digest + " is missing"; break; }
      }
      if (why.empty()) continue;
      report.problems.push_back(fmt::format("tag {}: {}", ref, why));
      broken.insert(ref);
    }
    if (opts.repair && !broken.empty()) {
      if (auto st = remove_tags(store, broken); st.ok())
        for (const auto& ref : broken) report.removed.push_back("tag " + ref);
      else
        report.problems.push_back("remove broken tags: " + st.error().message);
    }
  }

  void temp() {
    std::string d = dir("tmp");
    for (const auto& name : list_dir(d)) leftover(path_join(d, name), "temp entry");
    for (const auto& name : list_dir(store.root()))
      if (name.find(".tmp.") != std::string::npos) leftover(path_join(store.root(), name), "temp file");
  }

  void layout() {
    auto text = read_file(path_join(store.root(), "oci-layout"));
    if (!text.ok()) { report.problems.push_back("oci-layout: " + text.error().message); return; }
    auto j = parse_json(*text, "oci-layout");
    if (!j.ok() || !j->is_object() || j->value("imageLayoutVersion", "") != "1.0.0")
      report.problems.push_back("oci-layout: not {\"imageLayoutVersion\":\"1.0.0\"}");
  }
};

// Deletes `path` (a blob, snapshot or cache entry) and accounts for it.
void prune_one(PruneReport& report, const std::string& what, const std::string& path, int64_t size) {
  if (!remove_all(path).ok()) return;
  report.removed.push_back(what);
  report.freed_bytes += size;
}

}  // namespace

// ---- GcLock ----

Result<GcLock> GcLock::acquire(const Store& store, int how) {
  std::string path = path_join(path_join(store.root(), "locks"), "gc.lock");
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return Error::sys("open lock " + path);
  while (::flock(fd.get(), how) != 0)
    if (errno != EINTR) return Error::sys("lock " + path);
  return GcLock(std::move(fd));
}

Result<GcLock> GcLock::shared(const Store& store) { return acquire(store, LOCK_SH); }
Result<GcLock> GcLock::exclusive(const Store& store) { return acquire(store, LOCK_EX); }

Status touch_cache_entry(const Store& store, std::string_view key) {
  if (!is_sha256_digest(key)) return Error(fmt::format("touch cache entry: invalid key \"{}\"", key));
  std::string path = path_join(path_join(store.root(), "cache"), digest_hex(key));
  if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) != 0 && errno != ENOENT)
    return Error::sys("touch " + path);
  return ok_status();
}

// ---- check ----

Result<CheckReport> check_store(const Store& store, const CheckOptions& opts) {
  // Shared for a plain check (no prune deletes under our feet), exclusive for
  // a repair (no step is working in tmp/ while we remove its leftovers).
  DFGEN_TRY(GcLock lock, opts.repair ? GcLock::exclusive(store) : GcLock::shared(store));
  Checker c{store, opts, {}};
  c.layout();
  c.blobs();       // first: a corrupt blob removed makes its users dangling
  c.snapshots();
  c.cache();
  c.tags();
  c.temp();
  return std::move(c.report);
}

// ---- prune ----

Result<PruneReport> prune_store(const Store& store, const PruneOptions& opts) {
  DFGEN_TRY(GcLock lock, GcLock::exclusive(store));
  PruneReport report;
  const int64_t now = now_seconds();
  auto young = [&](const std::string& path) { return now - mtime_of(path) < opts.grace_seconds; };

  // Stale temp leftovers: no step runs now, so only an import or pull could
  // be writing there, and it would have touched its files recently.
  std::string tmp = path_join(store.root(), "tmp");
  for (const auto& name : list_dir(tmp)) {
    std::string path = path_join(tmp, name);
    if (young(path)) continue;
    for (auto& r : release_temp_entry(path)) report.removed.push_back(r);
    prune_one(report, "temp " + path, path, disk_usage(path));
  }

  Reachable keep;
  DFGEN_TRY(auto tags, store.list_tags());
  for (const auto& [ref, desc] : tags) mark_manifest(store, desc.digest, keep);

  // Sizes, only needed with a storage limit.
  std::map<std::string, int64_t> snapshot_size;
  auto blob_size = [&](const std::string& digest) { return file_size(store.blob_path(digest)); };
  auto snap_size = [&](const std::string& diff_id) {
    auto [it, fresh] = snapshot_size.emplace(diff_id, 0);
    if (fresh && store.has_snapshot(diff_id)) it->second = disk_usage(store.snapshot_path(diff_id));
    return it->second;
  };
  int64_t kept_bytes = 0;
  if (opts.keep_bytes) {
    for (const auto& b : keep.blobs) kept_bytes += blob_size(b);
    for (const auto& d : keep.diff_ids) kept_bytes += snap_size(d);
  }

  // Cache entries, most recently used first.
  std::string cache_dir = path_join(store.root(), "cache");
  std::vector<CacheEntry> entries;
  for (const auto& name : list_dir(cache_dir)) {
    std::string path = path_join(cache_dir, name);
    if (is_directory(path)) continue;   // cache/stat: the stat cache (core/statcache.h)
    auto e = is_hex64(name) ? read_cache_entry(cache_dir, name) : Result<CacheEntry>(Error("not a key"));
    if (!e.ok() || (e->layer && !store.has_blob(e->layer->digest))) {
      if (!young(path)) prune_one(report, "cache entry " + path + " (broken)", path, file_size(path));
      continue;
    }
    entries.push_back(std::move(*e));
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const CacheEntry& a, const CacheEntry& b) { return a.mtime > b.mtime; });
  bool full = false;
  for (const auto& e : entries) {
    int64_t extra = 0;
    if (opts.keep_bytes && e.layer) {
      if (!keep.blobs.count(e.layer->digest)) extra += e.layer->size;
      if (!keep.diff_ids.count(e.diff_id)) extra += snap_size(e.diff_id);
    }
    bool recent = now - e.mtime < opts.grace_seconds;
    if (opts.keep_bytes && !recent && (full || kept_bytes + extra > *opts.keep_bytes)) {
      full = true;   // least recently used from here on: drop
      prune_one(report, "cache entry sha256:" + e.name, e.path, file_size(e.path));
      continue;
    }
    kept_bytes += extra;
    if (e.layer) {
      keep.blobs.insert(e.layer->digest);
      keep.diff_ids.insert(e.diff_id);
    }
  }

  // Cache entries went first, so no kept entry ever points at a deleted blob.
  std::string blobs_dir = path_join(store.root(), "blobs/sha256");
  for (const auto& name : list_dir(blobs_dir)) {
    std::string path = path_join(blobs_dir, name);
    if (keep.blobs.count("sha256:" + name) || young(path)) continue;
    prune_one(report, "blob sha256:" + name, path, file_size(path));
  }
  std::string snaps_dir = path_join(store.root(), "snapshots");
  for (const auto& name : list_dir(snaps_dir)) {
    std::string path = path_join(snaps_dir, name);
    if (keep.diff_ids.count("sha256:" + name) || young(path)) continue;
    prune_one(report, "snapshot sha256:" + name, path, disk_usage(path));
  }
  report.kept_bytes = kept_bytes;
  return report;
}

// ---- sizes ----

Result<int64_t> parse_size(std::string_view text) {
  std::string s(text);
  size_t used = 0;
  double value;
  try {
    value = std::stod(s, &used);
  } catch (...) {
    return Error(fmt::format("invalid size \"{}\" (expected e.g. 10GB, 512MB, 4096)", text));
  }
  std::string unit = s.substr(used);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (unit.ends_with("ib")) unit.erase(unit.size() - 2);
  else if (unit.size() == 2 && unit[1] == 'b') unit.erase(1);
  static const std::map<std::string, int> kShift = {{"", 0}, {"b", 0}, {"k", 10}, {"m", 20},
                                                    {"g", 30}, {"t", 40}};
  auto it = kShift.find(unit);
  if (it == kShift.end() || value < 0 || !std::isfinite(value))
    return Error(fmt::format("invalid size \"{}\" (expected e.g. 10GB, 512MB, 4096)", text));
  double bytes = std::ldexp(value, it->second);
  if (bytes > 9.0e18) return Error(fmt::format("size \"{}\" is too large", text));
  return static_cast<int64_t>(bytes);
}

}  // namespace dfgen
