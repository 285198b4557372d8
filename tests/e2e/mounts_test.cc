// End to end for RUN --mount (docs/mounts.md): bind (context, stage, rw),
// cache (kept across builds, sharing, owner, seed), tmpfs, secret (file and
// env; never in a layer, the output, the build dir or the key), ssh (a real
// ssh-agent's keys listed from inside; its socket in no key or layer), with the real
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

// The step results of build dir `b`, all of them.
std::string step_results(const std::string& b) { return sh("cat " + q(b) + "/.dfgen/s*.result").output; }

// A clean rebuild of `b` (its step results removed, ninja run with `env`)
// finds every step in the store: no step prints `marker` and the results
// come back as `results`.
void expect_clean_rebuild_runs_nothing(const std::string& b, const std::string& env, const std::string& marker,
                                       const std::string& results) {
  ASSERT_EQ(sh("rm " + q(b) + "/.dfgen/s*.result").exit_code, 0);
  Output again = sh(env + " ninja -C " + q(b));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(count_lines_with(again.output, marker), 0) << again.output;
  EXPECT_EQ(step_results(b), results);
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
  std::string results = step_results(b);
  write_file(file, value + "-changed");
  ASSERT_EQ(dfgen(ctx, b, args).exit_code, 0);
  expect_clean_rebuild_runs_nothing(b, "MOUNTS_E2E_TOKEN=other", "SECRET-STEP-RAN", results);
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

// A static program that asks the agent of $SSH_AUTH_SOCK for its keys
// (SSH2_AGENTC_REQUEST_IDENTITIES) and prints "keys=N" and each key's
// comment: busybox has no ssh-add.
const char* kAgentList = R"(#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
static int read_all(int fd, unsigned char* p, size_t n) {
  while (n > 0) { ssize_t r = read(fd, p, n); if (r <= 0) return -1; p += r; n -= (size_t)r; }
  return 0;
}
static unsigned u32(const unsigned char* p) { return (unsigned)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
int main(void) {
  const char* path = getenv("SSH_AUTH_SOCK");
  if (!path) { puts("no SSH_AUTH_SOCK"); return 1; }
  struct sockaddr_un a; memset(&a, 0, sizeof a); a.sun_family = AF_UNIX;
  strncpy(a.sun_path, path, sizeof a.sun_path - 1);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&a, sizeof a) != 0) { perror("connect"); return 1; }
  unsigned char req[5] = {0, 0, 0, 1, 11}, len[4];
  if (write(fd, req, 5) != 5 || read_all(fd, len, 4) != 0) { puts("no answer"); return 1; }
  unsigned n = u32(len);
  unsigned char* m = malloc(n);
  if (!m || n < 5 || read_all(fd, m, n) != 0 || m[0] != 12) { puts("bad answer"); return 1; }
  unsigned keys = u32(m + 1), off = 5;
  printf("keys=%u\n", keys);
  for (unsigned k = 0; k < keys; ++k) {
    off += 4 + u32(m + off);                            /* the key blob */
    unsigned c = u32(m + off);
    printf("%.*s\n", (int)c, (const char*)m + off + 4);  /* its comment */
    off += 4 + c;
  }
  return 0;
}
)";

// An ssh-agent with one new key (comment "dfgen-e2e-NONCE"), killed at the end.
class Ssh : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir("mounts-ssh-agent");
    ctx = temp_dir("mounts-ssh-ctx");
    b = temp_dir("mounts-ssh-build");
    socket = dir + "/agent.sock";
    write_file(dir + "/agent-list.c", kAgentList);
    Output cc = sh("cc -static -O2 -o " + q(ctx + "/agent-list") + " " + q(dir + "/agent-list.c"));
    ASSERT_EQ(cc.exit_code, 0) << cc.output;
    Output agent = sh("ssh-agent -a " + q(socket) + " > " + q(dir + "/agent.env"));
    ASSERT_EQ(agent.exit_code, 0) << agent.output;
    pid = sh(". " + q(dir + "/agent.env") + " >/dev/null && echo $SSH_AGENT_PID").output;
    Output key = sh("ssh-keygen -q -t ed25519 -N '' -C dfgen-e2e-" + nonce() + " -f " + q(dir + "/id") +
                    " && SSH_AUTH_SOCK=" + q(socket) + " ssh-add " + q(dir + "/id") + " 2>&1");
    ASSERT_EQ(key.exit_code, 0) << key.output;
  }
  void TearDown() override {
    if (!pid.empty()) sh("kill " + pid);
  }
  std::string dir, ctx, b, socket, pid;
};

