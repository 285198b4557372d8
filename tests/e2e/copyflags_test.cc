// End to end for COPY/ADD flags (docs/runner.md): --exclude, --parents (with
// the "/./" pivot), --link (a layer keyed without its parent), ADD of http
// URLs (--checksum, mode 0600, Last-Modified) and of git repositories
// (git daemon on 127.0.0.1, #ref, --keep-git-dir), ADD --unpack, with the real dfgen,
// ninja, dfrun and runc over the busybox fixture.
#include <gtest/gtest.h>

#include <csignal>
#include <ctime>
#include <unistd.h>

#include "core/json.h"
#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

struct Project {
  std::string ctx, b, tag;
  explicit Project(const std::string& name)
      : ctx(temp_dir(name + "-ctx")), b(temp_dir(name + "-build")), tag("copyflags-" + name + ":" + nonce()) {}
  Output generate() {
    return sh("dfgen " + q(ctx) + " -B " + q(b) + " --build-context busybox=docker-image://" +
              fixture("busybox") + " -t " + tag);
  }
  Output build() { return sh("ninja -C " + q(b)); }
  // generate() then build(): the first that fails, or the build.
  Output generate_and_build() {
    Output g = generate();
    return g.exit_code != 0 ? g : build();
  }
  Output in_image(const std::string& line) { return sh("dfrun run " + tag + " /bin/sh -c " + q(line)); }
  // The cache key a step's layer was looked up under (beside its result).
  std::string layer_key(const std::string& step) {
    Json j = Json::parse(read_file(b + "/.dfgen/" + step + ".inputs.json"), nullptr, false);
    return j.is_object() ? j.value("key", "") : "";
  }
};

// A background server started by the test, stopped with it. It is ready
// when `port` on 127.0.0.1 accepts connections (waited for up to 30 s: a
// loaded machine may take seconds to start python).
struct Server {
  pid_t pid = 0;
  Server(const std::string& command, int port) {
    Output o = sh(command + " >/dev/null 2>&1 & echo $!");
    pid = std::atoi(o.output.c_str());
    Output ready = sh("python3 -c " + q("import socket, sys, time\n"
                                        "for _ in range(600):\n"
                                        "    try:\n"
                                        "        socket.create_connection(('127.0.0.1', " + std::to_string(port) + "), 1).close()\n"
                                        "        sys.exit(0)\n"
                                        "    except OSError:\n"
                                        "        time.sleep(0.05)\n"
                                        "sys.exit(1)\n"));
    EXPECT_EQ(ready.exit_code, 0) << command << ": nothing listens on port " << port;
  }
  ~Server() {
    if (pid > 0) ::kill(pid, SIGTERM);
  }
};

