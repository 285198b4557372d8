#include "core/statcache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/fs.h"
#include "core/sha256.h"

namespace dfgen {
namespace {

int64_t now_ns() {
  struct timespec t;
  ::clock_gettime(CLOCK_REALTIME, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

// A clock an hour ahead: every file in the test looks long settled.
int64_t later_ns() { return now_ns() + int64_t{3600} * 1'000'000'000; }

struct Fixture : ::testing::Test {
  TempDir dir = std::move(TempDir::create("/tmp", "statcache").value());
  std::string root = path_join(dir.path(), "ctx");
  std::string cache_dir = path_join(dir.path(), "store/cache/stat");
  int reads = 0;

  void SetUp() override { ASSERT_TRUE(make_dirs(root).ok()); }

  StatCache::Reader counting_reader() {
    return [this](const std::string& path) {
      ++reads;
      return sha256_file(path);
    };
  }
  StatCache open(StatCache::Clock clock = later_ns) {
    auto c = StatCache::open(cache_dir, root, counting_reader(), clock);
    EXPECT_TRUE(c.ok()) << c.error().render();
    return std::move(c).value();
  }
  void write(const std::string& rel, const std::string& data) {
    ASSERT_TRUE(write_file_atomic(path_join(root, rel), data).ok());
  }
  struct stat lstat_of(const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::lstat(path_join(root, rel).c_str(), &st), 0);
    return st;
  }
  std::string digest(StatCache& c, const std::string& rel) {
    auto d = c.digest(rel, lstat_of(rel));
    EXPECT_TRUE(d.ok()) << d.error().render();
    return d.ok() ? *d : "";
  }
};

TEST_F(Fixture, UnchangedFileIsReadOnceAndRememberedAcrossProcesses) {
  write("a.txt", "alpha\n");
  StatCache first = open();
  EXPECT_EQ(digest(first, "a.txt"), sha256_digest("alpha\n"));
  EXPECT_EQ(digest(first, "a.txt"), sha256_digest("alpha\n"));
  EXPECT_EQ(reads, 1);
  ASSERT_TRUE(first.save().ok());

  StatCache second = open();
  EXPECT_EQ(digest(second, "a.txt"), sha256_digest("alpha\n"));
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(second.reads(), 0);
}

TEST_F(Fixture, SameSizeAndRestoredMtimeButNewCtimeIsReadAgain) {
  write("a.txt", "alpha\n");
  struct stat before = lstat_of("a.txt");
  StatCache first = open();
  EXPECT_EQ(digest(first, "a.txt"), sha256_digest("alpha\n"));
  ASSERT_TRUE(first.save().ok());

  // Wait until the kernel's coarse clock has moved past the file's ctime, so
  // the rewrite below is stamped with a different ctime.
  for (int i = 0; i < 2000; ++i) {
    struct timespec t;
    ::clock_gettime(CLOCK_REALTIME_COARSE, &t);
    if (t.tv_sec > before.st_ctim.tv_sec ||
        (t.tv_sec == before.st_ctim.tv_sec && t.tv_nsec > before.st_ctim.tv_nsec))
      break;
    ::usleep(1000);
  }
  std::string path = path_join(root, "a.txt");
  {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::write(fd.get(), "omega\n", 6), 6);
  }
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
  struct stat after = lstat_of("a.txt");
  ASSERT_EQ(after.st_size, before.st_size);
  ASSERT_EQ(after.st_ino, before.st_ino);
  ASSERT_EQ(StatKey::of(after).mtime_ns, StatKey::of(before).mtime_ns);
  ASSERT_NE(StatKey::of(after).ctime_ns, StatKey::of(before).ctime_ns);

  StatCache second = open();
  EXPECT_EQ(digest(second, "a.txt"), sha256_digest("omega\n"));
  EXPECT_EQ(second.reads(), 1);
}

TEST_F(Fixture, RacyFileIsReadEveryTimeAndNotPersisted) {
  write("fresh.txt", "just written\n");
  StatCache c = open(now_ns);   // the real clock: the file is younger than the racy window
  EXPECT_EQ(digest(c, "fresh.txt"), sha256_digest("just written\n"));
  EXPECT_EQ(digest(c, "fresh.txt"), sha256_digest("just written\n"));
  EXPECT_EQ(reads, 2);
  ASSERT_TRUE(c.save().ok());
  EXPECT_FALSE(path_exists(c.file()));
}

TEST_F(Fixture, FileChangedWhileReadIsNotRemembered) {
  write("a.txt", "alpha\n");
  struct stat st = lstat_of("a.txt");
  auto reader = [&](const std::string& path) -> Result<std::string> {
    ++reads;
    auto d = sha256_file(path);
    EXPECT_TRUE(write_file_atomic(path, "changed while read\n").ok());
    return d;
  };
  auto c = StatCache::open(cache_dir, root, reader, later_ns);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->digest("a.txt", st).ok());
  ASSERT_TRUE(c->digest("a.txt", st).ok());
  EXPECT_EQ(reads, 2);
}

TEST_F(Fixture, ParallelSavesMerge) {
  write("a.txt", "alpha\n");
  write("b.txt", "beta\n");
  StatCache one = open();
  StatCache two = open();
  digest(one, "a.txt");
  digest(two, "b.txt");
  ASSERT_TRUE(one.save().ok());
  ASSERT_TRUE(two.save().ok());
  reads = 0;
  StatCache three = open();
  EXPECT_EQ(digest(three, "a.txt"), sha256_digest("alpha\n"));
  EXPECT_EQ(digest(three, "b.txt"), sha256_digest("beta\n"));
  EXPECT_EQ(reads, 0);
}

TEST_F(Fixture, CorruptCacheFileReadsAsEmptyAndIsRewritten) {
  write("a.txt", "alpha\n");
  StatCache c = open();
  ASSERT_TRUE(make_dirs(cache_dir).ok());
  ASSERT_TRUE(write_file_atomic(c.file(), "{not json").ok());
  StatCache broken = open();
  EXPECT_EQ(digest(broken, "a.txt"), sha256_digest("alpha\n"));
  EXPECT_EQ(reads, 1);
  ASSERT_TRUE(broken.save().ok());
  StatCache fixed = open();
  digest(fixed, "a.txt");
  EXPECT_EQ(reads, 1);
}

TEST_F(Fixture, TruncatedOrPaddedCacheFileReadsAsEmpty) {
  write("a.txt", "alpha\n");
  write("b.txt", "beta\n");
  StatCache c = open();
  digest(c, "a.txt");
  digest(c, "b.txt");
  ASSERT_TRUE(c.save().ok());
  auto whole = read_file(c.file());
  ASSERT_TRUE(whole.ok());
  for (const std::string& bad : {whole->substr(0, whole->size() - 1), whole->substr(0, whole->size() / 2),
                                 *whole + "x"}) {
    ASSERT_TRUE(write_file_atomic(c.file(), bad).ok());
    reads = 0;
    StatCache again = open();
    EXPECT_EQ(digest(again, "a.txt"), sha256_digest("alpha\n"));
    EXPECT_EQ(digest(again, "b.txt"), sha256_digest("beta\n"));
    EXPECT_EQ(reads, 2) << bad.size() << " of " << whole->size() << " bytes";
  }
  ASSERT_TRUE(write_file_atomic(c.file(), *whole).ok());
  reads = 0;
  StatCache intact = open();
  digest(intact, "a.txt");
  digest(intact, "b.txt");
  EXPECT_EQ(reads, 0);
}

TEST_F(Fixture, OtherContextsHaveTheirOwnFile) {
  auto a = StatCache::open(cache_dir, "/ctx/a");
  auto b = StatCache::open(cache_dir, "/ctx/b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->file(), b->file());
  EXPECT_EQ(dirname_of(a->file()), cache_dir);
  EXPECT_EQ(stat_cache_dir("/s"), "/s/cache/stat");
}

}  // namespace
}  // namespace dfgen
