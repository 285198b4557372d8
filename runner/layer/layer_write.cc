// Directory tree -> layer blob, in one pass: libarchive writes PAX tar into
// our callback, which hashes the tar (diff_id), compresses it (gzip: on worker
// threads, see pgzip.h, reusing blocks of earlier layers: gzip_block_cache.h) and streams the compressed bytes into a BlobWriter
// (which hashes them: the digest).
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "core/fs.h"
#include "core/sha256.h"
#include "runner/layer/gzip_block_cache.h"
#include "runner/layer/layer.h"
#include "runner/layer/layer_internal.h"
#include "runner/layer/pgzip.h"

namespace dfgen::layer {

namespace {

// ---- compression ----

class Compressor {
 public:
  virtual ~Compressor() = default;
  // Compresses `in`; `finish` ends the stream. Output goes to `out`.
  virtual Status feed(const void* in, size_t size, bool finish, BlobWriter& out) = 0;
  // The bytes fed so far end the tar entry `name`.
  virtual Status entry_boundary(std::string_view) { return ok_status(); }
  // The next entry's header changes from build to build (pgzip.h).
  virtual Status begin_volatile_entry() { return ok_status(); }
  // Whether the compressor hashes its input itself (off the caller's
  // thread); then input_digest() is the diff_id once the stream is finished.
  virtual bool hashes_input() const { return false; }
  virtual std::string input_digest() const { return {}; }
};

class PlainCompressor : public Compressor {
 public:
  Status feed(const void* in, size_t size, bool, BlobWriter& out) override {
    return size ? out.write(in, size) : ok_status();
  }
};

// gzip on every CPU (pgzip.h): one gzip member whose bytes do not depend on
// the thread count; the header has mtime 0 and no name, so the same tar
// always gives the same bytes. Blocks are cut at entry boundaries (content
// defined) and, with a cache, copied from earlier blobs when known.
class GzipCompressor : public Compressor {
 public:
  GzipCompressor(int level, GzipBlockCache* cache) : level_(level > 0 ? level : -1), cache_(cache) {}
  Status feed(const void* in, size_t size, bool finish, BlobWriter& out) override {
    if (!gz_) start(out);
    if (size) DFGEN_CHECK(gz_->write(in, size));
    return finish ? gz_->finish() : ok_status();
  }
  Status entry_boundary(std::string_view name) override { return gz_ ? gz_->entry_boundary(name) : ok_status(); }
  Status begin_volatile_entry() override { return gz_ ? gz_->begin_volatile_entry() : ok_status(); }
  bool hashes_input() const override { return true; }
  std::string input_digest() const override { return gz_->input_digest(); }
  // Every block written (after the last feed).
  const std::vector<GzipBlock>& blocks() const { return gz_->blocks(); }

 private:
  void start(BlobWriter& out) {
    gz_ = std::make_unique<ParallelGzip>([&out](const void* d, size_t n) { return out.write(d, n); },
                                         ParallelGzip::layer_options(level_, cache_));
  }
  int level_;
  GzipBlockCache* cache_;
  std::unique_ptr<ParallelGzip> gz_;
};

class ZstdCompressor : public Compressor {
 public:
  // Multi-threaded (nbWorkers >= 1): the frame is the same for any worker
  // count, so a layer digest does not depend on the machine.
  explicit ZstdCompressor(int level) : cctx_(ZSTD_createCCtx()) {
    if (!cctx_) return;
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level > 0 ? level : 3);
    long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_nbWorkers, static_cast<int>(std::clamp(cpus, 1L, 8L)));
  }
  ~ZstdCompressor() override { ZSTD_freeCCtx(cctx_); }
  Status feed(const void* in, size_t size, bool finish, BlobWriter& out) override {
    if (!cctx_) return Error("zstd: cannot create context");
    ZSTD_inBuffer input{in, size, 0};
    buf_.resize(ZSTD_CStreamOutSize());
    auto& buf = buf_;
    for (;;) {
      ZSTD_outBuffer output{buf.data(), buf.size(), 0};
      size_t rc = ZSTD_compressStream2(cctx_, &output, &input, finish ? ZSTD_e_end : ZSTD_e_continue);
      if (ZSTD_isError(rc)) return Error(fmt::format("zstd: {}", ZSTD_getErrorName(rc)));
      if (output.pos) DFGEN_CHECK(out.write(buf.data(), output.pos));
      if (finish ? rc == 0 : input.pos == input.size) return ok_status();
    }
  }

 private:
  ZSTD_CCtx* cctx_;
  std::vector<char> buf_;
};

std::unique_ptr<Compressor> make_compressor(Compression c, int level, GzipBlockCache* cache) {
  switch (c) {
    case Compression::Gzip: return std::make_unique<GzipCompressor>(level, cache);
    case Compression::Zstd: return std::make_unique<ZstdCompressor>(level);
    case Compression::None: break;
  }
  return std::make_unique<PlainCompressor>();
}

