// End to end for reproducible images (docs/reproducible.md): one multi-stage
// Dockerfile built twice, each time with a fresh store, another build dir,
// another copy of the context (cp -a, or written anew with other mtimes),
// another HOME/XDG_DATA_HOME and another umask. With SOURCE_DATE_EPOCH the
// two manifests have the same digest; without it only timestamps differ.
// Step keys never depend on the machine either way. TwoUsers builds another
// Dockerfile (files of other owners, an opaque directory, ENV/LABEL) as root
// and as a user who is not root (rootless: a user namespace over a
// subordinate range): the same keys and the same manifest digest.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "core/json.h"
#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

constexpr int64_t kEpoch = 1700000000;   // 2023-11-14T22:13:20Z
constexpr const char* kEpochText = "2023-11-14T22:13:20Z";

// COPY from the context, RUN writing, linking and deleting files (a whiteout),
// WORKDIR creating a dir, COPY --from another stage, and the epoch seen by RUN.
constexpr const char* kDockerfile = R"(FROM dfgen-fixtures/busybox:bookworm AS build
ARG SOURCE_DATE_EPOCH
WORKDIR /src/work
COPY app/ ./app/
COPY tool.sh /usr/local/bin/
RUN mkdir -p /out/deep && cat app/main.txt app/sub/data.txt > /out/all.txt \
 && echo "epoch=$SOURCE_DATE_EPOCH" > /out/epoch && touch /out/deep/new /src/gone \
 && ln -s all.txt /out/link && ln /out/all.txt /out/hard
RUN rm /src/gone && echo more >> /out/deep/new

FROM dfgen-fixtures/busybox:bookworm
COPY --from=build /out /opt/out
COPY tool.sh /bin/tool
RUN echo built > /etc/built && chmod 600 /etc/built
CMD ["/bin/tool"]
)";

// The context of `dockerfile`, with explicit modes (a checkout's modes follow
// its umask); unused.txt is read by no instruction.
void write_context(const std::string& dir, const char* dockerfile = kDockerfile) {
  write_file(dir + "/Dockerfile", dockerfile);
  write_file(dir + "/app/main.txt", "main\n");
  write_file(dir + "/app/sub/data.txt", "data\n");
  write_file(dir + "/tool.sh", "#!/bin/sh\ncat /opt/out/all.txt\n");
  write_file(dir + "/unused.txt", "not copied\n");
  Output m = sh("cd " + q(dir) + " && chmod 0755 tool.sh app app/sub && chmod 0644 Dockerfile "
                "app/main.txt app/sub/data.txt unused.txt");
  ASSERT_EQ(m.exit_code, 0) << m.output;
}

// One build "machine": its own store, build dir, context copy, HOME and umask.
struct Machine {
  std::string store, build, context, home;
  std::string umask;
  std::string env() const {
    return "export DFGEN_STORE=" + q(store) + " HOME=" + q(home) + " XDG_DATA_HOME=" +
           q(home + "/.local/share") + "; umask " + umask + "; unset SOURCE_DATE_EPOCH; ";
  }
};

// Machine A copies the original context with cp -a; machine B writes it anew
// and dates every file 2024-06-01 (after the epoch, before now: a future
// mtime would make Ninja regenerate forever), so only a clamp can make them agree.
std::pair<Machine, Machine> two_machines(const std::string& name) {
  std::string original = temp_dir(name + "-orig");
  write_context(original);
  Machine a{temp_dir(name + "-store-a"), temp_dir(name + "-build-a"), temp_dir(name + "-ctx-a") + "/ctx",
            temp_dir(name + "-home-a"), "022"};
  Machine b{temp_dir(name + "-store-b"), temp_dir(name + "-b-build-at-another-path") + "/nested/build",
            temp_dir(name + "-checkout-b") + "/src/ctx", temp_dir(name + "-home-b"), "077"};
  Output cp = sh("cp -a " + q(original) + " " + q(a.context));
  EXPECT_EQ(cp.exit_code, 0) << cp.output;
  write_context(b.context);
  Output t = sh("find " + q(b.context) + " -exec touch -h -d '2024-06-01 00:00:07' {} +");
  EXPECT_EQ(t.exit_code, 0) << t.output;
  for (const Machine* m : {&a, &b}) {
    Output imp = sh("dfrun --store " + q(m->store) + " import " + q(fixture_archive("busybox")) +
                    " -t dfgen-fixtures/busybox:bookworm");
    EXPECT_EQ(imp.exit_code, 0) << imp.output;
  }
  return {a, b};
}

