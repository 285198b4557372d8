// import_images: docker-archive, OCI archive, OCI layout directory.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>

#include <set>

#include "core/reference.h"
#include "runner/image/image.h"
#include "runner/image/source.h"

namespace dfgen::image {

namespace {

constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";
constexpr const char* kContainerdNameAnnotation = "io.containerd.image.name";

using Imported = std::vector<std::pair<std::string, Descriptor>>;

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

struct LayerKind {
  std::string media_type;
  std::string diff_id;
};

// Looks at a layer blob: its compression (by magic bytes) and the sha256 of
// its uncompressed tar stream.
Result<LayerKind> inspect_layer(const Store& store, const Descriptor& blob) {
  std::string path = store.blob_path(blob.digest);
  unsigned char magic[4] = {0, 0, 0, 0};
  {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return Error::sys("open layer " + blob.digest);
    if (::read(fd.get(), magic, sizeof magic) < 0) return Error::sys("read layer " + blob.digest);
  }
  LayerKind kind;
  if (magic[0] == 0x1f && magic[1] == 0x8b) {
    kind.media_type = kOciLayerGzip;
  } else if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
    kind.media_type = kOciLayerZstd;
  } else {
    kind.media_type = kOciLayerTar;   // the stored blob is the tar: its digest is the diff_id
    kind.diff_id = blob.digest;
    return kind;
  }
  std::unique_ptr<archive, ArchiveReadFree> ar(archive_read_new());
  archive_read_support_filter_gzip(ar.get());
  archive_read_support_filter_zstd(ar.get());
  archive_read_support_format_raw(ar.get());
  auto ar_error = [&](const std::string& what) {
    const char* msg = archive_error_string(ar.get());
    return Error(what + ": " + (msg ? msg : "unknown libarchive error"));
  };
  archive_entry* e = nullptr;
  if (archive_read_open_filename(ar.get(), path.c_str(), 1 << 16) != ARCHIVE_OK ||
      archive_read_next_header(ar.get(), &e) != ARCHIVE_OK)
    return ar_error("decompress layer " + blob.digest);
  Sha256 hash;
  std::vector<char> buf(1 << 20);
  for (;;) {
    la_ssize_t n = archive_read_data(ar.get(), buf.data(), buf.size());
    if (n < 0) return ar_error("decompress layer " + blob.digest);
    if (n == 0) break;
    hash.update(buf.data(), static_cast<size_t>(n));
  }
  kind.diff_id = hash.digest();
  return kind;
}

std::vector<std::string> diff_ids_of(const Json& config) {
  std::vector<std::string> ids;
  if (!config.is_object() || !config.contains("rootfs") || !config["rootfs"].is_object()) return ids;
  const Json& rootfs = config["rootfs"];
  if (rootfs.contains("diff_ids") && rootfs["diff_ids"].is_array())
    for (const Json& id : rootfs["diff_ids"])
      if (id.is_string()) ids.push_back(id.get<std::string>());
  return ids;
}

Status check_diff_id(const LayerKind& kind, const std::string& want, size_t index) {
  if (kind.diff_id != want)
    return Error(fmt::format("layer {}: uncompressed content hashes to {}, but the config says {}",
                             index + 1, kind.diff_id, want));
  return ok_status();
}

Result<std::string> normalize_ref(const std::string& text) {
  auto r = parse_reference(text);
  if (!r.ok()) return std::move(r).error().context("image name \"" + text + "\"");
  return r->str();
}

// ---- docker-archive ----

Result<Imported> import_docker(Store& store, Source& src) {
  DFGEN_TRY(std::string text, src.read("manifest.json"));
  DFGEN_TRY(Json manifest, parse_json(text, "manifest.json"));
  if (!manifest.is_array()) return Error("manifest.json is not a JSON array");
  Imported out;
  for (const Json& item : manifest) {
    if (!item.is_object() || !item.contains("Config") || !item["Config"].is_string())
      return Error("manifest.json: an entry has no \"Config\"");
    std::string config_name = item["Config"];
    DFGEN_TRY(std::string config_bytes, src.read(config_name));
    DFGEN_TRY(Json config, parse_json(config_bytes, config_name));
    std::vector<std::string> diff_ids = diff_ids_of(config);
    const Json layers = item.value("Layers", Json::array());
    if (!layers.is_array() || layers.size() != diff_ids.size())
      return Error(fmt::format("{}: manifest.json lists {} layers, the config has {} diff_ids",
                               config_name, layers.is_array() ? layers.size() : 0, diff_ids.size()));
    DFGEN_TRY(Descriptor config_desc, store.put_blob(config_bytes, kOciConfig));
    Json layer_descs = Json::array();
    for (size_t i = 0; i < layers.size(); ++i) {
      if (!layers[i].is_string()) return Error("manifest.json: a layer path is not a string");
      DFGEN_TRY(Descriptor blob, src.blob(layers[i].get<std::string>(), {}));
      auto kind = inspect_layer(store, blob);
      if (!kind.ok()) return std::move(kind).error().context(layers[i].get<std::string>());
      DFGEN_CHECK(check_diff_id(*kind, diff_ids[i], i));
      blob.media_type = kind->media_type;
      layer_descs.push_back(blob.to_json());
    }
    Json oci_manifest = {{"schemaVersion", 2},
                         {"mediaType", kOciManifest},
                         {"config", config_desc.to_json()},
                         {"layers", layer_descs}};
    DFGEN_TRY(Descriptor desc, store.put_blob(canonical_json(oci_manifest), kOciManifest));
    const Json tags = item.value("RepoTags", Json::array());
    bool named = false;
    if (tags.is_array())
      for (const Json& t : tags) {
        if (!t.is_string()) continue;
        DFGEN_TRY(std::string ref, normalize_ref(t.get<std::string>()));
        out.emplace_back(ref, desc);
        named = true;
      }
    if (!named) out.emplace_back("", desc);
  }
  return out;
}

// ---- OCI layout ----

// Stores a manifest (or index) and everything it needs; returns its descriptor.
Result<Descriptor> import_oci_manifest(Store& store, Source& src, Descriptor desc, int depth) {
  if (depth > 3) return Error("image indexes nested too deeply");
  std::string name = "blobs/sha256/" + std::string(digest_hex(desc.digest));
  DFGEN_TRY(Descriptor stored, src.blob(name, desc.digest));
  DFGEN_TRY(Json doc, store.read_json_blob(stored.digest));
  if (!doc.is_object()) return Error("manifest " + desc.digest + " is not a JSON object");
  std::string mt = doc.value("mediaType", desc.media_type);
  if (mt.empty()) mt = doc.contains("manifests") ? kOciIndex : kOciManifest;
  desc.media_type = mt;
  desc.size = stored.size;
  if (mt == kOciIndex || mt == kDockerManifestList) {
    // Only the platform dfgen builds for must be present (a layout often holds one).
    const Json manifests = doc.value("manifests", Json::array());
    for (const Json& m : manifests) {
      const Json platform = m.value("platform", Json::object());
      bool single = manifests.size() == 1;
      if (single || (platform.value("os", "") == "linux" && platform.value("architecture", "") == "amd64")) {
        DFGEN_TRY(Descriptor child, Descriptor::from_json(m));
        DFGEN_CHECK(import_oci_manifest(store, src, child, depth + 1));
        return desc;
      }
    }
    return Error("index " + desc.digest + " has no linux/amd64 image");
  }
  if (mt != kOciManifest && mt != kDockerManifest)
    return Error(fmt::format("manifest {}: unsupported media type \"{}\"", desc.digest, mt));
  if (!doc.contains("config")) return Error("manifest " + desc.digest + " has no config");
  DFGEN_TRY(Descriptor config_desc, Descriptor::from_json(doc["config"]));
  DFGEN_CHECK(src.blob("blobs/sha256/" + std::string(digest_hex(config_desc.digest)), config_desc.digest));
  DFGEN_TRY(Json config, store.read_json_blob(config_desc.digest));
  std::vector<std::string> diff_ids = diff_ids_of(config);
  const Json layers = doc.value("layers", Json::array());
  if (!layers.is_array() || layers.size() != diff_ids.size())
    return Error(fmt::format("manifest {} lists {} layers, its config has {} diff_ids", desc.digest,
                             layers.is_array() ? layers.size() : 0, diff_ids.size()));
  for (size_t i = 0; i < layers.size(); ++i) {
    DFGEN_TRY(Descriptor l, Descriptor::from_json(layers[i]));
    DFGEN_TRY(Descriptor blob, src.blob("blobs/sha256/" + std::string(digest_hex(l.digest)), l.digest));
    auto kind = inspect_layer(store, blob);
    if (!kind.ok()) return std::move(kind).error().context("manifest " + desc.digest);
    DFGEN_CHECK(check_diff_id(*kind, diff_ids[i], i));
  }
  return desc;
}

// "hello.tar" -> "hello": the repository given to a bare ref.name tag.
std::string repository_from_path(const std::string& path) {
  std::string base = basename_of(path);
  for (std::string_view ext : {".tar.gz", ".tgz", ".tar", ".oci"})
    if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0) {
      base.resize(base.size() - ext.size());
      break;
    }
  for (char& c : base) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return base;
}

