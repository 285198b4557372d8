// End to end: why did this rebuild (dfrun explain), what does a change
// affect (dfgen affected), and the one job budget of RUN steps (run_pool).
// Real dfgen, ninja and dfrun over the busybox fixture (docs/insight.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "core/sha256.h"
#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {


// The short form explain prints: "sha256:" and 12 hex digits.
std::string short_digest(const std::string& content) { return "sha256:" + sha256_hex(content).substr(0, 12); }

// Two stages reading different files, an ARG used by a RUN, a final stage
// built on one and copying from the other, an ignored and an unread file.
struct Project {
  std::string ctx, b;
  std::string busybox = fixture("busybox");   // what the name busybox stands for
  // Each test's own repository, so parallel tests never share a tag in the one store; the
  // image (and Ninja target) is still called "insight".
  std::string ref;
  explicit Project(const std::string& name)
      : ctx(temp_dir(name + "-ctx")), b(temp_dir(name + "-build")), ref(name + "/insight") {
    // A nonce per test run keeps the shared test store from answering the first build.
    std::string nonce = std::to_string(::time(nullptr)) + "-" + std::to_string(::getpid());
    write_file(ctx + "/Dockerfile",
               "FROM busybox AS base\n"
               "ARG VERSION=1.2\n"
               "COPY app/ /app/\n"
               "RUN echo " + nonce + " $VERSION > /version && cat /app/a.txt > /copy-a.txt\n"
               "\n"
               "FROM busybox AS other\n"
               "COPY other.txt /other.txt\n"
               "RUN echo " + nonce + " && cat /other.txt > /o.txt\n"
               "\n"
               "FROM base\n"
               "COPY --from=other /o.txt /o.txt\n");
    write_file(ctx + "/app/a.txt", "a1\n");
    write_file(ctx + "/app/skip.txt", "ignored\n");
    write_file(ctx + "/other.txt", "o1\n");
    write_file(ctx + "/unread.txt", "nobody reads me\n");
    write_file(ctx + "/.dockerignore", "app/skip.txt\n");
  }
  Output generate(const std::string& extra = "") {
    return sh("dfgen " + q(ctx) + " -B " + q(b) + " -t " + ref + " --build-context busybox=docker-image://" +
              busybox + " " + extra);
  }
  Output ninja() { return sh("ninja -C " + q(b)); }
  Output explain(const std::string& what) { return sh("dfrun explain -C " + q(b) + " " + what); }
  Output affected(const std::string& files) { return sh("cd " + q(ctx) + " && dfgen affected -B " + q(b) + " " + files); }
  // The nonce the constructor wrote into `dockerfile` (the word after the first "RUN echo ").
  std::string nonce_in(const std::string& dockerfile) const {
    size_t at = dockerfile.find("RUN echo ") + 9;
    return dockerfile.substr(at, dockerfile.find(' ', at) - at);
  }
  // The step whose description contains `text` ("s0-1"), from its spec.
  std::string step(const std::string& text) {
    Output o = sh("cd " + q(b + "/.dfgen") + " && grep -l -F " + q(text) + " s*.spec | head -1");
    return o.output.substr(0, o.output.find(".spec"));
  }
};

TEST(Explain, AnEditedFileIsOneLineAndDownstreamStepsNameTheirParent) {
  Project p("explain-edit");
  ASSERT_EQ(p.generate().exit_code, 0);
  Output first = p.ninja();
  ASSERT_EQ(first.exit_code, 0) << first.output;
  std::string copy = p.step("COPY app/ /app/");
  ASSERT_FALSE(copy.empty());
  EXPECT_EQ(p.explain(copy).output, "no change recorded (built once, or its key never changed)\n");

  write_file(p.ctx + "/app/a.txt", "a2\n");
  Output second = p.ninja();
  ASSERT_EQ(second.exit_code, 0) << second.output;
  std::string cause = "app/a.txt: content " + short_digest("a1\n") + " -> " + short_digest("a2\n");
  Output one = p.explain(copy);
  EXPECT_EQ(one.exit_code, 0);
  EXPECT_EQ(one.output, cause + "\n");

  // The image's chain: the COPY, then each step after it names its parent;
  // the other stage did not change and is not mentioned.
  Output chain = p.explain("insight");
  EXPECT_EQ(chain.exit_code, 0) << chain.output;
  EXPECT_EQ(count_lines_with(chain.output, "  " + cause), 1) << chain.output;
  EXPECT_EQ(count_lines_with(chain.output, "  parent step [base 1/2] changed"), 1) << chain.output;
  EXPECT_EQ(count_lines_with(chain.output, "  parent step [base 2/2] changed"), 1) << chain.output;
  EXPECT_EQ(count_lines_with(chain.output, "[other "), 0) << chain.output;
  // The stage target stops at the stage.
  Output stage = p.explain("base");
  EXPECT_EQ(count_lines_with(stage.output, "  "), 2) << stage.output;

  // A no-op build keeps the last change explainable.
  EXPECT_NE(p.ninja().output.find("no work to do"), std::string::npos);
  EXPECT_EQ(p.explain(copy).output, cause + "\n");
}