// dfgen then ninja on machine `m`; env_prefix and extra_args give SOURCE_DATE_EPOCH, or not.
Output build(const Machine& m, const std::string& env_prefix, const std::string& extra_args = "") {
  Output gen = sh(m.env() + "cd " + q(m.home) + " && " + env_prefix + " dfgen " + q(m.context) +
                  " -B " + q(m.build) + " -t repro-e2e " + extra_args);
  if (gen.exit_code != 0) return gen;
  return sh(m.env() + "ninja -C " + q(m.build));
}

std::string manifest_digest(const Machine& m) {
  Json r = Json::parse(read_file(m.build + "/.dfgen/image-repro-e2e.result"));
  return r["manifest"]["digest"];
}

std::string blob_path(const Machine& m, const std::string& digest) {
  return m.store + "/blobs/sha256/" + digest.substr(7);
}

Json manifest(const Machine& m) { return Json::parse(read_file(blob_path(m, manifest_digest(m)))); }
Json config(const Machine& m) {
  return Json::parse(read_file(blob_path(m, manifest(m)["config"]["digest"])));
}

// The "key" of every step result file, by file name.
std::map<std::string, std::string> step_keys(const Machine& m) {
  std::map<std::string, std::string> keys;
  Output ls = sh("cd " + q(m.build + "/.dfgen") + " && ls | grep '^s[0-9].*\\.result$'");
  std::istringstream in(ls.output);
  for (std::string f; std::getline(in, f);)
    keys[f] = Json::parse(read_file(m.build + "/.dfgen/" + f))["key"];
  return keys;
}

// The layers the steps made: those of the step results, less the base image's.
std::set<std::string> built_layers(const Machine& m) {
  std::set<std::string> base, made;
  Json base_result = Json::parse(sh("cat " + q(m.build) + "/.dfgen/base-*.result").output);
  for (const auto& l : base_result["layers"]) base.insert(l["digest"].get<std::string>());
  for (const auto& [file, key] : step_keys(m)) {
    Json result = Json::parse(read_file(m.build + "/.dfgen/" + file));
    for (const auto& l : result["layers"])
      if (!base.count(l["digest"].get<std::string>())) made.insert(l["digest"].get<std::string>());
  }
  return made;
}

// `tar -tv` of a layer blob in UTC; without_times drops the date and time columns.
std::string listing(const Machine& m, const std::string& digest, bool without_times) {
  std::string awk = without_times ? " | awk '{$4=\"\"; $5=\"\"; print}'" : "";
  Output t = sh("TZ=UTC tar -tv --numeric-owner --full-time -f " + q(blob_path(m, digest)) + awk);
  EXPECT_EQ(t.exit_code, 0) << t.output;
  return t.output;
}

// A config less its times, and less the diff_ids: those hash the layer tars,
// which differ in their mtimes (the listings are compared without them).
Json without_times(Json cfg) {
  cfg.erase("created");
  cfg["rootfs"].erase("diff_ids");
  for (auto& h : cfg["history"]) h.erase("created");
  return cfg;
}

TEST(Reproducible, SameDigestAcrossMachinesWithSourceDateEpoch) {
  auto [a, b] = two_machines("repro-sde");
  // A: the environment, as buildx passes it on; B: the build arg.
  Output ba = build(a, "SOURCE_DATE_EPOCH=" + std::to_string(kEpoch));
  ASSERT_EQ(ba.exit_code, 0) << ba.output;
  Output bb = build(b, "", "--build-arg SOURCE_DATE_EPOCH=" + std::to_string(kEpoch));
  ASSERT_EQ(bb.exit_code, 0) << bb.output;

  EXPECT_EQ(manifest_digest(a), manifest_digest(b));
  EXPECT_EQ(step_keys(a), step_keys(b));
  EXPECT_EQ(step_keys(a).size(), 8u);   // 5 + 3 steps
  EXPECT_EQ(read_file(a.build + "/.dfgen/image-repro-e2e.result"),
            read_file(b.build + "/.dfgen/image-repro-e2e.result"));

  // The config: created and this build's history entries are the epoch.
  Json cfg = config(a);
  EXPECT_EQ(cfg["created"], kEpochText);
  Output base = sh("cat " + q(a.build) + "/.dfgen/base-*.result");
  size_t base_entries = Json::parse(base.output)["history"].size();
  ASSERT_GT(cfg["history"].size(), base_entries);
  size_t ours = 0;
  for (size_t i = base_entries; i < cfg["history"].size(); ++i, ++ours)
    EXPECT_EQ(cfg["history"][i].value("created", ""), kEpochText) << cfg["history"][i].dump();
  EXPECT_EQ(ours, 4u) << cfg["history"].dump();   // COPY, COPY, RUN, CMD

  // Every layer this build made, in both stages: every entry's mtime is the
  // epoch (all files were written after it, or dated 2024); the whiteout too.
  std::set<std::string> made = built_layers(a);
  ASSERT_EQ(made.size(), 8u);   // WORKDIR, COPY, COPY, RUN, RUN; COPY, COPY, RUN
  bool saw_whiteout = false;
  for (const auto& digest : made) {
    std::istringstream in(listing(a, digest, false));
    for (std::string line; std::getline(in, line);) {
      EXPECT_NE(line.find(" 2023-11-14 22:13:20 "), std::string::npos) << digest << ": " << line;
      if (line.find("src/.wh.gone") != std::string::npos) saw_whiteout = true;
    }
  }
  EXPECT_TRUE(saw_whiteout);

  // RUN saw the epoch through ARG SOURCE_DATE_EPOCH, on both machines.
  for (const Machine* m : {&a, &b}) {
    Output run = sh(m->env() + "dfrun run repro-e2e cat /opt/out/epoch /opt/out/all.txt");
    EXPECT_EQ(run.output, "epoch=1700000000\nmain\ndata\n");
  }
}

