// End to end for the runner: images built by the real dfgen, ninja, dfrun and
// runc with RUN, COPY, ADD and every metadata instruction, then checked from
// inside (dfrun run), from an exported root file system, and from an OCI
// layout read by python3, skopeo and umoci.
//
// One "main" image carries most of the checks so the file stays fast: it is
// built once (a gtest environment) and the tests read it.
#include <gtest/gtest.h>

#include <ctime>
#include <unistd.h>

#include "core/json.h"
#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

Output dfgen(const std::string& ctx, const std::string& b, const std::string& extra) {
  return sh("dfgen " + q(ctx) + " -B " + q(b) + " --build-context busybox=docker-image://" +
            fixture("busybox") + " " + extra);
}

// The "config" object of the single image in an OCI layout.
Json oci_config(const std::string& layout) {
  Output out = sh("python3 - " + q(layout) + R"( <<'PY'
import json, sys
d = sys.argv[1]
blob = lambda dg: d + "/blobs/sha256/" + dg.split(":")[1]
idx = json.load(open(d + "/index.json"))
man = json.load(open(blob(idx["manifests"][0]["digest"])))
print(json.dumps(json.load(open(blob(man["config"]["digest"])))["config"]))
PY
)");
  if (out.exit_code != 0) return Json{{"error", out.output}};
  return Json::parse(out.output, nullptr, false);
}

// The first RUN carries the nonce (see main_dockerfile()): every step after it
// really executes on each test run.
const char* kMainDockerfile = R"(FROM busybox
RUN echo RUN-EXEC""UTED-MAIN @NONCE@
ENV GREETING=hi
LABEL org.example.kind=e2e "with space"="x y"
WORKDIR /work
COPY --chmod=0640 a.txt ./
COPY c.txt rel/
COPY --chmod=u+x,go-w b.sh /bin/
COPY --chmod=a=rX dir /rx/
COPY --chown=nobody c.txt /own-name
COPY --chown=1234:5678 c.txt /own-ids
COPY --chown=nobody:root c.txt /own-mixed
COPY *.md /docs/
COPY a.txt c.txt /multi/
COPY dir /dir-contents
COPY c.txt /renamed
COPY link.txt /link.txt
ADD files.tar /unpacked/tar/
ADD files.tar.gz /unpacked/gz/
ADD files.tar.bz2 /unpacked/bz2/
ADD files.tar.xz /unpacked/xz
ADD files.tar.zst /unpacked/zst/
ADD --chown=nobody files.tar /unpacked/owned/
ADD escape.tar /jail/
ADD plain.txt notatar.gz /added/
RUN ln /work/a.txt /hard-a && ln -s /c.txt /sym-c && rm /bin/vi
RUN <<EOF
echo plain heredoc > /heredoc-plain.txt
EOF
RUN <<EOF
#!/bin/sh
echo "shebang $0" > /heredoc-shebang.txt
EOF
RUN cat <<EOF > /heredoc-cat.txt
home=$HOME greeting=$GREETING
EOF
RUN --network=none tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /net-none.txt
SHELL ["/usr/bin/env", "X_SHELL=yes", "/bin/sh", "-c"]
RUN echo "shell=$X_SHELL" > /shell.txt
USER nobody
RUN touch /tmp/by-nobody && id -u > /tmp/uid
EXPOSE 80 443/udp
VOLUME /data
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --retries=2 CMD ["true"]
ONBUILD RUN echo ONBUILD-RAN > /tmp/onbuild.txt
CMD ["echo main-cmd"]
ENTRYPOINT ["/bin/sh", "-c"]
)";

