// docker load / docker run / docker save against a real Docker daemon. The
// daemon is started here when it is not running; when it cannot be reached
// the tests fail (never skip): this is how we know `docker load` accepts our
// archives.
#include <unistd.h>

#include <map>

#include <gtest/gtest.h>

#include "runner/image/image.h"
#include "runner/image/test_util.h"

namespace dfgen::image {
namespace {

using testing::run_command;

bool docker_up() { return run_command("docker info >/dev/null 2>&1").status == 0; }

::testing::AssertionResult ensure_docker() {
  if (docker_up()) return ::testing::AssertionSuccess();
  if (run_command("command -v dockerd >/dev/null").status != 0)
    return ::testing::AssertionFailure() << "dockerd is not installed";
  run_command("(dockerd >>/tmp/dockerd.log 2>&1 &)");
  for (int i = 0; i < 60; ++i) {
    if (docker_up()) return ::testing::AssertionSuccess();
    ::sleep(1);
  }
  return ::testing::AssertionFailure() << "Docker daemon not reachable after starting dockerd "
                                          "(see /tmp/dockerd.log)";
}

class DockerTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    ASSERT_TRUE(ensure_docker());
  }
  void TearDown() override {
    run_command("docker rmi -f " + tag_ + " >/dev/null 2>&1");
  }

  // busybox in one layer, a greeting in another, the default command echoes.
  Descriptor busybox_image(layer::Compression c = layer::Compression::Gzip) {
    std::string tree = path("bb");
    EXPECT_TRUE(make_dirs(path_join(tree, "bin")).ok());
    EXPECT_EQ(run_command("cp /bin/busybox " + tree + "/bin/busybox").status, 0);
    EXPECT_EQ(::symlink("busybox", path_join(tree, "bin/sh").c_str()), 0);
    LayerRef bin = layer_from_dir(tree, c);
    busybox_layer_ = bin;
    LayerRef etc = make_layer({{"etc/greeting", "hello from a file\n"}}, c);
    ImageInput in;
    in.config = {{"Cmd", {"/bin/busybox", "echo", "hello from dfgen"}},
                 {"Env", {"PATH=/bin", "GREETING=hi"}},
                 {"WorkingDir", "/etc"}};
    in.layers = {bin, etc};
    in.history = Json::array({{{"created_by", "COPY busybox /bin/"}},
                              {{"created_by", "COPY greeting /etc/"}},
                              {{"created_by", "CMD echo"}, {"empty_layer", true}}});
    in.created = 1700000000;
    auto m = write_image(store(), in);
    EXPECT_TRUE(m.ok()) << m.error().render();
    return *m;
  }

  std::string tag_ = "dfgen-test/busybox:" + std::to_string(::getpid());
  LayerRef busybox_layer_;
};

// Docker 20.10's `docker load` fails on small zstd layers ("unexpected
// EOF"): a docker archive of an image with zstd layers is refused, naming
// the way out, and no archive is left behind.
TEST_F(DockerTest, ZstdLayersAreRefusedForDockerArchives) {
  Descriptor m = busybox_image(layer::Compression::Zstd);
  EXPECT_EQ(busybox_layer_.blob.media_type, kOciLayerZstd);
  std::string tar = path("image-zstd.tar");
  Status st = export_docker_archive(store(), m, {tag_}, tar);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("is zstd-compressed"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("--compression=gzip"), std::string::npos) << st.error().message;
  EXPECT_FALSE(path_exists(tar));
}

TEST_F(DockerTest, LoadAndRun) {
  Descriptor m = busybox_image();
  std::string tar = path("image.tar");
  ASSERT_TRUE(export_docker_archive(store(), m, {tag_}, tar).ok());
  auto load = run_command("docker load -i " + tar + " 2>&1");
  ASSERT_EQ(load.status, 0) << load.out;
  EXPECT_NE(load.out.find("Loaded image: " + tag_), std::string::npos) << load.out;

  auto run = run_command("docker run --rm " + tag_ + " 2>&1");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(run.out, "hello from dfgen\n");
  run = run_command("docker run --rm " + tag_ + " sh -c 'cat greeting; echo $GREETING; pwd' 2>&1");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_EQ(run.out, "hello from a file\nhi\n/etc\n");

  // Docker keeps our config as it is: the image ID is our config digest.
  auto rec = load_image(store(), m);
  ASSERT_TRUE(rec.ok());
  auto id = run_command("docker image inspect -f '{{.Id}}' " + tag_);
  EXPECT_EQ(id.out, rec->config_digest + "\n");
  auto history = run_command("docker history --no-trunc --format '{{.CreatedBy}}' " + tag_);
  EXPECT_EQ(history.out, "CMD echo\nCOPY greeting /etc/\nCOPY busybox /bin/\n");
}