TEST(Reproducible, WithoutSourceDateEpochOnlyTimestampsDiffer) {
  auto [a, b] = two_machines("repro-now");
  Output ba = build(a, "");
  ASSERT_EQ(ba.exit_code, 0) << ba.output;
  Output bb = build(b, "");
  ASSERT_EQ(bb.exit_code, 0) << bb.output;

  // Keys are the same: they never hold paths, users or clocks.
  EXPECT_EQ(step_keys(a), step_keys(b));
  // The images are not (B's context files are dated 2024, kept by COPY)...
  EXPECT_NE(manifest_digest(a), manifest_digest(b));
  // ...but only their timestamps differ.
  Json ca = config(a), cb = config(b);
  EXPECT_EQ(without_times(ca), without_times(cb));
  EXPECT_NE(ca.value("created", ""), kEpochText);
  Json la = manifest(a)["layers"], lb = manifest(b)["layers"];
  ASSERT_EQ(la.size(), lb.size());
  bool some_times_differ = false;
  for (size_t i = 0; i < la.size(); ++i) {
    EXPECT_EQ(listing(a, la[i]["digest"], true), listing(b, lb[i]["digest"], true)) << "layer " << i;
    if (listing(a, la[i]["digest"], false) != listing(b, lb[i]["digest"], false)) some_times_differ = true;
  }
  EXPECT_TRUE(some_times_differ);
}

TEST(Reproducible, RegenerationKeepsTheEpochAndBadValuesAreRefused) {
  auto [a, b] = two_machines("repro-regen");
  Output first = build(a, "SOURCE_DATE_EPOCH=" + std::to_string(kEpoch));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  std::string digest = manifest_digest(a);
  auto keys = step_keys(a);

  // Ninja runs dfgen again without the variable: the value is kept, given once.
  write_file(a.context + "/Dockerfile", std::string(kDockerfile) + "# a comment\n");
  Output again = sh(a.env() + "ninja -C " + q(a.build));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("Regenerating build.ninja"), std::string::npos) << again.output;
  Output again2 = sh(a.env() + "touch " + q(a.context + "/Dockerfile") + " && ninja -C " + q(a.build));
  ASSERT_EQ(again2.exit_code, 0) << again2.output;
  EXPECT_EQ(count_lines_with(read_file(a.build + "/build.ninja"), "SOURCE_DATE_EPOCH=1700000000"), 1);
  EXPECT_EQ(step_keys(a), keys);
  EXPECT_EQ(manifest_digest(a), digest);

  // An empty value turns an inherited one off; a bad one is an error.
  Output off = sh(b.env() + "SOURCE_DATE_EPOCH=" + std::to_string(kEpoch) + " dfgen " + q(b.context) +
                  " -B " + q(b.build) + " -t repro-e2e --build-arg SOURCE_DATE_EPOCH=");
  ASSERT_EQ(off.exit_code, 0) << off.output;
  EXPECT_EQ(read_file(b.build + "/build.ninja").find("SOURCE_DATE_EPOCH=1700000000"), std::string::npos);
  Output bad = sh(b.env() + "SOURCE_DATE_EPOCH=yesterday dfgen " + q(b.context) + " -B " + q(b.build));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("invalid SOURCE_DATE_EPOCH \"yesterday\": expected seconds since 1970"),
            std::string::npos) << bad.output;
}