// The context of the main image: files with known modes, a symlink, and tars.
void make_main_context(const std::string& ctx) {
  std::string text = kMainDockerfile;
  text.replace(text.find("@NONCE@"), 7, nonce());
  write_file(ctx + "/Dockerfile", text);
  Output made = sh("cd " + q(ctx) + R"( && set -e
printf 'alpha\n' > a.txt; printf '#!/bin/sh\necho b\n' > b.sh; printf 'charlie\n' > c.txt
printf 'one\n' > d1.md; printf 'two\n' > d2.md; printf 'plain\n' > plain.txt
chmod 0644 a.txt c.txt d1.md d2.md plain.txt; chmod 0664 b.sh
mkdir -p dir/sub; printf 'f\n' > dir/f.txt; printf 'e\n' > dir/sub/e.txt
chmod 0644 dir/f.txt dir/sub/e.txt; chmod 0755 dir dir/sub
ln -s a.txt link.txt
printf 'not a tar\n' | gzip -n > notatar.gz
mkdir -p pack/inner; printf 'top\n' > pack/top.txt; printf 'deep\n' > pack/inner/deep.txt
chmod 0604 pack/top.txt; ln -s top.txt pack/ln; ln pack/top.txt pack/hard
tar --owner=1000 --group=1001 --numeric-owner -C pack -cf files.tar .
gzip -nk files.tar; bzip2 -k files.tar; xz -k files.tar; zstd -q files.tar -o files.tar.zst
rm -rf pack
python3 - <<'PY'
import io, tarfile
with tarfile.open("escape.tar", "w") as t:
    ln = tarfile.TarInfo("up"); ln.type = tarfile.SYMTYPE; ln.linkname = "/"; t.addfile(ln)
    data = b"planted\n"; f = tarfile.TarInfo("up/planted.txt"); f.size = len(data)
    t.addfile(f, io.BytesIO(data))
PY
)");
  if (made.exit_code != 0) throw std::runtime_error("context: " + made.output);
}

struct Main {
  std::string ctx, b, build_output;
  int build_exit = -1;
  std::string image = "runner-e2e-main";
};

Main* g_main = nullptr;

class MainImage : public ::testing::Environment {
 public:
  void SetUp() override {
    g_main = new Main;
    g_main->ctx = temp_dir("runner-main-ctx");
    g_main->b = temp_dir("runner-main-build");
    make_main_context(g_main->ctx);
    Output gen = dfgen(g_main->ctx, g_main->b,
                       "-t " + g_main->image + " --output type=oci,dest=" + q(g_main->b + "/oci") +
                           ",tar=false --output type=local,dest=" + q(g_main->b + "/rootfs"));
    if (gen.exit_code != 0) {
      g_main->build_output = gen.output;
      return;
    }
    Output build = sh("ninja -C " + q(g_main->b));
    g_main->build_exit = build.exit_code;
    g_main->build_output = build.output;
  }
};

const ::testing::Environment* const kMainEnv = ::testing::AddGlobalTestEnvironment(new MainImage);

#define REQUIRE_MAIN() ASSERT_EQ(g_main->build_exit, 0) << g_main->build_output

// `dfrun run` of the main image: its ENTRYPOINT is sh -c, so CMD is a shell line.
Output in_main(const std::string& line) { return sh("dfrun run " + g_main->image + " " + q(line)); }

TEST(RunnerMain, BuildsAndRunsItsDefaultCommand) {
  REQUIRE_MAIN();
  EXPECT_EQ(count_lines_with(g_main->build_output, "RUN-EXECUTED-MAIN"), 1) << g_main->build_output;
  Output run = sh("dfrun run " + g_main->image);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, "main-cmd\n");
}

TEST(RunnerMain, ExitCodePassesThroughDfrunRun) {
  REQUIRE_MAIN();
  EXPECT_EQ(in_main("exit 7").exit_code, 7);
  EXPECT_EQ(in_main("true").exit_code, 0);
}

