// End to end with hostile build contexts and resources: symlinks in the
// context that point outside it, COPY of "..", a file rewritten while it is
// copied, device nodes and fifos in the context, and a store on a full disk.
// Each test uses its own store with the busybox fixture (docs/robustness.md).
#include <gtest/gtest.h>
#include <sys/mount.h>

#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

Output in_store(const std::string& store, const std::string& command) {
  return sh("export DFGEN_STORE=" + q(store) + "; " + command);
}

void import_busybox(const std::string& store) {
  Output imp = in_store(store, "dfrun import " + q(fixture_archive("busybox")) + " -t dfgen-fixtures/busybox:bookworm");
  ASSERT_EQ(imp.exit_code, 0) << imp.output;
}

std::string new_store(const std::string& name) {
  std::string store = temp_dir(name);
  import_busybox(store);
  return store;
}

// dfgen then ninja for the context `ctx` (its Dockerfile), tagging `tag`.
Output build(const std::string& store, const std::string& ctx, const std::string& tag) {
  std::string dir = temp_dir("hostile-build");
  Output gen = in_store(store, "dfgen " + q(ctx) + " -B " + q(dir) + " -t " + tag +
                                   " --build-context busybox=docker-image://dfgen-fixtures/busybox:bookworm 2>&1");
  if (gen.exit_code != 0) return gen;
  return in_store(store, "timeout 300 ninja -C " + q(dir) + " 2>&1");
}

Output run_in(const std::string& store, const std::string& tag, const std::string& script) {
  return in_store(store, "dfrun run " + tag + " sh -c " + q(script) + " 2>&1");
}

// A file outside every context, that no image may ever contain.
std::string outside_dir() {
  std::string dir = temp_dir("hostile-outside");
  write_file(dir + "/secret", "HOST-SECRET-1f0e\n");
  return dir;
}

TEST(HostileContext, SymlinkToHostFileIsCopiedAsALink) {
  std::string store = new_store("hostile-link-store");
  std::string out = outside_dir();
  std::string ctx = temp_dir("hostile-link-ctx");
  ASSERT_EQ(sh("ln -s " + q(out + "/secret") + " " + q(ctx + "/x") + " && ln -s /etc/shadow " + q(ctx + "/shadow"))
                .exit_code, 0);
  write_file(ctx + "/Dockerfile", "FROM busybox\nCOPY x shadow /l/\n");
  Output built = build(store, ctx, "hostile-link");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  // The links themselves, dangling inside the image: the host's file is not there.
  Output got = run_in(store, "hostile-link",
                      "readlink /l/x; readlink /l/shadow; test -L /l/x && echo islink; cat /l/x 2>/dev/null || echo dangling");
  EXPECT_EQ(got.output, out + "/secret\n/etc/shadow\nislink\ndangling\n");
  EXPECT_EQ(got.output.find("HOST-SECRET"), std::string::npos) << got.output;
}

TEST(HostileContext, CopyOfParentIsRefused) {
  std::string store = new_store("hostile-dotdot-store");
  std::string parent = temp_dir("hostile-dotdot");
  write_file(parent + "/x", "HOST-SECRET-1f0e\n");
  std::string ctx = parent + "/ctx";
  write_file(ctx + "/Dockerfile", "FROM busybox\nCOPY ../x /x\n");
  Output built = build(store, ctx, "hostile-dotdot");
  EXPECT_NE(built.exit_code, 0) << built.output;
  EXPECT_NE(built.output.find("../x"), std::string::npos) << built.output;
  EXPECT_NE(built.output.find("outside"), std::string::npos) << built.output;
}

// COPY dir/ where dir -> a host directory: symlinks are resolved inside the
// context (as BuildKit does), so the host's directory never lands in the image.
TEST(HostileContext, DirectorySymlinkOutsideNeverCopiesTheHostDirectory) {
  std::string store = new_store("hostile-dirlink-store");
  std::string out = outside_dir();
  std::string ctx = temp_dir("hostile-dirlink-ctx");
  ASSERT_EQ(sh("ln -s " + q(out) + " " + q(ctx + "/dir") + " && ln -s /etc " + q(ctx + "/etc")).exit_code, 0);
  for (const char* src : {"dir/", "dir", "dir/secret", "etc/", "etc/passwd"}) {
    SCOPED_TRACE(src);
    write_file(ctx + "/Dockerfile", std::string("FROM busybox\nCOPY ") + src + " /d/\n");
    Output built = build(store, ctx, "hostile-dirlink");
    if (built.exit_code != 0) {
      // Refused (not found inside the context, or a link loop): a Dockerfile error.
      EXPECT_NE(built.output.find("Dockerfile:2"), std::string::npos) << built.output;
      EXPECT_EQ(built.output.find("HOST-SECRET"), std::string::npos) << built.output;
      continue;
    }
    Output got = run_in(store, "hostile-dirlink", "grep -r HOST-SECRET /d; ls -la /d; cat /d/passwd");
    EXPECT_EQ(got.output.find("HOST-SECRET"), std::string::npos) << got.output;
    EXPECT_EQ(got.output.find("root:x:0:0"), std::string::npos) << got.output;   // host's passwd
  }
}

