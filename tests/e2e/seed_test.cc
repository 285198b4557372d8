// End to end over the seed examples (examples/README.md) and the graph's
// promises: base images pinned in the build dir, digests and OCI layouts as
// bases, one build of a shared stage, stage targets, and what a failing RUN
// shows. Real dfgen, ninja, dfrun and runc against the shared test store.
#include <gtest/gtest.h>

#include <unistd.h>

#include <ctime>
#include <fstream>

#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

std::string nonce() { return std::to_string(::time(nullptr)) + "-" + std::to_string(::getpid()); }
bool exists(const std::string& path) { return std::ifstream(path).good(); }

// The manifest digest a store tag points at ("" when it has none).
std::string tag_digest(const std::string& ref) {
  Output o = sh("dfrun images | awk '$1 == \"" + ref + "\" {print $2}'");
  return o.output.substr(0, o.output.find('\n'));
}

// Builds a one-RUN image FROM busybox into the test store, tagged `tag`.
void build_busybox_image(const std::string& name, const std::string& tag, const std::string& run) {
  std::string ctx = temp_dir(name + "-ctx"), b = temp_dir(name + "-build");
  write_file(ctx + "/Dockerfile", "FROM busybox\nRUN " + run + "\n");
  Output gen = sh("dfgen " + q(ctx) + " -B " + q(b) + " -t " + tag +
                  " --build-context busybox=docker-image://" + fixture("busybox"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -C " + q(b));
  ASSERT_EQ(build.exit_code, 0) << build.output;
}

TEST(Seed, ExternalImageCopiesFromAnotherImage) {
  build_busybox_image("nginx", "dfgen-e2e/nginx:seed",
                      "mkdir -p /etc/nginx && echo 'events {}' > /etc/nginx/nginx.conf");
  std::string b = temp_dir("external");
  Output gen = sh("dfgen " + q(source_dir() + "/examples/external-image") + " -B " + q(b) +
                  " -t external-e2e --build-context nginx:latest=docker-image://dfgen-e2e/nginx:seed" +
                  " --output type=local,dest=" + q(b + "/rootfs"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -C " + q(b));
  ASSERT_EQ(build.exit_code, 0) << build.output;
  EXPECT_EQ(read_file(b + "/rootfs/nginx.conf"), "events {}\n");
  Output files = sh("cd " + q(b + "/rootfs") + " && find . -type f | sort");
  EXPECT_EQ(files.output, "./nginx.conf\n");
  // The name is pinned to the manifest the tag pointed at.
  std::string digest = tag_digest("docker.io/dfgen-e2e/nginx:seed");
  ASSERT_FALSE(digest.empty());
  std::string pins = read_file(b + "/.dfgen/pins.json");
  EXPECT_NE(pins.find("\"nginx:latest\""), std::string::npos) << pins;
  EXPECT_NE(pins.find(digest), std::string::npos) << pins;
}

TEST(Seed, PreviousStageBuildsTheSharedStageOnce) {
  std::string gcc = fixture("gcc");
  std::string b = temp_dir("previous");
  auto gen = [&](const std::string& extra) {
    return sh("dfgen " + q(source_dir() + "/examples/previous-stage") + " -B " + q(b) +
              " --build-context alpine:latest=docker-image://" + gcc + " " + extra);
  };
  Output g1 = gen("--target build1 -t prev-build1");
  ASSERT_EQ(g1.exit_code, 0) << g1.output;
  Output first = sh("ninja -C " + q(b));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(count_lines_with(first.output, "[builder 1/1] RUN g++ --version"), 1) << first.output;
  EXPECT_EQ(count_lines_with(first.output, "[build1 2/2] RUN g++ -o /binary source.cpp"), 1) << first.output;
  EXPECT_EQ(count_lines_with(first.output, "[build2"), 0) << first.output;

  // The same build dir, the other target: builder is up to date, not even re-checked.
  Output g2 = gen("-t prev-build2");
  ASSERT_EQ(g2.exit_code, 0) << g2.output;
  Output second = sh("ninja -C " + q(b));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(count_lines_with(second.output, "[builder"), 0) << second.output;
  EXPECT_EQ(count_lines_with(second.output, "[build2 2/2] RUN g++ -o /binary source.cpp"), 1) << second.output;

  EXPECT_EQ(sh("dfrun run prev-build1 /binary").output, "build1\n");
  EXPECT_EQ(sh("dfrun run prev-build2 /binary").output, "build2\n");
}

TEST(Seed, PreviousStageBothTargetsInOneGraphShareBuilder) {
  std::string b = temp_dir("previous-one");
  Output gen = sh("dfgen " + q(source_dir() + "/examples/previous-stage") + " -B " + q(b) +
                  " -t prev-one --build-context alpine:latest=docker-image://" + fixture("gcc"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  // build1 is not what the image needs (the last stage, build2, is), yet it is a target.
  Output build = sh("ninja -C " + q(b) + " build1 build2");
  ASSERT_EQ(build.exit_code, 0) << build.output;
  EXPECT_EQ(count_lines_with(build.output, "[builder 1/1] RUN g++ --version"), 1) << build.output;
  EXPECT_EQ(count_lines_with(build.output, "[build1 2/2] RUN g++ -o /binary source.cpp"), 1) << build.output;
  EXPECT_EQ(count_lines_with(build.output, "[build2 2/2] RUN g++ -o /binary source.cpp"), 1) << build.output;
  EXPECT_EQ(count_lines_with(build.output, "[image]"), 0) << build.output;
  // The image's default target never touches build1.
  std::string b2 = temp_dir("previous-default");
  ASSERT_EQ(sh("dfgen " + q(source_dir() + "/examples/previous-stage") + " -B " + q(b2) +
               " -t prev-default --build-context alpine:latest=docker-image://" + fixture("gcc")).exit_code, 0);
  Output image = sh("ninja -C " + q(b2));
  ASSERT_EQ(image.exit_code, 0) << image.output;
  EXPECT_EQ(count_lines_with(image.output, "[build1"), 0) << image.output;
  EXPECT_EQ(sh("dfrun run prev-default /binary").output, "build2\n");
}

TEST(Seed, NinjaStageTargetBuildsOnlyThatStage) {
  std::string b = temp_dir("named");
  Output gen = sh("dfgen " + q(source_dir() + "/examples/named-stages") + " -B " + q(b) +
                  " -t named-e2e --build-context golang:1.21=docker-image://" + fixture("golang"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -C " + q(b) + " build");
  ASSERT_EQ(build.exit_code, 0) << build.output;
  EXPECT_GE(count_lines_with(build.output, "[build 3/3] RUN go build"), 1) << build.output;
  EXPECT_EQ(count_lines_with(build.output, "stage-1"), 0) << build.output;
  EXPECT_EQ(count_lines_with(build.output, "[image]"), 0) << build.output;
  EXPECT_TRUE(exists(b + "/.dfgen/s0-2.result"));
  EXPECT_FALSE(exists(b + "/.dfgen/image-named-e2e.result"));
}

TEST(Seed, FailingRunShowsTheLineAndWritesNoResult) {
  std::string ctx = temp_dir("fail-ctx"), b = temp_dir("fail-build");
  write_file(ctx + "/Dockerfile",
             "FROM busybox\n"
             "RUN echo fine\n"
             "RUN echo about-to-fail && exit 3\n"
             "RUN echo never\n");
  Output gen = sh("dfgen " + q(ctx) + " -B " + q(b) + " -t fail-e2e --build-context busybox=docker-image://" +
                  fixture("busybox"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -C " + q(b));
  EXPECT_NE(build.exit_code, 0) << build.output;
  EXPECT_NE(build.output.find("about-to-fail"), std::string::npos) << build.output;
  EXPECT_NE(build.output.find("Dockerfile:3: RUN echo about-to-fail && exit 3: process \"/bin/sh -c echo "
                              "about-to-fail && exit 3\" did not complete successfully: exit code: 3"),
            std::string::npos)
      << build.output;
  EXPECT_TRUE(exists(b + "/.dfgen/s0-0.result"));
  EXPECT_FALSE(exists(b + "/.dfgen/s0-1.result"));
  EXPECT_FALSE(exists(b + "/.dfgen/s0-2.result"));
  EXPECT_FALSE(exists(b + "/.dfgen/image-fail-e2e.result"));
  // Still failing on the next run, and still no result.
  Output again = sh("ninja -C " + q(b));
  EXPECT_NE(again.exit_code, 0) << again.output;
  EXPECT_FALSE(exists(b + "/.dfgen/s0-1.result"));
}

TEST(Pins, RegenerationKeepsThePinUntilPull) {
  std::string tag = "dfgen-e2e/pinbase:" + nonce();
  build_busybox_image("pin-one", tag, "echo one > /version");
  std::string one = tag_digest("docker.io/" + tag);
  ASSERT_FALSE(one.empty());

  std::string ctx = temp_dir("pin-ctx"), b = temp_dir("pin-build");
  write_file(ctx + "/Dockerfile", "FROM pinbase\nRUN cp /version /seen\nCMD [\"cat\", \"/seen\"]\n");
  std::string image = "pin-user-" + nonce();
  std::string gen = "dfgen " + q(ctx) + " -B " + q(b) + " -t " + image +
                    " --build-context pinbase=docker-image://" + tag;
  ASSERT_EQ(sh(gen).exit_code, 0);
  ASSERT_EQ(sh("ninja -C " + q(b)).exit_code, 0);
  EXPECT_EQ(sh("dfrun run " + image).output, "one\n");
  EXPECT_NE(read_file(b + "/.dfgen/pins.json").find(one), std::string::npos);

  // The tag moves; dfgen (and ninja's regeneration) keep the pinned manifest.
  build_busybox_image("pin-two", tag, "echo two > /version");
  std::string two = tag_digest("docker.io/" + tag);
  ASSERT_NE(two, one);
  Output regen = sh(gen);
  ASSERT_EQ(regen.exit_code, 0) << regen.output;
  Output same = sh("ninja -C " + q(b));
  EXPECT_NE(same.output.find("no work to do"), std::string::npos) << same.output;
  EXPECT_NE(read_file(b + "/.dfgen/pins.json").find(one), std::string::npos);

  // --pull re-resolves; the regeneration command does not repeat it.
  Output pulled = sh(gen + " --pull");
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  EXPECT_NE(read_file(b + "/.dfgen/pins.json").find(two), std::string::npos);
  EXPECT_EQ(read_file(b + "/build.ninja").find("--pull"), std::string::npos);
  ASSERT_EQ(sh("ninja -C " + q(b)).exit_code, 0);
  EXPECT_EQ(sh("dfrun run " + image).output, "two\n");
}

TEST(Pins, FromByDigest) {
  std::string busybox = fixture("busybox");
  std::string digest = tag_digest("docker.io/" + busybox);
  ASSERT_FALSE(digest.empty());
  std::string ctx = temp_dir("digest-ctx"), b = temp_dir("digest-build");
  write_file(ctx + "/Dockerfile", "FROM anything/busybox@" + digest + "\nRUN echo by-digest > /d\n"
                                  "CMD [\"cat\", \"/d\"]\n");
  Output gen = sh("dfgen " + q(ctx) + " -B " + q(b) + " -t digest-e2e");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -C " + q(b));
  ASSERT_EQ(build.exit_code, 0) << build.output;
  EXPECT_EQ(sh("dfrun run digest-e2e").output, "by-digest\n");

  // A digest the store does not have is an error that names it.
  write_file(ctx + "/Dockerfile", "FROM busybox@sha256:" + std::string(64, '0') + "\n");
  Output missing = sh("dfgen " + q(ctx) + " -B " + q(temp_dir("digest-missing")));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("manifest sha256:" + std::string(64, '0') + " is not in the store"),
            std::string::npos)
      << missing.output;
}

TEST(Pins, OciLayoutBuildContext) {
  // An OCI layout made by dfgen itself, then used as the base of another build.
  std::string ctx = temp_dir("layout-ctx"), b = temp_dir("layout-build");
  std::string layout = b + "/layout";
  write_file(ctx + "/Dockerfile", "FROM busybox\nRUN echo from-layout > /l\n");
  Output gen = sh("dfgen " + q(ctx) + " -B " + q(b) + " -t dfgen-e2e/layout:v1 --build-context busybox=docker-image://" +
                  fixture("busybox") + " --output type=oci,dest=" + q(layout) + ",tar=false");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  ASSERT_EQ(sh("ninja -C " + q(b)).exit_code, 0);

  std::string ctx2 = temp_dir("layout-user-ctx"), b2 = temp_dir("layout-user-build");
  write_file(ctx2 + "/Dockerfile", "FROM base\nCMD [\"cat\", \"/l\"]\nRUN true\n");
  Output gen2 = sh("dfgen " + q(ctx2) + " -B " + q(b2) + " -t layout-user-e2e --build-context base=oci-layout://" +
                   layout + ":v1");
  ASSERT_EQ(gen2.exit_code, 0) << gen2.output;
  ASSERT_EQ(sh("ninja -C " + q(b2)).exit_code, 0);
  EXPECT_EQ(sh("dfrun run layout-user-e2e").output, "from-layout\n");
  EXPECT_NE(read_file(b2 + "/.dfgen/pins.json").find("oci-layout://"), std::string::npos);

  Output wrong = sh("dfgen " + q(ctx2) + " -B " + q(temp_dir("layout-wrong")) +
                    " --build-context base=oci-layout://" + layout + ":nope");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.output.find("no image tagged \"nope\""), std::string::npos) << wrong.output;
}

}  // namespace
}  // namespace dfgen::e2e
