// End to end: the step cache shared through a registry (docs/remote-cache.md).
// Machine A builds a multi-stage image with --cache-to; machines B and C, each
// with an empty store, another context folder and another build dir, build the
// same Dockerfile with --cache-from: RUN steps found in the cache never run
// (their marker is missing from Ninja's output) and the image digest is A's,
// although A's last RUN writes a clock reading into its layer.
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