TEST(Explain, AnArgChangeIsOneLine) {
  Project p("explain-arg");
  ASSERT_EQ(p.generate().exit_code, 0);
  ASSERT_EQ(p.ninja().exit_code, 0);
  ASSERT_EQ(p.generate("--build-arg VERSION=1.3").exit_code, 0);
  Output second = p.ninja();
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(p.explain(p.step("RUN echo")).output, "ARG VERSION: 1.2 -> 1.3\n");
  Output chain = p.explain("insight");
  EXPECT_EQ(count_lines_with(chain.output, "  ARG VERSION: 1.2 -> 1.3"), 1) << chain.output;
  EXPECT_EQ(count_lines_with(chain.output, "COPY app/"), 0) << chain.output;   // its key did not change
  Output version = sh("dfrun run " + p.ref + " cat /version");
  EXPECT_NE(version.output.find(" 1.3\n"), std::string::npos) << version.output;
}

TEST(Explain, ABaseImageWithANewDigestIsNamed) {
  Project p("explain-base");
  ASSERT_EQ(p.generate().exit_code, 0);
  ASSERT_EQ(p.ninja().exit_code, 0);
  // A new manifest for the name busybox: the fixture with one more label
  // (same layers), made by dfgen itself.
  std::string nonce = std::to_string(::time(nullptr)) + "-" + std::to_string(::getpid());
  std::string ctx = temp_dir("explain-base-image"), b = temp_dir("explain-base-image-build");
  write_file(ctx + "/Dockerfile", "FROM busybox\nLABEL nonce=" + nonce + "\n");
  Output made = sh("dfgen " + q(ctx) + " -B " + q(b) + " -t insight-base:" + nonce +
                   " --build-context busybox=docker-image://" + p.busybox + " && ninja -C " + q(b));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  p.busybox = "insight-base:" + nonce;
  ASSERT_EQ(p.generate().exit_code, 0);
  Output second = p.ninja();
  ASSERT_EQ(second.exit_code, 0) << second.output;

  Output one = p.explain(p.step("COPY app/ /app/"));
  EXPECT_EQ(std::count(one.output.begin(), one.output.end(), '\n'), 1) << one.output;
  EXPECT_TRUE(one.output.starts_with("base image busybox re-resolved to a new digest (sha256:")) << one.output;
  Output chain = p.explain("insight");   // both stages start from it
  EXPECT_EQ(count_lines_with(chain.output, "  base image busybox re-resolved to a new digest"), 2) << chain.output;
  EXPECT_EQ(count_lines_with(chain.output, "  --from step [other 2/2] changed"), 1) << chain.output;
}

TEST(Explain, AChangedInstructionIsOneLine) {
  Project p("explain-instruction");
  ASSERT_EQ(p.generate().exit_code, 0);
  ASSERT_EQ(p.ninja().exit_code, 0);
  std::string dockerfile = read_file(p.ctx + "/Dockerfile");
  std::string before = "cat /other.txt > /o.txt", after = "cat /other.txt /other.txt > /o.txt";
  ASSERT_NE(dockerfile.find(before), std::string::npos);
  write_file(p.ctx + "/Dockerfile", dockerfile.replace(dockerfile.find(before), before.size(), after));
  Output second = p.ninja();   // build.ninja regenerates itself
  ASSERT_EQ(second.exit_code, 0) << second.output;
  std::string run = p.step("RUN echo " + p.nonce_in(dockerfile) + " && cat /other.txt");
  ASSERT_FALSE(run.empty());
  Output one = p.explain(run);
  EXPECT_EQ(one.output, "op: args changed: [\"/bin/sh\",\"-c\",\"echo " + p.nonce_in(dockerfile) + " && " + before +
                            "\"] -> [\"/bin/sh\",\"-c\",\"echo " + p.nonce_in(dockerfile) + " && " + after + "\"]\n")
      << one.output;
  Output chain = p.explain("insight");
  EXPECT_EQ(count_lines_with(chain.output, "  op: args changed: "), 1) << chain.output;
  EXPECT_EQ(count_lines_with(chain.output, "  --from step [other 2/2] changed"), 1) << chain.output;
}

