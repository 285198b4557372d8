// The content store: one folder that is itself an OCI image layout, shared by
// every build of a user (see docs/architecture.md):
//
//   $STORE/oci-layout, index.json       tags: manifests annotated with
//                                       org.opencontainers.image.ref.name = normalized ref
//   $STORE/blobs/sha256/<hex>           content-addressed, immutable
//   $STORE/snapshots/<hex of diff_id>/  unpacked layers in overlay form, immutable
//   $STORE/cache/<hex of step key>      step key -> result JSON
//   $STORE/tmp/                         temp files and dirs, same file system
//   $STORE/locks/                       flock files
//
// Every write is atomic (temp + fsync + rename); index.json updates hold
// locks/index.lock. Blobs read back are verified against their digest.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "core/sha256.h"
#include "core/fs.h"

namespace dfgen {

struct Descriptor {
  std::string media_type;
  std::string digest;   // "sha256:..."
  int64_t size = 0;
  Json to_json() const;
  static Result<Descriptor> from_json(const Json& j);
};

// Streams a blob into the store: write(), then commit() which verifies the
// size/digest (if expected) and renames into blobs/. Dropped uncommitted: the
// temp file is removed.
class BlobWriter {
 public:
  BlobWriter(BlobWriter&&) noexcept;
  ~BlobWriter();
  Status write(const void* data, size_t size);
  Result<Descriptor> commit(std::string media_type, std::string_view expected_digest = {});
  int64_t size() const;
 private:
  friend class Store;
  struct Impl;
  explicit BlobWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Store {
 public:
  // Opens (creating if missing) the store at `root`.
  static Result<Store> open(const std::string& root);
  // $DFGEN_STORE, else ${XDG_DATA_HOME:-~/.local/share}/dfgen.
  static std::string default_root();

  const std::string& root() const { return root_; }

  // Blobs.
  std::string blob_path(std::string_view digest) const;
  bool has_blob(std::string_view digest) const;
  Result<Descriptor> put_blob(std::string_view data, std::string media_type);
  Result<BlobWriter> blob_writer();
  Result<std::string> read_blob(std::string_view digest) const;   // verified
  Result<Json> read_json_blob(std::string_view digest) const;

  // Tags (index.json). `ref` is a normalized reference string (Reference::str()).
  Result<std::optional<Descriptor>> resolve_tag(const std::string& ref) const;
  Status set_tag(const std::string& ref, const Descriptor& manifest);
  Result<std::vector<std::pair<std::string, Descriptor>>> list_tags() const;

  // Snapshots: the unpacked, overlay-form directory of a layer.
  std::string snapshot_path(std::string_view diff_id) const;
  bool has_snapshot(std::string_view diff_id) const;

  // Step cache: key ("sha256:...") -> result JSON.
  Result<std::optional<Json>> get_cache(std::string_view key) const;
  Status put_cache(std::string_view key, const Json& result);

  // A temp dir inside the store (same file system, so renames are atomic).
  Result<TempDir> make_temp_dir(const std::string& prefix = "tmp") const;
  // A lock on a name (e.g. "snapshot-<hex>") for cross-process coordination.
  Result<FileLock> lock(const std::string& name) const;

 private:
  explicit Store(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

// The tag (org.opencontainers.image.ref.name) of an index.json entry, or "".
std::string index_entry_ref(const Json& entry);

// The manifest, config and layer descriptors of an image in the store.
struct ImageRecord {
  Descriptor manifest;
  Json manifest_json;
  Json config;                       // the config blob, parsed
  std::string config_digest;
  std::vector<Descriptor> layers;    // from the manifest, bottom first
  std::vector<std::string> diff_ids; // from config.rootfs.diff_ids
};

// Loads an image by manifest descriptor (resolving an index/manifest list to
// linux/amd64 if the descriptor is one).
Result<ImageRecord> load_image(const Store& store, const Descriptor& manifest);

// Media types.
inline constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr const char* kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr const char* kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr const char* kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char* kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

}  // namespace dfgen