TEST(RunnerMain, CopyModesOwnersAndDestinations) {
  REQUIRE_MAIN();
  Output st = in_main(
      "cd / && stat -c '%n %a %u:%g' work/a.txt work/rel/c.txt bin/b.sh rx rx/f.txt rx/sub rx/sub/e.txt "
      "own-name own-ids own-mixed renamed");
  EXPECT_EQ(st.output,
            "work/a.txt 640 0:0\n"
            "work/rel/c.txt 644 0:0\n"
            "bin/b.sh 744 0:0\n"
            "rx 555 0:0\n"
            "rx/f.txt 444 0:0\n"
            "rx/sub 555 0:0\n"
            "rx/sub/e.txt 444 0:0\n"
            "own-name 644 65534:65534\n"
            "own-ids 644 1234:5678\n"
            "own-mixed 644 65534:0\n"
            "renamed 644 0:0\n");
  Output ls = in_main("cd / && ls docs multi dir-contents dir-contents/sub && cat renamed");
  EXPECT_EQ(ls.output,
            "dir-contents:\nf.txt\nsub\n\ndir-contents/sub:\ne.txt\n\n"
            "docs:\nd1.md\nd2.md\n\nmulti:\na.txt\nc.txt\ncharlie\n");
  // A source named by its own path is followed when it is a symlink, as
  // BuildKit does (the differential case copy-symlink-source): /link.txt is
  // a file with a.txt's bytes.
  EXPECT_EQ(in_main("test -L /link.txt || cat /link.txt").output, "alpha\n");
}

TEST(RunnerMain, AddExtractsEveryCompressionAndCopiesOtherFiles) {
  REQUIRE_MAIN();
  for (const char* kind : {"tar", "gz", "bz2", "xz", "zst"}) {
    std::string d = std::string("/unpacked/") + kind;
    Output st = in_main("cd " + d + " && cat top.txt inner/deep.txt && readlink ln && "
                        "stat -c '%n %a %u:%g %h' top.txt inner/deep.txt hard");
    EXPECT_EQ(st.output,
              "top\ndeep\ntop.txt\n"
              "top.txt 604 1000:1001 2\n"
              "inner/deep.txt 644 1000:1001 1\n"
              "hard 604 1000:1001 2\n")
        << d;
  }
  EXPECT_EQ(in_main("stat -c '%u:%g' /unpacked/owned/top.txt /unpacked/owned/inner").output,
            "65534:65534\n65534:65534\n");
  // A gzip that holds no tar is copied as is; a plain file is copied.
  EXPECT_EQ(in_main("cat /added/plain.txt && gunzip -c /added/notatar.gz").output, "plain\nnot a tar\n");
  // A symlink in the archive pointing at "/" resolves inside the destination.
  EXPECT_EQ(in_main("cat /jail/planted.txt; ls /planted.txt 2>/dev/null; echo end").output,
            "planted\nend\n");
}

TEST(RunnerMain, RunLinksDeletesHeredocsNetworkShellAndUser) {
  REQUIRE_MAIN();
  Output links = in_main("stat -c '%h %i' /hard-a /work/a.txt && readlink /sym-c");
  ASSERT_EQ(count_lines_with(links.output, " "), 2) << links.output;
  std::string first = links.output.substr(0, links.output.find('\n'));
  EXPECT_EQ(first.substr(0, 2), "2 ") << links.output;
  EXPECT_EQ(links.output.substr(first.size() + 1, first.size()), first) << links.output;
  EXPECT_NE(links.output.find("/c.txt\n"), std::string::npos) << links.output;

  Output vi = in_main("ls /bin/vi; echo rc=$?");
  EXPECT_NE(vi.output.find("rc=1"), std::string::npos) << vi.output;
  EXPECT_EQ(in_main("ls /bin/busybox /bin/ls").exit_code, 0);

  EXPECT_EQ(in_main("cat /heredoc-plain.txt /heredoc-shebang.txt /heredoc-cat.txt").output,
            "plain heredoc\nshebang /dev/pipes/EOF\nhome=/root greeting=hi\n");
  EXPECT_EQ(in_main("cat /net-none.txt").output, "lo\n");
  EXPECT_EQ(in_main("cat /shell.txt").output, "shell=yes\n");
  EXPECT_EQ(in_main("cat /tmp/uid && stat -c '%u:%g' /tmp/by-nobody && id -u").output,
            "65534\n65534:65534\n65534\n");
}

