#include "core/remote_cache.h"

#include <gtest/gtest.h>

#include <sys/time.h>

#include <ctime>
#include <filesystem>

#include "core/fs.h"
#include "core/sha256.h"

namespace dfgen::remote_cache {
namespace {

struct SpecCase {
  const char* text;
  bool to;
  const char* want;   // canonical JSON, or the error message
};

const SpecCase kSpecs[] = {
    {"type=registry,ref=127.0.0.1:5000/app:cache", true,
     R"({"mode":"min","ref":"127.0.0.1:5000/app:cache","type":"registry"})"},
    {"type=registry,ref=app:cache,mode=max", true, R"({"mode":"max","ref":"docker.io/library/app:cache","type":"registry"})"},
    {"type=registry,ref=app", false, R"({"ref":"docker.io/library/app:latest","type":"registry"})"},
    {"type=local,dest=out", true, R"({"dir":"/cwd/out","mode":"min","type":"local"})"},
    {"type=local,src=/abs", false, R"({"dir":"/abs","type":"local"})"},
    {"type=registry", true, R"(invalid --cache-to "type=registry": ref= is required)"},
    {"type=local,dest=x", false, R"(invalid --cache-from "type=local,dest=x": src= is required)"},
    {"type=local,dest=x,mode=all", true, R"(invalid --cache-to "type=local,dest=x,mode=all": mode must be min or max)"},
    {"type=local,dest=out,cache-mounts=gobuild;ccache;gobuild", true,
     R"({"dir":"/cwd/out","mode":"min","mounts":["ccache","gobuild"],"type":"local"})"},
    {"type=local,dest=out,cache-mounts=b,cache-mounts=a;c", true,
     R"({"dir":"/cwd/out","mode":"min","mounts":["a","b","c"],"type":"local"})"},
    {"type=local,dest=x,cache-mounts=a;;b", true,
     R"(invalid --cache-to "type=local,dest=x,cache-mounts=a;;b": cache-mounts= takes ids separated by ';')"},
    {"type=local,src=x,cache-mounts=a", false,
     R"(invalid --cache-from "type=local,src=x,cache-mounts=a": cache-mounts= belongs to --cache-to)"},
    {"type=gha", false, R"(invalid --cache-from "type=gha": type must be registry or local)"},
    {"type=local,dest", true, R"(invalid --cache-to "type=local,dest": expected key=value, got "dest")"},
    {"type=registry,ref=app@sha256:0000000000000000000000000000000000000000000000000000000000000000", true,
     R"(invalid --cache-to "type=registry,ref=app@sha256:0000000000000000000000000000000000000000000000000000000000000000": the ref needs a tag (and no digest))"},
};

TEST(RemoteCacheSpec, Table) {
  for (const auto& c : kSpecs) {
    auto got = parse_spec(c.text, c.to, "/cwd");
    std::string text = got.ok() ? canonical_json(*got) : got.error().message;
    EXPECT_EQ(text, c.want) << c.text;
  }
}

class RemoteCacheLocal : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create(::testing::TempDir(), "rcache");
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    dir_.emplace(std::move(*dir));
    auto a = Store::open(path_join(dir_->path(), "a"));
    auto b = Store::open(path_join(dir_->path(), "b"));
    ASSERT_TRUE(a.ok() && b.ok());
    a_.emplace(std::move(*a));
    b_.emplace(std::move(*b));
  }
  // A step with a layer in store A: key -> {"layer": desc + diff_id}.
  std::string add_step(const std::string& content) {
    auto d = a_->put_blob(content, kOciLayerTar);
    EXPECT_TRUE(d.ok());
    Json layer = d->to_json();
    layer["diff_id"] = d->digest;   // an uncompressed layer: diff_id = digest
    std::string key = sha256_digest("key of " + content);
    EXPECT_TRUE(a_->put_cache(key, Json{{"version", 1}, {"layer", layer}}).ok());
    return key;
  }
  Json local(const std::string& name) { return Json{{"type", "local"}, {"dir", path_join(dir_->path(), name)}}; }
  std::optional<TempDir> dir_;
  std::optional<Store> a_, b_;
};

TEST_F(RemoteCacheLocal, ExportedLayoutImportsLazilyIntoAnotherStore) {
  std::string k1 = add_step("layer one"), k2 = add_step("layer two");
  std::string empty_key = sha256_digest("workdir");
  ASSERT_TRUE(a_->put_cache(empty_key, Json{{"version", 1}, {"layer", nullptr}}).ok());
  std::string unknown = sha256_digest("never built");
  auto entries = entries_of(*a_, {k1, k2, empty_key, unknown, k1});
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries->size(), 3u);   // unknown left out, k1 once

  auto exported = export_cache(*a_, *entries, local("layout"));
  ASSERT_TRUE(exported.ok()) << exported.error().message;
  // The same entries give the same manifest.
  auto again = export_cache(*a_, *entries, local("layout2"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->digest, exported->digest);

  std::vector<Json> sources{local("layout")};
  auto hit = import_entry(*b_, sources, k2);
  ASSERT_TRUE(hit.ok()) << hit.error().message;
  ASSERT_TRUE(hit->has_value());
  std::string l2 = (**hit)["layer"]["digest"];
  EXPECT_TRUE(b_->has_blob(l2));
  // Lazy: the other step's layer was not fetched.
  std::string l1 = (*a_->get_cache(k1))->at("layer")["digest"];
  EXPECT_FALSE(b_->has_blob(l1));

  auto none = import_entry(*b_, sources, empty_key);
  ASSERT_TRUE(none.ok() && none->has_value());
  EXPECT_TRUE((**none)["layer"].is_null());
  auto miss = import_entry(*b_, sources, unknown);
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());
}