// ---- two users: root, and a user who is not root (rootless) ----

const char* kUser = "dfgen-test";

// Files owned by others than root (RUN chown, COPY --chown, a 65534 tree), a
// setuid file, a sticky dir, an appended base file (overlay copy-up),
// whiteouts of base files, directories a later step replaces (opaque), links,
// ENV and LABEL, COPY --from. The caps stage's base has a file with a
// capability (security.capability, made by capbase_archive) that its RUN
// copies up (chmod): the xattr as a user namespace reads it. The final stage
// makes its own: COPY --from without --chown gives root the copied files.
constexpr const char* kUsersDockerfile = R"(FROM dfgen-fixtures/busybox:bookworm AS build
ARG SOURCE_DATE_EPOCH
ENV APP_HOME=/srv/app
LABEL org.example.stage=build
WORKDIR $APP_HOME
COPY app/ ./app/
COPY --chown=1234:2345 tool.sh /usr/local/bin/
RUN mkdir -p /out/deep /out/nobody && cat app/main.txt app/sub/data.txt > /out/all.txt \
 && echo owned > /out/owned && chown 1000:1000 /out/owned \
 && echo n > /out/nobody/n && chown -R 65534:65534 /out/nobody \
 && touch /out/deep/old /srv/gone && ln -s all.txt /out/link && ln /out/all.txt /out/hard
RUN rm /srv/gone /bin/arch && rm -rf /out/deep && mkdir /out/deep && echo again > /out/deep/again \
 && echo more >> /out/owned

FROM dfgen-e2e/capbase:1 AS caps
RUN chmod 750 /bin/capfile && echo new > /bin/new

FROM dfgen-fixtures/busybox:bookworm
ENV MODE=repro PATH=/opt/out:$PATH
LABEL org.example.reproducible=yes
COPY --from=build /out /opt/out
COPY --from=build --chown=1000:1000 /srv/app/app /opt/app
COPY --chown=1234:2345 tool.sh /bin/tool
COPY --from=caps /bin/new /opt/new
RUN echo owned > /etc/owned && chown 1000:1000 /etc/owned && echo app:x:1000:1000::/:/bin/sh >> /etc/passwd \
 && mkdir -p /home/nobody && echo n > /home/nobody/n && chown -R 65534:65534 /home/nobody \
 && cp /bin/busybox /usr/bin/suid && chmod 4755 /usr/bin/suid && mkdir -m 1777 /scratch \
 && rm /bin/arch && rm -rf /opt/out/deep && mkdir /opt/out/deep && echo final > /opt/out/deep/final
USER 1000:1000
CMD ["/bin/tool"]
)";

// A docker-archive of one layer: static busybox as /bin/sh, and /bin/capfile
// with cap_net_raw (busybox cannot set a capability itself). Made in `dir`.
std::string capbase_archive(const std::string& dir) {
  Output made = sh("set -e; cd " + q(dir) + "; mkdir -p root/bin arch; cp /bin/busybox root/bin/; "
                   "ln -s busybox root/bin/sh; printf x > root/bin/capfile; chmod 755 root/bin/capfile; "
                   "PATH=$PATH:/usr/sbin:/sbin setcap cap_net_raw+ep root/bin/capfile; "
                   "tar --xattrs --xattrs-include='security.*' --numeric-owner --owner=0 --group=0 "
                   "--mtime=@1600000000 --sort=name -cf arch/layer.tar -C root .; "
                   "d=$(sha256sum arch/layer.tar | cut -d' ' -f1); "
                   "printf '{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
                   "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\"]}}' $d > arch/config.json; "
                   "echo '[{\"Config\":\"config.json\",\"RepoTags\":[\"dfgen-e2e/capbase:1\"],"
                   "\"Layers\":[\"layer.tar\"]}]' > arch/manifest.json; "
                   "tar -cf capbase.tar -C arch manifest.json config.json layer.tar");
  EXPECT_EQ(made.exit_code, 0) << made.output;
  return dir + "/capbase.tar";
}

