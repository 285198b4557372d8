// Images: config + manifest into the store, outputs, imports.
//
// An image in the store is an OCI image manifest (schemaVersion 2) whose
// config blob holds architecture, os, created, config, rootfs and history
// (see docs/images.md). Everything written here is deterministic: canonical
// JSON, tar entries in a fixed order with fixed metadata, so the same store
// content gives the same bytes. Every file written is atomic (temp + rename).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/result.h"
#include "core/store.h"

namespace dfgen::image {

struct LayerRef {
  Descriptor blob;        // the layer blob in the store (media type decides the manifest's)
  std::string diff_id;    // sha256 of the uncompressed tar
};

struct ImageInput {
  Json config;                     // the OCI "config" object (Env, Cmd, Entrypoint, ...)
  std::vector<LayerRef> layers;    // bottom first
  Json history;                    // array of {created_by, empty_layer?, comment?, created?}
  std::optional<int64_t> created;  // seconds since epoch (SOURCE_DATE_EPOCH); else now
  std::string os = "linux", architecture = "amd64";
  std::string author;              // the config's "author" (MAINTAINER); none when empty
};

// Writes the config blob (canonical JSON, rootfs.diff_ids from `layers`,
// history entries without `created` get the image's) and an OCI image
// manifest into the store; returns the manifest descriptor. A history with
// fewer layer entries than layers (a base image without history) gets entries
// added at the bottom; one with more is an error.
Result<Descriptor> write_image(Store& store, const ImageInput& input);

// RFC 3339 UTC, seconds precision: 1700000000 -> "2023-11-14T22:13:20Z".
std::string format_time(int64_t seconds_since_epoch);

// Outputs of an image in the store (by manifest descriptor). `tags` are
// references as users write them ("hello", "localhost:5000/x:1"); they are
// normalized, and must carry a tag, not a digest.
//
// docker-archive (`docker load`): manifest.json, <config hex>.json, layers as
// blobs/sha256/<hex> exactly as stored (docker load decompresses them).
Status export_docker_archive(const Store& store, const Descriptor& manifest,
                             const std::vector<std::string>& tags, const std::string& dest_tar);
// OCI image layout in a tar: oci-layout, index.json, blobs/sha256/*.
Status export_oci_archive(const Store& store, const Descriptor& manifest,
                          const std::vector<std::string>& tags, const std::string& dest_tar);
// OCI image layout directory; an existing layout there is kept and extended
// (index entries with the same ref.name are replaced). index.json is written
// last, so a reader never sees an entry whose blobs are missing.
Status export_oci_layout(const Store& store, const Descriptor& manifest,
                         const std::vector<std::string>& tags, const std::string& dest_dir);
// The image's root file system (layers applied, whiteouts honoured) in
// `dest_dir` (type=local). A missing or empty dest_dir is filled atomically
// (built beside it, then renamed); a non-empty one is overlaid entry by entry.
Status export_rootfs(Store& store, const Descriptor& manifest, const std::string& dest_dir);

// Imports a docker-archive (docker save), an OCI archive (tar of a layout) or
// an OCI layout directory: blobs verified (digests, and layer diff_ids against
// the config) and stored; each image tagged in the store under its normalized
// ref. Names come from RepoTags (docker-archive), io.containerd.image.name or
// org.opencontainers.image.ref.name (OCI; a bare tag like "latest" is given
// the archive's base name as repository). `tag_override` replaces all names
// (the archive must then hold exactly one image). Docker-archive layers are
// stored as they are (plain tar, gzip or zstd, media type to match). Returns
// (ref, manifest) pairs, in archive order.
// Unpacks every layer of the image into its snapshot (layer::ensure_snapshot),
// as `docker load` does: the first step built on the image then finds them.
// `dfrun import` and `dfrun pull` call it (a layer's snapshot is made once per
// store, whatever image brought it).
Status unpack_image(Store& store, const Descriptor& manifest);

Result<std::vector<std::pair<std::string, Descriptor>>> import_images(
    Store& store, const std::string& path, const std::string& tag_override = "");

}  // namespace dfgen::image
