// Runs as root: builds trees with owners, devices and trusted.* xattrs.
#include "runner/layer/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <zlib.h>

#include <map>
#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/sha256.h"
#include "runner/layer/layer_internal.h"
#include "runner/layer/test_bytes.h"
#include "runner/layer/pgzip.h"
#include "runner/userns/test_util.h"

namespace dfgen::layer {
namespace {

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;

void must(int rc, const std::string& what) { ASSERT_EQ(rc, 0) << what << ": " << std::strerror(errno); }

void write(const std::string& path, const std::string& data, mode_t mode = 0644) {
  ASSERT_TRUE(write_file_atomic(path, data, mode).ok()) << path;
}

void set_mtime(const std::string& path, int64_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  must(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), "utimensat " + path);
}

// Everything we compare about one node.
struct Node {
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t mtime = 0;
  dev_t rdev = 0;
  std::string content;   // file data or symlink target
  std::vector<std::pair<std::string, std::string>> xattrs;   // all of them, overlay ones included
  ino_t ino = 0;
  bool operator==(const Node& o) const {
    return mode == o.mode && uid == o.uid && gid == o.gid && mtime == o.mtime && rdev == o.rdev &&
           content == o.content && xattrs == o.xattrs;
  }
};

std::ostream& operator<<(std::ostream& os, const Node& n) {
  os << fmt::format("mode={:o} uid={} gid={} mtime={} rdev={}:{} content={:?} xattrs=[", n.mode, n.uid, n.gid,
                    n.mtime, major(n.rdev), minor(n.rdev), n.content.substr(0, 40));
  for (auto& [k, v] : n.xattrs) os << k << "=" << v.size() << "B ";
  return os << "]";
}

std::vector<std::pair<std::string, std::string>> all_xattrs(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  char names[4096];
  ssize_t len = ::llistxattr(path.c_str(), names, sizeof names);
  for (ssize_t pos = 0; len > 0 && pos < len;) {
    std::string name(names + pos);
    pos += static_cast<ssize_t>(name.size()) + 1;
    char value[4096];
    ssize_t v = ::lgetxattr(path.c_str(), name.c_str(), value, sizeof value);
    out.emplace_back(name, std::string(value, v > 0 ? static_cast<size_t>(v) : 0));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::map<std::string, Node> scan(const std::string& root, const std::string& rel = "") {
  std::map<std::string, Node> out;
  std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  EXPECT_NE(d, nullptr) << dir;
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string r = rel.empty() ? n : rel + "/" + n;
    std::string p = root + "/" + r;
    struct stat st;
    EXPECT_EQ(::lstat(p.c_str(), &st), 0);
    Node node;
    node.mode = st.st_mode;
    node.uid = st.st_uid;
    node.gid = st.st_gid;
    node.mtime = st.st_mtim.tv_sec;
    node.rdev = st.st_rdev;
    node.ino = st.st_ino;
    node.xattrs = all_xattrs(p);
    if (S_ISREG(st.st_mode)) node.content = *read_file(p);
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t len = ::readlink(p.c_str(), buf, sizeof buf);
      node.content.assign(buf, len > 0 ? static_cast<size_t>(len) : 0);
    }
    out[r] = node;
    if (S_ISDIR(st.st_mode)) out.merge(scan(root, r));
  }
  ::closedir(d);
  return out;
}

// The entries of a layer blob, in order: name -> (type, size).
std::vector<std::string> list_entries(const std::string& blob) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  std::vector<std::string> out;
  if (archive_read_open_filename(a.get(), blob.c_str(), 1 << 16) != ARCHIVE_OK) return out;
  archive_entry* e;
  while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) out.push_back(archive_entry_pathname(e));
  return out;
}

