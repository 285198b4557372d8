#include "core/store.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace dfgen {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create(::testing::TempDir(), "store");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    dir_.emplace(std::move(*dir));
    auto s = Store::open(path_join(dir_->path(), "store"));
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_.emplace(std::move(*s));
  }
  int tmp_entries() const {
    DIR* d = ::opendir(path_join(store_->root(), "tmp").c_str());
    int n = 0;
    while (dirent* e = ::readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
    ::closedir(d);
    return n;
  }
  Descriptor put_json(const Json& j, const char* media_type) {
    auto d = store_->put_blob(j.dump(), media_type);
    EXPECT_TRUE(d.ok());
    return *d;
  }
  std::optional<TempDir> dir_;
  std::optional<Store> store_;
};

TEST_F(StoreTest, LayoutIsAnOciImageLayout) {
  for (const char* sub : {"blobs/sha256", "snapshots", "cache", "tmp", "locks"})
    EXPECT_TRUE(is_directory(path_join(store_->root(), sub))) << sub;
  auto layout = read_json_file(path_join(store_->root(), "oci-layout"));
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ((*layout)["imageLayoutVersion"], "1.0.0");
  auto index = read_json_file(path_join(store_->root(), "index.json"));
  ASSERT_TRUE(index.ok());
  EXPECT_EQ((*index)["schemaVersion"], 2);
  EXPECT_TRUE((*index)["manifests"].is_array());
  // Opening again keeps what is there.
  ASSERT_TRUE(store_->set_tag("docker.io/library/a:latest", {kOciManifest, sha256_digest("m"), 1}).ok());
  ASSERT_TRUE(Store::open(store_->root()).ok());
  auto tags = store_->list_tags();
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(tags->size(), 1u);
}

TEST_F(StoreTest, PutBlobIsIdempotentAndVerifiedOnRead) {
  auto a = store_->put_blob("hello", kOciConfig);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->digest, sha256_digest("hello"));
  EXPECT_EQ(a->size, 5);
  EXPECT_EQ(a->media_type, kOciConfig);
  auto again = store_->put_blob("hello", kOciConfig);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->digest, a->digest);
  EXPECT_TRUE(store_->has_blob(a->digest));
  EXPECT_EQ(store_->blob_path(a->digest),
            store_->root() + "/blobs/sha256/" + std::string(digest_hex(a->digest)));
  auto back = store_->read_blob(a->digest);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "hello");

  // Corrupt it on disk: the read must fail and say so.
  ASSERT_TRUE(write_file_atomic(store_->blob_path(a->digest), "hellO").ok());
  auto bad = store_->read_blob(a->digest);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "read blob " + a->digest + ": content is corrupt (hashes to " +
                                     sha256_digest("hellO") + ")");
  EXPECT_FALSE(store_->read_blob("sha256:nope").ok());
  auto missing = store_->read_blob(sha256_digest("absent"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("No such file"), std::string::npos);
  EXPECT_EQ(tmp_entries(), 0);
}

TEST_F(StoreTest, BlobWriterStreamsAndCleansUp) {
  {
    auto w = store_->blob_writer();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->write("ab", 2).ok());
    ASSERT_TRUE(w->write("c", 1).ok());
    EXPECT_EQ(w->size(), 3);
    auto d = w->commit(kOciLayerTar, sha256_digest("abc"));
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_EQ(d->digest, sha256_digest("abc"));
    EXPECT_EQ(d->size, 3);
    EXPECT_FALSE(w->write("x", 1).ok());
  }
  {
    auto w = store_->blob_writer();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->write("xyz", 3).ok());
    auto d = w->commit(kOciLayerTar, sha256_digest("abc"));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.error().message, "blob digest mismatch: expected " + sha256_digest("abc") +
                                     ", got " + sha256_digest("xyz"));
    EXPECT_FALSE(store_->has_blob(sha256_digest("xyz")));
  }
  {
    auto w = store_->blob_writer();
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->write("dropped", 7).ok());
    EXPECT_EQ(tmp_entries(), 1);
  }
  EXPECT_EQ(tmp_entries(), 0);
  EXPECT_FALSE(store_->has_blob(sha256_digest("dropped")));
}