TEST_F(DockerTest, ImportsDockerSave) {
  Descriptor m = busybox_image();
  std::string tar = path("image.tar");
  ASSERT_TRUE(export_docker_archive(store(), m, {tag_}, tar).ok());
  ASSERT_EQ(run_command("docker load -q -i " + tar + " >/dev/null").status, 0);
  std::string saved = path("saved.tar");
  auto save = run_command("docker save -o " + saved + " " + tag_ + " 2>&1");
  ASSERT_EQ(save.status, 0) << save.out;

  auto other = Store::open(path("store2"));
  ASSERT_TRUE(other.ok());
  auto imported = import_images(*other, saved);
  ASSERT_TRUE(imported.ok()) << imported.error().render();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].first, "docker.io/" + tag_);
  auto got = load_image(*other, (*imported)[0].second);
  auto want = load_image(store(), m);
  ASSERT_TRUE(got.ok()) << got.error().render();
  EXPECT_EQ(got->config_digest, want->config_digest);
  EXPECT_EQ(got->diff_ids, want->diff_ids);
  ASSERT_EQ(got->layers.size(), 2u);
  // docker save writes plain tar layers: stored as they are.
  EXPECT_EQ(got->layers[0].media_type, kOciLayerTar);
  EXPECT_EQ(got->layers[0].digest, busybox_layer_.diff_id);

  std::string root = path("rootfs");
  Status s = export_rootfs(*other, (*imported)[0].second, root);
  ASSERT_TRUE(s.ok()) << s.error().render();
  EXPECT_EQ(*read_file(path_join(root, "etc/greeting")), "hello from a file\n");
  EXPECT_EQ(*sha256_file(path_join(root, "bin/busybox")), *sha256_file("/bin/busybox"));
  auto tag = other->resolve_tag("docker.io/" + tag_);
  ASSERT_TRUE(tag.ok() && tag->has_value());

  // And back out to docker again, from the imported copy.
  run_command("docker rmi -f " + tag_ + " >/dev/null 2>&1");
  std::string again = path("again.tar");
  ASSERT_TRUE(export_docker_archive(*other, (*imported)[0].second, {tag_}, again).ok());
  ASSERT_EQ(run_command("docker load -q -i " + again + " >/dev/null").status, 0);
  EXPECT_EQ(run_command("docker run --rm " + tag_).out, "hello from dfgen\n");
}

// docker save of two images sharing a layer links the second copy to the first.
TEST_F(DockerTest, ImportsMultiImageSave) {
  Descriptor first = busybox_image();
  ImageInput in;
  in.config = {{"Cmd", {"/bin/busybox", "echo", "second"}}};
  // The shared layer on top of another one: docker save gives it another
  // v1 id and links its layer.tar to the first copy.
  in.layers = {make_layer({{"second", "2"}}), busybox_layer_};
  in.created = 1700000001;
  auto second = write_image(store(), in);
  ASSERT_TRUE(second.ok());
  std::string tag2 = tag_ + "-b";
  ASSERT_TRUE(export_docker_archive(store(), first, {tag_}, path("a.tar")).ok());
  ASSERT_TRUE(export_docker_archive(store(), *second, {tag2}, path("b.tar")).ok());
  ASSERT_EQ(run_command("docker load -q -i " + path("a.tar") + " >/dev/null").status, 0);
  ASSERT_EQ(run_command("docker load -q -i " + path("b.tar") + " >/dev/null").status, 0);
  std::string saved = path("both.tar");
  auto save = run_command("docker save -o " + saved + " " + tag_ + " " + tag2 + " 2>&1");
  run_command("docker rmi -f " + tag2 + " >/dev/null 2>&1");
  ASSERT_EQ(save.status, 0) << save.out;
  EXPECT_EQ(run_command("tar tvf " + saved + " | grep -c '^l'").out, "1\n");

  auto other = Store::open(path("store2"));
  auto imported = import_images(*other, saved);
  ASSERT_TRUE(imported.ok()) << imported.error().render();
  ASSERT_EQ(imported->size(), 2u);
  std::map<std::string, std::string> config_of;
  for (const auto& [ref, desc] : *imported) {
    auto rec = load_image(*other, desc);
    ASSERT_TRUE(rec.ok()) << rec.error().render();
    config_of[ref] = rec->config_digest;
  }
  EXPECT_EQ(config_of["docker.io/" + tag_], load_image(store(), first)->config_digest);
  EXPECT_EQ(config_of["docker.io/" + tag2], load_image(store(), *second)->config_digest);

  auto override = import_images(*other, saved, "x:y");
  ASSERT_FALSE(override.ok());
  EXPECT_EQ(override.error().message,
            "import " + saved + ": the archive holds 2 images; a tag override needs exactly one");
}

}  // namespace
}  // namespace dfgen::image