// The uncompressed bytes of a blob.
std::string decompress(const std::string& blob) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  std::string out;
  if (archive_read_open_filename(a.get(), blob.c_str(), 1 << 16) != ARCHIVE_OK) return out;
  archive_entry* e;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) return out;
  char buf[1 << 16];
  for (la_ssize_t n; (n = archive_read_data(a.get(), buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::string decompress_bytes(const std::string& data) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  std::string out;
  if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK) return out;
  archive_entry* e;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) return out;
  char buf[1 << 16];
  for (la_ssize_t n; (n = archive_read_data(a.get(), buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

class LayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create(::testing::TempDir(), "layer");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
    auto s = Store::open(path("store"));
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_.emplace(std::move(*s));
  }
  std::string path(const std::string& rel) const { return dir_->path() + "/" + rel; }
  std::string new_dir(const std::string& rel) {
    EXPECT_TRUE(make_dirs(path(rel)).ok());
    return path(rel);
  }
  int tmp_entries() const { return static_cast<int>(scan(store_->root() + "/tmp").size()); }

  // A tree with one of everything a layer carries.
  void make_full_tree(const std::string& root) {
    must(::mkdir((root + "/etc").c_str(), 0755), "mkdir");
    write(root + "/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    write(root + "/etc/shadow", "secret", 0640);
    must(::chown((root + "/etc/shadow").c_str(), 0, 42), "chown");
    write(root + "/empty", "");
    std::string big(300000, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 3);
    write(root + "/big.bin", big, 0600);
    write(root + "/suid", "#!/bin/sh\n", 0755);
    must(::chown((root + "/suid").c_str(), 1234, 5678), "chown");
    must(::chmod((root + "/suid").c_str(), 04755), "chmod");
    must(::mkdir((root + "/private").c_str(), 0700), "mkdir");
    must(::mkdir((root + "/sticky").c_str(), 01777), "mkdir");
    must(::chmod((root + "/sticky").c_str(), 01777), "chmod");
    must(::chown((root + "/private").c_str(), 1000, 1000), "chown");
    write(root + "/private/a", "A");
    must(::link((root + "/private/a").c_str(), (root + "/hard").c_str()), "link");
    must(::symlink("etc/passwd", (root + "/rel-link").c_str()), "symlink");
    must(::symlink("/nonexistent/abs", (root + "/abs-link").c_str()), "symlink");
    must(::lchown((root + "/abs-link").c_str(), 7, 8), "lchown");
    must(::mknod((root + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), "mknod");
    must(::chmod((root + "/null").c_str(), 0666), "chmod");
    must(::mknod((root + "/loop").c_str(), S_IFBLK | 0660, makedev(7, 0)), "mknod");
    must(::mkfifo((root + "/fifo").c_str(), 0640), "mkfifo");
    must(::chmod((root + "/fifo").c_str(), 0640), "chmod");
    const char cap[] = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    must(::setxattr((root + "/suid").c_str(), "security.capability", cap, sizeof cap - 1, 0), "setxattr");
    must(::setxattr((root + "/etc/passwd").c_str(), "user.note", "hi", 2, 0), "setxattr");
    must(::setxattr((root + "/private").c_str(), "trusted.custom", "v", 1, 0), "setxattr");
    for (const char* p : {"etc/passwd", "etc/shadow", "empty", "big.bin", "suid", "private/a", "rel-link",
                          "abs-link", "null", "loop", "fifo", "private", "sticky", "etc"})
      set_mtime(root + "/" + p, 1600000000 + static_cast<int64_t>(std::string(p).size()));
  }

  std::optional<TempDir> dir_;
  std::optional<Store> store_;
};

class RoundTrip : public LayerTest, public ::testing::WithParamInterface<Compression> {};

TEST_P(RoundTrip, EveryAttributeSurvives) {
  std::string src = new_dir("src");
  make_full_tree(src);
  WriteOptions opts;
  opts.compression = GetParam();
  auto info = write_layer(*store_, src, opts);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_FALSE(info->empty);
  const char* want_type = GetParam() == Compression::Gzip   ? kOciLayerGzip
                          : GetParam() == Compression::Zstd ? kOciLayerZstd
                                                            : kOciLayerTar;
  EXPECT_EQ(info->blob.media_type, want_type);
  std::string blob = store_->blob_path(info->blob.digest);
  EXPECT_EQ(*sha256_file(blob), info->blob.digest);
  struct stat st;
  ASSERT_EQ(::stat(blob.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, info->blob.size);
  EXPECT_EQ(sha256_digest(decompress(blob)), info->diff_id);

  auto entries = list_entries(blob);
  EXPECT_TRUE(std::is_sorted(entries.begin(), entries.end()));
  EXPECT_EQ(entries.size(), 15u);

  std::string dst = new_dir("dst");
  auto st2 = extract_layer(blob, dst);
  ASSERT_TRUE(st2.ok()) << st2.error().message;
  auto want = scan(src), got = scan(dst);
  ASSERT_EQ(want.size(), 15u);
  for (auto& [name, node] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_EQ(got[name], node) << name;
  }
  EXPECT_EQ(got.size(), want.size());
  EXPECT_EQ(got["hard"].ino, got["private/a"].ino);
  EXPECT_NE(got["hard"].ino, got["empty"].ino);
}

INSTANTIATE_TEST_SUITE_P(Compressions, RoundTrip,
                         ::testing::Values(Compression::Gzip, Compression::Zstd, Compression::None));

TEST_F(LayerTest, WhiteoutsBothWays) {
  std::string upper = new_dir("upper");
  must(::mknod((upper + "/gone").c_str(), S_IFCHR, makedev(0, 0)), "mknod");
  must(::mkdir((upper + "/opq").c_str(), 0755), "mkdir");
  must(::setxattr((upper + "/opq").c_str(), "trusted.overlay.opaque", "y", 1, 0), "setxattr");
  must(::setxattr((upper + "/opq").c_str(), "trusted.overlay.origin", "x", 1, 0), "setxattr");
  write(upper + "/opq/kept", "k");
  must(::mkdir((upper + "/uopq").c_str(), 0755), "mkdir");
  must(::setxattr((upper + "/uopq").c_str(), "user.overlay.opaque", "y", 1, 0), "setxattr");
  must(::mkdir((upper + "/plain").c_str(), 0755), "mkdir");
  must(::mknod((upper + "/plain/old").c_str(), S_IFCHR, makedev(0, 0)), "mknod");

  auto info = write_layer(*store_, upper);
  ASSERT_TRUE(info.ok()) << info.error().message;
  std::string blob = store_->blob_path(info->blob.digest);
  EXPECT_EQ(list_entries(blob),
            (std::vector<std::string>{".wh.gone", "opq/", "opq/.wh..wh..opq", "opq/kept", "plain/",
                                      "plain/.wh.old", "uopq/", "uopq/.wh..wh..opq"}));

  std::string dst = new_dir("dst");
  auto st = extract_layer(blob, dst);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto got = scan(dst);
  EXPECT_EQ(got.size(), 6u);   // gone, opq, opq/kept, plain, plain/old, uopq
  for (const char* w : {"gone", "plain/old"}) {
    ASSERT_TRUE(got.count(w)) << w;
    EXPECT_TRUE(S_ISCHR(got[w].mode)) << w;
    EXPECT_EQ(got[w].rdev, makedev(0, 0)) << w;
  }
  using X = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(got["opq"].xattrs, (X{{"trusted.overlay.opaque", "y"}}));
  EXPECT_EQ(got["uopq"].xattrs, (X{{"trusted.overlay.opaque", "y"}}));
  EXPECT_EQ(got["plain"].xattrs, X{});
  EXPECT_EQ(got["opq/kept"].content, "k");
}

// Rootless dfrun extracts in a user namespace, where trusted.* xattrs are
// refused: opaque dirs get the user.overlay.* form its overlay reads.
TEST_F(LayerTest, ExtractionInAUserNamespaceMarksOpaqueTheUserWay) {
  std::string upper = new_dir("upper");
  must(::mknod((upper + "/gone").c_str(), S_IFCHR, makedev(0, 0)), "mknod");
  must(::mkdir((upper + "/opq").c_str(), 0755), "mkdir");
  must(::setxattr((upper + "/opq").c_str(), "trusted.overlay.opaque", "y", 1, 0), "setxattr");
  write(upper + "/opq/kept", "k");
  auto info = write_layer(*store_, upper);
  ASSERT_TRUE(info.ok()) << info.error().message;
  std::string blob = store_->blob_path(info->blob.digest);
  std::string dst = new_dir("dst");
  int code = userns::run_in_new_user_namespace([&] {
    auto st = extract_layer(blob, dst);
    if (!st.ok()) std::fprintf(stderr, "%s\n", st.error().message.c_str());
    CHILD_REQUIRE(st.ok());
    return 0;
  });
  ASSERT_EQ(code, 0);
  auto got = scan(dst);
  using X = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(got["opq"].xattrs, (X{{"user.overlay.opaque", "y"}}));
  EXPECT_TRUE(S_ISCHR(got["gone"].mode));
  EXPECT_EQ(got["gone"].rdev, makedev(0, 0));
  EXPECT_EQ(got["opq/kept"].content, "k");
}

TEST_F(LayerTest, DeterministicDigests) {
  auto make = [&](const std::string& name, int64_t mtime) {
    std::string root = new_dir(name);
    make_full_tree(root);
    for (auto& [rel, node] : scan(root)) set_mtime(root + "/" + rel, mtime);
    return root;
  };
  std::string a = make("a", 1700000000), b = make("b", 1700000000), c = make("c", 1800000000);
  auto la = write_layer(*store_, a), la2 = write_layer(*store_, a), lb = write_layer(*store_, b),
       lc = write_layer(*store_, c);
  ASSERT_TRUE(la.ok() && la2.ok() && lb.ok() && lc.ok());
  EXPECT_EQ(la->blob.digest, la2->blob.digest);
  EXPECT_EQ(la->blob.digest, lb->blob.digest);   // other inode numbers, same bytes
  EXPECT_EQ(la->diff_id, lb->diff_id);
  EXPECT_NE(la->diff_id, lc->diff_id);

  WriteOptions sde;
  sde.source_date_epoch = 1500000000;
  auto ca = write_layer(*store_, a, sde), cc = write_layer(*store_, c, sde);
  ASSERT_TRUE(ca.ok() && cc.ok());
  EXPECT_EQ(ca->blob.digest, cc->blob.digest);
  EXPECT_NE(ca->blob.digest, la->blob.digest);
  std::string dst = new_dir("dst");
  ASSERT_TRUE(extract_layer(store_->blob_path(cc->blob.digest), dst).ok());
  for (auto& [rel, node] : scan(dst)) EXPECT_EQ(node.mtime, 1500000000) << rel;

  sde.compression = Compression::Zstd;
  auto za = write_layer(*store_, a, sde), zc = write_layer(*store_, c, sde);
  ASSERT_TRUE(za.ok() && zc.ok());
  EXPECT_EQ(za->blob.digest, zc->blob.digest);
  EXPECT_EQ(za->diff_id, ca->diff_id);   // same tar, other compression

  std::string empty = new_dir("empty");
  auto le = write_layer(*store_, empty);
  ASSERT_TRUE(le.ok());
  EXPECT_TRUE(le->empty);
}

// ---- multi-threaded gzip ----

// Data that compresses a little: pseudo-random bytes with repeated runs.
std::string mixed_data(size_t size, uint32_t seed) {
  std::string out;
  out.reserve(size);
  uint32_t x = seed;
  while (out.size() < size) {
    x = x * 1664525u + 1013904223u;
    if ((x >> 28) < 5) out.append(std::min<size_t>((x >> 8) % 300, size - out.size()), "abcdefgh"[(x >> 4) % 8]);
    else out.push_back(static_cast<char>(x >> 16));
  }
  return out;
}

std::string pgzip(const std::string& in, int threads, size_t block, size_t chunk = 7919) {
  std::string out;
  ParallelGzip gz([&](const void* d, size_t n) {
    out.append(static_cast<const char*>(d), n);
    return ok_status();
  }, threads, block);
  for (size_t off = 0; off < in.size(); off += chunk)
    EXPECT_TRUE(gz.write(in.data() + off, std::min(chunk, in.size() - off)).ok());
  EXPECT_TRUE(gz.finish().ok());
  return out;
}

// Inflates one gzip member with zlib, which checks the CRC-32 and ISIZE;
// `rest` gets the bytes after the member (none for a single member).
std::string gunzip(const std::string& gz, size_t* rest) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[1 << 16];
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  } while (rc == Z_OK);
  EXPECT_EQ(rc, Z_STREAM_END) << (z.msg ? z.msg : "");
  *rest = z.avail_in;
  inflateEnd(&z);
  return out;
}

TEST(ParallelGzipTest, OneValidMemberSameBytesForEveryThreadCount) {
  // Block sizes of 32 and 100 KiB; lengths around block multiples, empty, tiny.
  for (size_t block : {size_t{32 * 1024}, size_t{100 * 1024}}) {
    for (size_t size : {size_t{0}, size_t{1}, block - 1, block, block + 1, 3 * block, 17 * block + 12345}) {
      std::string in = mixed_data(size, static_cast<uint32_t>(size + block));
      std::string one = pgzip(in, 1, block);
      size_t rest = 99;
      EXPECT_EQ(gunzip(one, &rest), in) << size << " / " << block;
      EXPECT_EQ(rest, 0u) << "a single gzip member";
      ASSERT_GE(one.size(), 18u);
      EXPECT_EQ(one.substr(0, 10), std::string("\x1f\x8b\x08\0\0\0\0\0\0\x03", 10));
      for (int threads : {2, 3, 8}) {
        EXPECT_EQ(pgzip(in, threads, block), one) << size << " / " << block << " / " << threads;
        EXPECT_EQ(pgzip(in, threads, block, 1 << 20), one) << "other write sizes";
      }
    }
  }
}

TEST(ParallelGzipTest, CompressesAboutAsWellAsOneStream) {
  std::string in = mixed_data(4 << 20, 7);
  std::string par = pgzip(in, 2, ParallelGzip::kDefaultBlock);
  uLongf n = compressBound(static_cast<uLong>(in.size()));
  std::string single(n, '\0');
  ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(single.data()), &n, reinterpret_cast<const Bytef*>(in.data()),
                      static_cast<uLong>(in.size()), Z_DEFAULT_COMPRESSION), Z_OK);
  // Blocks are primed with the previous block's tail: within 1 % of one stream.
  EXPECT_LT(static_cast<double>(par.size()), static_cast<double>(n) * 1.01) << par.size() << " vs " << n;
}

TEST(ParallelGzipTest, SinkErrorsComeBack) {
  int calls = 0;
  ParallelGzip gz([&](const void*, size_t) -> Status {
    if (++calls > 2) return Error("disk full");
    return ok_status();
  }, 2, 32 * 1024);
  std::string in = mixed_data(1 << 20, 3);
  Status st = gz.write(in.data(), in.size());
  if (st.ok()) st = gz.finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "disk full");
}

