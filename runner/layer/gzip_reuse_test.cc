// Content-defined gzip blocks and their reuse across layers (pgzip.h,
// gzip_block_cache.h). Every blob is checked with zlib's own inflate (which
// checks the CRC-32 and ISIZE) against the tar written uncompressed, and with
// gzip(1); a blob written with reused blocks must be byte for byte the blob
// written without any cache.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/fs.h"
#include "core/sha256.h"
#include "runner/layer/gzip_block_cache.h"
#include "runner/layer/layer.h"
#include "runner/layer/pgzip.h"
#include "runner/layer/test_bytes.h"

namespace dfgen::layer {
namespace {

// Bytes that compress a little, different for every seed.
std::string data_of(size_t size, uint32_t seed) {
  std::string out;
  out.reserve(size);
  uint32_t x = seed * 2654435761u + 1;
  while (out.size() < size) {
    x = x * 1664525u + 1013904223u;
    if ((x >> 28) < 6) out.append(std::min<size_t>((x >> 8) % 40 + 3, size - out.size()), "abcdefgh"[(x >> 4) % 8]);
    else out.push_back(static_cast<char>('a' + (x >> 16) % 26));
  }
  return out;
}

// zlib inflate of one whole gzip member; fails the test if it is not one.
std::string gunzip(const std::string& gz) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  std::vector<char> buf(1 << 16);
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf.data());
    z.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf.data(), buf.size() - z.avail_out);
  } while (rc == Z_OK);
  EXPECT_EQ(rc, Z_STREAM_END) << (z.msg ? z.msg : "");
  EXPECT_EQ(z.avail_in, 0u) << "bytes after the member";
  inflateEnd(&z);
  return out;
}

// An in-memory cache that remembers every block of the streams it is told about.
class MemoryCache : public GzipBlockCache {
 public:
  std::optional<Hit> find(const std::string& key, uint64_t input_size) override {
    std::lock_guard lock(mu_);
    ++lookups_;
    auto it = blocks_.find(key);
    if (it == blocks_.end() || it->second.input_size != input_size) return std::nullopt;
    return it->second.hit;
  }
  void remember(const std::string& stream, const std::vector<GzipBlock>& blocks) {
    for (const auto& b : blocks) {
      if (b.key.empty()) continue;
      Hit hit;
      hit.bytes.assign(stream.begin() + static_cast<std::ptrdiff_t>(b.offset),
                       stream.begin() + static_cast<std::ptrdiff_t>(b.offset + b.size));
      hit.crc = b.crc;
      hit.output_crc = b.output_crc;
      blocks_[b.key] = {hit, b.input_size};
    }
  }
  int lookups() const { return lookups_; }

 private:
  struct Stored {
    Hit hit;
    uint64_t input_size;
  };
  std::mutex mu_;
  std::map<std::string, Stored> blocks_;
  int lookups_ = 0;
};

// A stream of tar-like entries: a 512-byte "header" then the data, padded.
struct Entry {
  std::string name;
  std::string data;
  bool is_dir = false;
};

std::vector<Entry> make_entries(int dirs, int files_per_dir) {
  std::vector<Entry> out;
  uint32_t seed = 1;
  for (int d = 0; d < dirs; ++d) {
    out.push_back({fmt::format("d{:03}/", d), "", true});
    for (int f = 0; f < files_per_dir; ++f, ++seed)
      out.push_back({fmt::format("d{:03}/f{:03}", d, f), data_of(1000 + (seed * 7919) % 9000, seed), false});
  }
  return out;
}

struct Compressed {
  std::string input;
  std::string output;
  std::vector<GzipBlock> blocks;
  std::string input_digest;
};