const char* kSshDockerfile = R"(FROM busybox
RUN --mount=type=ssh --mount=type=bind,source=agent-list,target=/agent-list \
    echo SSH-STEP-""RAN-@NONCE@ && test -S "$SSH_AUTH_SOCK" && echo "sock=$SSH_AUTH_SOCK" > /ssh.txt && \
    stat -c '%a %u:%g' "$SSH_AUTH_SOCK" >> /ssh.txt && /agent-list >> /ssh.txt
RUN --mount=type=ssh,id=other,target=/tmp/agent,mode=0666,uid=1234,gid=99 \
    --mount=type=bind,source=agent-list,target=/agent-list \
    stat -c '%a %u:%g %F' /tmp/agent > /other.txt && echo "env=$SSH_AUTH_SOCK" >> /other.txt && \
    SSH_AUTH_SOCK=/tmp/agent /agent-list >> /other.txt
RUN --mount=type=ssh,id=absent ls /run/buildkit/ssh_agent.0 2>/dev/null; echo "absent=$?" > /absent.txt
)";

TEST_F(Ssh, AgentKeysAreListedInsideButTheSocketIsInNoKeyOrLayer) {
  std::string image = "mounts-e2e-ssh";
  write_file(ctx + "/Dockerfile", with_nonce(kSshDockerfile));
  std::string args = "-t " + image + " --ssh default --ssh other=" + q(socket) + " --output type=oci,dest=" +
                     q(b + "/oci") + ",tar=false --output type=local,dest=" + q(b + "/rootfs");
  ASSERT_EQ(sh("SSH_AUTH_SOCK=" + q(socket) + " dfgen " + q(ctx) + " -B " + q(b) +
               " --build-context busybox=docker-image://" + fixture("busybox") + " " + args).exit_code, 0);
  Output out = sh("SSH_AUTH_SOCK=" + q(socket) + " ninja -C " + q(b));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  std::string comment = "dfgen-e2e-" + nonce();
  EXPECT_EQ(in_image(image, "cat /ssh.txt").output,
            "sock=/run/buildkit/ssh_agent.0\n600 0:0\nkeys=1\n" + comment + "\n");
  EXPECT_EQ(in_image(image, "cat /other.txt /absent.txt").output,
            "666 1234:99 socket\nenv=/tmp/agent\nkeys=1\n" + comment + "\nabsent=1\n");

  // The mount points left nothing in the image; the key is in no layer, the
  // agent's socket path is in no layer or key, and `--ssh default` wrote
  // only the variable's name into the build dir.
  Output entries = layer_entries(b + "/oci");
  EXPECT_EQ(count_lines_with(entries.output, "run/"), 0) << entries.output;
  EXPECT_EQ(count_lines_with(entries.output, "tmp/agent"), 0) << entries.output;
  std::string private_key = read_file(dir + "/id");
  EXPECT_EQ(blobs_containing(b + "/oci", private_key.substr(40, 40)), 0);
  EXPECT_EQ(blobs_containing(b + "/oci", socket), 0);
  EXPECT_EQ(sh("grep -l " + q(socket) + " " + q(b) + "/.dfgen/s0-0.* | wc -l").output, "0\n");
  EXPECT_EQ(sh("grep -l " + q(socket) + " " + q(b) + "/.dfgen/s0-1.spec | wc -l").output, "1\n");   // --ssh other=PATH
  EXPECT_EQ(sh("grep -rla " + q(socket) + " " + q(store_dir() + "/cache") + " | wc -l").output, "0\n");

  // Another agent at another path keeps every key: a clean rebuild runs nothing.
  std::string results = step_results(b);
  std::string moved = dir + "/moved.sock";
  ASSERT_EQ(sh("mv " + q(socket) + " " + q(moved)).exit_code, 0);
  ASSERT_EQ(sh("SSH_AUTH_SOCK=" + q(moved) + " dfgen " + q(ctx) + " -B " + q(b) +
               " --build-context busybox=docker-image://" + fixture("busybox") + " -t " + image +
               " --ssh default --ssh other=" + q(moved)).exit_code, 0);
  expect_clean_rebuild_runs_nothing(b, "SSH_AUTH_SOCK=" + q(moved), "SSH-STEP-RAN", results);
}