// One side of the comparison: its store and build dir, and how it runs a command.
struct Side {
  std::string name, store, build;
  std::function<Output(const std::string&)> run;
  std::string image_result() const { return read_file(build + "/.dfgen/image-repro-users-e2e.result"); }
  std::string digest() const { return Json::parse(image_result())["manifest"]["digest"]; }
  std::string blob(const std::string& digest) const { return store + "/blobs/sha256/" + digest.substr(7); }
  Json manifest() const { return Json::parse(read_file(blob(digest()))); }
  Json config() const { return Json::parse(read_file(blob(manifest()["config"]["digest"]))); }
};

std::map<std::string, std::string> keys_of(const Side& s) {
  std::map<std::string, std::string> keys;
  std::istringstream in(sh("ls " + q(s.build + "/.dfgen") + " | grep '^s[0-9].*\\.result$'").output);
  for (std::string f; std::getline(in, f);)
    keys[f] = Json::parse(read_file(s.build + "/.dfgen/" + f))["key"];
  return keys;
}

// Why two builds differ: the inputs record (docs/insight.md) of the first
// step whose key differs (the steps after it differ through it), else the
// config as a JSON patch and, for each layer whose diff_id differs, a diff of
// the two tars' listings (owners, modes, times, xattr names).
std::string explain_difference(const Side& a, const Side& b) {
  std::string out;
  auto ka = keys_of(a), kb = keys_of(b);
  for (const auto& [file, key] : ka) {
    if (kb[file] == key) continue;
    if (!out.empty()) {
      out += " " + file;
      continue;
    }
    std::string inputs = ".dfgen/" + file.substr(0, file.size() - 7) + ".inputs.json";
    out += "step " + file + ": keys differ; its inputs (" + a.name + " <, " + b.name + " >):\n" +
           sh("diff " + q(a.build + "/" + inputs) + " " + q(b.build + "/" + inputs)).output +
           "later steps whose keys differ:";
  }
  if (!out.empty()) return out + "\n";
  Json ca = a.config(), cb = b.config();
  out += "config patch " + a.name + " -> " + b.name + ": " + Json::diff(ca, cb).dump(1) + "\n";
  const Json& da = ca["rootfs"]["diff_ids"];
  const Json& db = cb["rootfs"]["diff_ids"];
  Json la = a.manifest()["layers"], lb = b.manifest()["layers"];
  for (size_t i = 0; i < std::min(la.size(), lb.size()); ++i) {
    if (i < da.size() && i < db.size() && da[i] == db[i]) continue;
    auto list = [](const Side& s, const std::string& digest) {
      return "TZ=UTC tar --xattrs --xattrs-include='*' -tvv --numeric-owner --full-time -f " + q(s.blob(digest));
    };
    out += "layer " + std::to_string(i) + ": " + (i < da.size() ? da[i].dump() : "?") + " vs " +
           (i < db.size() ? db[i].dump() : "?") + "\n" +
           sh("bash -c " + q("diff <(" + list(a, la[i]["digest"]) + ") <(" + list(b, lb[i]["digest"]) + ")")).output;
  }
  return out;
}

