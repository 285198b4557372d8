// End to end for RUN --mount (docs/mounts.md): bind (context, stage, rw),
// cache (kept across builds, sharing, owner, seed), tmpfs, secret (file and
// env; never in a layer, the output, the build dir or the key), with the real
// dfgen, ninja, dfrun and runc over the busybox fixture.
#include <gtest/gtest.h>

#include <ctime>
#include <unistd.h>

#include "core/fs.h"
#include "core/json.h"
#include "core/sha256.h"
#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

Output dfgen(const std::string& ctx, const std::string& b, const std::string& extra) {
  return sh("dfgen " + q(ctx) + " -B " + q(b) + " --build-context busybox=docker-image://" +
            fixture("busybox") + " " + extra);
}

Output build(const std::string& b) { return sh("ninja -C " + q(b)); }

// Runs a shell line in `image` (whose default shell is busybox sh).
Output in_image(const std::string& image, const std::string& line) {
  return sh("dfrun run " + image + " /bin/sh -c " + q(line));
}

// Every entry name of every layer of the OCI layout at `dir`, one a line.
Output layer_entries(const std::string& dir) {
  return sh("cd " + q(dir) + R"( && for f in blobs/sha256/*; do
  if gzip -t "$f" 2>/dev/null && zcat "$f" | tar -t >/dev/null 2>&1; then zcat "$f" | tar -t; fi
done)");
}

// How many blobs (decompressed when gzip) of the layout at `dir` contain `needle`.
int blobs_containing(const std::string& dir, const std::string& needle) {
  Output o = sh("cd " + q(dir) + " && n=0; for f in blobs/sha256/*; do "
                "if (zcat \"$f\" 2>/dev/null || cat \"$f\") | grep -aq " + q(needle) + "; then n=$((n+1)); fi; done; echo $n");
  return std::atoi(o.output.c_str());
}

const char* kBindDockerfile = R"(FROM busybox AS tools
RUN echo tool-@NONCE@ > /made.txt && mkdir -p /opt/t && echo deep > /opt/t/f

FROM busybox
RUN --mount=type=bind,source=dir,target=/d,rw echo DIR-STEP-""RAN-@NONCE@ && echo scribble > /d/b.txt && cat /d/b.txt > /rw.txt
RUN --mount=target=/ctx echo CTX-STEP-""RAN && cat /ctx/a.txt /ctx/dir/b.txt > /bind.txt; \
    ls /ctx/ignored.txt 2>/dev/null; echo "ignored=$?" >> /bind.txt; \
    touch /ctx/new 2>/dev/null; echo "write=$?" >> /bind.txt
RUN --mount=from=tools,source=/opt/t,target=/t cat /t/f > /from-stage.txt
RUN --mount=from=tools,target=/all,rw echo changed > /all/made.txt && cat /all/made.txt > /stage-rw.txt
RUN --mount=from=tools,target=/again cat /again/made.txt > /stage-after.txt
)";

class Bind : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx = temp_dir("mounts-bind-ctx");
    b = temp_dir("mounts-bind-build");
    write_file(ctx + "/Dockerfile", with_nonce(kBindDockerfile));
    write_file(ctx + "/a.txt", "alpha\n");
    write_file(ctx + "/dir/b.txt", "bravo\n");
    write_file(ctx + "/ignored.txt", "nope\n");
    write_file(ctx + "/.dockerignore", "ignored.txt\n");
  }
  std::string ctx, b;
  std::string image = "mounts-e2e-bind";
};

TEST_F(Bind, ContextAndStageBindsAreReadableAndThrowaway) {
  ASSERT_EQ(dfgen(ctx, b, "-t " + image + " --output type=local,dest=" + q(b + "/rootfs")).exit_code, 0);
  Output first = build(b);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(in_image(image, "cat /bind.txt").output, "alpha\nbravo\nignored=1\nwrite=1\n");
  EXPECT_EQ(in_image(image, "cat /rw.txt /from-stage.txt /stage-rw.txt /stage-after.txt").output,
            "scribble\ndeep\nchanged\ntool-" + nonce() + "\n");
  // rw writes went to a copy; the mount points left nothing in the image.
  EXPECT_EQ(read_file(ctx + "/dir/b.txt"), "bravo\n");
  EXPECT_EQ(sh("cd " + q(b + "/rootfs") + " && ls -d ctx d t all again 2>/dev/null | wc -l").output, "0\n");

  // The context files a bind reads are inputs: editing a.txt re-runs the
  // whole-context step, not the step that mounts only dir/.
  write_file(ctx + "/a.txt", "alpha two\n");
  Output second = build(b);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(count_lines_with(second.output, "CTX-STEP-RAN"), 1) << second.output;
  EXPECT_EQ(count_lines_with(second.output, "DIR-STEP-RAN"), 0) << second.output;
  EXPECT_EQ(in_image(image, "head -1 /bind.txt").output, "alpha two\n");
  // An ignored file is no input: editing it runs nothing.
  write_file(ctx + "/ignored.txt", "still nope\n");
  EXPECT_NE(build(b).output.find("no work to do"), std::string::npos);
}