TEST_F(StoreTest, TagsSetReplaceList) {
  Descriptor m1{kOciManifest, sha256_digest("m1"), 10};
  Descriptor m2{kOciManifest, sha256_digest("m2"), 20};
  auto none = store_->resolve_tag("docker.io/library/x:latest");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(store_->set_tag("docker.io/library/x:latest", m1).ok());
  ASSERT_TRUE(store_->set_tag("docker.io/library/b:1", m1).ok());
  ASSERT_TRUE(store_->set_tag("docker.io/library/x:latest", m2).ok());
  auto got = store_->resolve_tag("docker.io/library/x:latest");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->digest, m2.digest);
  EXPECT_EQ((*got)->size, 20);
  auto tags = store_->list_tags();
  ASSERT_TRUE(tags.ok());
  ASSERT_EQ(tags->size(), 2u);
  EXPECT_EQ((*tags)[0].first, "docker.io/library/b:1");
  EXPECT_EQ((*tags)[1].first, "docker.io/library/x:latest");
  auto index = read_json_file(path_join(store_->root(), "index.json"));
  ASSERT_TRUE(index.ok());
  EXPECT_EQ((*index)["manifests"][1]["annotations"]["org.opencontainers.image.ref.name"],
            "docker.io/library/x:latest");
  EXPECT_EQ((*index)["manifests"][1]["digest"], m2.digest);
}

TEST_F(StoreTest, CacheRoundTrip) {
  std::string key = sha256_digest("step");
  auto none = store_->get_cache(key);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  Json result{{"version", 1}, {"key", key}};
  ASSERT_TRUE(store_->put_cache(key, result).ok());
  auto got = store_->get_cache(key);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, result);
  EXPECT_FALSE(store_->put_cache("bad", result).ok());
}

TEST(StoreRoot, DefaultRootFollowsEnvironment) {
  ::setenv("DFGEN_STORE", "/s/explicit", 1);
  EXPECT_EQ(Store::default_root(), "/s/explicit");
  ::unsetenv("DFGEN_STORE");
  ::setenv("XDG_DATA_HOME", "/xdg", 1);
  EXPECT_EQ(Store::default_root(), "/xdg/dfgen");
  ::unsetenv("XDG_DATA_HOME");
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(Store::default_root(), "/home/u/.local/share/dfgen");
}

