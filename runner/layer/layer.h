// Layers: directory tree <-> tar blob in the store, with the diff_id
// (sha256 of the tar) and digest (sha256 of the compressed blob) computed in
// the same pass. Snapshots are kept in overlay form: a whiteout is a 0/0
// character device, an opaque directory carries the xattr
// trusted.overlay.opaque=y (user.overlay.opaque=y when rootless). Layer tars
// use OCI form: ".wh.NAME" files and ".wh..wh..opq".
#pragma once

#include <optional>
#include <string>

#include "core/result.h"
#include "core/store.h"

namespace dfgen::layer {

enum class Compression { Gzip, Zstd, None };

struct WriteOptions {
  Compression compression = Compression::Gzip;
  // When set, every timestamp later than this is clamped to it.
  std::optional<int64_t> source_date_epoch;
};

struct LayerInfo {
  Descriptor blob;        // the compressed blob as stored (media type set)
  std::string diff_id;    // sha256 of the uncompressed tar
  bool empty = false;     // the tree held nothing: callers usually drop the layer
};

// Writes the tree under `dir` as a layer blob into the store: PAX tar, entries
// sorted by path, regular files, dirs, symlinks, hardlinks (by inode), device
// nodes, fifos, xattrs; overlay whiteouts converted to OCI ones.
Result<LayerInfo> write_layer(Store& store, const std::string& dir, const WriteOptions& opts = {});

// write_layer, then moves `dir` itself into the store as the layer's snapshot
// (no re-extraction). If the snapshot already exists, `dir` is removed.
Result<LayerInfo> commit_dir(Store& store, const std::string& dir, const WriteOptions& opts = {});

// Makes sure snapshots/<diff_id> exists, extracting the blob if needed
// (under a lock; into a temp dir, then renamed: never half made). The blob is
// checked against its digest and its uncompressed stream against diff_id
// before anything is extracted.
Status ensure_snapshot(Store& store, const Descriptor& blob, const std::string& diff_id);

// Extracts a layer (gzip, zstd or plain tar) into the existing empty directory
// `dest`, converting OCI whiteouts to overlay form. Refuses, with a clear
// error, any entry that would land outside `dest` ("..", absolute paths,
// links whose parents escape, hardlinks to outside).
Status extract_layer(const std::string& blob_path, const std::string& dest);

// sha256 of the uncompressed stream of a layer blob (gzip, zstd or plain):
// what its diff_id must be. A truncated or corrupt stream is an error.
Result<std::string> layer_diff_id(const std::string& blob_path);

}  // namespace dfgen::layer