// A context file rewritten (in place, with different sizes) during builds:
// each build either succeeds or fails naming the file, never hangs; once the
// file is left alone, a rebuild records for it the digest of the bytes that
// are in the image. (While it changes, the digest in the key may describe
// other bytes than the layer's: docs/robustness.md, "Known limits".)
TEST(HostileContext, FileChangingWhileCopied) {
  std::string store = new_store("hostile-race-store");
  std::string ctx = temp_dir("hostile-race-ctx");
  write_file(ctx + "/Dockerfile", "FROM busybox\nCOPY big /big\n");
  ASSERT_EQ(sh("head -c 4000000 /dev/urandom > " + q(ctx + "/big")).exit_code, 0);
  std::string writer = "while :; do head -c $(( (RANDOM % 4 + 1) * 1000000 )) /dev/urandom "
                       "| dd of=" + q(ctx + "/big") + " conv=notrunc status=none; "
                       "truncate -s $(( (RANDOM % 4 + 1) * 1000000 )) " + q(ctx + "/big") + "; done";
  Output started = sh("bash -c " + q(writer) + " >/dev/null 2>&1 & echo $!");
  ASSERT_EQ(started.exit_code, 0);
  std::string pid = std::to_string(std::stoi(started.output));
  std::string dir = temp_dir("hostile-race-build");
  Output gen = in_store(store, "dfgen " + q(ctx) + " -B " + q(dir) + " -t hostile-race" +
                                   " --build-context busybox=docker-image://dfgen-fixtures/busybox:bookworm 2>&1");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  for (int i = 0; i < 3; ++i) {
    Output built = in_store(store, "timeout 300 ninja -C " + q(dir) + " 2>&1");
    if (built.exit_code != 0) EXPECT_NE(built.output.find("big"), std::string::npos) << built.output;
    else EXPECT_EQ(built.output.find("timeout"), std::string::npos) << built.output;
  }
  ASSERT_EQ(sh("kill " + pid + "; for i in $(seq 100); do kill -0 " + pid + " 2>/dev/null || exit 0; sleep 0.1; done; "
               "exit 1").exit_code, 0);
  ASSERT_EQ(sh("head -c 3000000 /dev/urandom > " + q(ctx + "/big")).exit_code, 0);   // a new, settled content
  Output built = in_store(store, "timeout 300 ninja -C " + q(dir) + " 2>&1");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  Output recorded = sh("cat " + q(dir) + "/.dfgen/*.inputs.json | grep -o 'sha256:[0-9a-f]\\{64\\}' | sort -u");
  Output in_image = run_in(store, "hostile-race", "sha256sum /big | cut -c1-64");
  ASSERT_EQ(in_image.exit_code, 0) << in_image.output;
  Output on_disk = sh("sha256sum " + q(ctx + "/big") + " | cut -c1-64");
  EXPECT_EQ(in_image.output, on_disk.output);
  EXPECT_NE(recorded.output.find("sha256:" + in_image.output.substr(0, 64)), std::string::npos)
      << "recorded:\n" << recorded.output << "image: " << in_image.output;
}

TEST(HostileContext, DeviceNodesAndFifosAreCopiedAsNodes) {
  std::string store = new_store("hostile-dev-store");
  std::string ctx = temp_dir("hostile-dev-ctx");
  write_file(ctx + "/f", "file\n");
  ASSERT_EQ(sh("cd " + q(ctx) + " && mknod zero c 1 5 && mknod null c 1 3 && mkfifo fifo").exit_code, 0);
  write_file(ctx + "/Dockerfile", "FROM busybox\nCOPY . /c/\nRUN ls -l /c/ | cut -c1 | sort | tr -d '\\n' > /kinds\n");
  Output built = build(store, ctx, "hostile-dev");   // must not block on the fifo or read /dev/zero forever
  ASSERT_EQ(built.exit_code, 0) << built.output;
  Output got = run_in(store, "hostile-dev", "test -c /c/zero && test -c /c/null && test -p /c/fifo && cat /c/f");
  EXPECT_EQ(got.output, "file\n");
}

// A store on a 20 MB tmpfs: a RUN writing 50 MB fails the build with ENOSPC
// named, the store checks consistent, and with more room the build succeeds.
TEST(HostileResources, FullDiskFailsClearlyAndRecovers) {
  std::string store = temp_dir("hostile-full-store");
  ASSERT_EQ(::mount("tmpfs", store.c_str(), "tmpfs", 0, "size=20m"), 0);
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{store};
  import_busybox(store);
  std::string ctx = temp_dir("hostile-full-ctx");
  write_file(ctx + "/Dockerfile", "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=50 && echo wrote\n");
  Output full = build(store, ctx, "hostile-full");
  EXPECT_NE(full.exit_code, 0) << full.output;
  EXPECT_NE(full.output.find("No space left on device"), std::string::npos) << full.output;
  Output check = in_store(store, "dfrun check");
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(check.output.find("problem:"), std::string::npos) << check.output;

  ASSERT_EQ(::mount("tmpfs", store.c_str(), "tmpfs", MS_REMOUNT, "size=200m"), 0);
  Output again = build(store, ctx, "hostile-full");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  Output got = run_in(store, "hostile-full", "wc -c < /big");
  EXPECT_EQ(got.output, "52428800\n");
  Output check2 = in_store(store, "dfrun check");
  EXPECT_EQ(check2.exit_code, 0) << check2.output;
}

}  // namespace
}  // namespace dfgen::e2e