// Two processes write the same blob and set different tags at the same time.
TEST_F(StoreTest, ConcurrentProcessesKeepIndexValid) {
  std::string big(1 << 20, 'z');
  constexpr int kRounds = 25;
  pid_t pids[2];
  for (int p = 0; p < 2; ++p) {
    pids[p] = ::fork();
    ASSERT_GE(pids[p], 0);
    if (pids[p] == 0) {
      auto s = Store::open(store_->root());
      if (!s.ok()) ::_exit(2);
      for (int i = 0; i < kRounds; ++i) {
        auto d = s->put_blob(big, kOciLayerTar);
        if (!d.ok()) ::_exit(3);
        if (!s->set_tag(fmt::format("docker.io/library/p{}:t{}", p, i), *d).ok()) ::_exit(4);
        if (!s->read_blob(d->digest).ok()) ::_exit(5);
      }
      ::_exit(0);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  auto tags = store_->list_tags();
  ASSERT_TRUE(tags.ok()) << tags.error().message;
  EXPECT_EQ(tags->size(), 2u * kRounds);
  for (int p = 0; p < 2; ++p)
    for (int i = 0; i < kRounds; ++i) {
      auto t = store_->resolve_tag(fmt::format("docker.io/library/p{}:t{}", p, i));
      ASSERT_TRUE(t.ok());
      EXPECT_TRUE(t->has_value()) << p << " " << i;
    }
  EXPECT_TRUE(store_->read_blob(sha256_digest(big)).ok());
  EXPECT_EQ(tmp_entries(), 0);
}

TEST_F(StoreTest, LoadImageFollowsIndexToLinuxAmd64) {
  auto config = put_json({{"architecture", "amd64"}, {"os", "linux"},
                          {"rootfs", {{"type", "layers"}, {"diff_ids", {sha256_digest("t1")}}}}},
                         kOciConfig);
  Descriptor layer{kOciLayerGzip, sha256_digest("l1"), 7};
  auto manifest = put_json({{"schemaVersion", 2}, {"mediaType", kOciManifest},
                            {"config", config.to_json()}, {"layers", {layer.to_json()}}},
                           kOciManifest);
  Json arm = Descriptor{kOciManifest, sha256_digest("arm"), 3}.to_json();
  arm["platform"] = {{"os", "linux"}, {"architecture", "arm64"}};
  Json amd = manifest.to_json();
  amd["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
  auto index = put_json({{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", {arm, amd}}},
                        kOciIndex);

  auto rec = load_image(*store_, index);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->manifest.digest, manifest.digest);
  EXPECT_EQ(rec->manifest.media_type, kOciManifest);
  EXPECT_EQ(rec->config_digest, config.digest);
  EXPECT_EQ(rec->config["os"], "linux");
  ASSERT_EQ(rec->layers.size(), 1u);
  EXPECT_EQ(rec->layers[0].digest, layer.digest);
  EXPECT_EQ(rec->layers[0].media_type, kOciLayerGzip);
  EXPECT_EQ(rec->diff_ids, std::vector<std::string>{sha256_digest("t1")});

  auto only_arm = put_json({{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", {arm}}},
                           kOciIndex);
  auto none = load_image(*store_, only_arm);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message,
            "load image " + only_arm.digest + ": no linux/amd64 image in the index (it has: linux/arm64)");
}

TEST_F(StoreTest, LoadImageDockerSchema2AndErrors) {
  auto config = put_json({{"rootfs", {{"type", "layers"}, {"diff_ids", {sha256_digest("a"), sha256_digest("b")}}}}},
                         kDockerConfig);
  Descriptor l1{kDockerLayerGzip, sha256_digest("x1"), 1}, l2{kDockerLayerGzip, sha256_digest("x2"), 2};
  Json cfg = config.to_json();
  cfg["mediaType"] = kDockerConfig;
  auto manifest = put_json({{"schemaVersion", 2}, {"mediaType", kDockerManifest}, {"config", cfg},
                            {"layers", {l1.to_json(), l2.to_json()}}},
                           kDockerManifest);
  Json entry = manifest.to_json();
  entry["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
  auto list = put_json({{"schemaVersion", 2}, {"mediaType", kDockerManifestList}, {"manifests", {entry}}},
                       kDockerManifestList);
  auto rec = load_image(*store_, list);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->manifest.media_type, kDockerManifest);
  EXPECT_EQ(rec->layers.size(), 2u);
  EXPECT_EQ(rec->diff_ids.size(), 2u);

  auto short_manifest = put_json({{"schemaVersion", 2}, {"mediaType", kDockerManifest}, {"config", cfg},
                                  {"layers", {l1.to_json()}}},
                                 kDockerManifest);
  auto mismatch = load_image(*store_, short_manifest);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().message, "load image " + short_manifest.digest +
                                          ": manifest lists 1 layers but config has 2 diff_ids");

  Descriptor absent{kOciManifest, sha256_digest("absent"), 1};
  auto missing = load_image(*store_, absent);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message.rfind("load image " + absent.digest + ": read blob", 0), 0u);
}

}  // namespace
}  // namespace dfgen
