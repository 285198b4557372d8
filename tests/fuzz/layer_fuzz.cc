// libFuzzer entry point for layer extraction (runner/layer/layer.h): the
// input is a layer blob (gzip, zstd or plain tar, or garbage). extract_layer
// must either succeed or fail with an error, and never touch anything outside
// its destination. The destination sits in a "jail" directory beside a
// sentinel file and a symlink pointing at the sentinel; after each input (and
// the removal of the destination) the jail must hold exactly those two names, the sentinel its bytes and mode,
// the symlink its target. The same bytes then go through the store's path
// (a blob, its diff_id as layer_diff_id reads it, ensure_snapshot's one-pass
// verifying extraction), which must succeed or fail cleanly too. Built by
// run.sh; replayed by runner/layer/layer_corpus_test.cc.
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>

#include "core/fs.h"
#include "core/sha256.h"
#include "core/store.h"
#include "runner/layer/layer.h"

namespace {

namespace fs = std::filesystem;

constexpr const char* kSentinel = "sentinel: never written by a layer\n";

struct Jail {
  std::string root;      // holds blob, store, jail
  std::string jail;      // root/jail: dest, sentinel, link
  dfgen::Store* store = nullptr;   // root/store
};

const Jail& jail() {
  static const Jail* j = [] {   // never destroyed: the atexit cleanup reads it
    auto tmp = dfgen::TempDir::create(fs::temp_directory_path().string(), "layer-fuzz");
    if (!tmp.ok()) __builtin_trap();
    auto* j = new Jail{tmp->release(), ""};
    j->jail = j->root + "/jail";
    fs::create_directories(j->jail);
    if (!dfgen::write_file_atomic(j->jail + "/sentinel", kSentinel).ok()) __builtin_trap();
    ::chmod((j->jail + "/sentinel").c_str(), 0644);
    fs::create_symlink(j->jail + "/sentinel", j->jail + "/link");
    auto store = dfgen::Store::open(j->root + "/store");
    if (!store.ok()) __builtin_trap();
    j->store = new dfgen::Store(std::move(*store));
    std::atexit([] { std::error_code ec; fs::remove_all(jail().root, ec); });
    return j;
  }();
  return *j;
}

// rm -rf that first makes read-only dirs a layer left writable.
void remove_tree(const std::string& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  fs::remove_all(dir, ec);
  if (ec) __builtin_trap();
}

// The store's way in: the blob under its digest, then a snapshot made by the
// verifying one-pass reader, with the diff_id layer_diff_id reads (or a
// wrong one when that fails). Blob and snapshot are removed afterwards.
void through_store(const Jail& j, std::string_view bytes, const std::string& blob_path) {
  auto desc = j.store->put_blob(bytes, dfgen::kOciLayerGzip);
  if (!desc.ok()) __builtin_trap();
  auto diff_id = dfgen::layer::layer_diff_id(blob_path);
  if (!diff_id.ok() && diff_id.error().render().empty()) __builtin_trap();
  std::string id = diff_id.ok() ? *diff_id : dfgen::sha256_digest("not the diff_id");
  auto st = dfgen::layer::ensure_snapshot(*j.store, *desc, id);
  if (!st.ok() && st.error().render().empty()) __builtin_trap();
  if (st.ok() && !j.store->has_snapshot(id)) __builtin_trap();
  if (!st.ok() && j.store->has_snapshot(id)) __builtin_trap();   // a failure leaves nothing
  if (j.store->has_snapshot(id)) remove_tree(j.store->snapshot_path(id));
  std::error_code ec;
  fs::remove(j.store->blob_path(desc->digest), ec);
}

void check_jail(const Jail& j) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(j.jail)) names.insert(e.path().filename().string());
  if (names != std::set<std::string>{"link", "sentinel"}) __builtin_trap();   // dest is gone
  struct stat st;
  if (::lstat((j.jail + "/sentinel").c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0644 ||
      st.st_uid != ::geteuid())
    __builtin_trap();
  auto text = dfgen::read_file(j.jail + "/sentinel");
  if (!text.ok() || *text != kSentinel) __builtin_trap();
  std::error_code ec;
  if (fs::read_symlink(j.jail + "/link", ec) != fs::path(j.jail + "/sentinel")) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Jail& j = jail();
  std::string blob = j.root + "/blob";
  if (!dfgen::write_file_atomic(blob, std::string_view(reinterpret_cast<const char*>(data), size)).ok()) __builtin_trap();
  std::string dest = j.jail + "/dest";
  fs::create_directory(dest);
  auto st = dfgen::layer::extract_layer(blob, dest);
  if (!st.ok() && st.error().render().empty()) __builtin_trap();
  // Extraction may leave read-only dirs: make them writable, then remove
  // without following symlinks.
  remove_tree(dest);
  check_jail(j);
  through_store(j, std::string_view(reinterpret_cast<const char*>(data), size), blob);
  check_jail(j);
  return 0;
}