TEST(ParallelGzipTest, IncompressibleBlocksAreStoredStillOneMemberSameBytes) {
  // 3 MiB of random bytes around 1 MiB that compresses: the random blocks are
  // stored (at most a few bytes per 64 KiB over their size), the other one
  // deflated; one member, the same bytes for every thread count.
  std::string random = incompressible_bytes(3 << 20);
  std::string in = random.substr(0, 2 << 20) + mixed_data(1 << 20, 5) + random.substr(2 << 20);
  std::string one = pgzip(in, 1, ParallelGzip::kDefaultBlock);
  size_t rest = 99;
  EXPECT_EQ(gunzip(one, &rest), in);
  EXPECT_EQ(rest, 0u);
  for (int threads : {2, 3}) EXPECT_EQ(pgzip(in, threads, ParallelGzip::kDefaultBlock), one) << threads;
  std::string mixed_only = pgzip(mixed_data(1 << 20, 5), 1, ParallelGzip::kDefaultBlock);
  EXPECT_LT(one.size(), random.size() + random.size() / 1000 + mixed_only.size() + 64)
      << "random stored, the rest still compressed";
  EXPECT_GE(one.size(), random.size());
}

TEST(ParallelGzipTest, PoorlyCompressibleBlocksTakeRunsOnlyByDefaultOnly) {
  // Like a tar of small random files: 4 KiB of random bytes, 512 of zeros.
  std::string in;
  uint64_t x = 2463534242ull;
  while (in.size() < (3u << 20)) {
    for (int i = 0; i < 4096; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      in.push_back(static_cast<char>(x >> 24));
    }
    in.append(512, '\0');
  }
  auto gz = [&](int threads, int level) {
    std::string out;
    ParallelGzip g([&](const void* d, size_t n) {
      out.append(static_cast<const char*>(d), n);
      return ok_status();
    }, threads, ParallelGzip::kDefaultBlock, level);
    EXPECT_TRUE(g.write(in.data(), in.size()).ok());
    EXPECT_TRUE(g.finish().ok());
    return out;
  };
  std::string fast = gz(1, -1), six = gz(1, 6);
  size_t rest = 99;
  EXPECT_EQ(gunzip(fast, &rest), in);
  EXPECT_EQ(gunzip(six, &rest), in);
  EXPECT_EQ(gz(2, -1), fast);
  EXPECT_NE(fast, six) << "the default level deflates such blocks with runs only";
  EXPECT_LT(fast.size(), six.size() * 1.05);   // little lost
  EXPECT_LT(fast.size(), in.size() * 0.92);   // the zeros still go
}

