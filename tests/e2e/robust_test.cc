// End to end for a store that must stay consistent: `dfrun check` finds and
// repairs corruption, `dfrun prune` collects only what nothing reaches, a
// build killed with SIGKILL at random moments leaves a store that checks clean
// and a next build that succeeds, and concurrent builds (and prunes) sharing
// one store do not break each other. Each test uses its own store.
#include <dirent.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

// A fresh store with the busybox fixture imported.
std::string new_store(const std::string& name) {
  std::string store = temp_dir(name);
  Output imp = sh("dfrun --store " + q(store) + " import " + q(fixture_archive("busybox")) +
                  " -t dfgen-fixtures/busybox:bookworm");
  EXPECT_EQ(imp.exit_code, 0) << imp.output;
  return store;
}

Output in_store(const std::string& store, const std::string& command) {
  return sh("export DFGEN_STORE=" + q(store) + "; " + command);
}

// A context with a few COPY and RUN steps (the RUNs take a while, so a kill
// lands in the middle of one as often as between steps).
std::string make_context() {
  std::string ctx = temp_dir("robust-ctx");
  write_file(ctx + "/a.txt", "aaa\n");
  write_file(ctx + "/b.txt", "bbb\n");
  write_file(ctx + "/Dockerfile", R"(FROM busybox
COPY a.txt /a.txt
RUN mkdir -p /out && cat /a.txt > /out/a && sleep 0.5
COPY b.txt /b.txt
RUN cat /a.txt /b.txt > /out/ab && sleep 0.5
RUN for i in 1 2 3 4 5; do echo $i >> /out/n; done && sleep 0.5
)");
  return ctx;
}

// Configures a build dir for `ctx` in `store`, tagging the image `tag`.
void configure(const std::string& store, const std::string& ctx, const std::string& build,
               const std::string& tag) {
  Output gen = in_store(store, "SOURCE_DATE_EPOCH=0 dfgen " + q(ctx) + " -B " + q(build) + " -t " + tag +
                                   " --build-context busybox=docker-image://dfgen-fixtures/busybox:bookworm");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
}

// What the image holds, as seen from inside.
std::string contents(const std::string& store, const std::string& tag) {
  Output out = in_store(store, "dfrun run " + tag + " sh -c 'cat /a.txt /b.txt /out/a /out/ab /out/n; ls /out'");
  EXPECT_EQ(out.exit_code, 0) << out.output;
  return out.output;
}

std::string digest_of(const std::string& store, const std::string& tag) {
  Output out = in_store(store, "dfrun images | awk '$1 == \"docker.io/library/" + tag + ":latest\" {print $2}'");
  return out.output;
}

const char* kExpected = "aaa\nbbb\naaa\naaa\nbbb\n1\n2\n3\n4\n5\na\nab\nn\n";

TEST(Check, FreshStoreIsConsistent) {
  std::string store = new_store("robust-check-fresh");
  Output out = in_store(store, "dfrun check");
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("is consistent"), std::string::npos) << out.output;
}