const char* kCacheDockerfile = R"(FROM busybox AS tools
RUN mkdir -p /seed && echo seeded > /seed/f

FROM busybox
RUN --mount=type=cache,target=/cache,id=counter-@NONCE@ n=$(cat /cache/n 2>/dev/null || echo 0); \
    n=$((n+1)); echo $n > /cache/n; echo $n > /count.txt # KEY
RUN --mount=type=cache,target=/c2,id=owned-@NONCE@,uid=1234,gid=5678,mode=0710,sharing=locked \
    stat -c '%u:%g %a' /c2 > /owned.txt
RUN --mount=type=cache,target=/c3,id=seed-@NONCE@,from=tools,source=/seed,sharing=private cat /c3/f > /seeded.txt
)";

std::string cache_dockerfile(const std::string& key) {
  std::string t = with_nonce(kCacheDockerfile);
  t.replace(t.find("KEY"), 3, key);
  return t;
}

TEST(Cache, PersistsAcrossBuildsAndStaysOutOfTheImage) {
  std::string ctx = temp_dir("mounts-cache-ctx"), b = temp_dir("mounts-cache-build");
  std::string image = "mounts-e2e-cache";
  write_file(ctx + "/Dockerfile", cache_dockerfile("first"));
  ASSERT_EQ(dfgen(ctx, b, "-t " + image + " --output type=oci,dest=" + q(b + "/oci") + ",tar=false").exit_code, 0);
  Output one = build(b);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_EQ(in_image(image, "cat /count.txt /owned.txt /seeded.txt").output, "1\n1234:5678 710\nseeded\n");

  // Another key (the comment changed): the step runs again over the same cache.
  write_file(ctx + "/Dockerfile", cache_dockerfile("second"));
  Output two = build(b);
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_EQ(in_image(image, "cat /count.txt").output, "2\n");
  EXPECT_NE(in_image(image, "ls /cache /c2 /c3").exit_code, 0);

  // The cache lives in the store, under the hash of its id, and in no layer.
  std::string dir = store_dir() + "/cache-mounts/" + sha256_hex("counter-" + nonce());
  EXPECT_EQ(read_file(dir + "/data/n"), "2\n");
  Output entries = layer_entries(b + "/oci");
  EXPECT_GE(count_lines_with(entries.output, "count.txt"), 1) << entries.output;
  EXPECT_EQ(count_lines_with(entries.output, "cache"), 0) << entries.output;
  EXPECT_EQ(count_lines_with(entries.output, "c2"), 0) << entries.output;
}

TEST(Tmpfs, IsATmpfsOfTheGivenSizeAndLeavesNothing) {
  std::string ctx = temp_dir("mounts-tmpfs-ctx"), b = temp_dir("mounts-tmpfs-build");
  std::string image = "mounts-e2e-tmpfs";
  write_file(ctx + "/Dockerfile", with_nonce(R"(FROM busybox
RUN --mount=type=tmpfs,target=/scratch,size=1m echo @NONCE@ > /scratch/f && \
    grep ' /scratch ' /proc/mounts | cut -d' ' -f3 > /tmpfs.txt && df -k /scratch | tail -1 | awk '{print $2}' >> /tmpfs.txt
)"));
  ASSERT_EQ(dfgen(ctx, b, "-t " + image).exit_code, 0);
  Output out = build(b);
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(in_image(image, "cat /tmpfs.txt").output, "tmpfs\n1024\n");
  EXPECT_NE(in_image(image, "ls -d /scratch").exit_code, 0);
}

const char* kSecretDockerfile = R"(FROM busybox
RUN --mount=type=secret,id=tok,required echo SECRET-STEP-""RAN-@NONCE@ && \
    wc -c < /run/secrets/tok > /file-len.txt && stat -c '%a %u:%g' /run/secrets/tok > /file-mode.txt
RUN --mount=type=secret,id=tok,target=/etc/tok,mode=0440,uid=1234,gid=5678 stat -c '%a %u:%g' /etc/tok > /target-mode.txt
RUN --mount=type=secret,id=envtok,env=TOKEN,required echo "${#TOKEN}" > /env-len.txt
RUN --mount=type=secret,id=absent ls /run/secrets/absent 2>/dev/null; echo "absent=$?" > /absent.txt
)";