TEST_F(LayerTest, GzipLayerOfSeveralBlocksRoundTrips) {
  std::string root = new_dir("big");
  std::string data = mixed_data(3 * ParallelGzip::kDefaultBlock + 4321, 11);
  write(root + "/big.bin", data);
  set_mtime(root + "/big.bin", 1700000000);
  set_mtime(root, 1700000000);
  auto a = write_layer(*store_, root), b = write_layer(*store_, root);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->blob.digest, b->blob.digest);
  auto diff_id = layer_diff_id(store_->blob_path(a->blob.digest));
  ASSERT_TRUE(diff_id.ok()) << diff_id.error().render();
  EXPECT_EQ(*diff_id, a->diff_id);
  std::string dst = new_dir("big-out");
  ASSERT_TRUE(extract_layer(store_->blob_path(a->blob.digest), dst).ok());
  EXPECT_EQ(scan(dst)["big.bin"].content, data);
  // gzip(1) reads it as one member too.
  std::string cmd = "gzip -t < " + store_->blob_path(a->blob.digest);
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST_F(LayerTest, CommitDirAndEnsureSnapshot) {
  auto tmp1 = store_->make_temp_dir("upper");
  ASSERT_TRUE(tmp1.ok());
  std::string upper = tmp1->release();
  make_full_tree(upper);
  auto info = commit_dir(*store_, upper);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_FALSE(path_exists(upper));
  ASSERT_TRUE(store_->has_snapshot(info->diff_id));
  std::string snap = store_->snapshot_path(info->diff_id);
  EXPECT_EQ(snap, store_->root() + "/snapshots/" + std::string(digest_hex(info->diff_id)));
  auto want = scan(snap);

  // The same content again: the snapshot stays, the dir goes.
  auto tmp2 = store_->make_temp_dir("upper");
  ASSERT_TRUE(tmp2.ok());
  std::string upper2 = tmp2->release();
  make_full_tree(upper2);
  auto again = commit_dir(*store_, upper2);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->diff_id, info->diff_id);
  EXPECT_FALSE(path_exists(upper2));

  // A fresh store that only has the blob extracts the same tree.
  auto other = Store::open(path("other"));
  ASSERT_TRUE(other.ok());
  auto bytes = store_->read_blob(info->blob.digest);
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(other->put_blob(*bytes, info->blob.media_type).ok());
  auto st = ensure_snapshot(*other, info->blob, info->diff_id);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto got = scan(other->snapshot_path(info->diff_id));
  EXPECT_EQ(got.size(), want.size());
  for (auto& [name, node] : want) EXPECT_EQ(got[name], node) << name;
  EXPECT_TRUE(ensure_snapshot(*other, info->blob, info->diff_id).ok());
  EXPECT_EQ(scan(other->root() + "/tmp").size(), 0u);
}

