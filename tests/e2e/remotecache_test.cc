// End to end: the step cache shared through a registry (docs/remote-cache.md).
// Machine A builds a multi-stage image with --cache-to; machines B and C, each
// with an empty store, another context folder and another build dir, build the
// same Dockerfile with --cache-from: RUN steps found in the cache never run
// (their marker is missing from Ninja's output) and the image digest is A's,
// although A's last RUN writes a clock reading into its layer. Then a cache
// mount (a Go build cache) exported by one machine makes another's go build warm.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "core/json.h"
#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

// One plain-HTTP docker-registry on 127.0.0.1, stopped (by its pid) when the object goes.
class Registry {
 public:
  Registry() : dir_(temp_dir("rcache-registry")), port_(free_port()) {
    write_file(dir_ + "/config.yml", "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                                     "    rootdirectory: " + dir_ + "/data\nhttp:\n  addr: " + host() + "\n");
    Output started = sh("docker-registry serve " + q(dir_ + "/config.yml") + " > " + q(dir_ + "/log") +
                        " 2>&1 & echo $!");
    pid_ = std::atoi(started.output.c_str());
    for (int i = 0; i < 100; ++i) {
      if (sh("curl -s -o /dev/null http://" + host() + "/v2/").exit_code == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("docker-registry did not start:\n" + read_file(dir_ + "/log"));
  }
  ~Registry() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    for (int i = 0; pid_ > 0 && i < 50 && ::kill(pid_, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return read_file(dir_ + "/log"); }
  std::string env() const {
    return "DOCKER_CONFIG=" + q(dir_ + "/docker") + " DFGEN_REGISTRIES_CONFIG=/nonexistent ";
  }

 private:
  std::string dir_;
  int port_;
  int pid_ = 0;
};

// A machine: its own store, context folder and build dir.
struct Machine {
  std::string store, context, build;
  explicit Machine(const std::string& name)
      : store(temp_dir("rcache-store-" + name)), context(temp_dir("rcache-ctx-" + name)),
        build(temp_dir("rcache-build-" + name)) {}
};

// The markers are split in the Dockerfile, so only a RUN that executes prints them whole.
std::string dockerfile(const std::string& base) {
  return "FROM " + base + " AS build\n"
         "COPY input.txt /src/input.txt\n"
         "RUN echo RUN-EXEC\"\"UTED-build && tr a-z A-Z < /src/input.txt > /built\n"
         "FROM " + base + "\n"
         "WORKDIR /app\n"
         "COPY --from=build /built /app/built\n"
         "RUN echo RUN-EXEC\"\"UTED-final && date +%s%N > /app/stamp\n"
         "CMD [\"cat\", \"/app/built\"]\n";
}

Output build(const Registry& reg, const Machine& m, const std::string& base, const std::string& cache_args) {
  write_file(m.context + "/Dockerfile", dockerfile(base));
  write_file(m.context + "/input.txt", "shared cache\n");
  std::string env = reg.env() + "DFGEN_STORE=" + q(m.store) + " ";
  Output gen = sh(env + "dfgen " + q(m.context) + " -B " + q(m.build) + " -t rcache/app:1" +
                  " --build-arg SOURCE_DATE_EPOCH=1700000000 " + cache_args);
  if (gen.exit_code != 0) return gen;
  return sh(env + "ninja -C " + q(m.build));
}

std::string image_digest(const Machine& m) {
  Json r = Json::parse(read_file(m.build + "/.dfgen/image-app.result"));
  return r["manifest"]["digest"];
}

TEST(RemoteCache, SecondMachineRunsNoStepAndGetsTheSameImage) {
  Registry reg;
  std::string base = reg.host() + "/base/busybox:1";
  Output pushed = sh(reg.env() + "dfrun push " + fixture("busybox") + " " + base);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  std::string cache_ref = reg.host() + "/cache/app:buildcache";
  std::string local_min = temp_dir("rcache-layout") + "/min";

  Machine a("a");
  Output built_a = build(reg, a, base, "--cache-to type=registry,ref=" + cache_ref + ",mode=max" +
                                           " --cache-to type=local,dest=" + local_min);
  ASSERT_EQ(built_a.exit_code, 0) << built_a.output;
  EXPECT_EQ(count_lines_with(built_a.output, "RUN-EXECUTED-build"), 1) << built_a.output;
  EXPECT_EQ(count_lines_with(built_a.output, "RUN-EXECUTED-final"), 1) << built_a.output;
  // mode=max: both stages' five steps (COPY, RUN; WORKDIR, COPY, RUN); mode=min: the final stage's three.
  EXPECT_EQ(count_lines_with(built_a.output, "cache " + cache_ref + " sha256:"), 1) << built_a.output;
  EXPECT_EQ(count_lines_with(built_a.output, "(5 steps)"), 1) << built_a.output;
  EXPECT_EQ(count_lines_with(built_a.output, "cache " + local_min + " sha256:"), 1) << built_a.output;
  EXPECT_EQ(count_lines_with(built_a.output, "(3 steps)"), 1) << built_a.output;
  std::string digest_a = image_digest(a);

  // B: empty store, the registry cache (max): nothing runs, same image.
  Machine b("b");
  Output built_b = build(reg, b, base, "--cache-from type=registry,ref=" + cache_ref);
  ASSERT_EQ(built_b.exit_code, 0) << built_b.output;
  EXPECT_EQ(built_b.output.find("RUN-EXECUTED"), std::string::npos) << built_b.output;
  EXPECT_EQ(built_b.output.find("warning"), std::string::npos) << built_b.output;
  EXPECT_EQ(image_digest(b), digest_a);
  Output ran = sh("DFGEN_STORE=" + q(b.store) + " dfrun run rcache/app:1");
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_EQ(ran.output, "SHARED CACHE\n");

  // C: the local layout of mode=min lacks the build stage, so its RUN runs;
  // the final stage's steps (keys of keys, not of contents) come from the cache.
  Machine c("c");
  Output built_c = build(reg, c, base, "--cache-from type=local,src=" + local_min);
  ASSERT_EQ(built_c.exit_code, 0) << built_c.output;
  EXPECT_EQ(count_lines_with(built_c.output, "RUN-EXECUTED-build"), 1) << built_c.output;
  EXPECT_EQ(built_c.output.find("RUN-EXECUTED-final"), std::string::npos) << built_c.output;
  EXPECT_EQ(image_digest(c), digest_a);

  // A key the cache lacks runs: a changed input on B re-runs the build stage's RUN.
  write_file(b.context + "/input.txt", "changed\n");
  Output rebuilt_b = sh(reg.env() + "DFGEN_STORE=" + q(b.store) + " ninja -C " + q(b.build));
  ASSERT_EQ(rebuilt_b.exit_code, 0) << rebuilt_b.output;
  EXPECT_EQ(count_lines_with(rebuilt_b.output, "RUN-EXECUTED-build"), 1) << rebuilt_b.output;
  EXPECT_EQ(count_lines_with(rebuilt_b.output, "RUN-EXECUTED-final"), 1) << rebuilt_b.output;
  EXPECT_NE(image_digest(b), digest_a);
}

// ---- Cache mounts travel (docs/remote-cache.md, "Cache mounts") ----

// A fresh store at `dir` that already holds the image `ref` of the store
// `from` (a CI machine with its base image pulled): its blobs and unpacked
// snapshots hard-linked (when `from` has them), one index entry. Nothing else:
// no step cache, no cache mounts.
void seed_store(const std::string& from, const std::string& ref, const std::string& dir) {
  Json index = Json::parse(read_file(from + "/index.json"));
  Json entry;
  for (const auto& m : index["manifests"])
    if (m.value("annotations", Json::object()).value("org.opencontainers.image.ref.name", "") == ref) entry = m;
  ASSERT_TRUE(entry.is_object()) << ref << " is not in " << from;
  auto hex = [](const std::string& digest) { return digest.substr(7); };
  Json manifest = Json::parse(read_file(from + "/blobs/sha256/" + hex(entry["digest"])));
  std::string config_digest = manifest["config"]["digest"];
  Json config = Json::parse(read_file(from + "/blobs/sha256/" + hex(config_digest)));
  std::string cmd = "mkdir -p " + q(dir + "/blobs/sha256") + " " + q(dir + "/snapshots");
  std::vector<std::string> blobs{entry["digest"], config_digest};
  for (const auto& l : manifest["layers"]) blobs.push_back(l["digest"]);
  for (const auto& b : blobs) cmd += " && ln " + q(from + "/blobs/sha256/" + hex(b)) + " " + q(dir + "/blobs/sha256/");
  for (const auto& d : config["rootfs"]["diff_ids"]) {
    std::string snap = from + "/snapshots/" + hex(d);
    cmd += " && { ! test -d " + q(snap) + " || cp -al " + q(snap) + " " + q(dir + "/snapshots/") + "; }";
  }
  Output linked = sh(cmd);
  ASSERT_EQ(linked.exit_code, 0) << linked.output;
  write_file(dir + "/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}\n");
  write_file(dir + "/index.json", Json{{"schemaVersion", 2}, {"manifests", Json::array({entry})}}.dump());
}

// A Go program of three packages. The RUN prints how many packages `go build`
// compiled (Go's own account, `go build -x`): 3 with a cold build cache, 0
// when the cache mount holds them. FLAVOR is written beside the program, not
// compiled in (go stamps -ldflags into the main package), so a new value
// re-runs the RUN without changing what there is to compile.
void write_go_project(const std::string& ctx) {
  write_file(ctx + "/Dockerfile",
             "FROM golang\n"
             "ENV HOME=/root GOCACHE=/root/.cache/go-build GOFLAGS=-mod=mod\n"
             "ARG FLAVOR=one\n"
             "COPY src/ /src/\n"
             "WORKDIR /src\n"
             "RUN --mount=type=cache,id=gobuild,target=/root/.cache/go-build --mount=type=tmpfs,target=/tmp \\\n"
             "    go build -x -o /usr/local/bin/hello . 2> /tmp/log || { cat /tmp/log; exit 1; }; \\\n"
             "    echo $FLAVOR > /flavor && grep '/compile ' /tmp/log | cut -c1-160; \\\n"
             "    echo \"COMPILES=$(grep -c '/compile ' /tmp/log)\"\n"
             "CMD [\"hello\"]\n");
  write_file(ctx + "/src/go.mod", "module hello\n\ngo 1.19\n");
  write_file(ctx + "/src/greet/greet.go", "package greet\n\nfunc Hello() string { return \"hello\" }\n");
  write_file(ctx + "/src/shout/shout.go",
             "package shout\n\nimport \"strings\"\n\nfunc Loud(s string) string { return strings.ToUpper(s) }\n");
  write_file(ctx + "/src/main.go",
             "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\n\t\"hello/greet\"\n\t\"hello/shout\"\n)\n\n"
             "func main() {\n\tflavor, _ := os.ReadFile(\"/flavor\")\n\tfmt.Print(greet.Hello(), \" \", shout.Loud(string(flavor)))\n}\n");
}

Output go_build(const Registry& reg, const Machine& m, const std::string& flavor, const std::string& cache_args) {
  write_go_project(m.context);
  std::string env = reg.env() + "DFGEN_STORE=" + q(m.store) + " ";
  Output gen = sh(env + "dfgen " + q(m.context) + " -B " + q(m.build) + " -t cachemount/app:1" +
                  " --build-context golang=docker-image://" + fixture("golang") +
                  " --build-arg SOURCE_DATE_EPOCH=1700000000 --build-arg FLAVOR=" + flavor + " " + cache_args);
  if (gen.exit_code != 0) return gen;
  return sh(env + "ninja -C " + q(m.build));
}

TEST(RemoteCache, CacheMountSnapshotMakesAFreshMachinesGoBuildWarm) {
  Registry reg;
  std::string golang = "docker.io/" + fixture("golang");
  std::string cache_ref = reg.host() + "/cache/goapp:buildcache";
  std::string layout = temp_dir("rcache-mount-layout") + "/cache";

  // A: cold, exports its steps and the gobuild cache mount to both kinds of cache.
  Machine a("mount-a");
  seed_store(store_dir(), golang, a.store);
  Output built_a = go_build(reg, a, "one", "--cache-to type=registry,ref=" + cache_ref + ",mode=max,cache-mounts=gobuild" +
                                               " --cache-to type=local,dest=" + layout + ",cache-mounts=gobuild");
  ASSERT_EQ(built_a.exit_code, 0) << built_a.output;
  EXPECT_EQ(count_lines_with(built_a.output, "COMPILES=3"), 1) << built_a.output;
  EXPECT_EQ(count_lines_with(built_a.output, ", cache mounts: gobuild)"), 2) << built_a.output;

  // B: a fresh store, the registry cache, another FLAVOR (the RUN runs): the
  // cache mount starts from A's snapshot and nothing is compiled.
  Machine b("mount-b"), c("mount-c"), d("mount-d");
  for (const Machine* m : {&b, &c, &d}) seed_store(a.store, golang, m->store);
  Output built_b = go_build(reg, b, "two", "--cache-from type=registry,ref=" + cache_ref);
  ASSERT_EQ(built_b.exit_code, 0) << built_b.output;
  EXPECT_EQ(count_lines_with(built_b.output, "COMPILES=0"), 1) << built_b.output;
  EXPECT_EQ(count_lines_with(built_b.output, "cache mount gobuild: seeded from the build cache"), 1) << built_b.output;
  Output ran = sh("DFGEN_STORE=" + q(b.store) + " dfrun run cachemount/app:1");
  EXPECT_EQ(ran.output, "hello TWO\n");

  // C: a fresh store without the cache is cold by the same measure, and makes
  // the same image: the cache mount is in no layer and no key.
  Output built_c = go_build(reg, c, "two", "");
  ASSERT_EQ(built_c.exit_code, 0) << built_c.output;
  EXPECT_EQ(count_lines_with(built_c.output, "COMPILES=3"), 1) << built_c.output;
  EXPECT_EQ(image_digest(c), image_digest(b));

  // D: the local layout works the same way.
  Output built_d = go_build(reg, d, "two", "--cache-from type=local,src=" + layout);
  ASSERT_EQ(built_d.exit_code, 0) << built_d.output;
  EXPECT_EQ(count_lines_with(built_d.output, "COMPILES=0"), 1) << built_d.output;
  EXPECT_EQ(image_digest(d), image_digest(b));

  // Seeded once per store: the next build uses B's own dir as it is.
  Output again_b = go_build(reg, b, "three", "--cache-from type=registry,ref=" + cache_ref);
  ASSERT_EQ(again_b.exit_code, 0) << again_b.output;
  EXPECT_EQ(count_lines_with(again_b.output, "COMPILES=0"), 1) << again_b.output;
  EXPECT_EQ(count_lines_with(again_b.output, "seeded"), 0) << again_b.output;

  // An id no RUN has used is a warning, not a failure.
  Output unused = go_build(reg, a, "one", "--cache-to type=local,dest=" + layout + ",cache-mounts=nobody");
  EXPECT_EQ(unused.exit_code, 0) << unused.output;
  EXPECT_EQ(count_lines_with(unused.output, "warning: cache mount nobody: not exported, no RUN of this store has used it"),
            1) << unused.output;
}

TEST(RemoteCache, BadSpecsAreRefused) {
  Machine m("bad");
  write_file(m.context + "/Dockerfile", "FROM scratch\nCOPY Dockerfile /\n");
  std::string env = "DFGEN_STORE=" + q(m.store) + " ";
  Output no_ref = sh(env + "dfgen " + q(m.context) + " -B " + q(m.build) + " -t bad --cache-to type=registry");
  EXPECT_NE(no_ref.exit_code, 0);
  EXPECT_EQ(no_ref.output, "dfgen: invalid --cache-to \"type=registry\": ref= is required\n");
  Output bad_mode = sh(env + "dfgen " + q(m.context) + " -B " + q(m.build) +
                       " -t bad --cache-to type=local,dest=x,mode=all");
  EXPECT_EQ(bad_mode.output, "dfgen: invalid --cache-to \"type=local,dest=x,mode=all\": mode must be min or max\n");
  Output bad_type = sh(env + "dfgen " + q(m.context) + " -B " + q(m.build) + " -t bad --cache-from type=gha");
  EXPECT_EQ(bad_type.output, "dfgen: invalid --cache-from \"type=gha\": type must be registry or local\n");
}

}  // namespace
}  // namespace dfgen::e2e