TEST_F(RemoteCacheLocal, CacheMountSnapshotsTravelBesideTheSteps) {
  std::string k = add_step("a step layer");
  auto blob = a_->put_blob("a cache mount tar", kOciLayerTar);
  ASSERT_TRUE(blob.ok());
  Json layer = blob->to_json();
  layer["diff_id"] = blob->digest;
  auto entries = entries_of(*a_, {k});
  ASSERT_TRUE(entries.ok());
  auto exported = export_cache(*a_, *entries, local("layout"), {{"gobuild", Json{{"layer", layer}}}});
  ASSERT_TRUE(exported.ok()) << exported.error().message;
  auto manifest = a_->read_json_blob(exported->digest);
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ((*manifest)["layers"].size(), 2u);   // the step's layer and the mount's

  std::vector<Json> sources{local("layout")};
  auto got = import_mount(*b_, sources, "gobuild");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, layer);
  EXPECT_TRUE(b_->has_blob(blob->digest));
  // Ids and step keys are separate name spaces; an id nobody exported is a miss.
  auto as_step = import_entry(*b_, sources, "gobuild");
  ASSERT_TRUE(as_step.ok());
  EXPECT_FALSE(as_step->has_value());
  auto other = import_mount(*b_, sources, "ccache");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  // A cache without mounts (as older dfruns wrote) has none.
  ASSERT_TRUE(export_cache(*a_, *entries, local("plain")).ok());
  auto plain = import_mount(*b_, {local("plain")}, "gobuild");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->has_value());
}

TEST_F(RemoteCacheLocal, TamperedLayerIsRefused) {
  std::string k = add_step("good bytes");
  auto entries = entries_of(*a_, {k});
  ASSERT_TRUE(entries.ok());
  ASSERT_TRUE(export_cache(*a_, *entries, local("layout")).ok());
  std::string digest = (*a_->get_cache(k))->at("layer")["digest"];
  std::string blob = path_join(dir_->path(), "layout/blobs/sha256/" + std::string(digest_hex(digest)));
  ASSERT_TRUE(write_file_atomic(blob, "evil bytes").ok());
  auto got = import_entry(*b_, {local("layout")}, k);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find(digest), std::string::npos) << got.error().message;
  EXPECT_FALSE(b_->has_blob(digest));
}

TEST_F(RemoteCacheLocal, MissingLayoutIsAnError) {
  auto got = import_entry(*b_, {local("nowhere")}, sha256_digest("x"));
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find("nowhere/index.json"), std::string::npos) << got.error().message;
}

TEST_F(RemoteCacheLocal, AnUnreadableSourceDoesNotHideTheNextOne) {
  std::string k = add_step("layer of main's cache");
  auto entries = entries_of(*a_, {k});
  ASSERT_TRUE(entries.ok());
  ASSERT_TRUE(export_cache(*a_, *entries, local("main")).ok());
  // The branch's cache was never written: main's still answers.
  auto got = import_entry(*b_, {local("branch"), local("main")}, k);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_TRUE(got->has_value());
  // No source has the key: the unreadable one is what is reported.
  auto miss = import_entry(*b_, {local("branch"), local("main")}, sha256_digest("never built"));
  ASSERT_FALSE(miss.ok());
  EXPECT_NE(miss.error().message.find("branch/index.json"), std::string::npos) << miss.error().message;
}

// A registry that refuses connections costs the client's retries (~2 s): the
// next steps of the build are told at once, until the marker is a minute old.
TEST_F(RemoteCacheLocal, ASlowlyFailingRegistryIsRememberedForAMinute) {
  ::setenv("DFGEN_INSECURE_REGISTRIES", "127.0.0.1:1", 1);
  std::vector<Json> sources{Json{{"type", "registry"}, {"ref", "127.0.0.1:1/nobody/cache:main"}}};
  std::string key = sha256_digest("any step");
  auto first = import_entry(*b_, sources, key);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().message.find("remembered"), std::string::npos) << first.error().message;
  auto second = import_entry(*b_, sources, key);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("remembered from an earlier step"), std::string::npos)
      << second.error().message;
  EXPECT_NE(second.error().message.find("127.0.0.1:1"), std::string::npos) << second.error().message;
  // A marker older than a minute is not taken: the registry is asked again.
  std::string markers = path_join(b_->root(), "cache/unreachable");
  int aged = 0;
  for (const auto& e : std::filesystem::directory_iterator(markers)) {
    struct timeval old[2] = {{::time(nullptr) - 61, 0}, {::time(nullptr) - 61, 0}};
    ASSERT_EQ(::utimes(e.path().c_str(), old), 0);
    ++aged;
  }
  ASSERT_EQ(aged, 1);
  auto third = import_entry(*b_, sources, key);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().message.find("remembered"), std::string::npos) << third.error().message;
  ::unsetenv("DFGEN_INSECURE_REGISTRIES");
}

}  // namespace
}  // namespace dfgen::remote_cache