TEST(Secret, IsMountedButNeverStoredNorKeyed) {
  std::string ctx = temp_dir("mounts-secret-ctx"), b = temp_dir("mounts-secret-build");
  std::string image = "mounts-e2e-secret";
  std::string value = "s3cr3t-value-" + nonce();
  std::string env_value = "env-s3cr3t-" + nonce();
  std::string file = temp_dir("mounts-secret-src") + "/tok";
  write_file(ctx + "/Dockerfile", with_nonce(kSecretDockerfile));
  write_file(file, value);
  std::string args = "-t " + image + " --secret id=tok,src=" + q(file) + " --secret id=envtok,env=MOUNTS_E2E_TOKEN" +
                     " --output type=oci,dest=" + q(b + "/oci") + ",tar=false --output type=local,dest=" + q(b + "/rootfs");
  ASSERT_EQ(dfgen(ctx, b, args).exit_code, 0);
  Output out = sh("MOUNTS_E2E_TOKEN=" + q(env_value) + " ninja -C " + q(b));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_EQ(in_image(image, "cat /file-len.txt /file-mode.txt /target-mode.txt /env-len.txt /absent.txt").output,
            std::to_string(value.size()) + "\n400 0:0\n440 1234:5678\n" + std::to_string(env_value.size()) +
                "\nabsent=1\n");

  // The values are in no layer, no output, no file of the build dir, no cache entry.
  EXPECT_EQ(blobs_containing(b + "/oci", value), 0);
  EXPECT_EQ(blobs_containing(b + "/oci", "env-s3cr3t"), 0);
  EXPECT_EQ(sh("grep -rla " + q(value) + " " + q(b) + " " + q(store_dir() + "/cache") + " | wc -l").output, "0\n");
  EXPECT_EQ(sh("grep -rla env-s3cr3t " + q(b) + " | wc -l").output, "0\n");
  EXPECT_EQ(count_lines_with(out.output, value), 0);
  Output entries = layer_entries(b + "/oci");
  EXPECT_EQ(count_lines_with(entries.output, "run/"), 0) << entries.output;
  EXPECT_EQ(count_lines_with(entries.output, "etc/tok"), 0) << entries.output;
  EXPECT_EQ(sh("ls -d " + q(b + "/rootfs/run") + " " + q(b + "/rootfs/etc/tok") + " 2>/dev/null | wc -l").output, "0\n");

  // A new value keeps every key: a clean rebuild finds each step in the store.
  std::string results = sh("cat " + q(b) + "/.dfgen/s*.result").output;
  write_file(file, value + "-changed");
  ASSERT_EQ(dfgen(ctx, b, args).exit_code, 0);
  ASSERT_EQ(sh("rm " + q(b) + "/.dfgen/s*.result").exit_code, 0);
  Output again = sh("MOUNTS_E2E_TOKEN=other ninja -C " + q(b));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(count_lines_with(again.output, "SECRET-STEP-RAN"), 0) << again.output;
  EXPECT_EQ(sh("cat " + q(b) + "/.dfgen/s*.result").output, results);
}

TEST(Secret, MissingRequiredSecretNamesIt) {
  std::string ctx = temp_dir("mounts-nosecret-ctx"), b = temp_dir("mounts-nosecret-build");
  write_file(ctx + "/Dockerfile", with_nonce("FROM busybox\nRUN --mount=type=secret,id=apikey,required echo @NONCE@\n"));
  ASSERT_EQ(dfgen(ctx, b, "-t mounts-e2e-nosecret").exit_code, 0);
  Output out = build(b);
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.output.find("Dockerfile:2: RUN --mount=type=secret,id=apikey,required echo " + nonce() +
                            ": --mount type=secret: secret apikey: required but not provided"),
            std::string::npos)
      << out.output;
}

TEST(Ssh, IsRefusedByDfgen) {
  std::string ctx = temp_dir("mounts-ssh-ctx"), b = temp_dir("mounts-ssh-build");
  write_file(ctx + "/Dockerfile", "FROM busybox\nRUN --mount=type=ssh true\n");
  Output out = dfgen(ctx, b, "-t mounts-e2e-ssh");
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.output.find("Dockerfile:2: RUN --mount=type=ssh true: RUN --mount=type=ssh is not supported yet"),
            std::string::npos)
      << out.output;
}

}  // namespace
}  // namespace dfgen::e2e