// ---- hostile layers ----

struct Entry {
  std::string name;
  char type;             // 'f' file, 'd' dir, 'l' symlink, 'h' hardlink
  std::string payload;   // data or link target
};

std::string build_tar(const std::vector<Entry>& entries) {
  std::string out;
  ArchivePtr a(archive_write_new(), archive_write_free);
  archive_write_set_format_pax_restricted(a.get());
  archive_write_add_filter_gzip(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);   // no zero padding after the gzip stream
  archive_write_open(
      a.get(), &out, nullptr,
      [](struct archive*, void* d, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(d)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const Entry& en : entries) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(), archive_entry_free);
    archive_entry_set_pathname(e.get(), en.name.c_str());
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), 0);
    switch (en.type) {
      case 'f':
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(en.payload.size()));
        break;
      case 'd': archive_entry_set_filetype(e.get(), AE_IFDIR); break;
      case 'l':
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        archive_entry_set_symlink(e.get(), en.payload.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_hardlink(e.get(), en.payload.c_str());
        break;
    }
    archive_write_header(a.get(), e.get());
    if (en.type == 'f') archive_write_data(a.get(), en.payload.data(), en.payload.size());
  }
  archive_write_close(a.get());
  return out;
}

struct Hostile {
  std::string name;
  std::string blob;
  std::string error;   // the message after "extract layer <path>: "
};

