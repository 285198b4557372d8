#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <gtest/gtest.h>

#include "core/reference.h"
#include "runner/image/image.h"
#include "runner/image/source.h"
#include "runner/image/test_util.h"

namespace dfgen::image {
namespace {

using testing::run_command;
using testing::StoreTest;

struct TarEntry {
  std::string name;
  std::string data;
  int64_t mtime = -1;
  int64_t uid = -1;
};

std::vector<TarEntry> read_tar(const std::string& path) {
  std::vector<TarEntry> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 1 << 16), ARCHIVE_OK) << path;
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    TarEntry t{archive_entry_pathname(e), "", archive_entry_mtime(e), archive_entry_uid(e)};
    t.data.resize(static_cast<size_t>(archive_entry_size(e)));
    if (!t.data.empty()) archive_read_data(a, t.data.data(), t.data.size());
    out.push_back(std::move(t));
  }
  archive_read_free(a);
  return out;
}

std::string file_text(const std::string& path) {
  auto r = read_file(path);
  return r.ok() ? *r : "<missing " + path + ">";
}

class ImageTest : public StoreTest {
 protected:
  // Two layers and a history with one metadata-only step.
  Descriptor make_image(int64_t created = 1700000000) {
    l1_ = make_layer({{"hello.txt", "hello\n"}, {"etc/app.conf", "a=1\n"}});
    l2_ = make_layer({{"etc/app.conf", "a=2\n"}}, layer::Compression::None);
    ImageInput in;
    in.config = {{"Cmd", {"/bin/sh"}}, {"Env", {"PATH=/bin"}}, {"WorkingDir", "/"}};
    in.layers = {l1_, l2_};
    in.history = Json::array({{{"created_by", "COPY hello.txt /"}},
                              {{"created_by", "ENV PATH=/bin"}, {"empty_layer", true}},
                              {{"created_by", "RUN edit"}, {"comment", "buildkit.dockerfile.v0"}}});
    in.created = created;
    auto m = write_image(store(), in);
    EXPECT_TRUE(m.ok()) << m.error().render();
    return m.ok() ? *m : Descriptor{};
  }
  LayerRef l1_, l2_;
};

TEST(FormatTime, Rfc3339Utc) {
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_time(1700000000), "2023-11-14T22:13:20Z");
}

TEST_F(ImageTest, WritesConfigAndManifest) {
  Descriptor m = make_image();
  EXPECT_EQ(m.media_type, kOciManifest);
  auto manifest = store().read_json_blob(m.digest);
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ((*manifest)["schemaVersion"], 2);
  EXPECT_EQ((*manifest)["mediaType"], kOciManifest);
  EXPECT_EQ((*manifest)["config"]["mediaType"], kOciConfig);
  ASSERT_EQ((*manifest)["layers"].size(), 2u);
  EXPECT_EQ((*manifest)["layers"][0], l1_.blob.to_json());
  EXPECT_EQ((*manifest)["layers"][0]["mediaType"], kOciLayerGzip);
  EXPECT_EQ((*manifest)["layers"][1]["mediaType"], kOciLayerTar);

  std::string config_digest = (*manifest)["config"]["digest"];
  auto config_bytes = store().read_blob(config_digest);
  ASSERT_TRUE(config_bytes.ok());
  Json config = Json::parse(*config_bytes);
  EXPECT_EQ(*config_bytes, canonical_json(config));   // stored canonical
  EXPECT_EQ((*manifest)["config"]["size"], config_bytes->size());
  Json expected = {
      {"architecture", "amd64"},
      {"os", "linux"},
      {"created", "2023-11-14T22:13:20Z"},
      {"config", {{"Cmd", {"/bin/sh"}}, {"Env", {"PATH=/bin"}}, {"WorkingDir", "/"}}},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {l1_.diff_id, l2_.diff_id}}}},
      {"history",
       {{{"created", "2023-11-14T22:13:20Z"}, {"created_by", "COPY hello.txt /"}},
        {{"created", "2023-11-14T22:13:20Z"}, {"created_by", "ENV PATH=/bin"}, {"empty_layer", true}},
        {{"created", "2023-11-14T22:13:20Z"}, {"created_by", "RUN edit"}, {"comment", "buildkit.dockerfile.v0"}}}},
  };
  EXPECT_EQ(config, expected);
  // The same input gives the same digest; another time another one.
  EXPECT_EQ(make_image().digest, m.digest);
  EXPECT_NE(make_image(1700000001).digest, m.digest);
}