TEST(Check, FindsAndRepairsCorruption) {
  std::string store = new_store("robust-check-corrupt");
  std::string ctx = make_context();
  std::string build = temp_dir("robust-check-build");
  configure(store, ctx, build, "robust-check");
  Output built = sh("ninja -C " + q(build));
  ASSERT_EQ(built.exit_code, 0) << built.output;

  // A corrupt layer blob of the build (what a cache entry points at), a
  // dangling cache entry, and a tag whose manifest is gone.
  // (The first entry with a layer: an entry of a step that adds none has a null one.)
  Output corrupt = sh("cd " + q(store) + " && d=$(python3 -c 'import json,os,re\n"
                      "for e in sorted(os.listdir(\"cache\")):\n"
                      "    l = re.fullmatch(\"[0-9a-f]{64}\", e) and json.load(open(\"cache/\" + e)).get(\"layer\")\n"
                      "    if l:\n"
                      "        print(l[\"digest\"][7:]); break') && "
                      "test -n \"$d\" && chmod u+w blobs/sha256/$d && echo garbage >> blobs/sha256/$d && echo $d");
  ASSERT_EQ(corrupt.exit_code, 0) << corrupt.output;
  std::string blob = corrupt.output.substr(0, 64);
  write_file(store + "/cache/" + std::string(64, 'c'),
             R"({"layer":{"diff_id":"sha256:)" + std::string(64, 'd') + R"(","digest":"sha256:)" +
                 std::string(64, 'e') + R"(","mediaType":"x","size":1},"version":1})" + "\n");
  Output retag = sh("cd " + q(store) + " && python3 - <<'PY'\nimport json\ni=json.load(open('index.json'))\n"
                    "i['manifests'].append({'mediaType':'application/vnd.oci.image.manifest.v1+json','digest':'sha256:" +
                    std::string(64, 'f') + "','size':2,'annotations':{'org.opencontainers.image.ref.name':'docker.io/library/gone:latest'}})\n"
                    "json.dump(i,open('index.json','w'))\nPY\n");
  ASSERT_EQ(retag.exit_code, 0) << retag.output;

  Output check = in_store(store, "dfrun check");
  EXPECT_EQ(check.exit_code, 1) << check.output;
  EXPECT_NE(check.output.find("problem: blob sha256:" + blob + ": content is corrupt"), std::string::npos) << check.output;
  EXPECT_NE(check.output.find("problem: cache entry sha256:" + std::string(64, 'c') + ": layer blob sha256:" +
                              std::string(64, 'e') + " is missing"), std::string::npos) << check.output;
  EXPECT_NE(check.output.find("problem: tag docker.io/library/gone:latest: manifest sha256:" + std::string(64, 'f') +
                              " is missing"), std::string::npos) << check.output;

  Output repair = in_store(store, "dfrun check --repair");
  EXPECT_NE(repair.output.find("removed: " + store + "/blobs/sha256/" + blob), std::string::npos) << repair.output;
  EXPECT_NE(repair.output.find("removed: tag docker.io/library/gone:latest"), std::string::npos) << repair.output;
  Output again = in_store(store, "dfrun check");
  EXPECT_EQ(again.exit_code, 0) << again.output;

  // The next build re-executes what lost its layer and is whole again.
  Output rebuilt = sh("ninja -C " + q(build) + " -t clean >/dev/null && ninja -C " + q(build));
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt.output;
  EXPECT_EQ(contents(store, "robust-check"), kExpected);
}

TEST(Prune, RemovesOnlyUnreachable) {
  std::string store = new_store("robust-prune");
  std::string ctx = make_context();
  std::string build = temp_dir("robust-prune-build");
  configure(store, ctx, build, "robust-prune");
  ASSERT_EQ(sh("ninja -C " + q(build)).exit_code, 0);
  // An unreferenced blob and snapshot, old enough to be past the grace time.
  std::string junk(64, '1');
  Output planted = sh("cd " + q(store) + " && printf junk > blobs/sha256/x && h=$(sha256sum blobs/sha256/x | cut -c1-64) && "
                      "mv blobs/sha256/x blobs/sha256/$h && mkdir snapshots/" + junk + " && "
                      "touch -d '2 hours ago' blobs/sha256/$h snapshots/" + junk + " && echo $h");
  ASSERT_EQ(planted.exit_code, 0) << planted.output;
  std::string blob = planted.output.substr(0, 64);

  Output prune = in_store(store, "dfrun prune");
  ASSERT_EQ(prune.exit_code, 0) << prune.output;
  EXPECT_NE(prune.output.find("removed: blob sha256:" + blob), std::string::npos) << prune.output;
  EXPECT_NE(prune.output.find("removed: snapshot sha256:" + junk), std::string::npos) << prune.output;
  EXPECT_EQ(count_lines_with(prune.output, "removed:"), 2) << prune.output;
  EXPECT_EQ(in_store(store, "dfrun check").exit_code, 0);

  // With a storage limit, cache entries not used for long go, and with them
  // the layers only they reached; the tagged image stays whole.
  ASSERT_EQ(sh("touch -d '2 hours ago' " + q(store) + "/cache/* " + q(store) + "/blobs/sha256/* " + q(store) +
               "/snapshots/*").exit_code, 0);
  Output lru = in_store(store, "dfrun prune --keep-storage 1");
  ASSERT_EQ(lru.exit_code, 0) << lru.output;
  // Five steps and the image (its manifest is cached by its inputs too).
  EXPECT_EQ(count_lines_with(lru.output, "removed: cache entry"), 6) << lru.output;
  // What stays: the stat cache and the gzip block table (fixed-size caches
  // whose stale entries read as misses), no step entries.
  EXPECT_EQ(in_store(store, "ls " + q(store) + "/cache | grep -vxE 'stat|gzblocks' | wc -l").output, "0\n");
  EXPECT_EQ(in_store(store, "dfrun check").exit_code, 0);
  EXPECT_EQ(contents(store, "robust-prune"), kExpected);

  Output bad = in_store(store, "dfrun prune --keep-storage lots");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("--keep-storage: invalid size \"lots\""), std::string::npos) << bad.output;
}