const char* media_type_for(Compression c) {
  switch (c) {
    case Compression::Gzip: return kOciLayerGzip;
    case Compression::Zstd: return kOciLayerZstd;
    case Compression::None: break;
  }
  return kOciLayerTar;
}

// Where libarchive's output goes: hashed as tar (by the compressor when it
// can do it on another thread), then compressed into the blob.
struct Sink {
  Sha256 tar_hash;
  std::unique_ptr<Compressor> compressor;
  BlobWriter* blob;
  Status status = ok_status();
};

la_ssize_t sink_write(struct archive*, void* data, const void* buf, size_t size) {
  auto* sink = static_cast<Sink*>(data);
  if (!sink->compressor->hashes_input()) sink->tar_hash.update(buf, size);
  auto st = sink->compressor->feed(buf, size, false, *sink->blob);
  if (!st.ok()) {
    sink->status = std::move(st);
    return -1;
  }
  return static_cast<la_ssize_t>(size);
}

// ---- the tree ----

enum class Kind { Normal, Whiteout, Opaque };

struct Item {
  std::string name;        // path in the tar, relative, no leading "./"
  std::string source;      // absolute path on disk ("" for the opaque marker)
  struct stat st{};
  Kind kind = Kind::Normal;
  const ExternalFile* external = nullptr;   // a file from outside the tree
};

Status walk(const std::string& root, const std::string& rel, std::vector<Item>& out) {
  std::string dir = rel.empty() ? root : path_join(root, rel);
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return Error::sys("open directory " + dir);
  while (dirent* e = ::readdir(d.get())) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    Item item;
    item.name = rel.empty() ? std::string(n) : rel + "/" + std::string(n);
    item.source = path_join(root, item.name);
    if (::lstat(item.source.c_str(), &item.st) != 0) return Error::sys("stat " + item.source);
    if (S_ISCHR(item.st.st_mode) && item.st.st_rdev == makedev(0, 0)) {
      // An overlay whiteout becomes an OCI whiteout file beside it.
      item.kind = Kind::Whiteout;
      item.name = (rel.empty() ? "" : rel + "/") + kWhiteoutPrefix + std::string(n);
      out.push_back(std::move(item));
      continue;
    }
    bool is_dir = S_ISDIR(item.st.st_mode);
    std::string child = item.name;
    if (is_dir && is_opaque_dir(item.source)) {
      Item marker;
      marker.name = child + "/" + kOpaqueMarker;
      marker.st = item.st;
      marker.kind = Kind::Opaque;
      out.push_back(std::move(marker));
    }
    out.push_back(std::move(item));
    if (is_dir) DFGEN_CHECK(walk(root, child, out));
  }
  return ok_status();
}

Status add_xattrs(archive_entry* e, const std::string& path) {
  DFGEN_TRY(auto attrs, read_xattrs(path));
  for (const auto& [name, value] : attrs)
    archive_entry_xattr_add_entry(e, name.c_str(), value.data(), value.size());
  return ok_status();
}

Status copy_file_data(struct archive* a, const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return Error::sys("open " + path);
  return read_chunks(fd.get(), path, [&](const char* data, size_t size) -> Status {
    if (archive_write_data(a, data, size) != static_cast<ssize_t>(size))
      return Error(fmt::format("write layer: {}", archive_message(a, "libarchive failed")));
    return ok_status();
  });
}

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;
using EntryPtr = std::unique_ptr<archive_entry, void (*)(archive_entry*)>;

// An external file's entry: opened, checked against the stat its digest was
// taken at, its bytes hashed as they go into the tar and checked against it.
Status write_external(struct archive* a, archive_entry* e, const ExternalFile& f, int64_t mtime) {
  auto changed = [&](const std::string& how) {
    return Error(fmt::format("{} changed while the step ran ({}): the step's cache key was computed from "
                             "other content than it would copy; run the build again",
                             f.rel, how));
  };
  UniqueFd fd(::openat(f.dir_fd, f.rel.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return Error::sys("open " + f.rel);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::sys("stat " + f.rel);
  if (!S_ISREG(st.st_mode)) return changed("no longer a regular file");
  if (!(StatKey::of(st) == f.expect)) {
    return changed(st.st_size != f.expect.size ? fmt::format("size {} -> {}", f.expect.size, st.st_size)
                                                 : "its modification or change time moved");
  }
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, f.perm & 07777);
  archive_entry_set_uid(e, f.uid);
  archive_entry_set_gid(e, f.gid);
  archive_entry_set_mtime(e, mtime, 0);
  archive_entry_set_size(e, st.st_size);
  if (archive_write_header(a, e) != ARCHIVE_OK)
    return Error(fmt::format("write layer entry {}: {}", f.name, archive_message(a, "libarchive failed")));
  Sha256 hash;
  int64_t left = st.st_size;
  std::vector<char> buf(1 << 17);
  while (left > 0) {
    ssize_t n = ::read(fd.get(), buf.data(), static_cast<size_t>(std::min<int64_t>(left, buf.size())));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("read " + f.rel);
    }
    if (n == 0) return changed("shorter than its size");
    hash.update(buf.data(), static_cast<size_t>(n));
    if (archive_write_data(a, buf.data(), static_cast<size_t>(n)) != n)
      return Error(fmt::format("write layer: {}", archive_message(a, "libarchive failed")));
    left -= n;
  }
  char extra;
  ssize_t more = ::read(fd.get(), &extra, 1);
  if (more > 0) return changed("longer than its size");
  if (!f.digest.empty() && hash.digest() != f.digest) return changed("its content hashes differently");
  return ok_status();
}