TEST_F(ImageTest, KeepsBaseHistoryTimes) {
  LayerRef l = make_layer({{"a", "a"}});
  ImageInput in;
  in.layers = {l};
  in.history = Json::array({{{"created_by", "base"}, {"created", "2020-01-01T00:00:00Z"}},
                            {{"created_by", "CMD x"}, {"empty_layer", true}}});
  in.created = 0;
  auto m = write_image(store(), in);
  ASSERT_TRUE(m.ok()) << m.error().render();
  auto rec = load_image(store(), *m);
  ASSERT_TRUE(rec.ok()) << rec.error().render();
  EXPECT_EQ(rec->config["history"][0]["created"], "2020-01-01T00:00:00Z");
  EXPECT_EQ(rec->config["history"][1]["created"], "1970-01-01T00:00:00Z");
  EXPECT_EQ(rec->config["config"], Json::object());
}

TEST_F(ImageTest, HistoryIsPaddedForBaseLayers) {
  LayerRef base = make_layer({{"a", "a"}});
  LayerRef own = make_layer({{"b", "b"}});
  ImageInput in;
  in.layers = {base, own};
  in.history = Json::array({{{"created_by", "COPY b /"}}, {{"created_by", "ENV a=b"}, {"empty_layer", true}}});
  in.created = 0;
  auto m = write_image(store(), in);
  ASSERT_TRUE(m.ok()) << m.error().render();
  auto rec = load_image(store(), *m);
  Json expected = Json::array({{{"created", "1970-01-01T00:00:00Z"}},
                               {{"created", "1970-01-01T00:00:00Z"}, {"created_by", "COPY b /"}},
                               {{"created", "1970-01-01T00:00:00Z"}, {"created_by", "ENV a=b"}, {"empty_layer", true}}});
  EXPECT_EQ(rec->config["history"], expected);
}

TEST_F(ImageTest, HistoryWithMoreLayersThanImage) {
  LayerRef l = make_layer({{"a", "a"}});
  ImageInput in;
  in.layers = {l};
  in.history = Json::array({{{"created_by", "COPY a /"}}, {{"created_by", "COPY b /"}}});
  auto m = write_image(store(), in);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, "write image: image history has 2 entries with a layer, but the image has 1 layers");
}

TEST_F(ImageTest, DockerArchiveIsDeterministic) {
  Descriptor m = make_image();
  auto rec = load_image(store(), m);
  ASSERT_TRUE(rec.ok());
  std::string tar = path("out.tar");
  ASSERT_TRUE(export_docker_archive(store(), m, {"hello", "localhost:5000/x/y:v1"}, tar).ok());
  auto entries = read_tar(tar);
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  std::string cfg_hex(digest_hex(rec->config_digest));
  std::vector<std::string> expected_names = {cfg_hex + ".json", "blobs/", "blobs/sha256/",
                                             "blobs/sha256/" + std::string(digest_hex(l1_.blob.digest)),
                                             "blobs/sha256/" + std::string(digest_hex(l2_.blob.digest)),
                                             "manifest.json"};
  EXPECT_EQ(names, expected_names);
  for (const auto& e : entries) {
    EXPECT_EQ(e.mtime, 0) << e.name;
    EXPECT_EQ(e.uid, 0) << e.name;
  }
  Json manifest = Json::parse(entries.back().data);
  Json expected = Json::array({{{"Config", cfg_hex + ".json"},
                                {"RepoTags", {"hello:latest", "localhost:5000/x/y:v1"}},
                                {"Layers", {expected_names[3], expected_names[4]}}}});
  EXPECT_EQ(manifest, expected);
  EXPECT_EQ(entries[0].data, *store().read_blob(rec->config_digest));

  std::string again = path("again.tar");
  ASSERT_TRUE(export_docker_archive(store(), m, {"hello", "localhost:5000/x/y:v1"}, again).ok());
  EXPECT_EQ(*sha256_file(tar), *sha256_file(again));
  // No temp files left beside the output.
  auto ls = run_command("ls -A " + tmp_->path() + " | grep -c tmp");
  EXPECT_EQ(ls.out, "0\n");
}