// Fault injection: SIGKILL at 50 random moments of a multi-stage build
// (RUN steps, COPY from the context, COPY --from, a layer of several MB, an
// image export). A kill hits either the whole build (every process of its
// session: ninja, sh, dfrun, runc) or one dfrun. After each: every process of
// the build is gone, no mount of the store is left in any mount namespace,
// no runc container (state or cgroup) is left, and `dfrun check` finds no
// problem. The next kill lands in the resumed build; every five kills the
// build is completed and its image digest and exported archive compared with
// an undisturbed build's.
// DFGEN_FAULT_SEED=N replays a run (the seed is printed).

// The Dockerfile of the crash test: three stages meeting in a final one.
const char* kCrashDockerfile = R"(FROM busybox AS base
COPY a.txt /a.txt
RUN mkdir -p /out && cat /a.txt > /out/a && sleep 0.3

FROM base AS gen
COPY big.bin /data/big.bin
RUN cat /data/big.bin /data/big.bin > /out/big2 && sha256sum /data/big.bin > /out/sum

FROM base AS other
COPY b.txt /b.txt
RUN cat /a.txt /b.txt > /out/ab && for i in 1 2 3 4 5; do echo $i >> /out/n; done && sleep 0.3

FROM busybox
COPY --from=gen /out/ /out/
COPY --from=other /out/ab /out/n /out/
RUN wc -c /out/* > /listing && sleep 0.2
)";

std::string make_crash_context() {
  std::string ctx = temp_dir("robust-fault-ctx");
  write_file(ctx + "/a.txt", "aaa\n");
  write_file(ctx + "/b.txt", "bbb\n");
  // 4 MB that gzip cannot shrink, the same in every run.
  std::mt19937 bytes(42);
  std::string big(4 << 20, '\0');
  for (auto& c : big) c = static_cast<char>(bytes() & 0xff);
  write_file(ctx + "/big.bin", big);
  write_file(ctx + "/Dockerfile", kCrashDockerfile);
  return ctx;
}

struct Proc {
  pid_t pid = 0;
  std::string comm;
  char state = '?';
  pid_t session = 0;
};

// Every live process (zombies left out), from /proc/PID/stat.
std::vector<Proc> processes() {
  std::vector<Proc> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string stat = read_file(std::string("/proc/") + e->d_name + "/stat");
    size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    Proc p;
    p.pid = std::atoi(e->d_name);
    p.comm = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 1));
    pid_t ppid = 0, pgrp = 0;
    rest >> p.state >> ppid >> pgrp >> p.session;
    if (p.state != 'Z') out.push_back(p);
  }
  ::closedir(d);
  return out;
}

std::vector<Proc> in_session(pid_t sid) {
  std::vector<Proc> out;
  for (const auto& p : processes()) {
    if (p.session == sid) out.push_back(p);
  }
  return out;
}

// Waits until `pred` holds, up to `seconds`; returns whether it did.
bool wait_until(const std::function<bool()>& pred, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// `ninja -C build` in a session of its own (its pid is the session id), the
// output appended to build/ninja.log.
pid_t start_ninja(const std::string& store, const std::string& build) {
  std::string cmd = "export PATH=" + q(build_dir() + "/bin") + ":\"$PATH\" DFGEN_STORE=" +
                    q(store) + "; exec ninja -C " + q(build) + " >> " + q(build + "/ninja.log") + " 2>&1";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// Whether ninja `pid` exited within `ms` (reaped, status in *status).
bool exited_within(pid_t pid, int ms, int* status) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    if (::waitpid(pid, status, WNOHANG) == pid) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// SIGKILL to every process of session `sid` until none is left.
void kill_session(pid_t sid) {
  for (int pass = 0; pass < 500; ++pass) {
    auto left = in_session(sid);
    if (left.empty()) return;
    for (const auto& p : left) ::kill(p.pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "processes of session " << sid << " survive SIGKILL";
}

// Mounts of anything under `store` in the mount namespace of any process.
std::set<std::string> store_mounts(const std::string& store) {
  std::set<std::string> found;
  for (const auto& p : processes()) {
    std::istringstream in(read_file("/proc/" + std::to_string(p.pid) + "/mountinfo"));
    for (std::string line; std::getline(in, line);) {
      if (line.find(store) != std::string::npos) found.insert(line.substr(line.find(' ', line.find(' ') + 1) + 1));
    }
  }
  return found;
}

// runc containers in the state dirs dfrun gives runc (STEP_TMP/bundle/runc,
// runner/sandbox), with their status, and runc's complaints about state it
// cannot load; and the cgroups of containers of the dfrun processes `pids`
// (runner/sandbox names a container dfgen-DFRUN_PID-N-RANDOM).
std::string store_containers(const std::string& store, const std::vector<pid_t>& pids) {
  std::string cmd = "for d in $(find " + q(store + "/tmp") + " -type d -path '*/bundle/runc' 2>/dev/null); do "
                    "runc --root \"$d\" list | tail -n +2; done; ";
  for (pid_t pid : pids) {
    std::string id = "dfgen-" + std::to_string(pid) + "-*";
    cmd += "ls -d /sys/fs/cgroup/" + id + " /sys/fs/cgroup/*/" + id + " 2>/dev/null; ";
  }
  return sh(cmd + "true").output;
}

