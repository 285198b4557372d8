#include "core/store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/ranges.h>

namespace dfgen {

namespace {

constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";
constexpr const char* kOciLayoutText = "{\"imageLayoutVersion\":\"1.0.0\"}";

Json empty_index() {
  return Json{{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", Json::array()}};
}

Status write_all_fd(int fd, const void* data, size_t size, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("write " + what);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return ok_status();
}

}  // namespace

// ---- Descriptor ----

Json Descriptor::to_json() const {
  return Json{{"mediaType", media_type}, {"digest", digest}, {"size", size}};
}

Result<Descriptor> Descriptor::from_json(const Json& j) {
  if (!j.is_object()) return Error("descriptor is not a JSON object");
  Descriptor d;
  auto digest = j.find("digest");
  if (digest == j.end() || !digest->is_string() || !is_sha256_digest(digest->get<std::string>()))
    return Error("descriptor has no valid sha256 digest");
  d.digest = digest->get<std::string>();
  if (auto mt = j.find("mediaType"); mt != j.end() && mt->is_string()) d.media_type = *mt;
  if (auto sz = j.find("size"); sz != j.end()) {
    if (!sz->is_number_integer() || sz->get<int64_t>() < 0)
      return Error("descriptor " + d.digest + " has an invalid size");
    d.size = sz->get<int64_t>();
  }
  return d;
}

// ---- BlobWriter ----

struct BlobWriter::Impl {
  std::string blobs_dir;
  std::string tmp_path;
  UniqueFd fd;
  Sha256 hash;
  int64_t size = 0;
  bool done = false;
  ~Impl() {
    if (!done && !tmp_path.empty()) ::unlink(tmp_path.c_str());
  }
};

BlobWriter::BlobWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BlobWriter::BlobWriter(BlobWriter&&) noexcept = default;
BlobWriter::~BlobWriter() = default;

int64_t BlobWriter::size() const { return impl_->size; }

Status BlobWriter::write(const void* data, size_t size) {
  if (impl_->done) return Error("write blob: writer already committed");
  DFGEN_CHECK(write_all_fd(impl_->fd.get(), data, size, impl_->tmp_path));
  impl_->hash.update(data, size);
  impl_->size += static_cast<int64_t>(size);
  return ok_status();
}

Result<Descriptor> BlobWriter::commit(std::string media_type, std::string_view expected_digest) {
  Impl& w = *impl_;
  if (w.done) return Error("commit blob: writer already committed");
  w.done = true;   // from here on, every path removes the temp file itself
  auto fail = [&](Error e) -> Result<Descriptor> {
    ::unlink(w.tmp_path.c_str());
    return e;
  };
  std::string digest = w.hash.digest();
  if (!expected_digest.empty() && digest != expected_digest)
    return fail(Error(fmt::format("blob digest mismatch: expected {}, got {}", expected_digest, digest)));
  if (::fsync(w.fd.get()) != 0) return fail(Error::sys("fsync " + w.tmp_path));
  if (::close(w.fd.release()) != 0) return fail(Error::sys("close " + w.tmp_path));
  std::string final_path = path_join(w.blobs_dir, digest_hex(digest));
  if (path_exists(final_path)) {
    ::unlink(w.tmp_path.c_str());   // idempotent: same digest, same bytes
  } else {
    if (::rename(w.tmp_path.c_str(), final_path.c_str()) != 0)
      return fail(Error::sys("rename blob into " + final_path));
    DFGEN_CHECK(fsync_dir(w.blobs_dir));
  }
  return Descriptor{std::move(media_type), digest, w.size};
}

// ---- Store ----

std::string Store::default_root() {
  if (const char* s = ::getenv("DFGEN_STORE"); s && *s) return s;
  if (const char* x = ::getenv("XDG_DATA_HOME"); x && *x) return path_join(x, "dfgen");
  const char* home = ::getenv("HOME");
  return path_join(path_join(home && *home ? home : "/root", ".local/share"), "dfgen");
}

Result<Store> Store::open(const std::string& root) {
  for (const char* sub : {"blobs/sha256", "snapshots", "cache", "tmp", "locks"})
    DFGEN_CHECK(make_dirs(path_join(root, sub)));
  Store store(root);
  std::string layout = path_join(root, "oci-layout");
  std::string index = path_join(root, "index.json");
  if (!path_exists(layout) || !path_exists(index)) {
    DFGEN_TRY(FileLock lock, store.lock("index"));
    if (!path_exists(layout)) DFGEN_CHECK(write_file_atomic(layout, kOciLayoutText));
    if (!path_exists(index)) DFGEN_CHECK(write_file_atomic(index, empty_index().dump(2) + "\n"));
  }
  return store;
}

std::string Store::blob_path(std::string_view digest) const {
  std::string_view hex = digest.substr(0, 7) == "sha256:" ? digest_hex(digest) : digest;
  return path_join(path_join(root_, "blobs/sha256"), hex);
}

bool Store::has_blob(std::string_view digest) const {
  return is_sha256_digest(digest) && path_exists(blob_path(digest));
}

Result<BlobWriter> Store::blob_writer() {
  auto impl = std::make_unique<BlobWriter::Impl>();
  impl->blobs_dir = path_join(root_, "blobs/sha256");
  std::string tmpl = path_join(root_, "tmp/blob.XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) return Error::sys("create temp blob in " + path_join(root_, "tmp"));
  impl->fd.reset(fd);
  impl->tmp_path = buf.data();
  if (::fchmod(fd, 0644) != 0) return Error::sys("chmod " + impl->tmp_path);
  return BlobWriter(std::move(impl));
}

Result<Descriptor> Store::put_blob(std::string_view data, std::string media_type) {
  std::string digest = sha256_digest(data);
  if (has_blob(digest)) return Descriptor{std::move(media_type), digest, static_cast<int64_t>(data.size())};
  DFGEN_TRY(BlobWriter w, blob_writer());
  DFGEN_CHECK(w.write(data.data(), data.size()));
  return w.commit(std::move(media_type), digest);
}

Result<std::string> Store::read_blob(std::string_view digest) const {
  if (!is_sha256_digest(digest)) return Error(fmt::format("read blob: invalid digest \"{}\"", digest));
  auto data = read_file(blob_path(digest));
  if (!data.ok()) return std::move(data).error().context(fmt::format("read blob {}", digest));
  std::string actual = sha256_digest(*data);
  if (actual != digest)
    return Error(fmt::format("read blob {}: content is corrupt (hashes to {})", digest, actual));
  return data;
}

Result<Json> Store::read_json_blob(std::string_view digest) const {
  DFGEN_TRY(std::string data, read_blob(digest));
  return parse_json(data, fmt::format("blob {}", digest));
}

// ---- Tags ----

namespace {

Result<Json> read_index(const std::string& root) {
  std::string path = path_join(root, "index.json");
  DFGEN_TRY(std::string text, read_file(path));
  DFGEN_TRY(Json index, parse_json(text, path));
  if (!index.is_object()) return Error(path + ": not a JSON object");
  if (!index.contains("manifests")) index["manifests"] = Json::array();
  if (!index["manifests"].is_array()) return Error(path + ": \"manifests\" is not an array");
  return index;
}

}  // namespace

std::string index_entry_ref(const Json& entry) {
  auto ann = entry.find("annotations");
  if (ann == entry.end() || !ann->is_object()) return {};
  auto name = ann->find(kRefNameAnnotation);
  if (name == ann->end() || !name->is_string()) return {};
  return name->get<std::string>();
}

Result<std::optional<Descriptor>> Store::resolve_tag(const std::string& ref) const {
  // index.json is only ever replaced by rename, so a read without the lock
  // sees one whole version.
  DFGEN_TRY(Json index, read_index(root_));
  for (const Json& entry : index["manifests"]) {
    if (index_entry_ref(entry) != ref) continue;
    DFGEN_TRY(Descriptor d, Descriptor::from_json(entry));
    return std::optional<Descriptor>(d);
  }
  return std::optional<Descriptor>();
}

Status Store::set_tag(const std::string& ref, const Descriptor& manifest) {
  if (ref.empty()) return Error("set tag: empty reference");
  DFGEN_TRY(FileLock lock, this->lock("index"));
  DFGEN_TRY(Json index, read_index(root_));
  Json kept = Json::array();
  for (Json& entry : index["manifests"])
    if (index_entry_ref(entry) != ref) kept.push_back(std::move(entry));
  Json entry = manifest.to_json();
  entry["annotations"] = Json{{kRefNameAnnotation, ref}};
  kept.push_back(std::move(entry));
  std::stable_sort(kept.begin(), kept.end(),
                   [](const Json& a, const Json& b) { return index_entry_ref(a) < index_entry_ref(b); });
  index["manifests"] = std::move(kept);
  return write_file_atomic(path_join(root_, "index.json"), index.dump(2) + "\n");
}

Result<std::vector<std::pair<std::string, Descriptor>>> Store::list_tags() const {
  DFGEN_TRY(Json index, read_index(root_));
  std::vector<std::pair<std::string, Descriptor>> out;
  for (const Json& entry : index["manifests"]) {
    std::string name = index_entry_ref(entry);
    if (name.empty()) continue;
    DFGEN_TRY(Descriptor d, Descriptor::from_json(entry));
    out.emplace_back(std::move(name), std::move(d));
  }
  return out;
}

// ---- Snapshots, cache, temp, locks ----

std::string Store::snapshot_path(std::string_view diff_id) const {
  std::string_view hex = diff_id.substr(0, 7) == "sha256:" ? digest_hex(diff_id) : diff_id;
  return path_join(path_join(root_, "snapshots"), hex);
}

bool Store::has_snapshot(std::string_view diff_id) const {
  return is_sha256_digest(diff_id) && is_directory(snapshot_path(diff_id));
}

Result<std::optional<Json>> Store::get_cache(std::string_view key) const {
  if (!is_sha256_digest(key)) return Error(fmt::format("cache lookup: invalid key \"{}\"", key));
  std::string path = path_join(path_join(root_, "cache"), digest_hex(key));
  if (!path_exists(path)) return std::optional<Json>();
  DFGEN_TRY(Json j, read_json_file(path));
  return std::optional<Json>(std::move(j));
}

Status Store::put_cache(std::string_view key, const Json& result) {
  if (!is_sha256_digest(key)) return Error(fmt::format("cache store: invalid key \"{}\"", key));
  std::string path = path_join(path_join(root_, "cache"), digest_hex(key));
  return write_file_atomic(path, canonical_json(result) + "\n");
}

Result<TempDir> Store::make_temp_dir(const std::string& prefix) const {
  return TempDir::create(path_join(root_, "tmp"), prefix);
}

Result<FileLock> Store::lock(const std::string& name) const {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.')
    return Error(fmt::format("lock: invalid name \"{}\"", name));
  return FileLock::acquire(path_join(path_join(root_, "locks"), name + ".lock"));
}

// ---- Images ----

namespace {

bool is_index_type(std::string_view mt) { return mt == kOciIndex || mt == kDockerManifestList; }
bool is_manifest_type(std::string_view mt) { return mt == kOciManifest || mt == kDockerManifest; }

// The media type a manifest blob declares, else the one its descriptor gave.
std::string media_type_of(const Json& doc, const Descriptor& desc) {
  if (auto mt = doc.find("mediaType"); mt != doc.end() && mt->is_string()) return *mt;
  if (!desc.media_type.empty()) return desc.media_type;
  if (doc.contains("manifests")) return kOciIndex;
  return kOciManifest;
}

Result<Descriptor> pick_platform(const Json& index, const std::string& what) {
  if (!index.contains("manifests") || !index["manifests"].is_array())
    return Error(what + ": image index has no \"manifests\" array");
  for (const Json& m : index["manifests"]) {
    auto p = m.find("platform");
    if (p == m.end() || !p->is_object()) continue;
    if (p->value("os", "") == "linux" && p->value("architecture", "") == "amd64")
      return Descriptor::from_json(m);
  }
  std::vector<std::string> have;
  for (const Json& m : index["manifests"]) {
    if (auto p = m.find("platform"); p != m.end() && p->is_object())
      have.push_back(p->value("os", "?") + "/" + p->value("architecture", "?"));
  }
  return Error(fmt::format("{}: no linux/amd64 image in the index (it has: {})", what,
                           have.empty() ? "none" : fmt::format("{}", fmt::join(have, ", "))));
}

}  // namespace

Result<ImageRecord> load_image(const Store& store, const Descriptor& manifest) {
  Descriptor desc = manifest;
  for (int depth = 0; depth < 4; ++depth) {
    std::string what = "image " + desc.digest;
    auto doc = store.read_json_blob(desc.digest);
    if (!doc.ok()) return std::move(doc).error().context("load " + what);
    if (!doc->is_object()) return Error("load " + what + ": manifest is not a JSON object");
    std::string mt = media_type_of(*doc, desc);
    if (is_index_type(mt)) {
      DFGEN_TRY(desc, pick_platform(*doc, "load " + what));
      continue;
    }
    if (!is_manifest_type(mt))
      return Error(fmt::format("load {}: unsupported manifest media type \"{}\"", what, mt));
    ImageRecord rec;
    rec.manifest = desc;
    rec.manifest.media_type = mt;
    rec.manifest_json = std::move(*doc);
    const Json& mj = rec.manifest_json;
    if (!mj.contains("config")) return Error("load " + what + ": manifest has no config");
    auto config_desc = Descriptor::from_json(mj["config"]);
    if (!config_desc.ok()) return std::move(config_desc).error().context("load " + what + ": config");
    rec.config_digest = config_desc->digest;
    auto config = store.read_json_blob(rec.config_digest);
    if (!config.ok()) return std::move(config).error().context("load " + what);
    rec.config = std::move(*config);
    if (mj.contains("layers")) {
      if (!mj["layers"].is_array()) return Error("load " + what + ": \"layers\" is not an array");
      for (const Json& l : mj["layers"]) {
        auto d = Descriptor::from_json(l);
        if (!d.ok()) return std::move(d).error().context("load " + what + ": layer");
        rec.layers.push_back(std::move(*d));
      }
    }
    if (rec.config.is_object() && rec.config.contains("rootfs")) {
      const Json& rootfs = rec.config["rootfs"];
      if (rootfs.is_object() && rootfs.contains("diff_ids") && rootfs["diff_ids"].is_array())
        for (const Json& id : rootfs["diff_ids"])
          if (id.is_string()) rec.diff_ids.push_back(id.get<std::string>());
    }
    if (rec.diff_ids.size() != rec.layers.size())
      return Error(fmt::format("load {}: manifest lists {} layers but config has {} diff_ids", what,
                               rec.layers.size(), rec.diff_ids.size()));
    return rec;
  }
  return Error("load image " + manifest.digest + ": image indexes nested too deeply");
}

}  // namespace dfgen
