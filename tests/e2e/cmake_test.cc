// add_docker_image() end to end: examples/monorepo configured with CMake +
// Ninja, its binaries and images built by CMake's own build.ninja (one
// graph), then edited to check what rebuilds. The server image is also
// exported for Docker (OUTPUT type=docker), loaded and run by the Docker
// daemon (scripts/start-dockerd.sh): the test fails when it is not running.
#include <gtest/gtest.h>

#include <unistd.h>

#include <regex>

#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {


// A copy of examples/monorepo (the tests edit its sources) and the cmake
// options that point it at this build's dfgen, the test store and the busybox
// fixture. The module is found through its package config in the checkout.
struct Monorepo {
  std::string src, build;

  explicit Monorepo(const std::string& name) {
    src = temp_dir(name + "-src");
    build = temp_dir(name + "-build");
    Output cp = sh("cp -a " + q(source_dir() + "/examples/monorepo/.") + " " + q(src));
    if (cp.exit_code != 0) throw std::runtime_error(cp.output);
  }

  Output configure(const std::string& generator = "Ninja") const {
    return sh("cmake -S " + q(src) + " -B " + q(build) + " -G " + q(generator) +
              " -Ddfgen_DIR=" + q(source_dir() + "/cmake-modules") +
              " -DDFGEN_EXECUTABLE=" + q(std::string(DFGEN_BINARY_DIR) + "/bin/dfgen") +
              " -DDFGEN_STORE=" + q(store_dir()) + " -DBUSYBOX_IMAGE=" + fixture("busybox") + " 2>&1");
  }
  Output ninja(const std::string& args = "") const { return sh("ninja -C " + q(build) + " " + args); }

  // Appends `text` to a source file (Ninja compares mtimes in nanoseconds).
  void append(const std::string& rel, const std::string& text) const {
    write_file(src + "/" + rel, read_file(src + "/" + rel) + text);
  }
};

// Lines of ninja's output that are image steps (their descriptions are the
// Dockerfile step labels and "[image] NAME").
int image_steps(const std::string& out) {
  static const std::regex step(R"(\] (RUN|COPY|WORKDIR|ADD) |\[image\] )");
  int n = 0;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    if (std::regex_search(out.substr(start, end - start), step)) ++n;
    start = end + 1;
  }
  return n;
}

