// End to end for a store that must stay consistent: `dfrun check` finds and
// repairs corruption, `dfrun prune` collects only what nothing reaches, a
// build killed with SIGKILL at random moments leaves a store that checks clean
// and a next build that succeeds, and concurrent builds (and prunes) sharing
// one store do not break each other. Each test uses its own store.
#include <gtest/gtest.h>

#include <random>

#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

// The busybox fixture's docker-archive (cached by scripts/fixtures.sh).
std::string busybox_tar() {
  Output made = sh("bash " + q(source_dir() + "/scripts/fixtures.sh") + " busybox | tail -1");
  std::string tar = made.output.substr(0, made.output.find_last_not_of('\n') + 1);
  return tar.substr(tar.find_last_of('\n') == std::string::npos ? 0 : tar.find_last_of('\n') + 1);
}

// A fresh store with the busybox fixture imported.
std::string new_store(const std::string& name) {
  std::string store = temp_dir(name);
  Output imp = sh("dfrun --store " + q(store) + " import " + q(busybox_tar()) +
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
  Output corrupt = sh("cd " + q(store) + " && e=$(ls cache | head -1) && "
                      "d=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"layer\"][\"digest\"][7:])' cache/$e) && "
                      "chmod u+w blobs/sha256/$d && echo garbage >> blobs/sha256/$d && echo $d");
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
  EXPECT_EQ(in_store(store, "ls " + q(store) + "/cache | grep -vx stat | wc -l").output, "0\n");
  EXPECT_EQ(in_store(store, "dfrun check").exit_code, 0);
  EXPECT_EQ(contents(store, "robust-prune"), kExpected);

  Output bad = in_store(store, "dfrun prune --keep-storage lots");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("--keep-storage: invalid size \"lots\""), std::string::npos) << bad.output;
}

// SIGKILL to the whole build (ninja, dfrun, runc) at random moments.
TEST(Crash, KilledBuildsLeaveAConsistentStore) {
  std::string ctx = make_context();
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(100, 3500);
  for (int round = 0; round < 4; ++round) {
    std::string store = new_store("robust-crash-store");
    std::string build = temp_dir("robust-crash-build");
    configure(store, ctx, build, "robust-crash");
    int ms = delay_ms(rng);
    Output killed = sh("setsid ninja -C " + q(build) + " >/dev/null 2>&1 & pid=$!; sleep " +
                       std::to_string(ms / 1000.0) + "; kill -KILL -- -$pid 2>/dev/null; wait $pid; true");
    SCOPED_TRACE("killed after " + std::to_string(ms) + " ms");
    Output check = in_store(store, "dfrun check");
    EXPECT_EQ(check.exit_code, 0) << check.output;
    EXPECT_EQ(count_lines_with(check.output, "problem:"), 0) << check.output;
    Output rebuilt = sh("ninja -C " + q(build));
    ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt.output;
    EXPECT_EQ(contents(store, "robust-crash"), kExpected);
    Output after = in_store(store, "dfrun check");
    EXPECT_EQ(after.exit_code, 0) << after.output;
  }
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
