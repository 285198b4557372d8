// End to end: real dfgen, ninja, dfrun, runc and overlayfs over base images
// made from Debian packages. Each test builds in its own directory against the
// shared test store.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {


// Reads Ninja's log: output -> (start ms, end ms) of its last run.
std::map<std::string, std::pair<long, long>> ninja_log(const std::string& build_dir) {
  std::map<std::string, std::pair<long, long>> out;
  std::istringstream in(read_file(build_dir + "/.ninja_log"));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    long start, end;
    std::string mtime, path;
    f >> start >> end >> mtime >> path;
    out[path] = {start, end};
  }
  return out;
}

std::string manifest_digest(const std::string& build_dir, const std::string& image) {
  std::string r = read_file(build_dir + "/.dfgen/image-" + image + ".result");
  auto pos = r.find("\"digest\": \"");
  return pos == std::string::npos ? "" : r.substr(pos + 11, 71);
}

TEST(Hello, BuildsRunsAndHasOneFile) {
  std::string golang = fixture("golang");
  std::string b = temp_dir("hello");
  Output gen = sh("dfgen " + q(source_dir() + "/examples/hello") + " -B " + q(b) +
               " -t hello-e2e --build-context golang:1.21=docker-image://" + golang +
               " --output type=local,dest=" + q(b + "/rootfs") +
               " --output type=docker,dest=" + q(b + "/hello.tar"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -C " + q(b) + " hello-e2e");
  ASSERT_EQ(build.exit_code, 0) << build.output;
  EXPECT_NE(build.output.find("[stage-0 3/3] RUN go build -o /bin/hello ./main.go"), std::string::npos)
      << build.output;

  Output run = sh("dfrun run hello-e2e");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, "hello, world\n");

  // The final image holds exactly one file: /bin/hello.
  Output files = sh("cd " + q(b + "/rootfs") + " && find . -type f -o -type l | sort");
  EXPECT_EQ(files.output, "./bin/hello\n");

  // Nothing changed: nothing runs.
  Output again = sh("ninja -C " + q(b) + " hello-e2e");
  EXPECT_NE(again.output.find("no work to do"), std::string::npos) << again.output;
  Output explain = sh("ninja -C " + q(b) + " -n -d explain hello-e2e");
  EXPECT_EQ(count_lines_with(explain.output, "ninja explain:"), 0) << explain.output;
}

TEST(Hello, DockerLoadAndRun) {
  std::string golang = fixture("golang");
  std::string b = temp_dir("hello-docker");
  Output gen = sh("dfgen " + q(source_dir() + "/examples/hello") + " -B " + q(b) +
               " -t dfgen-e2e/hello-docker --build-context golang:1.21=docker-image://" + golang +
               " --output type=docker,dest=" + q(b + "/hello.tar"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -C " + q(b));
  ASSERT_EQ(build.exit_code, 0) << build.output;
  Output info = sh("docker info >/dev/null");
  ASSERT_EQ(info.exit_code, 0) << "dockerd is not running (scripts/start-dockerd.sh): " << info.output;
  Output load = sh("docker load -i " + q(b + "/hello.tar"));
  ASSERT_EQ(load.exit_code, 0) << load.output;
  Output run = sh("docker run --rm dfgen-e2e/hello-docker");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, "hello, world\n");
}

TEST(Hello, BadHeredocIsRejectedWithAHint) {
  std::string b = temp_dir("bad");
  Output gen = sh("cd " + q(source_dir() + "/examples/bad-heredoc") + " && dfgen -B " + q(b));
  EXPECT_NE(gen.exit_code, 0);
  EXPECT_NE(gen.output.find("Dockerfile:5:1: unknown instruction: PACKAGE"), std::string::npos) << gen.output;
  EXPECT_NE(gen.output.find("<<EOF"), std::string::npos) << gen.output;
  EXPECT_FALSE(std::ifstream(b + "/build.ninja").good());
}

TEST(Hello, TargetBuildStopsAtTheBuildStage) {
  std::string golang = fixture("golang");
  std::string b = temp_dir("target");
  Output gen = sh("dfgen " + q(source_dir() + "/examples/named-stages") + " -B " + q(b) +
               " --target build -t ns-build --build-context golang:1.21=docker-image://" + golang);
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -C " + q(b));
  ASSERT_EQ(build.exit_code, 0) << build.output;
  EXPECT_EQ(count_lines_with(build.output, "stage-1"), 0) << build.output;
  EXPECT_EQ(count_lines_with(build.output, "--from=build"), 0) << build.output;
  Output run = sh("dfrun run ns-build /bin/hello");
  EXPECT_EQ(run.output, "hello, world\n");
  Output go = sh("dfrun run ns-build go version");
  EXPECT_EQ(go.exit_code, 0) << go.output;
}

// A context with two stages that read different files, and a final stage.
struct Project {
  std::string ctx, b;
  std::string tag;   // its own image name: tests run in parallel against one store
  explicit Project(const std::string& name)
      : ctx(temp_dir(name + "-ctx")), b(temp_dir(name + "-build")), tag("proj-" + name) {
    std::string busybox = fixture("busybox");
    // A nonce per test run keeps the shared test store from answering the first build.
    std::string nonce = std::to_string(::time(nullptr)) + "-" + std::to_string(::getpid());
    write_file(ctx + "/Dockerfile",
               "FROM busybox AS base\n"
               "COPY app/ /app/\n"
               "RUN echo RUN-EXEC\"\"UTED-A " + nonce + " && cat /app/a.txt > /copy-a.txt\n"
               "\n"
               "FROM busybox AS other\n"
               "COPY other.txt /other.txt\n"
               "RUN echo RUN-EXEC\"\"UTED-O " + nonce + " && cat /other.txt > /o.txt\n"
               "\n"
               "FROM busybox AS unused\n"
               "RUN echo RUN-EXEC\"\"UTED-UNUSED && exit 1\n"
               "\n"
               "FROM base\n"
               "COPY --from=other /o.txt /o.txt\n"
               "CMD [\"cat\", \"/copy-a.txt\", \"/o.txt\"]\n");
    write_file(ctx + "/app/a.txt", "a1\n");
    write_file(ctx + "/app/skip.txt", "ignored\n");
    write_file(ctx + "/other.txt", "o1\n");
    write_file(ctx + "/.dockerignore", "app/skip.txt\n");
    generate("");
  }
  void generate(const std::string& extra) {
    Output gen = sh("dfgen " + q(ctx) + " -B " + q(b) + " -t " + tag + " --build-context busybox=docker-image://" +
                 fixture("busybox") + " " + extra);
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
  }
  Output ninja(const std::string& args = "") { return sh("ninja -C " + q(b) + " " + args); }
};

TEST(Incremental, NoOpTouchEditAddIgnore) {
  Project p("incr");
  Output first = p.ninja();
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(count_lines_with(first.output, "RUN-EXECUTED-A"), 1) << first.output;
  EXPECT_EQ(count_lines_with(first.output, "RUN-EXECUTED-O"), 1) << first.output;
  EXPECT_EQ(count_lines_with(first.output, "RUN-EXECUTED-UNUSED"), 0) << first.output;
  EXPECT_EQ(sh("dfrun run " + p.tag).output, "a1\no1\n");
  std::string digest = manifest_digest(p.b, p.tag);
  ASSERT_FALSE(digest.empty());

  // No-op.
  Output noop = p.ninja();
  EXPECT_NE(noop.output.find("no work to do"), std::string::npos) << noop.output;

  // touch: the COPY re-runs, finds the same key; nothing after it runs.
  sh("sleep 1; touch " + q(p.ctx + "/app/a.txt"));
  Output touched = p.ninja();
  EXPECT_EQ(touched.exit_code, 0) << touched.output;
  EXPECT_EQ(count_lines_with(touched.output, "COPY app/ /app/"), 1) << touched.output;
  EXPECT_EQ(count_lines_with(touched.output, "RUN-EXECUTED"), 0) << touched.output;
  EXPECT_EQ(count_lines_with(touched.output, "[image]"), 0) << touched.output;
  EXPECT_EQ(manifest_digest(p.b, p.tag), digest);
  EXPECT_NE(p.ninja().output.find("no work to do"), std::string::npos);

  // Content change: that stage's steps and the image re-run; the other stage does not.
  write_file(p.ctx + "/app/a.txt", "a2\n");
  Output edited = p.ninja();
  EXPECT_EQ(edited.exit_code, 0) << edited.output;
  EXPECT_EQ(count_lines_with(edited.output, "RUN-EXECUTED-A"), 1) << edited.output;
  EXPECT_EQ(count_lines_with(edited.output, "RUN-EXECUTED-O"), 0) << edited.output;
  EXPECT_EQ(count_lines_with(edited.output, "COPY other.txt"), 0) << edited.output;
  EXPECT_EQ(sh("dfrun run " + p.tag).output, "a2\no1\n");
  EXPECT_NE(manifest_digest(p.b, p.tag), digest);

  // A new file in a copied directory is picked up (build.ninja regenerates).
  sh("sleep 1");
  write_file(p.ctx + "/app/new.txt", "new\n");
  Output added = p.ninja();
  EXPECT_EQ(added.exit_code, 0) << added.output;
  EXPECT_EQ(sh("dfrun run " + p.tag + " cat /app/new.txt").output, "new\n");

  // A file excluded by .dockerignore changes nothing.
  sh("sleep 1");
  write_file(p.ctx + "/app/skip.txt", "still ignored\n");
  Output ignored = p.ninja();
  EXPECT_NE(ignored.output.find("no work to do"), std::string::npos) << ignored.output;
  Output skip = sh("dfrun run " + p.tag + " ls /app");
  EXPECT_EQ(skip.output, "a.txt\nnew.txt\n");
}

TEST(Incremental, FreshBuildDirWithWarmStoreRunsNoRun) {
  Project p("warm");
  Output first = p.ninja();
  ASSERT_EQ(first.exit_code, 0) << first.output;
  std::string digest = manifest_digest(p.b, p.tag);
  std::string b2 = temp_dir("warm-build2");
  Output gen = sh("dfgen " + q(p.ctx) + " -B " + q(b2) + " -t " + p.tag + " --build-context busybox=docker-image://" +
               fixture("busybox"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output second = sh("ninja -C " + q(b2));
  EXPECT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(count_lines_with(second.output, "RUN-EXECUTED"), 0) << second.output;
  EXPECT_EQ(manifest_digest(b2, p.tag), digest);
}

TEST(Parallel, IndependentStagesOverlap) {
  std::string ctx = temp_dir("par-ctx"), b = temp_dir("par-build");
  // A nonce per test run so both RUN steps really execute (no cache hits).
  std::string nonce = std::to_string(::time(nullptr)) + "-" + std::to_string(::getpid());
  write_file(ctx + "/Dockerfile",
             "FROM busybox AS a\n"
             "RUN sleep 2 && echo a" + nonce + " > /a\n"
             "FROM busybox AS b\n"
             "RUN sleep 2 && echo b" + nonce + " > /b\n"
             "FROM busybox\n"
             "COPY --from=a /a /a\n"
             "COPY --from=b /b /b\n");
  Output gen = sh("dfgen " + q(ctx) + " -B " + q(b) + " -t par --build-context busybox=docker-image://" +
                  fixture("busybox"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -j2 -C " + q(b));
  ASSERT_EQ(build.exit_code, 0) << build.output;
  auto log = ninja_log(b);
  auto a = log.at(".dfgen/s0-0.result");
  auto bb = log.at(".dfgen/s1-0.result");
  EXPECT_LT(a.first, bb.second) << "stage a started after stage b ended";
  EXPECT_LT(bb.first, a.second) << "stage b started after stage a ended";
}

}  // namespace
}  // namespace dfgen::e2e

namespace dfgen::e2e {
namespace {

TEST(Entitlements, HostNetworkNeedsAllow) {
  std::string ctx = temp_dir("net-ctx"), b = temp_dir("net-build");
  std::string nonce = std::to_string(::time(nullptr)) + "-" + std::to_string(::getpid());
  write_file(ctx + "/Dockerfile",
             "FROM busybox\n"
             "RUN --network=host echo " + nonce + " && readlink /proc/self/ns/net > /netns\n");
  std::string base = " -B " + q(b) + " -t net-e2e --build-context busybox=docker-image://" + fixture("busybox");
  Output refused = sh("dfgen " + q(ctx) + base);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("Dockerfile:2: RUN --network=host is not allowed in this build"),
            std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("--allow network.host"), std::string::npos) << refused.output;

  Output gen = sh("dfgen " + q(ctx) + base + " --allow network.host");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -C " + q(b));
  ASSERT_EQ(build.exit_code, 0) << build.output;
  EXPECT_EQ(sh("dfrun run net-e2e cat /netns").output, sh("readlink /proc/self/ns/net").output);
}

TEST(Entitlements, UnsupportedMountIsRefusedNotIgnored) {
  std::string ctx = temp_dir("mount-ctx"), b = temp_dir("mount-build");
  write_file(ctx + "/Dockerfile", "FROM busybox\nRUN --mount=type=nfs,target=/x touch /x\n");
  Output gen = sh("dfgen " + q(ctx) + " -B " + q(b) + " -t mount-e2e --build-context busybox=docker-image://" +
                  fixture("busybox"));
  EXPECT_NE(gen.exit_code, 0);
  EXPECT_NE(gen.output.find("--mount: unknown type \"nfs\""), std::string::npos) << gen.output;
  EXPECT_FALSE(std::ifstream(b + "/build.ninja").good());
}

// Every file of `dir` with its checksum and mtime: what a refused dfgen must
// leave as it was.
std::string dir_state(const std::string& dir) {
  return sh("cd " + q(dir) + " && find . -printf '%p %T@\\n' | sort && find . -type f -exec md5sum {} + | sort")
      .output;
}

TEST(Options, BadValuesAreRefusedAndLeaveTheBuildDirAsItWas) {
  std::string ctx = temp_dir("badopt-ctx"), b = temp_dir("badopt-build"), fresh = temp_dir("badopt-fresh");
  write_file(ctx + "/Dockerfile", "FROM scratch\nCOPY a /a\nRUN --mount=type=ssh true\n");
  write_file(ctx + "/a", "a\n");
  std::string base = "dfgen " + q(ctx) + " -t badopt-e2e-" + nonce();
  // A bound socket is all dfgen looks at (dfrun connects to it only at build time).
  Output good = sh("python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' " +
                   q(ctx + "/a.sock") + " && " + base + " -B " + q(b) + " --ssh default=" + q(ctx + "/a.sock"));
  ASSERT_EQ(good.exit_code, 0) << good.output;
  ASSERT_TRUE(std::ifstream(b + "/build.ninja").good());
  const std::string before = dir_state(b);

  struct Bad {
    std::string option, message;
  };
  const Bad bads[] = {
      {"--ssh =", "--ssh =: no id"},
      {"--ssh default=", "--ssh default=: no socket after '='"},
      {"--ssh default=" + ctx + "/no-such.sock", "--ssh default=" + ctx + "/no-such.sock: resolve"},
      {"--ssh default=" + ctx + "/a", "is not a socket"},
      {"--ssh default=a.sock,b.sock", "one socket per id"},
      {"--compression lz4", "--compression: invalid compression \"lz4\": unknown type \"lz4\""},
      {"--compression zstd,level=99", "level must be 1-19"},
      {"--compression gzip,level=x", "level must be a number"},
      {"--cache-to 'type=local,dest=" + ctx + "/c,cache-mounts='", "cache-mounts= takes ids separated by ';'"},
      {"--cache-to 'type=local,dest=" + ctx + "/c,cache-mounts=a;;b'", "cache-mounts= takes ids separated by ';'"},
      {"--cache-to type=local,dest=" + ctx + "/c,mode=all", "mode must be min or max"},
      {"--allow network.none", "--allow: network.none not in {network.host,security.insecure}"},
      {"--allow network.host,nope", "--allow: nope not in"},
  };
  // The same through a bake file.
  write_file(ctx + "/bake.json", "{\"target\": {\"default\": {\"context\": \"" + ctx + "\"}}}");
  const std::string missing = fresh + "/not-made";
  for (const auto& bad : bads) {
    for (const std::string& run : {base + " -B " + q(b), base + " -B " + q(fresh), base + " -B " + q(missing),
                                   "dfgen --bake " + q(ctx + "/bake.json") + " -B " + q(b)}) {
      Output o = sh(run + " " + bad.option);
      EXPECT_NE(o.exit_code, 0) << run << " " << bad.option;
      EXPECT_NE(o.output.find(bad.message), std::string::npos) << run << " " << bad.option << "\n" << o.output;
    }
    EXPECT_EQ(dir_state(b), before) << bad.option;
    EXPECT_EQ(sh("ls -A " + q(fresh)).output, "") << bad.option;   // not-made included
  }
  // buildx's comma-separated entitlements are accepted.
  Output both = sh(base + " -B " + q(fresh) + " --allow network.host,security.insecure --ssh default=" +
                   q(ctx + "/a.sock"));
  EXPECT_EQ(both.exit_code, 0) << both.output;
}

TEST(Options, CacheMountIdNoRunUsesIsAWarning) {
  std::string ctx = temp_dir("cachemount-id-ctx"), b = temp_dir("cachemount-id-build");
  write_file(ctx + "/Dockerfile",
             "FROM scratch\nRUN --mount=type=cache,id=gobuild,target=/c true\n"
             "RUN --mount=type=cache,target=/root/.cache true\n");
  Output o = sh("dfgen " + q(ctx) + " -B " + q(b) + " -t cachemount-id-e2e-" + nonce() + " --cache-to 'type=local,dest=" +
                ctx + "/c,cache-mounts=gobuild;/root/.cache;gobuld' --cache-to 'type=local,dest=" + ctx +
                "/c2,cache-mounts=gobuld'");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_EQ(count_lines_with(o.output, "warning: --cache-to cache-mounts="), 1) << o.output;
  EXPECT_NE(o.output.find("dfgen: warning: --cache-to cache-mounts=gobuld: no RUN --mount=type=cache of this build "
                          "has that id"),
            std::string::npos) << o.output;
  EXPECT_TRUE(std::ifstream(b + "/build.ninja").good());
}

// Without -t the image is named after the context folder, made a valid
// repository name: "My App.V2" builds "my-app.v2", not an error.
TEST(Options, DefaultTagIsTheFolderNameLowercased) {
  std::string parent = temp_dir("default-tag");
  std::string folder = "My App.V2" + nonce();
  std::string ctx = parent + "/" + folder, b = temp_dir("default-tag-build");
  write_file(ctx + "/Dockerfile", "FROM " + fixture("busybox") + "\nCMD [\"echo\", \"named\"]\n");
  Output gen = sh("dfgen " + q(ctx) + " -B " + q(b));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  std::string tag;
  for (char c : folder) tag += c == ' ' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  Output built = sh("ninja -C " + q(b) + " " + q(tag));
  ASSERT_EQ(built.exit_code, 0) << built.output;
  EXPECT_EQ(sh("dfrun run " + q(tag)).output, "named\n");
}

TEST(Checks, CopyIgnoredFileSparesWhatAnExceptionReincludes) {
  std::string ctx = temp_dir("ignorecheck-ctx");
  sh("mkdir -p " + q(ctx + "/docs") + " " + q(ctx + "/build"));
  write_file(ctx + "/docs/README.md", "r\n");
  write_file(ctx + "/docs/other", "o\n");
  write_file(ctx + "/secret.txt", "s\n");
  write_file(ctx + "/.dockerignore", "docs\n!docs/README.md\nsecret.txt\nbuild\n");
  write_file(ctx + "/Dockerfile", "FROM scratch\nCOPY docs /docs\nCOPY secret.txt /\nCOPY build/ /b\nCOPY docs/other /o\n");
  Output o = sh("dfgen --check " + q(ctx));
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_EQ(count_lines_with(o.output, "CopyIgnoredFile"), 3) << o.output;
  EXPECT_EQ(o.output.find("Dockerfile:2:"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("Dockerfile:3: warning: CopyIgnoredFile: Attempting to Copy file \"secret.txt\""),
            std::string::npos) << o.output;
  EXPECT_NE(o.output.find("Dockerfile:5: warning: CopyIgnoredFile"), std::string::npos) << o.output;
}

}  // namespace
}  // namespace dfgen::e2e
