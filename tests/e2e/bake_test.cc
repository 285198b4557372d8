// End to end: dfgen --bake writes one build.ninja for several images
// (docs/bake.md). Two targets of one Dockerfile share a stage, whose steps are
// one edge and run once; a third image has its own context; `ninja NAME`
// builds one image; inherited args and tags reach the images.
#include <gtest/gtest.h>

#include <unistd.h>

#include <ctime>

#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {


struct Project {
  std::string nonce = std::to_string(::time(nullptr)) + "-" + std::to_string(::getpid());
  std::string one = temp_dir("bake-one"), two = temp_dir("bake-two"), b = temp_dir("bake-build");
  std::string busybox = fixture("busybox");
  Project() {
    write_file(one + "/Dockerfile",
               "FROM busybox AS base\n"
               "COPY shared.txt /shared.txt\n"
               "RUN echo shared-" + nonce + " && cat /shared.txt > /base-ran\n"
               "\n"
               "FROM base AS a\n"
               "ARG WHO=nobody\n"
               "RUN echo \"a $WHO\" > /who\n"
               "\n"
               "FROM base AS b\n"
               "ARG WHO=nobody\n"
               "RUN echo \"b $WHO\" > /who\n");
    write_file(one + "/shared.txt", "shared\n");
    write_file(two + "/Dockerfile", "FROM busybox\nCOPY c.txt /c.txt\nRUN echo c-" + nonce + "\n");
    write_file(two + "/c.txt", "c\n");
    std::string contexts = "\"contexts\": {\"busybox\": \"docker-image://" + busybox + "\"}";
    write_file(b + "/images.json",
               "{\"group\": {\"default\": {\"targets\": [\"a\", \"b\", \"c\"]}},\n"
               " \"target\": {\n"
               "  \"_common\": {\"context\": \"" + one + "\", " + contexts + ",\n"
               "               \"args\": {\"WHO\": \"common\"}, \"tags\": [\"bake-common:" + nonce + "\"]},\n"
               "  \"a\": {\"inherits\": [\"_common\"], \"target\": \"a\", \"tags\": [\"bake-a:" + nonce + "\"]},\n"
               "  \"b\": {\"inherits\": [\"_common\"], \"target\": \"b\", \"args\": {\"WHO\": \"bob\"}},\n"
               "  \"c\": {\"context\": \"" + two + "\", " + contexts + ", \"tags\": [\"bake-c:" + nonce + "\"]}\n"
               " }}\n");
  }
  Output generate() { return sh("cd " + q(b) + " && dfgen --bake images.json"); }
  Output ninja(const std::string& targets = "") { return sh("ninja -C " + q(b) + " " + targets); }
  std::string graph() { return read_file(b + "/build.ninja"); }
};

TEST(Bake, SharedStepsAreOneEdgeAndEachImageIsATarget) {
  Project p;
  Output gen = p.generate();
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  std::string g = p.graph();
  // The base stage's two steps are one edge each, read by a and b.
  EXPECT_EQ(count_lines_with(g, "desc = [base 1/2] COPY shared.txt /shared.txt"), 1) << g;
  EXPECT_EQ(count_lines_with(g, "desc = [base 2/2] RUN echo shared-" + p.nonce), 1) << g;
  EXPECT_EQ(count_lines_with(g, "desc = [image] "), 3) << g;
  EXPECT_EQ(count_lines_with(g, "build a: phony"), 1) << g;
  EXPECT_EQ(count_lines_with(g, "build all: phony a b c"), 1) << g;
  EXPECT_EQ(count_lines_with(g, "default all"), 1) << g;
  // One regen edge: the bake file and both Dockerfiles are its inputs.
  EXPECT_EQ(count_lines_with(g, "build build.ninja: regen"), 1) << g;
  EXPECT_EQ(count_lines_with(g, "build build.ninja: regen | " + p.b + "/images.json " + p.one + "/Dockerfile " +
                                    p.two + "/Dockerfile"), 1) << g;

  // `ninja a` builds a's steps only.
  Output a = p.ninja("a");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(count_lines_with(a.output, "] RUN echo shared-" + p.nonce), 1) << a.output;
  EXPECT_EQ(count_lines_with(a.output, "[image] a"), 1) << a.output;
  EXPECT_EQ(count_lines_with(a.output, "[image] b"), 0) << a.output;
  EXPECT_EQ(count_lines_with(a.output, "c.txt"), 0) << a.output;

  // `ninja` builds the default group: the shared steps do not run again.
  Output all = p.ninja();
  ASSERT_EQ(all.exit_code, 0) << all.output;
  EXPECT_EQ(count_lines_with(all.output, "RUN echo shared-"), 0) << all.output;
  EXPECT_EQ(count_lines_with(all.output, "COPY shared.txt"), 0) << all.output;
  EXPECT_EQ(count_lines_with(all.output, "RUN echo \"b $WHO\""), 1) << all.output;
  EXPECT_EQ(count_lines_with(all.output, "] COPY c.txt /c.txt"), 1) << all.output;
  EXPECT_EQ(count_lines_with(all.output, "[image] b"), 1) << all.output;
  EXPECT_EQ(count_lines_with(all.output, "[image] c"), 1) << all.output;
  EXPECT_NE(p.ninja().output.find("no work to do"), std::string::npos);

  // Inheritance: a has _common's WHO and its own tag; b its own WHO and _common's tag.
  EXPECT_EQ(sh("dfrun run bake-a:" + p.nonce + " cat /who").output, "a common\n");
  EXPECT_EQ(sh("dfrun run bake-common:" + p.nonce + " cat /who").output, "b bob\n");
  EXPECT_EQ(sh("dfrun run bake-c:" + p.nonce + " cat /c.txt").output, "c\n");
  EXPECT_EQ(sh("dfrun run bake-a:" + p.nonce + " cat /base-ran").output, "shared\n");
}