TEST(RunnerMain, LocalOutputHasTheFilesAndNoWhiteouts) {
  REQUIRE_MAIN();
  std::string root = g_main->b + "/rootfs";
  Output st = sh("cd " + q(root) + " && stat -c '%n %a %u:%g' work/a.txt own-ids bin/b.sh && "
                 "cat link.txt unpacked/zst/inner/deep.txt");
  EXPECT_EQ(st.output, "work/a.txt 640 0:0\nown-ids 644 1234:5678\nbin/b.sh 744 0:0\nalpha\ndeep\n");
  EXPECT_FALSE(sh("test -e " + q(root + "/bin/vi") + " || test -L " + q(root + "/bin/vi")).exit_code == 0);
  EXPECT_EQ(sh("find " + q(root) + " -name '.wh.*' | wc -l").output, "0\n");
}

TEST(RunnerMain, OciLayoutConfigAndWhiteout) {
  REQUIRE_MAIN();
  std::string oci = g_main->b + "/oci";
  Json c = oci_config(oci);
  ASSERT_TRUE(c.is_object() && !c.contains("error")) << c.dump();
  EXPECT_EQ(c["Entrypoint"], Json::parse(R"(["/bin/sh","-c"])"));
  EXPECT_EQ(c["Cmd"], Json::parse(R"(["echo main-cmd"])"));  // set in this stage: kept
  EXPECT_EQ(c["WorkingDir"], "/work");
  EXPECT_EQ(c["User"], "nobody");
  EXPECT_EQ(c["StopSignal"], "SIGQUIT");
  EXPECT_EQ(c["ExposedPorts"], Json::parse(R"({"443/udp":{},"80/tcp":{}})"));
  EXPECT_EQ(c["Volumes"], Json::parse(R"({"/data":{}})"));
  EXPECT_EQ(c["Labels"], Json::parse(R"({"org.example.kind":"e2e","with space":"x y"})"));
  EXPECT_EQ(c["Shell"], Json::parse(R"(["/usr/bin/env","X_SHELL=yes","/bin/sh","-c"])"));
  EXPECT_EQ(c["OnBuild"], Json::parse(R"(["RUN echo ONBUILD-RAN > /tmp/onbuild.txt"])"));
  EXPECT_EQ(c["Healthcheck"]["Test"], Json::parse(R"(["CMD","true"])"));
  EXPECT_EQ(c["Healthcheck"]["Interval"], 5000000000LL);
  EXPECT_EQ(c["Healthcheck"]["Retries"], 2);
  bool greeting = false;
  for (const auto& e : c["Env"]) greeting = greeting || e == "GREETING=hi";
  EXPECT_TRUE(greeting) << c["Env"].dump();

  // The RUN that removed /bin/vi carries an OCI whiteout for it.
  Output wh = sh("python3 - " + q(oci) + R"( <<'PY'
import json, sys, tarfile
d = sys.argv[1]
blob = lambda dg: d + "/blobs/sha256/" + dg.split(":")[1]
idx = json.load(open(d + "/index.json"))
man = json.load(open(blob(idx["manifests"][0]["digest"])))
for l in man["layers"]:
    with tarfile.open(blob(l["digest"])) as t:
        for n in t.getnames():
            if ".wh." in n:
                print(n)
PY
)");
  EXPECT_EQ(wh.output, "bin/.wh.vi\n");

  Output skopeo = sh("skopeo inspect --config oci:" + q(oci) + ":latest");
  EXPECT_EQ(skopeo.exit_code, 0) << skopeo.output;
  EXPECT_NE(skopeo.output.find("SIGQUIT"), std::string::npos) << skopeo.output;
  Output raw = sh("skopeo inspect oci:" + q(oci) + ":latest");
  EXPECT_EQ(raw.exit_code, 0) << raw.output;

  std::string bundle = temp_dir("runner-umoci") + "/bundle";
  Output unpack = sh("umoci unpack --image " + q(oci) + ":latest " + q(bundle));
  ASSERT_EQ(unpack.exit_code, 0) << unpack.output;
  EXPECT_EQ(read_file(bundle + "/rootfs/work/a.txt"), "alpha\n");
  EXPECT_EQ(read_file(bundle + "/rootfs/unpacked/gz/inner/deep.txt"), "deep\n");
  EXPECT_NE(sh("ls " + q(bundle + "/rootfs/bin/vi")).exit_code, 0);
}

