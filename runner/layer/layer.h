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
#include "core/statcache.h"
#include "core/store.h"

struct archive;

namespace dfgen::layer {

// libarchive's last error message for `a`, or `fallback` when it has none:
// archive_error_string() returns null after some failures (a corrupt header,
// a failed open), and neither fmt nor std::string accept a null char*. Every
// libarchive error of the runner is worded through this.
std::string archive_message(struct archive* a, const char* fallback = "unreadable or corrupt archive");

enum class Compression { Gzip, Zstd, None };

struct WriteOptions {
  Compression compression = Compression::Gzip;
  // 0: the default (gzip 6 as `gzip`; zstd 3 as `zstd`); else gzip 1-9 or
  // zstd 1-19. zstd runs on one worker thread per CPU (at most 8); its
  // frames do not depend on the worker count.
  int level = 0;
  // When set, every timestamp later than this is clamped to it.
  std::optional<int64_t> source_date_epoch;
  // gzip: copy the compressed bytes of blocks that an earlier layer of the
  // store already holds (same input, same dictionary) instead of deflating
  // them, and record this layer's blocks for later ones (gzip_block_cache.h).
  // The blob is byte for byte the same either way.
  bool reuse_gzip_blocks = true;
};

struct LayerInfo {
  Descriptor blob;        // the compressed blob as stored (media type set)
  std::string diff_id;    // sha256 of the uncompressed tar
  bool empty = false;     // the tree held nothing: callers usually drop the layer
  // gzip: the blob's blocks (pgzip.h), and how many of them were copied from
  // an earlier blob instead of deflated.
  int gzip_blocks = 0;
  int gzip_blocks_reused = 0;
};

// "gzip", "zstd", "gzip,level=9", "zstd,level=19", "uncompressed": what
// dfgen --compression and a step spec's op "compression" say.
Result<WriteOptions> parse_compression(const std::string& text, WriteOptions base = {});

// Writes the tree under `dir` as a layer blob into the store: PAX tar, entries
// sorted by path, regular files, dirs, symlinks, hardlinks (by inode), device
// nodes, fifos, xattrs; overlay whiteouts converted to OCI ones.
Result<LayerInfo> write_layer(Store& store, const std::string& dir, const WriteOptions& opts = {});

// A regular file a layer takes from outside the tree: COPY writes build
// context files into its layer straight from the context, without making
// them in a snapshot first. The entry is written as if the file were in the
// tree at `name` with this metadata (no xattrs, one link).
struct ExternalFile {
  std::string name;       // path in the tar: relative, no leading "/"
  int dir_fd = -1;        // the file is `rel` below dir_fd (opened without following a link)
  std::string rel;
  mode_t perm = 0644;     // permission bits (07777)
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t mtime = 0;      // seconds (clamped like the tree's)
  // The file as it was hashed for the step's key: the open file must stat
  // the same (dev, ino, size, mtime, ctime, mode) and read to `digest`, else
  // writing the layer fails (the file changed under the build).
  StatKey expect;
  std::string digest;     // "sha256:..."
};

// write_layer with `files` added to the tree's entries (sorted in with them;
// a name must not be one of the tree's).
Result<LayerInfo> write_layer(Store& store, const std::string& dir, const WriteOptions& opts,
                              const std::vector<ExternalFile>& files);

// write_layer, then moves `dir` itself into the store as the layer's snapshot
// (no re-extraction). If the snapshot already exists, `dir` is removed.
Result<LayerInfo> commit_dir(Store& store, const std::string& dir, const WriteOptions& opts = {});

// Makes sure snapshots/<diff_id> exists, extracting the blob if needed
// (under a lock; into a temp dir, then renamed: never half made). The blob is
// read once: checked against its digest and its uncompressed stream against
// diff_id while it is extracted into the temp dir, which becomes the snapshot
// only when both match.
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