// Ends the current entry and tells the compressor: libarchive writes the
// entry's padding now, and with bytes_per_block 0 every byte of the entry has
// reached the sink before the boundary is announced.
Status end_entry(struct archive* a, Sink& sink, const std::string& name) {
  if (archive_write_finish_entry(a) != ARCHIVE_OK)
    return Error(fmt::format("write layer entry {}: {}", name, archive_message(a, "libarchive failed")));
  return sink.compressor->entry_boundary(name);
}

Status write_items(struct archive* a, Sink& sink, const std::vector<Item>& items, const WriteOptions& opts) {
  auto clamp = [&](int64_t t) {
    return opts.source_date_epoch && t > *opts.source_date_epoch ? *opts.source_date_epoch : t;
  };
  std::map<std::pair<dev_t, ino_t>, std::string> first_link;   // inode -> first tar name
  for (const Item& item : items) {
    EntryPtr e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), item.name.c_str());
    if (item.external) {
      DFGEN_CHECK(write_external(a, e.get(), *item.external, clamp(item.external->mtime)));
      DFGEN_CHECK(end_entry(a, sink, item.name));
      continue;
    }
    archive_entry_set_mtime(e.get(), clamp(item.st.st_mtim.tv_sec), 0);
    bool data = false;
    if (item.kind != Kind::Normal) {
      // ".wh.NAME" and ".wh..wh..opq": empty regular files, owned by root.
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_perm(e.get(), 0);
      archive_entry_set_size(e.get(), 0);
    } else {
      const struct stat& st = item.st;
      archive_entry_set_perm(e.get(), st.st_mode & 07777);
      archive_entry_set_uid(e.get(), st.st_uid);
      archive_entry_set_gid(e.get(), st.st_gid);
      archive_entry_set_size(e.get(), 0);
      if (S_ISREG(st.st_mode)) {
        archive_entry_set_filetype(e.get(), AE_IFREG);
        auto [it, inserted] = first_link.try_emplace({st.st_dev, st.st_ino}, item.name);
        if (st.st_nlink > 1 && !inserted) {
          archive_entry_set_hardlink(e.get(), it->second.c_str());
        } else {
          archive_entry_set_size(e.get(), st.st_size);
          data = true;
        }
      } else if (S_ISDIR(st.st_mode)) {
        archive_entry_set_filetype(e.get(), AE_IFDIR);
      } else if (S_ISLNK(st.st_mode)) {
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        DFGEN_TRY(std::string target, read_link(item.source));
        archive_entry_set_symlink(e.get(), target.c_str());
      } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        archive_entry_set_filetype(e.get(), S_ISCHR(st.st_mode) ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
        archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
      } else if (S_ISFIFO(st.st_mode)) {
        archive_entry_set_filetype(e.get(), AE_IFIFO);
      } else {
        continue;   // sockets are not carried in layers
      }
      DFGEN_CHECK(add_xattrs(e.get(), item.source));
    }
    // A directory's mtime (and so an opaque marker's) moves with what is
    // created in it, and is the build time for a COPY's directories.
    if (item.kind == Kind::Opaque || S_ISDIR(item.st.st_mode)) DFGEN_CHECK(sink.compressor->begin_volatile_entry());
    if (archive_write_header(a, e.get()) != ARCHIVE_OK)
      return Error(fmt::format("write layer entry {}: {}", item.name, archive_message(a, "libarchive failed")));
    if (data) DFGEN_CHECK(copy_file_data(a, item.source));
    DFGEN_CHECK(end_entry(a, sink, item.name));
  }
  return ok_status();
}

}  // namespace