std::vector<pid_t> dfruns_of(pid_t sid) {
  std::vector<pid_t> out;
  for (const auto& p : in_session(sid)) if (p.comm == "dfrun") out.push_back(p.pid);
  return out;
}

TEST(Crash, FiftyKillPointsAcrossAMultiStageBuild) {
  const char* seed_env = std::getenv("DFGEN_FAULT_SEED");
  unsigned seed = seed_env ? static_cast<unsigned>(std::strtoul(seed_env, nullptr, 10)) : std::random_device{}();
  std::printf("fault seed: %u (replay with DFGEN_FAULT_SEED=%u)\n", seed, seed);
  std::fflush(stdout);
  RecordProperty("fault_seed", std::to_string(seed));
  SCOPED_TRACE("DFGEN_FAULT_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed);
  std::string ctx = make_crash_context();
  auto configure_fault = [&](const std::string& store, const std::string& build) {
    Output gen = in_store(store, "SOURCE_DATE_EPOCH=0 dfgen " + q(ctx) + " -B " + q(build) +
                                     " -t robust-fault --output type=oci,dest=" + q(build + "/image.tar") +
                                     " --build-context busybox=docker-image://dfgen-fixtures/busybox:bookworm");
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
  };

  // The undisturbed build: its duration T, digest and archive.
  std::string ref_store = new_store("robust-fault-ref");
  std::string ref_build = temp_dir("robust-fault-ref-build");
  configure_fault(ref_store, ref_build);
  auto t0 = std::chrono::steady_clock::now();
  Output ref = in_store(ref_store, "ninja -C " + q(ref_build));
  ASSERT_EQ(ref.exit_code, 0) << ref.output;
  int total_ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  std::string ref_digest = digest_of(ref_store, "robust-fault");
  ASSERT_EQ(ref_digest.size(), 72u) << ref_digest;
  std::string ref_archive = sh("sha256sum < " + q(ref_build + "/image.tar")).output;
  std::printf("undisturbed build: %d ms, %s", total_ms, ref_digest.c_str());

  const int kKills = 50, kPerCycle = 5;
  int kills = 0, tree_kills = 0, dfrun_kills = 0, cycle = 0;
  while (kills < kKills) {
    // A cycle: a fresh store and build dir, kill points spread over [0, T],
    // each resuming the build the previous one killed; then completion.
    std::string store = new_store("robust-fault-store");
    std::string build = temp_dir("robust-fault-build");
    configure_fault(store, build);
    std::vector<int> at;
    std::uniform_int_distribution<int> point(0, total_ms);
    for (int i = 0; i < kPerCycle && kills + i < kKills; ++i) at.push_back(point(rng));
    std::sort(at.begin(), at.end());
    int prev = 0;
    for (int t : at) {
      bool whole_tree = std::bernoulli_distribution(0.5)(rng);
      std::string what = fmt::format("cycle {}, kill {} at {} ms of {} ({})", cycle, kills, t, total_ms,
                                     whole_tree ? "whole build" : "one dfrun");
      SCOPED_TRACE(what);
      pid_t ninja = start_ninja(store, build);
      int status = 0;
      if (exited_within(ninja, t - prev, &status)) break;   // the build finished first
      prev = t;
      std::vector<pid_t> victims;   // the dfruns killed
      if (!whole_tree) {
        // One dfrun of the build, chosen at random; none running (ninja
        // between steps) within a second: the whole build instead.
        wait_until([&] { return !(victims = dfruns_of(ninja)).empty(); }, 1.0);
        if (!victims.empty()) {
          victims = {victims[std::uniform_int_distribution<size_t>(0, victims.size() - 1)(rng)]};
          ::kill(victims[0], SIGKILL);
          ++dfrun_kills;
          // Ninja sees the step fail and waits for the others.
          if (!exited_within(ninja, 120000, &status)) ADD_FAILURE() << "ninja did not stop after a failed step";
        } else {
          whole_tree = true;
        }
      }
      if (whole_tree) {
        victims = dfruns_of(ninja);
        ::kill(ninja, SIGKILL);
        (void)::waitpid(ninja, &status, 0);
        kill_session(ninja);
        ++tree_kills;
      }
      ++kills;
      EXPECT_TRUE(wait_until([&] { return in_session(ninja).empty(); }, 60)) << "the build's processes live on";
      // What a killed dfrun leaves must go away by itself, promptly.
      wait_until([&] { return store_mounts(store).empty() && store_containers(store, victims).empty(); }, 10);
      std::set<std::string> mounts = store_mounts(store);
      EXPECT_TRUE(mounts.empty()) << fmt::format("{}", fmt::join(mounts, "\n"));
      EXPECT_EQ(store_containers(store, victims), "");
      Output check = in_store(store, "dfrun check");
      EXPECT_EQ(check.exit_code, 0) << check.output;
      EXPECT_EQ(count_lines_with(check.output, "problem:"), 0) << check.output;
      if (::testing::Test::HasFailure()) {
        ADD_FAILURE() << "ninja log:\n" << read_file(build + "/ninja.log");
        return;
      }
    }
    // Completed, the build gives the undisturbed build's image.
    SCOPED_TRACE(fmt::format("cycle {} completed", cycle));
    Output done = in_store(store, "ninja -C " + q(build));
    ASSERT_EQ(done.exit_code, 0) << done.output;
    EXPECT_EQ(digest_of(store, "robust-fault"), ref_digest);
    EXPECT_EQ(sh("sha256sum < " + q(build + "/image.tar")).output, ref_archive);
    Output check = in_store(store, "dfrun check");
    EXPECT_EQ(check.exit_code, 0) << check.output;
    EXPECT_TRUE(store_mounts(store).empty());
    if (::testing::Test::HasFailure()) return;
    sh("rm -rf " + q(store) + " " + q(build));
    ++cycle;
  }
  std::printf("%d kills (%d whole build, %d one dfrun) in %d cycles\n", kills, tree_kills, dfrun_kills, cycle);
  sh("rm -rf " + q(ref_store) + " " + q(ref_build) + " " + q(ctx));
}

TEST(Concurrency, TwoBuildsOneStore) {
  std::string store = new_store("robust-conc-store");
  std::string ctx = make_context();
  std::string a = temp_dir("robust-conc-a"), b = temp_dir("robust-conc-b");
  configure(store, ctx, a, "robust-conc-a");
  configure(store, ctx, b, "robust-conc-b");
  Output both = sh("ninja -C " + q(a) + " > " + q(a + "/log") + " 2>&1 & pa=$!; ninja -C " + q(b) + " > " +
                   q(b + "/log") + " 2>&1 & pb=$!; wait $pa; ra=$?; wait $pb; rb=$?; echo $ra $rb");
  EXPECT_EQ(both.output, "0 0\n") << read_file(a + "/log") << read_file(b + "/log");
  std::string da = digest_of(store, "robust-conc-a");
  EXPECT_EQ(da.size(), 72u) << da;
  EXPECT_EQ(da, digest_of(store, "robust-conc-b"));
  EXPECT_EQ(in_store(store, "dfrun check").exit_code, 0);
}

TEST(Concurrency, PruneLoopBesideABuild) {
  std::string store = new_store("robust-prune-loop");
  std::string ctx = make_context();
  std::string build = temp_dir("robust-prune-loop-build");
  configure(store, ctx, build, "robust-loop");
  Output out = in_store(store, "( while :; do dfrun prune >/dev/null || echo PRUNE-FAILED; "
                               "dfrun prune --keep-storage 1 >/dev/null || echo PRUNE-FAILED; done ) & loop=$!; "
                               "ninja -C " + q(build) + "; rc=$?; kill $loop; wait $loop 2>/dev/null; echo rc=$rc");
  EXPECT_NE(out.output.find("rc=0"), std::string::npos) << out.output;
  EXPECT_EQ(count_lines_with(out.output, "PRUNE-FAILED"), 0) << out.output;
  EXPECT_EQ(in_store(store, "dfrun check").exit_code, 0);
  EXPECT_EQ(contents(store, "robust-loop"), kExpected);
}

}  // namespace
}  // namespace dfgen::e2e