TEST_F(LayerTest, HostileLayersAreRefused) {
  // Something outside the destination that an attack would reach.
  std::string outside = new_dir("outside");
  write(outside + "/victim", "intact");
  std::string rel_out = "../../../../../../../.." + outside;   // from the store's tmp dir

  std::string noise(200000, 'x');
  uint32_t seed = 12345;
  for (char& ch : noise) ch = static_cast<char>((seed = seed * 1103515245u + 12345u) >> 24);
  std::string good = build_tar({{"f", 'f', noise}});
  std::string first_component = outside.substr(1, outside.find('/', 1) - 1);

  const Hostile cases[] = {
      {"dotdot", build_tar({{"../evil", 'f', "x"}}),
       "entry \"../evil\": path \"../evil\" escapes the destination (\"..\")"},
      {"deep dotdot", build_tar({{"a/../../evil", 'f', "x"}}),
       "entry \"a/../../evil\": path \"a/../../evil\" escapes the destination (\"..\")"},
      {"symlink parent out", build_tar({{"evil", 'l', outside}, {"evil/victim", 'f', "pwned"}}),
       "entry \"evil/victim\": \"evil\" is a symbolic link; layer entries may not go through one"},
      {"relative symlink parent out", build_tar({{"evil", 'l', rel_out}, {"evil/victim", 'f', "pwned"}}),
       "entry \"evil/victim\": \"evil\" is a symbolic link; layer entries may not go through one"},
      {"nested symlink parent", build_tar({{"d", 'd', ""}, {"d/l", 'l', "/"}, {"d/l/x/y", 'f', "pwned"}}),
       "entry \"d/l/x/y\": \"d/l\" is a symbolic link; layer entries may not go through one"},
      {"hardlink out", build_tar({{"h", 'h', rel_out + "/victim"}}),
       "entry \"h\": hardlink target \"" + rel_out + "/victim\" escapes the destination (\"..\")"},
      {"hardlink absolute", build_tar({{"h", 'h', outside + "/victim"}}),
       "entry \"h\": hardlink target \"" + outside + "/victim\": open directory " + first_component +
           ": No such file or directory"},
      {"hardlink through symlink", build_tar({{"l", 'l', outside}, {"h", 'h', "l/victim"}}),
       "entry \"h\": hardlink target \"l/victim\": \"l\" is a symbolic link; layer entries may not go through one"},
      {"truncated gzip", good.substr(0, good.size() / 2), "truncated gzip input"},
      {"gzip without trailer", good.substr(0, good.size() - 8), "compressed stream is truncated or corrupt"},
      {"garbage", std::string("this is not a layer at all, just some words to fill the header\n", 64) +
                      std::string(2048, 'z'),
       "Unrecognized archive format"},
  };
  for (const Hostile& c : cases) {
    auto blob = store_->put_blob(c.blob, kOciLayerGzip);
    ASSERT_TRUE(blob.ok());
    // The diff_id the layer claims: that of its whole, uncut content.
    std::string uncut = c.name.find("gzip") != std::string::npos ? good : c.blob;
    std::string diff_id = sha256_digest(decompress_bytes(uncut));
    auto st = ensure_snapshot(*store_, *blob, diff_id);
    ASSERT_FALSE(st.ok()) << c.name;
    std::string path = store_->blob_path(blob->digest);
    std::string stage = c.name.find("gzip") != std::string::npos ? "read layer " : "extract layer ";
    EXPECT_EQ(st.error().message, "snapshot " + diff_id + ": " + stage + path + ": " + c.error) << c.name;
    EXPECT_FALSE(store_->has_snapshot(diff_id)) << c.name;
    EXPECT_EQ(tmp_entries(), 0) << c.name;
    EXPECT_EQ(scan(outside).size(), 1u) << c.name;
    EXPECT_EQ(*read_file(outside + "/victim"), "intact") << c.name;
  }
}