Result<std::string> oci_entry_name(const Json& entry, const std::string& path) {
  const Json ann = entry.value("annotations", Json::object());
  if (!ann.is_object()) return std::string();
  std::string full = ann.value(kContainerdNameAnnotation, "");
  if (!full.empty()) return normalize_ref(full);
  std::string ref_name = ann.value(kRefNameAnnotation, "");
  if (ref_name.empty()) return std::string();
  if (ref_name.find_first_of("/:@") != std::string::npos) return normalize_ref(ref_name);
  return normalize_ref(repository_from_path(path) + ":" + ref_name);
}

Result<Imported> import_oci(Store& store, Source& src, const std::string& path) {
  DFGEN_TRY(std::string text, src.read("index.json"));
  DFGEN_TRY(Json index, parse_json(text, "index.json"));
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array())
    return Error("index.json has no \"manifests\" array");
  Imported out;
  for (const Json& entry : index["manifests"]) {
    DFGEN_TRY(Descriptor desc, Descriptor::from_json(entry));
    DFGEN_TRY(desc, import_oci_manifest(store, src, desc, 0));
    DFGEN_TRY(std::string ref, oci_entry_name(entry, path));
    out.emplace_back(ref, desc);
  }
  return out;
}

Result<Imported> import_all(Store& store, const std::string& path, const std::string& tag_override) {
  std::unique_ptr<Source> src;
  if (is_directory(path)) {
    DFGEN_TRY(src, open_dir_source(store, path));
  } else {
    DFGEN_TRY(src, open_tar_source(store, path));
  }
  Imported images;
  if (src->has("manifest.json")) {
    DFGEN_TRY(images, import_docker(store, *src));
  } else if (src->has("index.json")) {
    DFGEN_TRY(images, import_oci(store, *src, path));
  } else {
    return Error("neither a docker-archive (no manifest.json) nor an OCI layout (no index.json)");
  }
  if (!tag_override.empty()) {
    std::set<std::string> distinct;
    for (const auto& [ref, desc] : images) distinct.insert(desc.digest);
    if (distinct.size() != 1)
      return Error(fmt::format("the archive holds {} images; a tag override needs exactly one",
                               distinct.size()));
    DFGEN_TRY(std::string ref, normalize_ref(tag_override));
    images = {{ref, images.front().second}};
  }
  for (const auto& [ref, desc] : images)
    if (!ref.empty()) DFGEN_CHECK(store.set_tag(ref, desc));
  return images;
}

}  // namespace

Result<Imported> import_images(Store& store, const std::string& path, const std::string& tag_override) {
  auto r = import_all(store, path, tag_override);
  if (!r.ok()) return std::move(r).error().context("import " + path);
  return r;
}

}  // namespace dfgen::image