// `stamp` goes into every directory's header, as a build time would.
Compressed compress(const std::vector<Entry>& entries, int threads, GzipBlockCache* cache, int stamp = 0) {
  Compressed c;
  auto opts = ParallelGzip::layer_options(-1, cache);
  opts.threads = threads;
  ParallelGzip gz([&](const void* d, size_t n) {
    c.output.append(static_cast<const char*>(d), n);
    return ok_status();
  }, opts);
  for (const Entry& e : entries) {
    std::string header = e.name + (e.is_dir ? fmt::format(" mtime={}", stamp) : "");
    header.resize(512, '\0');
    std::string padding((512 - e.data.size() % 512) % 512, '\0');
    if (e.is_dir) {
      EXPECT_TRUE(gz.begin_volatile_entry().ok());
    }
    for (const std::string* part : std::initializer_list<const std::string*>{&header, &e.data, &padding}) {
      // Odd write sizes, as libarchive's are.
      for (size_t off = 0; off < part->size(); off += 3001)
        EXPECT_TRUE(gz.write(part->data() + off, std::min<size_t>(3001, part->size() - off)).ok());
      c.input += *part;
    }
    EXPECT_TRUE(gz.entry_boundary(e.name).ok());
  }
  std::string end(1024, '\0');
  EXPECT_TRUE(gz.write(end.data(), end.size()).ok());
  c.input += end;
  EXPECT_TRUE(gz.finish().ok());
  c.blocks = gz.blocks();
  c.input_digest = gz.input_digest();
  return c;
}

int reused(const std::vector<GzipBlock>& blocks) {
  int n = 0;
  for (const auto& b : blocks) n += b.reused ? 1 : 0;
  return n;
}

TEST(ContentDefinedGzip, OneMemberSameBytesForEveryThreadCountAndBlocksAtEntryEnds) {
  auto entries = make_entries(8, 150);   // ~5 MiB
  Compressed one = compress(entries, 1, nullptr);
  EXPECT_EQ(gunzip(one.output), one.input);
  EXPECT_EQ(one.input_digest, sha256_digest(one.input));
  for (int threads : {2, 3}) EXPECT_EQ(compress(entries, threads, nullptr).output, one.output) << threads;
  // Blocks end at entry ends (512-byte aligned here), within the limits.
  ASSERT_GT(one.blocks.size(), 4u);
  uint64_t in = 0, out = 10;
  for (size_t i = 0; i + 1 < one.blocks.size(); ++i) {
    const GzipBlock& b = one.blocks[i];
    EXPECT_EQ(b.offset, out);
    in += b.input_size;
    out += b.size;
    EXPECT_EQ(in % 512, 0u) << "block " << i << " ends inside an entry";
    EXPECT_LE(b.input_size, 4u << 20);
  }
  // Still about as small as one deflate stream of the whole (within 2 %).
  uLongf n = compressBound(static_cast<uLong>(one.input.size()));
  std::string single(n, '\0');
  ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(single.data()), &n, reinterpret_cast<const Bytef*>(one.input.data()),
                      static_cast<uLong>(one.input.size()), Z_DEFAULT_COMPRESSION), Z_OK);
  EXPECT_LT(static_cast<double>(one.output.size()), static_cast<double>(n) * 1.02) << one.output.size() << " vs " << n;
}

TEST(ContentDefinedGzip, AFileThatGrowsInTheMiddleLeavesTheOtherBlocksAsTheyWere) {
  auto entries = make_entries(8, 150);
  MemoryCache cache;
  Compressed a = compress(entries, 2, &cache, /*stamp=*/1);
  EXPECT_EQ(reused(a.blocks), 0);
  cache.remember(a.output, a.blocks);

  // One file in the middle grows by 3 KiB; every directory gets a new mtime.
  entries[entries.size() / 2].data += data_of(3000, 99);
  MemoryCache none;
  Compressed fresh = compress(entries, 1, &none, /*stamp=*/2);
  for (int threads : {1, 2}) {
    Compressed b = compress(entries, threads, &cache, /*stamp=*/2);
    EXPECT_EQ(b.output, fresh.output) << "reused blocks give the bytes deflate gives";
    EXPECT_EQ(gunzip(b.output), b.input);
    int big = 0;
    for (const auto& blk : b.blocks) big += blk.input_size >= (16 << 10) ? 1 : 0;
    // All but the changed file's block (and the one after it, at most).
    EXPECT_GE(reused(b.blocks), big - 2) << threads;
    EXPECT_GT(reused(b.blocks), 0);
  }
}

