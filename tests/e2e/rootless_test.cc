// End to end for rootless builds (docs/rootless.md): a user who is not root
// builds a busybox-based image with the real dfgen, ninja, dfrun, runc and
// slirp4netns, inside a user namespace over its subordinate id range. The
// suite runs as root (as CI does) and creates its users: dfgen-test (with
// a subordinate range) and dfgen-nosub (without one).
#include <gtest/gtest.h>

#include <unistd.h>

#include <sstream>

#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

const char* kUser = "dfgen-test";
const char* kNoSubUser = "dfgen-nosub";

Output must(const std::string& command) {
  Output o = sh(command);
  if (o.exit_code != 0) ADD_FAILURE() << command << " failed:\n" << o.output;
  return o;
}

// The first subordinate id of `user` in `file` (/etc/subuid, /etc/subgid).
long sub_start(const std::string& file, const std::string& user) {
  std::istringstream in(read_file(file));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(user + ":", 0) == 0) return std::stol(line.substr(user.size() + 1));
  }
  return -1;
}

class Rootless : public ::testing::Test {
 protected:
  // Users, a dir dfgen-test owns (its binaries, store, contexts), and the
  // busybox fixture imported into its store by itself.
  static void SetUpTestSuite() {
    ensure_rootless_user(kUser);
    must(std::string("id -u ") + kNoSubUser + " >/dev/null 2>&1 || useradd --system --no-create-home " +
         kNoSubUser);
    must(std::string("sed -i '/^") + kNoSubUser + ":/d' /etc/subuid /etc/subgid");

    dir_ = user_dir(kUser, "rootless");
    must("cp " + q(fixture_archive("busybox")) + " " + q(dir_ + "/busybox.tar") + " && chown " + kUser + ": " +
         q(dir_ + "/busybox.tar"));
    Output imported = as_user(kUser, "dfrun import busybox.tar -t dfgen-fixtures/busybox:bookworm");
    ASSERT_EQ(imported.exit_code, 0) << imported.output;
  }

  // Runs `command` as `user` in dir_, with dir_/bin first on PATH and its store.
  static Output as_user(const std::string& user, const std::string& command) {
    return sh_as(user, dir_, command);
  }

  static inline std::string dir_;
};

const char* kDockerfile = R"(FROM busybox
RUN mkdir -p /data/sub && echo a > /data/sub/a && echo keep > /data/keep && echo gone > /data/gone
RUN echo owned > /owned && chown 1000:1000 /owned && rm /data/gone /bin/arch && \
    rm -rf /data/sub && mkdir /data/sub && echo n > /data/sub/n && \
    grep -c tap0 /proc/net/dev > /net.txt && id -u > /id.txt
COPY --chown=1234:2345 f.txt /copied.txt
)";

TEST_F(Rootless, BuildKeepsOwnersWhiteoutsAndOpaqueDirs) {
  ASSERT_EQ(::getuid(), 0u) << "the suite runs as root (it creates its users)";
  std::string ctx = dir_ + "/ctx", b = dir_ + "/build";
  must("mkdir -p " + q(ctx));
  write_file(ctx + "/Dockerfile", kDockerfile);
  write_file(ctx + "/f.txt", "copied\n");
  must("chown -R " + std::string(kUser) + ": " + q(ctx));

  Output gen = as_user(kUser, "dfgen ctx -B build --build-context busybox=docker-image://dfgen-fixtures/busybox:bookworm "
                              "-t rootless-e2e --output type=oci,dest=build/oci,tar=false");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output built = as_user(kUser, "ninja -C build");
  ASSERT_EQ(built.exit_code, 0) << built.output;

  // Inside: the owners the build gave, the deletions, the network, root.
  EXPECT_EQ(as_user(kUser, "dfrun run rootless-e2e stat -c %u:%g /owned /copied.txt").output,
            "1000:1000\n1234:2345\n");
  EXPECT_EQ(as_user(kUser, "dfrun run rootless-e2e sh -c 'ls /data; ls /data/sub; test -e /bin/arch; echo $?; "
                           "cat /net.txt /id.txt /copied.txt'").output,
            "keep\nsub\nn\n1\n1\n0\ncopied\n");

  // On disk the ids are the subordinate range's: in-namespace 1000 is
  // start + 999 (0 is the user, 1 the range's start).
  long uid0 = sub_start("/etc/subuid", kUser), gid0 = sub_start("/etc/subgid", kUser);
  ASSERT_GT(uid0, 0);
  EXPECT_EQ(sh("find " + q(dir_ + "/store/snapshots") + " -name owned -printf '%U:%G\\n'").output,
            std::to_string(uid0 + 999) + ":" + std::to_string(gid0 + 999) + "\n");
  // The user owns what root of the namespace made (the store itself).
  EXPECT_EQ(sh("stat -c %U " + q(dir_ + "/store/index.json")).output, std::string(kUser) + "\n");

  // The layers carry the in-namespace ids and OCI whiteouts, no overlay xattrs.
  Output entries = sh("cd " + q(b + "/oci") + " && for f in blobs/sha256/*; do "
                      "if gzip -t \"$f\" 2>/dev/null; then zcat \"$f\" | tar --numeric-owner -tv; fi; done");
  EXPECT_EQ(count_lines_with(entries.output, "data/.wh.gone"), 1) << entries.output;
  EXPECT_EQ(count_lines_with(entries.output, "bin/.wh.arch"), 1) << entries.output;
  EXPECT_EQ(count_lines_with(entries.output, "data/sub/.wh..wh..opq"), 1) << entries.output;
  EXPECT_EQ(count_lines_with(entries.output, "1000/1000"), 1) << entries.output;
  EXPECT_EQ(count_lines_with(entries.output, "1234/2345"), 1) << entries.output;
  EXPECT_EQ(sh("cd " + q(b + "/oci") + " && for f in blobs/sha256/*; do zcat \"$f\" 2>/dev/null || cat \"$f\"; done"
               " | grep -ac overlay.").output,
            "0\n");

  // The store checks clean, from inside the namespace too.
  Output check = as_user(kUser, "dfrun check");
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST_F(Rootless, AUserWithoutSubordinateIdsIsToldWhatToAdd) {
  Output o = as_user(kNoSubUser, "dfrun --store /tmp/dfgen-nosub-store run rootless-e2e true");
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.output, std::string("dfrun: run dfrun as ") + kNoSubUser +
                          " (not root): no subordinate uid range for " + kNoSubUser +
                          " in /etc/subuid: add one with `usermod --add-subuids 100000-165535 "
                          "--add-subgids 100000-165535 " + kNoSubUser + "` (as root)\n");
  // Nothing was made for it.
  EXPECT_NE(sh("test -e /tmp/dfgen-nosub-store").exit_code, 0);
}

}  // namespace
}  // namespace dfgen::e2e