TEST(CopyFlags, ExcludeAndParentsSelectTheSameFilesInDfgenAndDfrun) {
  Project p("select");
  sh("mkdir -p " + q(p.ctx + "/dir/sub"));
  write_file(p.ctx + "/dir/a.txt", "a\n");
  write_file(p.ctx + "/dir/b.md", "b\n");
  write_file(p.ctx + "/dir/sub/c.txt", "c\n");
  write_file(p.ctx + "/dir/sub/d.md", "d\n");
  write_file(p.ctx + "/x.txt", "x\n");
  write_file(p.ctx + "/y.txt", "y\n");
  write_file(p.ctx + "/Dockerfile", with_nonce(R"(FROM busybox
RUN echo @NONCE@ > /nonce
COPY --exclude=**/*.md dir /ex/
COPY --exclude=sub --exclude=*.md dir /ex2/
COPY --exclude=x* *.txt /exw/
COPY --exclude=a.txt dir/a.txt /named/
COPY --parents dir/sub/c.txt /par/
COPY --parents --exclude=**/*.md dir/./sub /piv/
COPY --parents dir/*/c.txt /pw/
)"));
  Output built = p.generate_and_build();
  ASSERT_EQ(built.exit_code, 0) << built.output;
  Output tree = p.in_image("cd / && find ex ex2 exw named par piv pw | sort");
  EXPECT_EQ(tree.output,
            "ex\nex/a.txt\nex/sub\nex/sub/c.txt\n"
            "ex2\nex2/a.txt\n"
            "exw\nexw/y.txt\n"
            "named\nnamed/a.txt\n"
            "par\npar/dir\npar/dir/sub\npar/dir/sub/c.txt\n"
            "piv\npiv/sub\npiv/sub/c.txt\n"
            "pw\npw/dir\npw/dir/sub\npw/dir/sub/c.txt\n");
  // Excluded files are no inputs of the Ninja graph: editing them does nothing.
  write_file(p.ctx + "/dir/b.md", "changed\n");
  write_file(p.ctx + "/dir/sub/d.md", "changed\n");
  write_file(p.ctx + "/x.txt", "changed\n");
  EXPECT_NE(sh("ninja -C " + q(p.b) + " -n").output.find("no work to do"), std::string::npos);
  // An included one is.
  write_file(p.ctx + "/dir/sub/c.txt", "c2\n");
  ASSERT_EQ(p.build().exit_code, 0);
  EXPECT_EQ(p.in_image("cat /ex/sub/c.txt /piv/sub/c.txt /pw/dir/sub/c.txt").output, "c2\nc2\nc2\n");
}

TEST(CopyFlags, LinkLayerIsKeyedWithoutItsParent) {
  Project p("link");
  write_file(p.ctx + "/y.txt", "y\n");
  const char* dockerfile = R"(FROM busybox
RUN echo @WORD@-@NONCE@ > /before
COPY --link y.txt /linked/
COPY --link y.txt /linked-file
RUN cat /linked/y.txt /linked-file /before > /after
)";
  auto write = [&](const std::string& word) {
    std::string text = with_nonce(dockerfile);
    text.replace(text.find("@WORD@"), 6, word);
    write_file(p.ctx + "/Dockerfile", text);
  };
  write("one");
  ASSERT_EQ(p.generate().exit_code, 0);
  Output first = p.build();
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(p.in_image("cat /after; ls -d /linked-file /linked/y.txt").output,
            "y\ny\none-" + nonce() + "\n/linked-file\n/linked/y.txt\n");
  std::string dir_key = p.layer_key("s0-1"), file_key = p.layer_key("s0-2");
  ASSERT_FALSE(dir_key.empty());

  write("two");   // an earlier step changes: the --link steps keep their keys (cache hits)
  Output second = p.build();
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(p.layer_key("s0-1"), dir_key);
  EXPECT_EQ(p.layer_key("s0-2"), file_key);
  // ...while the steps after them see the new parent.
  EXPECT_EQ(p.in_image("cat /after").output, "y\ny\ntwo-" + nonce() + "\n");
}

TEST(CopyFlags, AddUrlDownloadsWithChecksumModeAndTime) {
  Project p("url");
  std::string srv = temp_dir("url-srv");
  write_file(srv + "/data.txt", "payload-" + nonce() + "\n");
  sh("touch -d @1600000000 " + q(srv + "/data.txt"));
  std::string sum = sh("sha256sum " + q(srv + "/data.txt") + " | cut -d' ' -f1").output;
  sum.pop_back();
  int port = free_port();
  Server http("python3 -m http.server " + std::to_string(port) + " --bind 127.0.0.1 --directory " + q(srv), port);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/data.txt";
  write_file(p.ctx + "/Dockerfile", "FROM busybox\nADD " + url + " /dl/\nADD --checksum=sha256:" + sum +
                                        " " + url + " /dl/checked\n");
  Output built = p.generate_and_build();
  ASSERT_EQ(built.exit_code, 0) << built.output;
  EXPECT_EQ(p.in_image("stat -c '%a %Y %u %n' /dl/*; cat /dl/checked").output,
            "600 1600000000 0 /dl/checked\n600 1600000000 0 /dl/data.txt\npayload-" + nonce() + "\n");

  Project bad("url-bad");
  std::string wrong(64, '0');
  write_file(bad.ctx + "/Dockerfile", "FROM busybox\nADD --checksum=sha256:" + wrong + " " + url + " /dl/\n");
  ASSERT_EQ(bad.generate().exit_code, 0);
  Output failed = bad.build();
  EXPECT_NE(failed.exit_code, 0);
  EXPECT_NE(failed.output.find("Dockerfile:2: ADD " + url + " /dl/: ADD " + url + ": digest mismatch: the content is sha256:" +
                               sum + ", --checksum says sha256:" + wrong),
            std::string::npos)
      << failed.output;

  Project missing("url-missing");
  write_file(missing.ctx + "/Dockerfile", "FROM busybox\nADD " + url + ".nope /dl/\n");
  ASSERT_EQ(missing.generate().exit_code, 0);
  Output gone = missing.build();
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.output.find("download failed: The requested URL returned error: 404"), std::string::npos) << gone.output;
}

TEST(CopyFlags, AddUnpackExtractsARemoteArchiveAndKeepsALocalOne) {
  Project p("unpack");
  std::string srv = temp_dir("unpack-srv");
  write_file(p.ctx + "/pkg/a.txt", "alpha-" + nonce() + "\n");
  ASSERT_EQ(sh("tar -C " + q(p.ctx) + " -czf " + q(srv + "/pkg.tar.gz") + " pkg && tar -C " + q(p.ctx) + " -cf " +
               q(p.ctx + "/local.tar") + " pkg && rm -r " + q(p.ctx + "/pkg")).exit_code, 0);
  int port = free_port();
  Server http("python3 -m http.server " + std::to_string(port) + " --bind 127.0.0.1 --directory " + q(srv), port);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/pkg.tar.gz";
  write_file(p.ctx + "/Dockerfile", "FROM busybox\nADD --unpack=true " + url + " /remote/\nADD " + url +
                                        " /plain/\nADD --unpack=false local.tar /kept/\nADD local.tar /default/\n"
                                        "ADD --unpack local.tar /flag/\n");
  Output built = p.generate_and_build();
  ASSERT_EQ(built.exit_code, 0) << built.output;
  // Extracted: the remote archive with --unpack=true, the local one by default
  // and with a bare --unpack; kept as files: the remote one by default, the
  // local one with --unpack=false.
  EXPECT_EQ(p.in_image("cat /remote/pkg/a.txt /default/pkg/a.txt /flag/pkg/a.txt; ls /remote /plain /kept; "
                       "test -f /plain/pkg.tar.gz && test -f /kept/local.tar && echo files")
                .output,
            "alpha-" + nonce() + "\nalpha-" + nonce() + "\nalpha-" + nonce() +
                "\n/kept:\nlocal.tar\n\n/plain:\npkg.tar.gz\n\n/remote:\npkg\nfiles\n");

  // COPY has no --unpack.
  Project copy("unpack-copy");
  write_file(copy.ctx + "/Dockerfile", "FROM busybox\nCOPY --unpack=true a /b\n");
  Output refused = copy.generate();
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("unknown flag --unpack for COPY"), std::string::npos) << refused.output;
}

TEST(CopyFlags, AddGitClonesAtRefWithoutOrWithGitDir) {
  std::string repos = temp_dir("git-repos");
  std::string work = temp_dir("git-work");
  Output made = sh("set -e; git init -q --bare " + q(repos + "/repo.git") + "; cd " + q(work) +
                   "; git init -q -b main .; git -c user.email=t@e -c user.name=t commit -q --allow-empty -m root;"
                   " echo v1 > f.txt; git add f.txt; git -c user.email=t@e -c user.name=t commit -qm one; git tag v1;"
                   " echo v2 > f.txt; git -c user.email=t@e -c user.name=t commit -qam two;"
                   " git push -q " + q(repos + "/repo.git") + " main --tags;"
                   " git --git-dir=" + q(repos + "/repo.git") + " symbolic-ref HEAD refs/heads/main");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  int port = free_port();
  Server daemon("git daemon --export-all --reuseaddr --base-path=" + q(repos) + " --listen=127.0.0.1 --port=" +
                std::to_string(port), port);
  std::string remote = "git://127.0.0.1:" + std::to_string(port) + "/repo.git";
  Project p("git");
  write_file(p.ctx + "/Dockerfile", with_nonce("FROM busybox\nRUN echo @NONCE@\nADD " + remote + "#v1 /src/\n"
                                               "ADD --keep-git-dir " + remote + " /kept/\n"));
  Output built = p.generate_and_build();
  ASSERT_EQ(built.exit_code, 0) << built.output;
  EXPECT_EQ(p.in_image("cat /src/f.txt /kept/f.txt; ls -A /src; test -f /kept/.git/HEAD && echo has-git").output,
            "v1\nv2\nf.txt\nhas-git\n");

  Project bad("git-bad");
  write_file(bad.ctx + "/Dockerfile", "FROM busybox\nADD " + remote + "#no-such-ref /src/\n");
  ASSERT_EQ(bad.generate().exit_code, 0);
  Output failed = bad.build();
  EXPECT_NE(failed.exit_code, 0);
  EXPECT_NE(failed.output.find("git -c advice.detachedHead=false checkout --quiet no-such-ref -- failed"),
            std::string::npos)
      << failed.output;
}

// A file source over a directory the same COPY made is refused as it was
// before context files went straight into the layer (and as BuildKit): the
// directory's files, kept outside the root, must not leave a layer with a
// file and entries below it.
TEST(CopyFlags, FileOverADirectoryOfTheSameCopyIsRefused) {
  Project p("fileoverdir");
  sh("mkdir -p " + q(p.ctx + "/a/sub"));
  write_file(p.ctx + "/a/sub/f", "f\n");
  write_file(p.ctx + "/sub", "file\n");
  write_file(p.ctx + "/Dockerfile", with_nonce(R"(FROM busybox
RUN echo @NONCE@ > /nonce
COPY a sub /out/
)"));
  ASSERT_EQ(p.generate().exit_code, 0);
  Output built = p.build();
  EXPECT_NE(built.exit_code, 0) << built.output << p.in_image("ls -la /out /out/sub").output;
  EXPECT_NE(built.output.find("replace /out/sub"), std::string::npos) << built.output;
}

// As for other sources (and in BuildKit, where a heredoc is copied like a
// file), the directories a heredoc COPY creates belong to --chown's owner.
TEST(CopyFlags, HeredocCopyGivesTheDirsItCreatesToTheChownOwner) {
  Project p("heredocchown");
  write_file(p.ctx + "/Dockerfile", with_nonce(R"(# syntax=docker/dockerfile:1
FROM busybox
RUN echo @NONCE@ > /nonce
COPY --chown=1234:2345 <<EOF /hd/sub/f
x
EOF
)"));
  Output built = p.generate_and_build();
  ASSERT_EQ(built.exit_code, 0) << built.output;
  EXPECT_EQ(p.in_image("stat -c '%n %u:%g' /hd /hd/sub /hd/sub/f").output,
            "/hd 1234:2345\n/hd/sub 1234:2345\n/hd/sub/f 1234:2345\n");
}

// The dirs COPY --parents creates for dest belong to --chown's owner, also
// when the source is its own pivot (nothing of its path kept below dest).
TEST(CopyFlags, ParentsGivesTheDestDirsItCreatesToTheChownOwner) {
  Project p("parentschown");
  sh("mkdir -p " + q(p.ctx + "/dir"));
  write_file(p.ctx + "/dir/f", "f\n");
  write_file(p.ctx + "/Dockerfile", with_nonce(R"(FROM busybox
RUN echo @NONCE@ > /nonce
COPY --parents --chown=1234:2345 dir/./ /pe/x/
)"));
  Output built = p.generate_and_build();
  ASSERT_EQ(built.exit_code, 0) << built.output;
  EXPECT_EQ(p.in_image("stat -c '%n %u:%g' /pe /pe/x /pe/x/f").output,
            "/pe 1234:2345\n/pe/x 1234:2345\n/pe/x/f 1234:2345\n");
}

// A dest that is a link to a file is written through (the link stays), as
// BuildKit resolves dest: for a context file and for a heredoc alike.
TEST(CopyFlags, DestLinkToAFileIsWrittenThrough) {
  Project p("destlink");
  write_file(p.ctx + "/new.txt", "new\n");
  write_file(p.ctx + "/Dockerfile", with_nonce(R"(# syntax=docker/dockerfile:1
FROM busybox
RUN echo @NONCE@ > /nonce && echo old > /t1 && echo old > /t2 && ln -s /t1 /l1 && ln -s t2 /l2
COPY new.txt /l1
COPY <<EOF /l2
doc
EOF
)"));
  Output built = p.generate_and_build();
  ASSERT_EQ(built.exit_code, 0) << built.output;
  EXPECT_EQ(p.in_image("readlink /l1; readlink /l2; cat /t1 /t2").output, "/t1\nt2\nnew\ndoc\n");
}

}  // namespace
}  // namespace dfgen::e2e