TEST(RunnerChild, NewEntrypointResetsInheritedCmdAndOnbuildRuns) {
  REQUIRE_MAIN();
  std::string ctx = temp_dir("runner-child-ctx"), b = temp_dir("runner-child-build");
  write_file(ctx + "/Dockerfile", "FROM main\nENTRYPOINT [\"cat\"]\n");
  Output gen = dfgen(ctx, b, "-t runner-e2e-child --build-context main=docker-image://" + g_main->image +
                                 " --output type=oci,dest=" + q(b + "/oci") + ",tar=false");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -C " + q(b));
  ASSERT_EQ(build.exit_code, 0) << build.output;
  Json c = oci_config(b + "/oci");
  EXPECT_TRUE(!c.contains("Cmd") || c["Cmd"].is_null()) << c.dump();
  EXPECT_EQ(c["Entrypoint"], Json::parse(R"(["cat"])"));
  EXPECT_TRUE(!c.contains("OnBuild") || c["OnBuild"].is_null() || c["OnBuild"].empty()) << c.dump();
  Output run = sh("dfrun run runner-e2e-child /tmp/onbuild.txt");
  EXPECT_EQ(run.output, "ONBUILD-RAN\n");
}

// A small build that is expected to fail in ninja (or in dfgen when `at_gen`).
struct Failing {
  Output out;
  Failing(const std::string& name, const std::string& dockerfile, bool at_gen = false) {
    std::string ctx = temp_dir(name + "-ctx"), b = temp_dir(name + "-build");
    write_file(ctx + "/Dockerfile", dockerfile);
    Output made = sh("cd " + q(ctx) + R"( && python3 - <<'PY'
import io, tarfile
with tarfile.open("evil.tar", "w") as t:
    data = b"x\n"; f = tarfile.TarInfo("../escaped.txt"); f.size = len(data)
    t.addfile(f, io.BytesIO(data))
PY
)");
    if (made.exit_code != 0) throw std::runtime_error(made.output);
    out = dfgen(ctx, b, "-t runner-e2e-" + name);
    if (at_gen || out.exit_code != 0) return;
    out = sh("ninja -C " + q(b));
  }
};

TEST(RunnerErrors, FailingRunStopsTheBuildAndNamesTheLine) {
  Failing f("failrun", "FROM busybox\nRUN echo fine\nRUN echo about-to-fail " + nonce() +
                           " && exit 3\nRUN echo NEVER-RUN\"\"S\n");
  EXPECT_NE(f.out.exit_code, 0);
  EXPECT_NE(f.out.output.find("Dockerfile:3"), std::string::npos) << f.out.output;
  EXPECT_NE(f.out.output.find("exit code: 3"), std::string::npos) << f.out.output;
  EXPECT_EQ(count_lines_with(f.out.output, "NEVER-RUNS"), 0) << f.out.output;
}