TEST(ContentDefinedGzip, ABigEntryIsCutAtTheSameOffsetsWhereverItStarts) {
  std::string big = data_of(5 << 20, 7);
  auto stream_with_prefix = [&](size_t prefix) {
    std::vector<Entry> e = {{"a", data_of(prefix, 1), false}, {"big", big, false}};
    return e;
  };
  // Prefixes smaller than a block: "big" starts inside the first block, at
  // another offset each time.
  MemoryCache cache;
  Compressed a = compress(stream_with_prefix(100 << 10), 2, &cache);
  cache.remember(a.output, a.blocks);
  Compressed b = compress(stream_with_prefix(300 << 10), 2, &cache);
  EXPECT_EQ(gunzip(b.output), b.input);
  // The big file's 1 MiB chunks after its first line up again.
  EXPECT_GE(reused(b.blocks), 3);
}

TEST(ContentDefinedGzip, IncompressibleBlocksAreNeitherHashedNorLookedUp) {
  std::string random = incompressible_bytes(3 << 20);
  MemoryCache cache;
  Compressed c = compress({{"random", random, false}}, 2, &cache);
  EXPECT_EQ(gunzip(c.output), c.input);
  // Only the first block, which starts with the entry's (compressible)
  // header, has a key.
  ASSERT_GE(c.blocks.size(), 3u);
  EXPECT_EQ(cache.lookups(), 1);
  EXPECT_FALSE(c.blocks[0].key.empty());
  for (size_t i = 1; i < c.blocks.size(); ++i) EXPECT_TRUE(c.blocks[i].key.empty()) << i;
  // Compressible blocks are looked up.
  Compressed d = compress(make_entries(2, 150), 2, &cache);
  EXPECT_GT(cache.lookups(), 0);
}

// ---- layers in a store ----

class GzipReuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create(::testing::TempDir(), "gzreuse");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
    auto s = Store::open(dir_->path() + "/store");
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_.emplace(std::move(*s));
    tree_ = dir_->path() + "/tree";
    // 6 folders of 120 files of 1-10 KB: ~4 MB, several blocks.
    uint32_t seed = 1;
    for (int d = 0; d < 6; ++d) {
      std::string dir = fmt::format("{}/d{}", tree_, d);
      ASSERT_TRUE(make_dirs(dir).ok());
      for (int f = 0; f < 120; ++f, ++seed) {
        std::string path = fmt::format("{}/f{:03}", dir, f);
        ASSERT_TRUE(write_file_atomic(path, data_of(1000 + (seed * 7919) % 9000, seed)).ok());
        set_mtime(path, 1700000000);
      }
    }
    set_dir_mtimes(1700000000);
  }

  static void set_mtime(const std::string& path, int64_t t) {
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
  }
  // As a COPY does: every folder gets the build's time.
  void set_dir_mtimes(int64_t t) {
    for (int d = 0; d < 6; ++d) set_mtime(fmt::format("{}/d{}", tree_, d), t);
    set_mtime(tree_, t);
  }
  // A file in the middle of the tar changes size.
  void grow_middle_file() {
    std::string path = tree_ + "/d3/f050";
    auto old = read_file(path);
    ASSERT_TRUE(old.ok());
    ASSERT_TRUE(write_file_atomic(path, *old + data_of(2500, 77)).ok());
    set_mtime(path, 1700000100);
    set_dir_mtimes(1700000200);
  }

  std::string blob(const LayerInfo& info) {
    auto b = read_file(store_->blob_path(info.blob.digest));
    EXPECT_TRUE(b.ok());
    return b.ok() ? *b : "";
  }

  // Checks `info` against the tree written uncompressed and against a blob
  // written without any cache, in a store of its own.
  void expect_correct(const LayerInfo& info) {
    WriteOptions plain;
    plain.compression = Compression::None;
    auto tar = write_layer(*store_, tree_, plain);
    ASSERT_TRUE(tar.ok()) << tar.error().render();
    std::string tar_bytes = blob(*tar);
    std::string gz = blob(info);
    EXPECT_TRUE(gunzip(gz) == tar_bytes) << "the blob inflates to the tar";
    EXPECT_EQ(info.diff_id, tar->diff_id);
    EXPECT_EQ(info.diff_id, sha256_digest(tar_bytes));
    auto diff_id = layer_diff_id(store_->blob_path(info.blob.digest));
    ASSERT_TRUE(diff_id.ok()) << diff_id.error().render();
    EXPECT_EQ(*diff_id, info.diff_id);
    std::string cmd = "gzip -t < " + store_->blob_path(info.blob.digest);
    EXPECT_EQ(std::system(cmd.c_str()), 0);

    auto other_dir = TempDir::create(::testing::TempDir(), "gzreuse-fresh");
    ASSERT_TRUE(other_dir.ok());
    auto other = Store::open(other_dir->path() + "/store");
    ASSERT_TRUE(other.ok());
    WriteOptions no_cache;
    no_cache.reuse_gzip_blocks = false;
    auto fresh = write_layer(*other, tree_, no_cache);
    ASSERT_TRUE(fresh.ok());
    EXPECT_EQ(fresh->gzip_blocks_reused, 0);
    EXPECT_EQ(info.blob.digest, fresh->blob.digest) << "the same bytes as deflating every block";
  }

  // The offsets of the index's valid slots, in file order.
  std::vector<off_t> slots() const {
    std::vector<off_t> out;
    auto index = read_file(gzip_block_index_path(*store_));
    if (!index.ok()) return out;
    for (size_t at = 0; at + kGzipSlotSize <= index->size(); at += kGzipSlotSize)
      if (decode_gzip_slot(reinterpret_cast<const unsigned char*>(index->data() + at))) out.push_back(static_cast<off_t>(at));
    return out;
  }
  GzipSlot read_slot(off_t at) const {
    GzipSlot s{};
    UniqueFd fd(::open(gzip_block_index_path(*store_).c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_EQ(::pread(fd.get(), s.data(), s.size(), at), static_cast<ssize_t>(s.size()));
    return s;
  }
  void write_slot(off_t at, const GzipSlot& s) const {
    UniqueFd fd(::open(gzip_block_index_path(*store_).c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_EQ(::pwrite(fd.get(), s.data(), s.size(), at), static_cast<ssize_t>(s.size()));
  }

  std::optional<TempDir> dir_;
  std::optional<Store> store_;
  std::string tree_;
};

TEST_F(GzipReuseTest, OneFileChangedReusesTheOtherBlocksAndTheBlobIsExact) {
  auto a = write_layer(*store_, tree_);
  ASSERT_TRUE(a.ok()) << a.error().render();
  EXPECT_EQ(a->gzip_blocks_reused, 0);
  EXPECT_GT(a->gzip_blocks, 4);
  EXPECT_GE(slots().size(), 4u) << "blocks recorded";
  expect_correct(*a);

  grow_middle_file();
  auto b = write_layer(*store_, tree_);
  ASSERT_TRUE(b.ok()) << b.error().render();
  EXPECT_NE(b->blob.digest, a->blob.digest);
  EXPECT_GE(b->gzip_blocks_reused, 3) << b->gzip_blocks << " blocks";
  EXPECT_LT(b->gzip_blocks_reused, b->gzip_blocks);
  expect_correct(*b);

  // The same tree again: every block that is cached at all is reused.
  auto c = write_layer(*store_, tree_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->blob.digest, b->blob.digest);
  EXPECT_GE(c->gzip_blocks_reused, b->gzip_blocks_reused);
}

TEST_F(GzipReuseTest, BrokenEntriesAndMissingBlobsFallBackToDeflate) {
  auto a = write_layer(*store_, tree_);
  ASSERT_TRUE(a.ok());
  auto at = slots();
  ASSERT_GE(at.size(), 4u);
  // Zeros, garbage, a slot with a wrong offset (its check recomputed, so only
  // the bytes' CRC can tell), and one with a byte flipped (its check fails).
  write_slot(at[0], GzipSlot{});
  {
    GzipSlot junk;
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<unsigned char>(i * 37 + 11);
    write_slot(at[1], junk);
  }
  {
    auto e = decode_gzip_slot(read_slot(at[2]).data());
    ASSERT_TRUE(e.has_value());
    e->offset += 1;
    write_slot(at[2], encode_gzip_slot(*e));
  }
  {
    GzipSlot flipped = read_slot(at[3]);
    flipped[80] ^= 1;   // the size
    EXPECT_FALSE(decode_gzip_slot(flipped.data()).has_value());
    write_slot(at[3], flipped);
  }
  auto b = write_layer(*store_, tree_);
  ASSERT_TRUE(b.ok()) << b.error().render();
  EXPECT_EQ(b->blob.digest, a->blob.digest);
  EXPECT_LE(b->gzip_blocks_reused, b->gzip_blocks - 4) << "the four broken entries were deflated";
  EXPECT_GT(b->gzip_blocks_reused, 0);
  expect_correct(*b);

  // The blob every entry names is gone: all blocks are deflated again.
  grow_middle_file();
  ASSERT_EQ(::unlink(store_->blob_path(a->blob.digest).c_str()), 0);
  auto c = write_layer(*store_, tree_);
  ASSERT_TRUE(c.ok()) << c.error().render();
  EXPECT_EQ(c->gzip_blocks_reused, 0);
  expect_correct(*c);

  // A blob cut short: the entries past its end are ignored.
  std::string path = store_->blob_path(c->blob.digest);
  auto full = read_file(path);
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(full->size() / 2)), 0);
  set_dir_mtimes(1700000300);
  auto d = write_layer(*store_, tree_);
  ASSERT_TRUE(d.ok()) << d.error().render();
  EXPECT_GT(d->gzip_blocks_reused, 0);
  EXPECT_LT(d->gzip_blocks_reused, d->gzip_blocks - 2);
  expect_correct(*d);
}

TEST_F(GzipReuseTest, OnlyGzipLayersUseTheCache) {
  for (Compression c : {Compression::Zstd, Compression::None}) {
    WriteOptions o;
    o.compression = c;
    auto info = write_layer(*store_, tree_, o);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->gzip_blocks, 0);
  }
  EXPECT_TRUE(slots().empty());
}

TEST(GzipBlockEntry, SlotsRoundTripAndAnyChangedByteIsRefused) {
  GzipBlockEntry e{std::string(64, 'a'), "sha256:" + std::string(63, 'b') + "c", 10, 2000, 0xdeadbeef, 4096, 0x1234};
  GzipSlot s = encode_gzip_slot(e);
  auto back = decode_gzip_slot(s.data());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->key, e.key);
  EXPECT_EQ(back->blob, e.blob);
  EXPECT_EQ(back->offset, 10u);
  EXPECT_EQ(back->size, 2000u);
  EXPECT_EQ(back->crc, 0xdeadbeefu);
  EXPECT_EQ(back->input_size, 4096u);
  EXPECT_EQ(back->output_crc, 0x1234u);
  for (size_t i = 0; i < s.size(); ++i) {
    GzipSlot bad = s;
    bad[i] ^= 0x10;
    EXPECT_FALSE(decode_gzip_slot(bad.data()).has_value()) << "byte " << i;
  }
  EXPECT_FALSE(decode_gzip_slot(GzipSlot{}.data()).has_value()) << "an unused slot";
}

}  // namespace
}  // namespace dfgen::layer