Result<WriteOptions> parse_compression(const std::string& text, WriteOptions base) {
  auto bad = [&](const std::string& why) {
    return Error(fmt::format("invalid compression \"{}\": {} (gzip, zstd or uncompressed, optionally ,level=N)",
                             text, why));
  };
  std::string name = text.substr(0, text.find(','));
  if (name == "gzip") base.compression = Compression::Gzip;
  else if (name == "zstd") base.compression = Compression::Zstd;
  else if (name == "uncompressed") base.compression = Compression::None;
  else return bad("unknown type \"" + name + "\"");
  base.level = 0;
  if (name.size() < text.size()) {
    std::string rest = text.substr(name.size() + 1);
    if (!rest.starts_with("level=")) return bad("expected level=N");
    std::string n = rest.substr(6);
    if (n.empty() || n.size() > 2 || n.find_first_not_of("0123456789") != std::string::npos) return bad("level must be a number");
    base.level = std::stoi(n);
    int max = base.compression == Compression::Zstd ? 19 : 9;
    if (base.compression == Compression::None) return bad("uncompressed layers take no level");
    if (base.level < 1 || base.level > max) return bad(fmt::format("level must be 1-{}", max));
  }
  return base;
}

Result<LayerInfo> write_layer(Store& store, const std::string& dir, const WriteOptions& opts) {
  return write_layer(store, dir, opts, {});
}

Result<LayerInfo> write_layer(Store& store, const std::string& dir, const WriteOptions& opts,
                              const std::vector<ExternalFile>& files) {
  std::vector<Item> items;
  DFGEN_CHECK(walk(dir, "", items));
  for (const auto& f : files) {
    Item item;
    item.name = f.name;
    item.external = &f;
    items.push_back(std::move(item));
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.name < b.name; });

  DFGEN_TRY(BlobWriter blob, store.blob_writer());
  std::optional<StoreGzipBlockCache> cache;
  if (opts.compression == Compression::Gzip && opts.reuse_gzip_blocks) cache.emplace(store);
  Sink sink;
  sink.compressor = make_compressor(opts.compression, opts.level, cache ? &*cache : nullptr);
  sink.blob = &blob;
  // Starts the compressor (no bytes): entry calls may come before the first write.
  DFGEN_CHECK(sink.compressor->feed(nullptr, 0, false, blob));

  ArchivePtr a(archive_write_new(), archive_write_free);
  if (!a) return Error("write layer: archive_write_new failed");
  archive_write_set_format_pax_restricted(a.get());
  archive_write_add_filter_none(a.get());
  // No buffering in libarchive: an entry's bytes are all in the sink when it
  // ends (end_entry). The tar is the same bytes (no padding of the last block).
  archive_write_set_bytes_per_block(a.get(), 0);
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open2(a.get(), &sink, nullptr, sink_write, nullptr, nullptr) != ARCHIVE_OK)
    return Error(fmt::format("write layer {}: {}", dir, archive_message(a.get(), "libarchive failed")));
  Status st = write_items(a.get(), sink, items, opts);
  if (st.ok() && archive_write_close(a.get()) != ARCHIVE_OK)
    st = Error(fmt::format("write layer: {}", archive_message(a.get(), "libarchive failed")));
  if (!sink.status.ok()) st = std::move(sink.status);
  if (!st.ok()) return std::move(st).error().context("write layer " + dir);
  DFGEN_CHECK(sink.compressor->feed(nullptr, 0, true, blob));

  LayerInfo info;
  info.diff_id = sink.compressor->hashes_input() ? sink.compressor->input_digest() : sink.tar_hash.digest();
  info.empty = items.empty();
  DFGEN_TRY(info.blob, blob.commit(media_type_for(opts.compression)));
  if (auto* gz = dynamic_cast<GzipCompressor*>(sink.compressor.get())) {
    for (const GzipBlock& b : gz->blocks()) info.gzip_blocks_reused += b.reused ? 1 : 0;
    info.gzip_blocks = static_cast<int>(gz->blocks().size());
    if (cache) DFGEN_CHECK(cache->record(info.blob.digest, gz->blocks()));
  }
  return info;
}

Result<LayerInfo> commit_dir(Store& store, const std::string& dir, const WriteOptions& opts) {
  DFGEN_TRY(LayerInfo info, write_layer(store, dir, opts));
  std::string hex(digest_hex(info.diff_id));
  DFGEN_TRY(FileLock lock, store.lock("snapshot-" + hex));
  std::string target = store.snapshot_path(info.diff_id);
  if (store.has_snapshot(info.diff_id)) {
    DFGEN_CHECK(remove_all(dir));
    return info;
  }
  if (::rename(dir.c_str(), target.c_str()) != 0)
    return Error::sys(fmt::format("move {} to snapshot {}", dir, target));
  DFGEN_CHECK(fsync_dir(dirname_of(target)));
  return info;
}

}  // namespace dfgen::layer