TEST_F(LayerTest, AbsolutePathsLandInside) {
  std::string outside = new_dir("outside");
  auto blob = store_->put_blob(build_tar({{outside + "/planted", 'f', "inside"}, {"/link", 'l', "/etc/passwd"}}),
                               kOciLayerGzip);
  ASSERT_TRUE(blob.ok());
  std::string diff_id = sha256_digest(decompress_bytes(*store_->read_blob(blob->digest)));
  auto st = ensure_snapshot(*store_, *blob, diff_id);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_FALSE(path_exists(outside + "/planted"));
  std::string snap = store_->snapshot_path(diff_id);
  EXPECT_EQ(*read_file(snap + outside + "/planted"), "inside");
  auto got = scan(snap);
  EXPECT_EQ(got["link"].content, "/etc/passwd");   // symlinks are kept as written
}

TEST_F(LayerTest, CorruptBlobIsRefusedBeforeExtraction) {
  auto blob = store_->put_blob(build_tar({{"f", 'f', "data"}}), kOciLayerGzip);
  ASSERT_TRUE(blob.ok());
  ASSERT_TRUE(write_file_atomic(store_->blob_path(blob->digest), "tampered").ok());
  std::string diff_id = sha256_digest("t");
  auto st = ensure_snapshot(*store_, *blob, diff_id);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "snapshot " + diff_id + ": layer blob " + blob->digest +
                                    " is corrupt (hashes to " + sha256_digest("tampered") + ")");
  EXPECT_FALSE(store_->has_snapshot(diff_id));
}

// archive_error_string() is null on an archive without an error; the helper
// every layer error goes through must never hand that on.
TEST(ArchiveMessage, FallsBackWhenLibarchiveHasNoMessage) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(), archive_read_free);
  ASSERT_EQ(archive_error_string(a.get()), nullptr);
  EXPECT_EQ(archive_message(a.get()), "unreadable or corrupt archive");
  EXPECT_EQ(archive_message(a.get(), "read error"), "read error");
  archive_set_error(a.get(), EINVAL, "bad header");
  EXPECT_EQ(archive_message(a.get(), "read error"), "bad header");
}

// ---- files from outside the tree (COPY from the build context) ----