TEST(CMake, OneGraphForCodeAndImages) {
  Monorepo m("cmake-monorepo");
  Output cfg = m.configure();
  ASSERT_EQ(cfg.exit_code, 0) << cfg.output;

  // The steps are CMake's own edges (no nested ninja), with restat.
  std::string bn = read_file(m.build + "/build.ninja");
  EXPECT_EQ(bn.find("ninja -C"), std::string::npos);
  EXPECT_NE(bn.find("step .dfgen/s0-1.spec"), std::string::npos);
  std::smatch sm;
  std::regex image_edge(
      R"(build dfgen/server-image/\.dfgen/image-server\.result[^\n]*CUSTOM_COMMAND[^\n]*\n(  [^\n]*\n)*)");
  ASSERT_TRUE(std::regex_search(bn, sm, image_edge)) << bn.substr(0, 4000);
  EXPECT_NE(sm.str().find("restat = 1"), std::string::npos) << sm.str();

  // First build: the code and the images.
  Output first = m.ninja("all test-image");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("Linking CXX executable echo-server"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("Linking CXX executable echo-cli"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("[server 1/1] COPY echo-server /app/echo-server"), std::string::npos)
      << first.output;
  EXPECT_NE(first.output.find("[cli 1/1] COPY echo-cli /app/echo-cli"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("[test 2/2] RUN"), std::string::npos) << first.output;
  EXPECT_EQ(count_lines_with(first.output, "[image] "), 3) << first.output;

  // The server answers on loopback inside the container (its own network
  // namespace): once through busybox nc in the server image, once through
  // the CLI in the test image.
  Output srv = sh("dfrun run monorepo/server:latest sh -c "
                  "'/app/echo-server 7000 2>/dev/null & "
                  "for i in 1 2 3 4 5 6 7 8 9 10; do echo over-nc | nc -w 1 127.0.0.1 7000 2>/dev/null && exit 0; "
                  "sleep 0.3; done; exit 1'");
  EXPECT_EQ(srv.exit_code, 0) << srv.output;
  EXPECT_NE(srv.output.find("echo: over-nc"), std::string::npos) << srv.output;
  Output both = sh("dfrun run monorepo/test:latest sh -c "
                   "'/app/echo-server 7002 2>/dev/null & "
                   "for i in 1 2 3 4 5 6 7 8 9 10; do /app/echo-cli 7002 hello loopback 2>/dev/null && exit 0; "
                   "sleep 0.3; done; exit 1'");
  EXPECT_EQ(both.exit_code, 0) << both.output;
  EXPECT_EQ(both.output, "echo: hello loopback\n");
  Output cli = sh("dfrun run monorepo/cli:latest 7003 x");   // ENTRYPOINT, nothing listening
  EXPECT_NE(cli.exit_code, 0) << cli.output;
  EXPECT_NE(cli.output.find("echo-cli: connect"), std::string::npos) << cli.output;

  // No-op build: nothing runs.
  Output noop = m.ninja("all test-image");
  EXPECT_NE(noop.output.find("no work to do"), std::string::npos) << noop.output;

  // A real edit of server.cpp: that binary, and only the image steps that copy it.
  m.append("src/server.cpp", "static const char* kBuildNote [[maybe_unused]] = \"v2\";\n"
                             "const char* build_note() { return kBuildNote; }\n");
  Output edit = m.ninja("all test-image");
  ASSERT_EQ(edit.exit_code, 0) << edit.output;
  EXPECT_NE(edit.output.find("Linking CXX executable echo-server"), std::string::npos) << edit.output;
  EXPECT_EQ(edit.output.find("cli.cpp"), std::string::npos) << edit.output;
  EXPECT_EQ(edit.output.find("Linking CXX executable echo-cli"), std::string::npos) << edit.output;
  EXPECT_EQ(edit.output.find("context echo-cli"), std::string::npos) << edit.output;
  EXPECT_NE(edit.output.find("[server 1/1] COPY echo-server"), std::string::npos) << edit.output;
  EXPECT_NE(edit.output.find("[test 1/2] COPY echo-server echo-cli /app/"), std::string::npos) << edit.output;
  EXPECT_EQ(edit.output.find("[cli "), std::string::npos) << edit.output;
  EXPECT_EQ(edit.output.find("[base "), std::string::npos) << edit.output;
  EXPECT_EQ(count_lines_with(edit.output, "[image] "), 2) << edit.output;

  // A comment-only edit of cli.cpp: recompiled, relinked to the same bytes,
  // re-staged without a change, and no image step runs.
  m.append("src/cli.cpp", "// a comment that changes no byte of the binary\n");
  Output comment = m.ninja("all test-image");
  ASSERT_EQ(comment.exit_code, 0) << comment.output;
  EXPECT_NE(comment.output.find("cli.cpp.o"), std::string::npos) << comment.output;
  EXPECT_EQ(image_steps(comment.output), 0) << comment.output;
  Output after = m.ninja("all test-image");
  EXPECT_NE(after.output.find("no work to do"), std::string::npos) << after.output;

  // Changing the Dockerfile re-runs CMake (and with it dfgen).
  m.append("Dockerfile", "# note\n");
  Output regen = m.ninja("-n");
  EXPECT_NE(regen.output.find("Re-running CMake"), std::string::npos) << regen.output;
}

TEST(CMake, OneImageBuildsOnlyWhatItNeeds) {
  Monorepo m("cmake-one-image");
  Output cfg = m.configure();
  ASSERT_EQ(cfg.exit_code, 0) << cfg.output;
  Output one = m.ninja("cli-image");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("Linking CXX executable echo-cli"), std::string::npos) << one.output;
  EXPECT_EQ(one.output.find("echo-server"), std::string::npos) << one.output;
  EXPECT_EQ(one.output.find("[server "), std::string::npos) << one.output;
  EXPECT_EQ(count_lines_with(one.output, "[image] "), 1) << one.output;
  EXPECT_NE(one.output.find("[image] cli"), std::string::npos) << one.output;
}

// `cmake --install` then find_package(dfgen): the package config finds dfgen
// and dfrun in PREFIX/bin without being told.
TEST(CMake, InstalledPackageConfig) {
  std::string prefix = temp_dir("cmake-prefix");
  Output inst = sh("cmake --install " + q(DFGEN_BINARY_DIR) + " --prefix " + q(prefix) + " 2>&1");
  ASSERT_EQ(inst.exit_code, 0) << inst.output;
  Monorepo m("cmake-installed");
  Output cfg = sh("cmake -S " + q(m.src) + " -B " + q(m.build) + " -G Ninja -DCMAKE_PREFIX_PATH=" + q(prefix) +
                  " -DDFGEN_STORE=" + q(store_dir()) + " -DBUSYBOX_IMAGE=" + fixture("busybox") + " 2>&1");
  ASSERT_EQ(cfg.exit_code, 0) << cfg.output;
  std::string cache = read_file(m.build + "/CMakeCache.txt");
  EXPECT_NE(cache.find("dfgen_DIR:PATH=" + prefix + "/lib/cmake/dfgen"), std::string::npos) << cache;
  EXPECT_NE(cache.find("DFGEN_EXECUTABLE:FILEPATH=" + prefix + "/bin/dfgen"), std::string::npos) << cache;
  Output build = m.ninja("server-image");
  ASSERT_EQ(build.exit_code, 0) << build.output;
  EXPECT_NE(build.output.find("[image] server"), std::string::npos) << build.output;
  EXPECT_NE(read_file(m.build + "/build.ninja").find(prefix + "/bin/dfrun"), std::string::npos);
}

// OUTPUT type=docker through the module: the server stage exported as a
// docker-archive by the image's own edge, `docker load`ed and run by Docker,
// the server answering busybox nc on the container's loopback.
TEST(CMake, ServerImageExportedForDocker) {
  Monorepo m("cmake-docker");
  std::string tag = "dfgen-e2e/monorepo-server:" + std::to_string(::getpid());
  write_file(m.src + "/CMakeLists.txt",
             read_file(m.src + "/CMakeLists.txt") +
                 "add_docker_image(server-export TARGET server TAGS " + tag +
                 " BUILD_CONTEXTS ${contexts} DEPENDS echo-server OUTPUT type=docker,dest=server.tar)\n");
  Output cfg = m.configure();
  ASSERT_EQ(cfg.exit_code, 0) << cfg.output;
  Output build = m.ninja("server-export");
  ASSERT_EQ(build.exit_code, 0) << build.output;
  EXPECT_NE(build.output.find("[image] monorepo-server"), std::string::npos) << build.output;
  std::string tar = m.build + "/server.tar";
  ASSERT_EQ(sh("test -s " + q(tar)).exit_code, 0) << build.output;

  Output info = sh("docker info >/dev/null");
  ASSERT_EQ(info.exit_code, 0) << "dockerd is not running (scripts/start-dockerd.sh): " << info.output;
  struct Cleanup {
    std::string ref;
    ~Cleanup() { sh("docker rmi -f " + q(ref) + " >/dev/null 2>&1"); }
  } cleanup{tag};
  Output load = sh("docker load -i " + q(tar));
  ASSERT_EQ(load.exit_code, 0) << load.output;
  EXPECT_NE(load.output.find("Loaded image: " + tag), std::string::npos) << load.output;
  Output ran = sh("docker run --rm " + tag + " sh -c "
                  "'/app/echo-server 7000 2>/dev/null & "
                  "for i in $(seq 1 50); do echo from-docker | nc -w 2 127.0.0.1 7000 2>/dev/null && exit 0; "
                  "sleep 0.2; done; exit 1'");
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_EQ(ran.output, "echo: from-docker\n");
  // The image keeps its CMD and working directory.
  Output cmd = sh("docker image inspect -f '{{json .Config.Cmd}} {{.Config.WorkingDir}}' " + tag);
  EXPECT_EQ(cmd.output, "[\"/app/echo-server\",\"7000\"] /app\n") << cmd.output;

  // A rebuild with nothing changed leaves the archive alone; the archive is
  // an output of the image edge, so a removed one is written again.
  Output noop = m.ninja("server-export");
  EXPECT_NE(noop.output.find("no work to do"), std::string::npos) << noop.output;
  ASSERT_EQ(sh("rm " + q(tar)).exit_code, 0);
  Output again = m.ninja("server-export");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(count_lines_with(again.output, "[image] monorepo-server"), 1) << again.output;
  EXPECT_EQ(image_steps(again.output), 1) << again.output;
  EXPECT_EQ(sh("test -s " + q(tar)).exit_code, 0) << again.output;
}

TEST(CMake, OtherGeneratorsAreRefused) {
  Monorepo m("cmake-makefiles");
  Output cfg = m.configure("Unix Makefiles");
  EXPECT_NE(cfg.exit_code, 0) << cfg.output;
  EXPECT_NE(cfg.output.find("needs the Ninja or Ninja Multi-Config"), std::string::npos)
      << cfg.output;
}

}  // namespace
}  // namespace dfgen::e2e