TEST(Bake, RegeneratingKeepsTheGraphAndAnEditRebuildsOnlyItsReaders) {
  Project p;
  ASSERT_EQ(p.generate().exit_code, 0);
  ASSERT_EQ(p.ninja().exit_code, 0);
  std::string before = p.graph();
  ASSERT_EQ(p.generate().exit_code, 0);
  EXPECT_EQ(p.graph(), before);
  write_file(p.two + "/c.txt", "c2\n");
  Output again = p.ninja();
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(count_lines_with(again.output, "] COPY c.txt /c.txt"), 1) << again.output;
  EXPECT_EQ(count_lines_with(again.output, "shared"), 0) << again.output;
  EXPECT_EQ(count_lines_with(again.output, "[image] a"), 0) << again.output;
  EXPECT_EQ(sh("dfrun run bake-c:" + p.nonce + " cat /c.txt").output, "c2\n");
}

// cache-to in the bake file exports a target's steps; on another machine
// (its own store) --cache-from on the command line, which applies to every
// target, brings them back: the RUN does not run there.
TEST(Bake, CacheToPerTargetAndCacheFromOnTheCommandLine) {
  std::string nonce = std::to_string(::time(nullptr)) + "-" + std::to_string(::getpid());
  std::string ctx = temp_dir("bake-cache-ctx"), cache = temp_dir("bake-cache") + "/layout";
  write_file(ctx + "/Dockerfile", "FROM busybox\nRUN echo RAN\"\"-" + nonce + " | tee /ran\n");
  std::string busybox = fixture("busybox");
  auto bake = [&](const std::string& name, const std::string& cache_key) {
    std::string b = temp_dir("bake-cache-" + name);
    write_file(b + "/images.json",
               "{\"target\": {\"x\": {\"context\": \"" + ctx + "\", \"tags\": [\"bake-cache-" + name + ":" + nonce +
                   "\"], \"contexts\": {\"busybox\": \"docker-image://" + busybox + "\"}" + cache_key + "}}}");
    return b;
  };
  std::string one = bake("one", ", \"cache-to\": [{\"type\": \"local\", \"dest\": \"" + cache + "\"}]");
  Output gen = sh("cd " + q(one) + " && dfgen --bake images.json && ninja");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  EXPECT_EQ(count_lines_with(gen.output, "RAN-" + nonce), 1) << gen.output;
  EXPECT_EQ(count_lines_with(gen.output, "cache " + cache + " sha256:"), 1) << gen.output;

  // Another store, with only the base image.
  std::string store = temp_dir("bake-cache-store");
  std::string env = "DFGEN_STORE=" + q(store) + " ";
  Output imported = sh(env + "dfrun import " + q(fixture_archive("busybox")) + " -t " + busybox);
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  std::string two = bake("two", "");
  Output again = sh("cd " + q(two) + " && " + env + "dfgen --bake images.json --cache-from type=local,src=" +
                    q(cache) + " && " + env + "ninja");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(count_lines_with(again.output, "RAN-" + nonce), 0) << again.output;
  EXPECT_EQ(sh(env + "dfrun run bake-cache-two:" + nonce + " cat /ran").output, "RAN-" + nonce + "\n");
}

TEST(Bake, AnUnknownKeyIsAnError) {
  std::string d = temp_dir("bake-bad");
  write_file(d + "/images.json", "{\"target\": {\"x\": {\"tag\": [\"x\"]}}}");
  Output o = sh("cd " + q(d) + " && dfgen --bake images.json");
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.output, "dfgen: images.json: target \"x\".tag: unknown key (known: context, dockerfile, target, args, "
                      "tags, contexts, output, cache-from, cache-to, inherits)\n");
}

}  // namespace
}  // namespace dfgen::e2e