TEST_F(LayerTest, ExternalFilesGiveTheSameBytesAsTheTreeAndMustNotChange) {
  std::string data = mixed_data(200000, 9);
  // The tree as COPY made it before: the file inside.
  std::string full = new_dir("full");
  must(::mkdir((full + "/app").c_str(), 0755), "mkdir");
  write(full + "/app/f.txt", data, 0640);
  must(::chmod((full + "/app/f.txt").c_str(), 0640), "chmod");
  must(::chown((full + "/app/f.txt").c_str(), 7, 9), "chown");
  set_mtime(full + "/app/f.txt", 1650000000);
  set_mtime(full + "/app", 1700000000);
  // The same layer from a tree holding only the directory plus the file read from a context.
  std::string dirs = new_dir("dirs");
  must(::mkdir((dirs + "/app").c_str(), 0755), "mkdir");
  set_mtime(dirs + "/app", 1700000000);
  std::string ctx = new_dir("ctx");
  write(ctx + "/f.txt", data, 0600);
  set_mtime(ctx + "/f.txt", 1650000000);
  UniqueFd ctx_fd(::open(ctx.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(ctx_fd);
  struct stat st;
  must(::stat((ctx + "/f.txt").c_str(), &st), "stat");
  ExternalFile f;
  f.name = "app/f.txt";
  f.dir_fd = ctx_fd.get();
  f.rel = "f.txt";
  f.perm = 0640;
  f.uid = 7;
  f.gid = 9;
  f.mtime = 1650000000;
  f.expect = StatKey::of(st);
  f.digest = sha256_digest(data);

  auto want = write_layer(*store_, full);
  auto got = write_layer(*store_, dirs, {}, {f});
  ASSERT_TRUE(want.ok() && got.ok()) << (got.ok() ? "" : got.error().message);
  EXPECT_EQ(got->blob.digest, want->blob.digest);
  EXPECT_EQ(got->diff_id, want->diff_id);

  // Content other than the key's digest: refused.
  ExternalFile wrong = f;
  wrong.digest = sha256_digest("other");
  auto bad = write_layer(*store_, dirs, {}, {wrong});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, ::testing::HasSubstr("f.txt changed while the step ran (its content hashes differently)"));

  // Rewritten since it was hashed (same size, mtime put back: the ctime moved): refused.
  std::string other = data;
  other[100] ^= 1;
  write(ctx + "/f.txt", other, 0600);
  set_mtime(ctx + "/f.txt", 1650000000);
  auto changed = write_layer(*store_, dirs, {}, {f});
  ASSERT_FALSE(changed.ok());
  EXPECT_THAT(changed.error().message, ::testing::HasSubstr("f.txt changed while the step ran"));
  write(ctx + "/f.txt", data + "more", 0600);
  auto grown = write_layer(*store_, dirs, {}, {f});
  ASSERT_FALSE(grown.ok());
  EXPECT_THAT(grown.error().message, ::testing::HasSubstr("size 200000 -> 200004"));
}

// ---- compression options ----

TEST(CompressionOption, ParsesTypesAndLevels) {
  auto z = parse_compression("zstd,level=19");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->compression, Compression::Zstd);
  EXPECT_EQ(z->level, 19);
  auto g = parse_compression("gzip");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->compression, Compression::Gzip);
  EXPECT_EQ(g->level, 0);
  WriteOptions base;
  base.source_date_epoch = 5;
  auto u = parse_compression("uncompressed", base);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->compression, Compression::None);
  EXPECT_EQ(u->source_date_epoch, 5);
  for (const char* bad : {"zstd,level=20", "gzip,level=0", "gzip,level=10", "brotli", "zstd,lvl=3",
                          "uncompressed,level=1", "zstd,level=", "gzip,level=x"}) {
    auto r = parse_compression(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.error().message, ::testing::HasSubstr("invalid compression")) << bad;
  }
}

TEST_F(LayerTest, ZstdLevelsAreZstdLayersOfTheSameTar) {
  std::string root = new_dir("z");
  write(root + "/data", mixed_data(3 << 20, 21));
  set_mtime(root + "/data", 1700000000);
  set_mtime(root, 1700000000);
  WriteOptions fast, best;
  fast.compression = best.compression = Compression::Zstd;
  fast.level = 1;
  best.level = 19;
  auto a = write_layer(*store_, root, fast), a2 = write_layer(*store_, root, fast),
       b = write_layer(*store_, root, best);
  ASSERT_TRUE(a.ok() && a2.ok() && b.ok());
  EXPECT_EQ(a->blob.media_type, kOciLayerZstd);
  EXPECT_EQ(a->blob.digest, a2->blob.digest);   // multi-threaded, still the same bytes
  EXPECT_NE(a->blob.digest, b->blob.digest);
  EXPECT_LT(b->blob.size, a->blob.size);
  EXPECT_EQ(a->diff_id, b->diff_id);
  for (const auto& l : {*a, *b}) {
    auto diff_id = layer_diff_id(store_->blob_path(l.blob.digest));
    ASSERT_TRUE(diff_id.ok());
    EXPECT_EQ(*diff_id, l.diff_id);
  }
  // zstd(1) reads the multi-threaded frames.
  std::string cmd = "zstd -q -t < " + store_->blob_path(b->blob.digest);
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

}  // namespace
}  // namespace dfgen::layer