TEST(Reproducible, TwoUsersRootAndRootlessGiveTheSameDigest) {
  ASSERT_EQ(::getuid(), 0u) << "the suite runs as root (it creates its users)";
  ensure_rootless_user(kUser);
  const std::string epoch = "SOURCE_DATE_EPOCH=" + std::to_string(kEpoch) + " ";
  const std::string tar = fixture_archive("busybox");

  // Root: a store and build dir under the build tree, HOME elsewhere.
  std::string root_dir = temp_dir("repro-users-root");
  Side root{"root", root_dir + "/store", root_dir + "/build/deep", nullptr};
  root.run = [root_dir](const std::string& c) {
    return sh("export DFGEN_STORE=" + q(root_dir + "/store") + " HOME=" + q(root_dir) + "; cd " +
              q(root_dir) + " && " + c);
  };
  write_context(root_dir + "/ctx", kUsersDockerfile);

  // The user: everything under a dir of theirs in /tmp; their context written later.
  std::string user_home = user_dir(kUser, "repro-users");
  Side user{kUser, user_home + "/store", user_home + "/b", nullptr};
  user.run = [user_home](const std::string& c) { return sh_as(kUser, user_home, c); };
  write_context(user_home + "/src/ctx", kUsersDockerfile);
  std::string caps = capbase_archive(root_dir);
  Output own = sh("cp " + q(tar) + " " + q(user_home + "/base.tar") + " && cp " + q(caps) + " " +
                  q(user_home + "/capbase.tar") + " && chown -R " + kUser + ": " + q(user_home));
  ASSERT_EQ(own.exit_code, 0) << own.output;

  auto t0 = std::chrono::steady_clock::now();
  for (auto [side, ctx, dir] : {std::tuple{&root, root_dir + "/ctx", root_dir},
                                std::tuple{&user, user_home + "/src/ctx", user_home}}) {
    std::string base = side == &root ? tar : dir + "/base.tar";
    Output imp = side->run("dfrun import " + q(base) + " -t dfgen-fixtures/busybox:bookworm && dfrun import " +
                           q(dir + "/capbase.tar"));
    ASSERT_EQ(imp.exit_code, 0) << side->name << ": " << imp.output;
    Output gen = side->run(epoch + "dfgen " + q(ctx) + " -B " + q(side->build) + " -t repro-users-e2e");
    ASSERT_EQ(gen.exit_code, 0) << side->name << ": " << gen.output;
    Output built = side->run("ninja -C " + q(side->build));
    ASSERT_EQ(built.exit_code, 0) << side->name << ": " << built.output;
  }
  std::cerr << "two builds: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";

  // The user's build really was rootless: its snapshots hold ids of the range.
  Output start = sh(std::string("awk -F: '$1 == \"") + kUser + "\" {print $2}' /etc/subuid");
  ASSERT_EQ(start.exit_code, 0) << start.output;
  EXPECT_EQ(sh("find " + q(user.store + "/snapshots") + " -path '*/etc/owned' -printf '%U\\n' | sort -u").output,
            std::to_string(std::stol(start.output) + 999) + "\n");

  // Shareable keys, one image.
  auto keys = keys_of(root);
  EXPECT_EQ(keys.size(), 11u);   // WORKDIR, COPY, COPY, RUN, RUN; RUN; COPY, COPY, COPY, COPY, RUN
  EXPECT_EQ(keys, keys_of(user)) << explain_difference(root, user);
  EXPECT_EQ(root.digest(), user.digest()) << explain_difference(root, user);
  EXPECT_EQ(root.image_result(), user.image_result());

  // Every step made the same layers (the build stage's are in no image).
  for (const auto& [file, key] : keys)
    EXPECT_EQ(read_file(root.build + "/.dfgen/" + file), read_file(user.build + "/.dfgen/" + file)) << file;

  // The layers carry what the test is about: other owners, setuid, sticky,
  // whiteouts and opaque markers, in both stages.
  std::string entries;
  for (const auto& [file, key] : keys) {
    Json result = Json::parse(read_file(root.build + "/.dfgen/" + file));
    const Json& layers = result["layers"];
    if (layers.empty()) continue;
    std::string top = layers.back()["digest"];   // the step's own layer
    entries += sh("TZ=UTC tar --xattrs --xattrs-include='*' -tvv --numeric-owner --full-time -f " +
                  q(root.blob(top))).output;
  }
  EXPECT_EQ(count_lines_with(entries, " 1000/1000 "), 7) << entries;
  // tool.sh twice, and /usr/local/ and /usr/local/bin/, which the first COPY
  // --chown creates and which belong to its owner (as BuildKit makes them).
  EXPECT_EQ(count_lines_with(entries, " 1234/2345 "), 4) << entries;
  EXPECT_EQ(count_lines_with(entries, " 65534/65534 "), 4) << entries;
  EXPECT_EQ(count_lines_with(entries, "-rwsr-xr-x"), 1) << entries;
  EXPECT_EQ(count_lines_with(entries, "drwxrwxrwt"), 1) << entries;
  EXPECT_EQ(count_lines_with(entries, "bin/.wh.arch"), 2) << entries;
  EXPECT_EQ(count_lines_with(entries, "out/deep/.wh..wh..opq"), 2) << entries;
  EXPECT_EQ(count_lines_with(entries, "-rwxr-x---* 0/0               1 2020-09-13 12:26:40 bin/capfile"), 1)
      << entries;
  EXPECT_EQ(count_lines_with(entries, "x: 20 security.capability"), 1) << entries;

  // Both run it alike.
  for (const Side* s : {&root, &user}) {
    Output ran = s->run("dfrun run repro-users-e2e sh -c 'id -un; stat -c %u:%g /etc/owned /opt/app/main.txt "
                        "/home/nobody/n /bin/tool /opt/out/owned; env | grep -c ^MODE=repro; ls /opt/out/deep'");
    EXPECT_EQ(ran.output, "app\n1000:1000\n1000:1000\n65534:65534\n1234:2345\n0:0\n1\nfinal\n") << s->name;
  }
}

}  // namespace
}  // namespace dfgen::e2e