// The image edge: which layer changed (and the step that made it), which
// config field, which history line.
TEST(Explain, TheImageNamesItsChangedLayerAndConfigField) {
  Project p("explain-image");
  std::string dockerfile = read_file(p.ctx + "/Dockerfile");
  write_file(p.ctx + "/Dockerfile", dockerfile + "LABEL tier=a\n");
  ASSERT_EQ(p.generate().exit_code, 0);
  ASSERT_EQ(p.ninja().exit_code, 0);
  EXPECT_EQ(p.explain("insight").output, "");   // built once: nothing to say

  write_file(p.ctx + "/app/a.txt", "a2\n");
  ASSERT_EQ(p.ninja().exit_code, 0);
  Output chain = p.explain("insight");
  // busybox's layer, COPY app/, the RUN that reads it, COPY --from (unchanged).
  size_t image = chain.output.find("IMAGE insight\n");
  ASSERT_NE(image, std::string::npos) << chain.output;
  std::string tail = chain.output.substr(image);
  EXPECT_EQ(count_lines_with(tail, "  layer 2/4: sha256:"), 1) << tail;
  EXPECT_EQ(count_lines_with(tail, "(COPY app/ /app/"), 1) << tail;
  EXPECT_EQ(count_lines_with(tail, "  layer 3/4: sha256:"), 1) << tail;
  EXPECT_EQ(count_lines_with(tail, "  layer 4/4"), 0) << tail;
  EXPECT_EQ(count_lines_with(tail, "  "), 2) << tail;

  write_file(p.ctx + "/Dockerfile", dockerfile + "LABEL tier=b\n");
  ASSERT_EQ(p.ninja().exit_code, 0);
  Output label = p.explain("insight");
  image = label.output.find("IMAGE insight\n");
  ASSERT_NE(image, std::string::npos) << label.output;
  EXPECT_EQ(label.output.substr(image), "IMAGE insight\n"
                                        "  history 6/6: LABEL tier=a -> LABEL tier=b\n"
                                        "  config Labels.tier: a -> b\n");
}

TEST(Explain, UnknownTargetIsAnError) {
  Project p("explain-unknown");
  ASSERT_EQ(p.generate().exit_code, 0);
  Output o = p.explain("nope");
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.output.find("no target \"nope\""), std::string::npos) << o.output;
}

TEST(Affected, ListsExactlyTheStagesAndImagesReadingAFile) {
  Project p("affected");
  ASSERT_EQ(p.generate().exit_code, 0);
  // In a copied directory: its stage and the image built on it.
  EXPECT_EQ(p.affected("app/a.txt").output, "base\ninsight\n");
  // Read by the other stage, reaching the image through COPY --from.
  EXPECT_EQ(p.affected(q(p.ctx + "/other.txt")).output, "other\ninsight\n");
  EXPECT_EQ(p.affected("app/a.txt other.txt").output, "base\nother\ninsight\n");
  // Read by nothing, ignored, or only by the generator: nothing.
  Output none = p.affected("unread.txt");
  EXPECT_EQ(none.exit_code, 0);
  EXPECT_EQ(none.output, "");
  EXPECT_EQ(p.affected("app/skip.txt").output, "");
  EXPECT_EQ(p.affected("Dockerfile").output, "");
}

TEST(RunPool, RunStepsShareOnePoolOfTheGivenDepth) {
  Project p("pool");
  ASSERT_EQ(p.generate("--run-jobs 3").exit_code, 0);
  std::string ninja = read_file(p.b + "/build.ninja");
  EXPECT_NE(ninja.find("pool run_pool\n  depth = 3\n"), std::string::npos) << ninja;
  EXPECT_EQ(count_lines_with(ninja, "  pool = run_pool"), 2) << ninja;   // the two RUNs, no COPY
  Output dry = sh("ninja -C " + q(p.b) + " -n");
  EXPECT_EQ(dry.exit_code, 0) << dry.output;

  // Default: the number of cores.
  ASSERT_EQ(p.generate().exit_code, 0);
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  EXPECT_NE(read_file(p.b + "/build.ninja").find("pool run_pool\n  depth = " + std::to_string(cores) + "\n"),
            std::string::npos);
  EXPECT_NE(p.generate("--run-jobs 0").exit_code, 0);
}

}  // namespace
}  // namespace dfgen::e2e