TEST_F(ImageTest, RejectsDigestAsOutputTag) {
  Descriptor m = make_image();
  Status s = export_docker_archive(store(), m, {"hello@sha256:" + std::string(64, 'a')}, path("x.tar"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("needs a tag, not a digest"), std::string::npos) << s.error().message;
  EXPECT_FALSE(path_exists(path("x.tar")));
}

TEST_F(ImageTest, CorruptBlobFailsExportAndLeavesNothing) {
  Descriptor m = make_image();
  std::string blob = store().blob_path(l1_.blob.digest);
  ::chmod(blob.c_str(), 0644);
  ASSERT_TRUE(write_file_atomic(blob, "not the layer").ok());
  Status s = export_oci_archive(store(), m, {"hello"}, path("x.tar"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("is corrupt"), std::string::npos) << s.error().message;
  EXPECT_FALSE(path_exists(path("x.tar")));
  EXPECT_EQ(run_command("ls -A " + tmp_->path() + " | grep -c tmp").out, "0\n");
}

TEST_F(ImageTest, OciLayoutReadBySkopeoAndUmoci) {
  Descriptor m = make_image();
  std::string dir = path("layout");
  ASSERT_TRUE(export_oci_layout(store(), m, {"hello:v1", "hello:latest"}, dir).ok());
  auto index = read_json_file(path_join(dir, "index.json"));
  ASSERT_TRUE(index.ok());
  ASSERT_EQ((*index)["manifests"].size(), 2u);
  EXPECT_EQ((*index)["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "v1");
  EXPECT_EQ((*index)["manifests"][0]["annotations"]["io.containerd.image.name"],
            "docker.io/library/hello:v1");
  EXPECT_EQ((*index)["manifests"][0]["digest"], m.digest);
  EXPECT_EQ(file_text(path_join(dir, "oci-layout")), "{\"imageLayoutVersion\":\"1.0.0\"}");

  auto inspect = run_command("skopeo inspect oci:" + dir + ":v1");
  ASSERT_EQ(inspect.status, 0) << inspect.out;
  Json j = Json::parse(inspect.out);
  EXPECT_EQ(j["Digest"], m.digest);
  EXPECT_EQ(j["Layers"], Json::array({l1_.blob.digest, l2_.blob.digest}));
  EXPECT_EQ(j["Architecture"], "amd64");

  std::string bundle = path("bundle");
  auto unpack = run_command("umoci unpack --image " + dir + ":latest " + bundle + " 2>&1");
  ASSERT_EQ(unpack.status, 0) << unpack.out;
  EXPECT_EQ(file_text(path_join(bundle, "rootfs/hello.txt")), "hello\n");
  EXPECT_EQ(file_text(path_join(bundle, "rootfs/etc/app.conf")), "a=2\n");

  // A second image into the same layout keeps the first one's names.
  LayerRef l = make_layer({{"other", "x"}});
  ImageInput in;
  in.layers = {l};
  in.created = 5;
  auto other = write_image(store(), in);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(export_oci_layout(store(), *other, {"other:latest", "hello:v1"}, dir).ok());
  index = read_json_file(path_join(dir, "index.json"));
  ASSERT_EQ((*index)["manifests"].size(), 3u);
  std::map<std::string, std::string> names;
  for (const Json& e : (*index)["manifests"])
    names[e["annotations"]["io.containerd.image.name"]] = e["digest"];
  EXPECT_EQ(names["docker.io/library/hello:latest"], m.digest);
  EXPECT_EQ(names["docker.io/library/hello:v1"], other->digest);
  EXPECT_EQ(names["docker.io/library/other:latest"], other->digest);
}

// zstd layers (dfgen --compression=zstd): skopeo reads the layout and copies
// the layers as they are, and they decompress to the files. (umoci 0.4.7
// refuses the zstd media type: "blob is not correct mediatype".)
TEST_F(ImageTest, ZstdLayersReadBySkopeo) {
  LayerRef a = make_layer({{"hello.txt", "hello zstd\n"}}, layer::Compression::Zstd);
  LayerRef b = make_layer({{"etc/app.conf", "z=1\n"}}, layer::Compression::Zstd);
  ASSERT_EQ(a.blob.media_type, kOciLayerZstd);
  ImageInput in;
  in.layers = {a, b};
  in.created = 7;
  auto m = write_image(store(), in);
  ASSERT_TRUE(m.ok()) << m.error().render();
  std::string dir = path("zlayout");
  ASSERT_TRUE(export_oci_layout(store(), *m, {"zhello:latest"}, dir).ok());
  auto inspect = run_command("skopeo inspect --raw oci:" + dir + ":latest");
  ASSERT_EQ(inspect.status, 0) << inspect.out;
  EXPECT_EQ(Json::parse(inspect.out)["layers"][0]["mediaType"], kOciLayerZstd);
  std::string copy = path("zdir");
  auto copied = run_command("skopeo copy -q oci:" + dir + ":latest dir:" + copy + " 2>&1");
  ASSERT_EQ(copied.status, 0) << copied.out;
  std::string out = path("zfiles");
  ASSERT_TRUE(make_dirs(out).ok());
  for (const auto& l : {a, b}) {
    auto x = run_command("zstd -dc " + path_join(copy, std::string(digest_hex(l.blob.digest))) + " | tar -x -C " +
                         out + " 2>&1");
    ASSERT_EQ(x.status, 0) << x.out;
  }
  EXPECT_EQ(file_text(path_join(out, "hello.txt")), "hello zstd\n");
  EXPECT_EQ(file_text(path_join(out, "etc/app.conf")), "z=1\n");
}

TEST_F(ImageTest, OciArchiveReadBySkopeo) {
  Descriptor m = make_image();
  std::string tar = path("out/sub/oci.tar");   // folders made as needed
  ASSERT_TRUE(export_oci_archive(store(), m, {"hello"}, tar).ok());
  auto entries = read_tar(tar);
  ASSERT_GE(entries.size(), 4u);
  EXPECT_EQ(entries[0].name, "oci-layout");
  EXPECT_EQ(entries[1].name, "index.json");
  auto inspect = run_command("skopeo inspect oci-archive:" + tar + ":latest");
  ASSERT_EQ(inspect.status, 0) << inspect.out;
  EXPECT_EQ(Json::parse(inspect.out)["Digest"], m.digest);
  std::string again = path("again.tar");
  ASSERT_TRUE(export_oci_archive(store(), m, {"hello"}, again).ok());
  EXPECT_EQ(*sha256_file(tar), *sha256_file(again));
}

// The tree an image exports, as "path=content" lines ("path/" for dirs).
std::string describe_tree(const std::string& root) {
  return run_command("cd " + root +
                     " && find . -mindepth 1 | sort | while read f; do if [ -d \"$f\" ]; then echo \"$f/\"; "
                     "else echo \"$f=$(cat \"$f\")\"; fi; done")
      .out;
}

TEST_F(ImageTest, RootfsAppliesWhiteoutsAndOpaqueDirs) {
  LayerRef base = make_layer({{"a/x", "x"}, {"a/y", "y"}, {"b/z", "z"}, {"c", "file"}});
  std::string upper = path("upper");
  testing::write_tree(upper, {{"b/new", "new"}, {"c/inside", "now a dir"}});
  ASSERT_EQ(::mkdir(path_join(upper, "a").c_str(), 0755), 0);
  ASSERT_EQ(::mknod(path_join(upper, "a/x").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  ASSERT_EQ(::setxattr(path_join(upper, "b").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  LayerRef top = layer_from_dir(upper);
  ImageInput in;
  in.layers = {base, top};
  in.created = 0;
  auto m = write_image(store(), in);
  ASSERT_TRUE(m.ok());

  std::string out = path("out/rootfs");
  Status s = export_rootfs(store(), *m, out);
  ASSERT_TRUE(s.ok()) << s.error().render();
  EXPECT_EQ(describe_tree(out), "./a/\n./a/y=y\n./b/\n./b/new=new\n./c/\n./c/inside=now a dir\n");
  char v[4];
  EXPECT_LT(::lgetxattr(path_join(out, "b").c_str(), "trusted.overlay.opaque", v, sizeof v), 0);
  EXPECT_EQ(run_command("ls -A " + path("out")).out, "rootfs\n");   // scratch dirs gone

  // Into a non-empty directory: the image's files are laid over what is there.
  std::string existing = path("existing");
  testing::write_tree(existing, {{"keep.txt", "mine"}, {"a/y", "old"}});
  ASSERT_TRUE(export_rootfs(store(), *m, existing).ok());
  EXPECT_EQ(file_text(path_join(existing, "keep.txt")), "mine");
  EXPECT_EQ(file_text(path_join(existing, "a/y")), "y");
}

TEST_F(ImageTest, DockerArchiveRoundTrip) {
  Descriptor m = make_image();
  std::string tar = path("docker.tar");
  ASSERT_TRUE(export_docker_archive(store(), m, {"hello:1", "hello:2"}, tar).ok());
  auto other = Store::open(path("store2"));
  ASSERT_TRUE(other.ok());
  auto imported = import_images(*other, tar);
  ASSERT_TRUE(imported.ok()) << imported.error().render();
  ASSERT_EQ(imported->size(), 2u);
  EXPECT_EQ((*imported)[0].first, "docker.io/library/hello:1");
  EXPECT_EQ((*imported)[1].first, "docker.io/library/hello:2");
  // Layers and config come back as they were; the manifest is the same OCI one.
  EXPECT_EQ((*imported)[0].second.digest, m.digest);
  auto tag = other->resolve_tag("docker.io/library/hello:2");
  ASSERT_TRUE(tag.ok() && tag->has_value());
  EXPECT_EQ((**tag).digest, m.digest);
  std::string root = path("rootfs");
  ASSERT_TRUE(export_rootfs(*other, m, root).ok());
  EXPECT_EQ(describe_tree(root), "./etc/\n./etc/app.conf=a=2\n./hello.txt=hello\n");

  // `docker save | gzip` is accepted as well.
  ASSERT_EQ(run_command("gzip -c " + tar + " > " + tar + ".gz").status, 0);
  auto third = Store::open(path("store3"));
  imported = import_images(*third, tar + ".gz");
  ASSERT_TRUE(imported.ok()) << imported.error().render();
  ASSERT_EQ(imported->size(), 2u);
  EXPECT_EQ((*imported)[0].second.digest, m.digest);
}

TEST_F(ImageTest, OciArchiveAndLayoutRoundTrip) {
  Descriptor m = make_image();
  std::string tar = path("oci.tar");
  ASSERT_TRUE(export_oci_archive(store(), m, {"example.com/team/app:1.0"}, tar).ok());
  auto other = Store::open(path("store2"));
  ASSERT_TRUE(other.ok());
  auto imported = import_images(*other, tar);
  ASSERT_TRUE(imported.ok()) << imported.error().render();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].first, "example.com/team/app:1.0");
  EXPECT_EQ((*imported)[0].second.digest, m.digest);
  EXPECT_EQ((*imported)[0].second.media_type, kOciManifest);

  // A layout whose index names only a tag: the directory's name is the repository.
  std::string dir = path("My-App");
  ASSERT_EQ(run_command("skopeo copy -q oci-archive:" + tar + ":1.0 oci:" + dir + ":v2").status, 0);
  imported = import_images(*other, dir);
  ASSERT_TRUE(imported.ok()) << imported.error().render();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].first, "docker.io/library/my-app:v2");
  // skopeo writes the manifest its own way and gzips the plain tar layer;
  // the config, and so the diff_ids import checked the layers against, stay.
  auto copied = load_image(*other, (*imported)[0].second);
  auto original = load_image(store(), m);
  ASSERT_TRUE(copied.ok()) << copied.error().render();
  EXPECT_EQ(copied->config_digest, original->config_digest);
  EXPECT_EQ(copied->layers[0].digest, l1_.blob.digest);
  EXPECT_EQ(copied->layers[1].media_type, kOciLayerGzip);

  imported = import_images(*other, dir, "renamed:x");
  ASSERT_TRUE(imported.ok()) << imported.error().render();
  EXPECT_EQ((*imported)[0].first, "docker.io/library/renamed:x");
  auto tags = other->list_tags();
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(tags->size(), 3u);
}

TEST_F(ImageTest, ImportVerifiesBlobsAndDiffIds) {
  Descriptor m = make_image();
  std::string dir = path("layout");
  ASSERT_TRUE(export_oci_layout(store(), m, {"hello"}, dir).ok());
  // A layer blob replaced: its digest no longer matches.
  std::string blob = path_join(dir, "blobs/sha256/" + std::string(digest_hex(l2_.blob.digest)));
  ASSERT_TRUE(write_file_atomic(blob, "tampered").ok());
  auto other = Store::open(path("store2"));
  auto r = import_images(*other, dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(l2_.blob.digest), std::string::npos) << r.error().message;
  EXPECT_TRUE(other->list_tags()->empty());

  // A docker-archive whose layer does not match the config's diff_id.
  std::string tree = path("bad");
  auto rec = load_image(store(), m);
  std::string cfg = *store().read_blob(rec->config_digest);
  testing::write_tree(tree, {{"c.json", cfg},
                             {"l1.tar.gz", *store().read_blob(l1_.blob.digest)},
                             {"l2.tar", *store().read_blob(l1_.blob.digest)},
                             {"manifest.json", R"([{"Config":"c.json","RepoTags":["bad:1"],"Layers":["l1.tar.gz","./l2.tar"]}])"}});
  r = import_images(*other, tree);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "import " + tree + ": layer 2: uncompressed content hashes to " + l1_.diff_id +
                ", but the config says " + l2_.diff_id);
}

TEST_F(ImageTest, ImportRejectsUnknownInput) {
  std::string dir = path("empty");
  ASSERT_TRUE(make_dirs(dir).ok());
  auto r = import_images(store(), dir);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "import " + dir +
                                   ": neither a docker-archive (no manifest.json) nor an OCI layout (no index.json)");
}

TEST(NormalizeEntryName, Table) {
  EXPECT_EQ(normalize_entry_name("./manifest.json"), "manifest.json");
  EXPECT_EQ(normalize_entry_name("a/../b//c/"), "b/c");
  EXPECT_EQ(normalize_entry_name("/abs"), "abs");
  EXPECT_EQ(normalize_entry_name("../x"), "");
  EXPECT_EQ(normalize_entry_name("a/../../x"), "");
  EXPECT_EQ(normalize_entry_name("."), "");
}

}  // namespace
}  // namespace dfgen::image