// No network here: the download and the clone fail, naming the source.
// (Working URL and git sources: copyflags_test.cc, with local servers.)
TEST(RunnerErrors, AddUrlAndGitThatCannotBeReachedFailTheStep) {
  Failing url("addurl", "FROM busybox\nADD https://example.invalid/x.tar.gz /x/\n");
  EXPECT_NE(url.out.exit_code, 0);
  EXPECT_NE(url.out.output.find("Dockerfile:2: ADD https://example.invalid/x.tar.gz /x/: ADD "
                                "https://example.invalid/x.tar.gz: download failed: Could not resolve host"),
            std::string::npos)
      << url.out.output;
  Failing git("addgit", "FROM busybox\n\nADD git@example.invalid:moby/buildkit.git /src\n");
  EXPECT_NE(git.out.exit_code, 0);
  EXPECT_NE(git.out.output.find("Dockerfile:3: ADD git@example.invalid:moby/buildkit.git /src: git clone --quiet "
                                "--recurse-submodules -- git@example.invalid:moby/buildkit.git "),
            std::string::npos)
      << git.out.output;
}

TEST(RunnerErrors, SourceOutsideTheContextIsRefused) {
  Failing f("outside", "FROM busybox\nCOPY ../secret /x\n", true);
  EXPECT_NE(f.out.exit_code, 0);
  EXPECT_NE(f.out.output.find("Dockerfile:2: forbidden path outside the build context: ../secret"),
            std::string::npos)
      << f.out.output;
}

TEST(RunnerErrors, ArchiveEntryLeavingTheDestinationIsRefused) {
  Failing f("evil", "FROM busybox\nADD evil.tar /d/\n");
  EXPECT_NE(f.out.exit_code, 0);
  EXPECT_NE(f.out.output.find("Dockerfile:2"), std::string::npos) << f.out.output;
  EXPECT_NE(f.out.output.find("entry \"../escaped.txt\" would land outside the destination"),
            std::string::npos)
      << f.out.output;
}

TEST(RunnerErrors, BadChmodIsRejected) {
  Failing f("badchmod", "FROM busybox\nCOPY --chmod=u+q Dockerfile /x\n");
  EXPECT_NE(f.out.exit_code, 0);
  EXPECT_NE(f.out.output.find("Dockerfile:2"), std::string::npos) << f.out.output;
  EXPECT_NE(f.out.output.find("invalid --chmod=u+q"), std::string::npos) << f.out.output;
}

// Named users and groups from a real /etc/passwd and /etc/group.
TEST(RunnerDebian, ChownAndUserResolveNamesInTheImage) {
  std::string debian = fixture("debian");
  std::string ctx = temp_dir("runner-deb-ctx"), b = temp_dir("runner-deb-build");
  write_file(ctx + "/a.txt", "a\n");
  write_file(ctx + "/Dockerfile",
             "FROM debian\n"
             "COPY --chown=www-data a.txt /by-name\n"
             "COPY --chown=daemon:staff a.txt /by-names\n"
             "COPY --chown=1234 a.txt /by-uid\n"
             "COPY --chown=mail:12 a.txt /name-and-gid\n"
             "USER www-data\n"
             "RUN touch /tmp/mine && id -un > /tmp/who # " + nonce() + "\n");
  Output gen = sh("dfgen " + q(ctx) + " -B " + q(b) + " -t runner-e2e-deb --build-context debian=docker-image://" +
                  debian);
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh("ninja -C " + q(b));
  ASSERT_EQ(build.exit_code, 0) << build.output;
  Output st = sh("dfrun run runner-e2e-deb stat -c '%n %u:%g' /by-name /by-names /by-uid /name-and-gid /tmp/mine");
  EXPECT_EQ(st.output, "/by-name 33:33\n/by-names 1:50\n/by-uid 1234:1234\n/name-and-gid 8:12\n/tmp/mine 33:33\n");
  EXPECT_EQ(sh("dfrun run runner-e2e-deb cat /tmp/who").output, "www-data\n");
}

}  // namespace
}  // namespace dfgen::e2e
