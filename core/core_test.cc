#include <sys/stat.h>

#include <gtest/gtest.h>

#include "core/fs.h"
#include "core/json.h"
#include "core/result.h"
#include "core/sha256.h"

namespace dfgen {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.hex(), sha256_hex("abc"));
}

TEST(Sha256, DigestValidation) {
  EXPECT_TRUE(is_sha256_digest(sha256_digest("x")));
  EXPECT_FALSE(is_sha256_digest("sha256:abc"));
  EXPECT_FALSE(is_sha256_digest("sha512:" + sha256_hex("x")));
  EXPECT_FALSE(is_sha256_digest("sha256:" + std::string(64, 'G')));
}

TEST(ErrorRender, LocationLineCaretHint) {
  SourceRange r{"Dockerfile", {4, 6}, {4, 10}, "COPY <EOF /src/main.go"};
  Error e("unknown thing", r, "use <<EOF");
  EXPECT_EQ(e.render(),
            "Dockerfile:4:6: unknown thing\n"
            "  COPY <EOF /src/main.go\n"
            "       ^^^^\n"
            "hint: use <<EOF");
}

TEST(Result, TryPropagates) {
  auto fails = []() -> Result<int> { return Error("boom"); };
  auto uses = [&]() -> Result<int> {
    DFGEN_TRY(int v, fails());
    return v + 1;
  };
  auto r = uses();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "boom");
}

TEST(Fs, AtomicWriteAndIfChanged) {
  auto dir = TempDir::create(::testing::TempDir(), "fs");
  ASSERT_TRUE(dir.ok());
  std::string p = path_join(dir->path(), "f");
  ASSERT_TRUE(write_file_atomic(p, "one").ok());
  EXPECT_EQ(*read_file(p), "one");
  auto w = write_file_if_changed(p, "one");
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(*w);
  w = write_file_if_changed(p, "two");
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(*w);
  EXPECT_EQ(*read_file(p), "two");
}

TEST(Fs, PlainWriteTruncatesAndSetsTheMode) {
  auto dir = TempDir::create(::testing::TempDir(), "fs");
  ASSERT_TRUE(dir.ok());
  std::string p = path_join(dir->path(), "f");
  ASSERT_TRUE(write_file(p, "a longer first text").ok());
  ASSERT_TRUE(write_file(p, "short", 0600).ok());
  EXPECT_EQ(*read_file(p), "short");
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_FALSE(write_file(path_join(dir->path(), "no/such/dir/f"), "x").ok());
}

TEST(Json, CanonicalSortsKeys) {
  auto j = parse_json(R"({"b":1,"a":[true,null]})", "test");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(canonical_json(*j), R"({"a":[true,null],"b":1})");
  EXPECT_FALSE(parse_json("{", "test").ok());
}

}  // namespace
}  // namespace dfgen