TEST(SshMissing, RequiredAgentNamesItOptionalIsNotMounted) {
  std::string ctx = temp_dir("mounts-nossh-ctx"), b = temp_dir("mounts-nossh-build");
  write_file(ctx + "/Dockerfile", with_nonce("FROM busybox\nRUN --mount=type=ssh,required=true echo @NONCE@\n"));
  ASSERT_EQ(dfgen(ctx, b, "-t mounts-e2e-nossh").exit_code, 0);
  Output out = build(b);
  EXPECT_NE(out.exit_code, 0);
  EXPECT_NE(out.output.find("Dockerfile:2: RUN --mount=type=ssh,required=true echo " + nonce() +
                            ": --mount type=ssh: ssh agent default: required but not provided (dfgen --ssh "
                            "default[=SOCKET], with an ssh-agent running)"),
            std::string::npos)
      << out.output;

  // dfgen --ssh needs an agent to point at.
  Output gen = sh("unset SSH_AUTH_SOCK; dfgen " + q(ctx) + " -B " + q(b) + " --build-context busybox=docker-image://" +
                  fixture("busybox") + " -t mounts-e2e-nossh --ssh default");
  EXPECT_NE(gen.exit_code, 0);
  EXPECT_NE(gen.output.find("--ssh default: SSH_AUTH_SOCK is not set"), std::string::npos) << gen.output;
  write_file(ctx + "/key", "not a socket\n");
  gen = dfgen(ctx, b, "-t mounts-e2e-nossh --ssh k=" + q(ctx + "/key"));
  EXPECT_NE(gen.exit_code, 0);
  EXPECT_NE(gen.output.find("is not a socket (key files are not supported yet"), std::string::npos) << gen.output;
}

// RUN --security=insecure: a privileged container (all capabilities), only
// with --allow security.insecure; a plain RUN cannot mount.
TEST(Security, InsecureRunMountsSandboxedRunCannot) {
  std::string ctx = temp_dir("mounts-insecure-ctx"), b = temp_dir("mounts-insecure-build");
  write_file(ctx + "/Dockerfile", with_nonce(R"(FROM busybox
RUN --security=insecure mkdir -p /m && mount -t tmpfs none /m && echo in-tmpfs-@NONCE@ > /m/f && \
    cat /m/f > /insecure.txt && umount /m && grep CapEff /proc/self/status >> /insecure.txt
RUN mkdir -p /n && { mount -t tmpfs none /n 2>/dev/null && echo mounted || echo refused; } > /sandbox.txt && \
    grep CapEff /proc/self/status >> /sandbox.txt
)"));
  Output refused = dfgen(ctx, b, "-t mounts-e2e-insecure");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("Dockerfile:2: RUN --security=insecure is not allowed in this build"), std::string::npos)
      << refused.output;

  ASSERT_EQ(dfgen(ctx, b, "-t mounts-e2e-insecure --allow security.insecure").exit_code, 0);
  Output out = build(b);
  ASSERT_EQ(out.exit_code, 0) << out.output;
  Output insecure = in_image("mounts-e2e-insecure", "cat /insecure.txt");
  EXPECT_EQ(insecure.output.substr(0, insecure.output.find('\n') + 1), "in-tmpfs-" + nonce() + "\n");
  Output sandbox = in_image("mounts-e2e-insecure", "cat /sandbox.txt");
  EXPECT_EQ(sandbox.output.substr(0, sandbox.output.find('\n') + 1), "refused\n");
  // Every capability dfrun has (the test's own bounding set: both run as
  // root here) against Docker's default 14.
  std::string status = read_file("/proc/self/status");
  std::string bounding = status.substr(status.find("CapBnd:\t") + 8, 16);
  EXPECT_EQ(insecure.output.substr(insecure.output.find('\n') + 1), "CapEff:\t" + bounding + "\n");
  EXPECT_EQ(sandbox.output.substr(sandbox.output.find('\n') + 1), "CapEff:\t00000000a80425fb\n");
}

}  // namespace
}  // namespace dfgen::e2e
