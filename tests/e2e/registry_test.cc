// End to end against a real registry (Debian's docker-registry on 127.0.0.1)
// in three set-ups: plain HTTP, TLS with a certificate made here (trusted
// through DFGEN_REGISTRY_CA), and basic auth from an htpasswd file. Images go
// in with `dfrun push`, come out with dfgen's base-image pulls, `dfrun pull`,
// skopeo and `docker pull`, and run with dfrun and `docker run`. The Docker
// daemon must be running (scripts/start-dockerd.sh): the test fails otherwise.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "tests/e2e/harness.h"

namespace dfgen::e2e {
namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// One docker-registry process, stopped (by its pid) when the object goes.
class Registry {
 public:
  enum class Mode { kPlain, kTls, kBasicAuth };

  explicit Registry(Mode mode) : mode_(mode), dir_(temp_dir("registry")), port_(free_port()) {
    std::string cfg = "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: " +
                      dir_ + "/data\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n";
    if (mode == Mode::kTls) {
      Output made = sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
                       "-addext subjectAltName=IP:127.0.0.1 -keyout " + q(dir_ + "/key.pem") + " -out " +
                       q(ca()) + " 2>&1");
      if (made.exit_code != 0) throw std::runtime_error("openssl: " + made.output);
      cfg += "  tls:\n    certificate: " + ca() + "\n    key: " + dir_ + "/key.pem\n";
    }
    if (mode == Mode::kBasicAuth) {
      Output made = sh("htpasswd -Bbn tester s3cret > " + q(dir_ + "/htpasswd"));
      if (made.exit_code != 0) throw std::runtime_error("htpasswd: " + made.output);
      cfg += "auth:\n  htpasswd:\n    realm: dfgen-test\n    path: " + dir_ + "/htpasswd\n";
      set_login("tester", "s3cret");
    }
    write_file(dir_ + "/config.yml", cfg);
    start();
  }
  ~Registry() { stop(); }

  void start() {
    Output started = sh("docker-registry serve " + q(dir_ + "/config.yml") + " > " + q(dir_ + "/log") +
                        " 2>&1 & echo $!");
    pid_ = std::atoi(started.output.c_str());
    std::string scheme = mode_ == Mode::kTls ? "https" : "http";
    for (int i = 0; i < 100; ++i) {
      if (sh("curl -sk -o /dev/null " + scheme + "://" + host() + "/v2/").exit_code == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("docker-registry did not start:\n" + read_file(dir_ + "/log"));
  }
  void stop() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    for (int i = 0; pid_ > 0 && i < 50 && ::kill(pid_, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    pid_ = 0;
  }

  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string ca() const { return dir_ + "/ca.pem"; }
  std::string data() const { return dir_ + "/data"; }
  // The registry's access log ("HEAD /v2/x/blobs/sha256:... HTTP/1.1" 200 ...).
  std::string log() const { return read_file(dir_ + "/log"); }
  // A docker config.json with these credentials for this registry.
  void set_login(const std::string& user, const std::string& password) {
    std::string auth = trimmed(sh("printf %s " + q(user + ":" + password) + " | base64 -w0").output);
    write_file(dir_ + "/docker/config.json",
               "{\"auths\": {\"" + host() + "\": {\"auth\": \"" + auth + "\"}}}\n");
  }
  // The environment every command talking to this registry gets.
  std::string env() const {
    std::string e = "DOCKER_CONFIG=" + q(dir_ + "/docker") + " DFGEN_REGISTRIES_CONFIG=/nonexistent ";
    if (mode_ == Mode::kTls) e += "DFGEN_REGISTRY_CA=" + q(ca()) + " ";
    return e;
  }

 private:
  Mode mode_;
  std::string dir_;
  int port_;
  int pid_ = 0;
};

// Removes a Docker image (by its name) when the object goes, passed or failed.
struct DockerImage {
  std::string ref;
  ~DockerImage() { sh("docker rmi -f " + q(ref) + " >/dev/null 2>&1"); }
};

// A store of its own: what a pull brings is all there is.
std::string fresh_store() { return temp_dir("registry-store"); }

std::string in_store(const std::string& store, const std::string& cmd) {
  return "DFGEN_STORE=" + q(store) + " " + cmd;
}

// Nothing half-written: no temp leftovers and no tag for `ref`.
void expect_clean(const std::string& store, const std::string& ref) {
  EXPECT_EQ(sh("ls -A " + q(store + "/tmp") + " 2>/dev/null").output, "");
  EXPECT_EQ(sh(in_store(store, "dfrun images")).output.find(ref), std::string::npos);
}

TEST(Registry, PlainHttpMultiStageBuildPushedPulledAndRun) {
  Registry reg(Registry::Mode::kPlain);
  std::string busybox = fixture("busybox");
  std::string base = reg.host() + "/base/busybox:1", tool = reg.host() + "/tools/box:2";
  for (const auto& dest : {base, tool}) {
    Output pushed = sh(reg.env() + "dfrun push " + busybox + " " + dest);
    ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  }

  // A fresh store: dfgen pulls both images (FROM and COPY --from) from the registry.
  std::string store = fresh_store(), ctx = temp_dir("registry-ctx"), b = temp_dir("registry-build");
  std::string app = reg.host() + "/app/multi:1";
  write_file(ctx + "/Dockerfile",
             "FROM " + base + " AS build\n"
             "RUN echo built > /built\n"
             "FROM " + base + "\n"
             "COPY --from=build /built /built\n"
             "COPY --from=" + tool + " /bin/busybox /copied-busybox\n"
             "CMD [\"sh\", \"-c\", \"cat /built && test -x /copied-busybox && echo copied\"]\n");
  Output gen = sh(reg.env() + in_store(store, "dfgen " + q(ctx) + " -B " + q(b) + " -t " + app +
                                                  " --output type=registry"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  EXPECT_NE(gen.output.find("pulling " + base), std::string::npos) << gen.output;
  Output build = sh(reg.env() + in_store(store, "ninja -C " + q(b)));
  ASSERT_EQ(build.exit_code, 0) << build.output;

  // skopeo reads what we pushed; dfrun runs it from the layout skopeo wrote.
  std::string layout = temp_dir("registry-skopeo") + "/layout";
  Output copied = sh("skopeo copy --src-tls-verify=false docker://" + app + " oci:" + layout + ":multi");
  ASSERT_EQ(copied.exit_code, 0) << copied.output;
  std::string run_store = fresh_store();
  ASSERT_EQ(sh(in_store(run_store, "dfrun import " + q(layout) + " -t skopeo/multi:1")).exit_code, 0);
  Output ran = sh(in_store(run_store, "dfrun run skopeo/multi:1"));
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_EQ(ran.output, "built\ncopied\n");

  // dfrun pull brings the same image back, tagged.
  std::string pull_store = fresh_store();
  Output pulled = sh(reg.env() + in_store(pull_store, "dfrun pull " + app));
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  EXPECT_EQ(sh(in_store(pull_store, "dfrun run " + app)).output, "built\ncopied\n");

  // Docker pulls it too: 127.0.0.0/8 is an insecure registry to dockerd by
  // default, so plain HTTP needs no daemon flag. Same digest, same output.
  Output info = sh("docker info >/dev/null");
  ASSERT_EQ(info.exit_code, 0) << "dockerd is not running (scripts/start-dockerd.sh): " << info.output;
  DockerImage docker_app{app};
  Output docker_pulled = sh("docker pull " + app);
  ASSERT_EQ(docker_pulled.exit_code, 0) << docker_pulled.output;
  std::string pulled_digest = trimmed(sh(in_store(pull_store, "dfrun images | grep " + q(app) +
                                                                  " | awk '{print $2}'")).output);
  EXPECT_NE(docker_pulled.output.find("Digest: " + pulled_digest), std::string::npos)
      << pulled_digest << "\n" << docker_pulled.output;
  Output docker_ran = sh("docker run --rm " + app);
  EXPECT_EQ(docker_ran.exit_code, 0) << docker_ran.output;
  EXPECT_EQ(docker_ran.output, "built\ncopied\n");

  // Pushing again uploads nothing: every blob is found by HEAD.
  int uploads = count_lines_with(reg.log(), "\"POST /v2/base/busybox/blobs/uploads/");
  EXPECT_EQ(uploads, 2);   // the layer and the config, once
  Output again = sh(reg.env() + "dfrun push " + busybox + " " + base);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(count_lines_with(reg.log(), "\"POST /v2/base/busybox/blobs/uploads/"), uploads);
  EXPECT_GE(count_lines_with(reg.log(), "\"HEAD /v2/base/busybox/blobs/sha256:"), 4);

  // With the registry down, pinned bases and digests already in the store
  // never touch the network.
  std::string digest = trimmed(sh(in_store(pull_store, "dfrun images | grep " + q(app) + " | awk '{print $2}'")).output);
  reg.stop();
  Output regen = sh(reg.env() + in_store(store, "dfgen " + q(ctx) + " -B " + q(b) + " -t " + app));
  EXPECT_EQ(regen.exit_code, 0) << regen.output;
  write_file(ctx + "/Dockerfile", "FROM " + reg.host() + "/app/multi@" + digest + "\nRUN cat /built\n");
  Output by_digest = sh(reg.env() + in_store(pull_store, "dfgen " + q(ctx) + " -B " + q(temp_dir("registry-digest")) +
                                                         " -t by-digest"));
  EXPECT_EQ(by_digest.exit_code, 0) << by_digest.output;
  EXPECT_EQ(by_digest.output.find("pulling"), std::string::npos) << by_digest.output;
}

TEST(Registry, ChunkedUploadAndCrossRepositoryMount) {
  Registry reg(Registry::Mode::kPlain);
  std::string busybox = fixture("busybox");
  // Chunks of 256 KiB: the ~2 MB busybox layer goes up in PATCH requests.
  Output chunked = sh(reg.env() + "DFGEN_REGISTRY_CHUNK_SIZE=262144 dfrun push " + busybox + " " + reg.host() +
                      "/chunked/busybox:1");
  ASSERT_EQ(chunked.exit_code, 0) << chunked.output;
  EXPECT_GE(count_lines_with(reg.log(), "\"PATCH /v2/chunked/busybox/blobs/uploads/"), 7);
  std::string store = fresh_store();
  ASSERT_EQ(sh(reg.env() + in_store(store, "dfrun pull " + reg.host() + "/chunked/busybox:1")).exit_code, 0);
  EXPECT_EQ(sh(in_store(store, "dfrun run " + reg.host() + "/chunked/busybox:1 echo ok")).output, "ok\n");

  // The store knows the blobs live in chunked/busybox: pushing elsewhere in the
  // same registry mounts them (POST ...?mount=) instead of uploading.
  Output mounted = sh(reg.env() + in_store(store, "dfrun push " + reg.host() + "/chunked/busybox:1 " +
                                                     reg.host() + "/mounted/busybox:1"));
  ASSERT_EQ(mounted.exit_code, 0) << mounted.output;
  EXPECT_EQ(count_lines_with(reg.log(), "\"POST /v2/mounted/busybox/blobs/uploads/?mount=sha256%3A"), 2);
  EXPECT_EQ(count_lines_with(reg.log(), "\"PUT /v2/mounted/busybox/blobs/uploads/"), 0);
  EXPECT_EQ(count_lines_with(reg.log(), "\"PATCH /v2/mounted/busybox/blobs/uploads/"), 0);
  Output skopeo = sh("skopeo inspect --tls-verify=false docker://" + reg.host() + "/mounted/busybox:1");
  EXPECT_EQ(skopeo.exit_code, 0) << skopeo.output;
}

TEST(Registry, TlsTrustedThroughTheCaOption) {
  Registry reg(Registry::Mode::kTls);
  std::string busybox = fixture("busybox");
  std::string ref = reg.host() + "/tls/busybox:1";
  Output untrusted = sh("DFGEN_REGISTRIES_CONFIG=/nonexistent dfrun push " + busybox + " " + ref);
  EXPECT_NE(untrusted.exit_code, 0);
  EXPECT_NE(untrusted.output.find("TLS certificate of https://" + reg.host()), std::string::npos) << untrusted.output;
  EXPECT_NE(untrusted.output.find("is not trusted"), std::string::npos) << untrusted.output;

  Output pushed = sh(reg.env() + "dfrun push " + busybox + " " + ref);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  std::string store = fresh_store();
  Output pulled = sh(reg.env() + in_store(store, "dfrun pull " + ref));
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  EXPECT_EQ(sh(in_store(store, "dfrun run " + ref + " echo over-tls")).output, "over-tls\n");

  // The CA can also come from registries.json.
  std::string cfg = temp_dir("registry-cfg") + "/registries.json";
  write_file(cfg, "{\"ca_file\": \"" + reg.ca() + "\"}\n");
  Output by_file = sh("DFGEN_REGISTRIES_CONFIG=" + q(cfg) + " " + in_store(fresh_store(), "dfrun pull " + ref));
  EXPECT_EQ(by_file.exit_code, 0) << by_file.output;
}

TEST(Registry, BasicAuthFromDockerConfig) {
  Registry reg(Registry::Mode::kBasicAuth);
  std::string busybox = fixture("busybox");
  std::string ref = reg.host() + "/private/busybox:1";
  Output pushed = sh(reg.env() + "dfrun push " + busybox + " " + ref);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;
  std::string store = fresh_store();
  Output pulled = sh(reg.env() + in_store(store, "dfrun pull " + ref));
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  EXPECT_EQ(sh(in_store(store, "dfrun run " + ref + " echo authed")).output, "authed\n");

  // No credentials at all.
  std::string nobody = fresh_store();
  Output anonymous = sh("DOCKER_CONFIG=/nonexistent DFGEN_REGISTRIES_CONFIG=/nonexistent " +
                        in_store(nobody, "dfrun pull " + ref));
  EXPECT_NE(anonymous.exit_code, 0);
  EXPECT_NE(anonymous.output.find("requires a user name and password: none found for " + reg.host()),
            std::string::npos) << anonymous.output;
  expect_clean(nobody, ref);

  // A wrong password.
  reg.set_login("tester", "wrong");
  Output wrong = sh(reg.env() + in_store(nobody, "dfrun pull " + ref));
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.output.find("HTTP 401 (UNAUTHORIZED"), std::string::npos) << wrong.output;
  EXPECT_NE(wrong.output.find("check the credentials"), std::string::npos) << wrong.output;
  expect_clean(nobody, ref);

  // The right password again: the same store pulls and runs it.
  reg.set_login("tester", "s3cret");
  Output repaired = sh(reg.env() + in_store(nobody, "dfrun pull " + ref));
  ASSERT_EQ(repaired.exit_code, 0) << repaired.output;
  EXPECT_EQ(sh(in_store(nobody, "dfrun run " + ref + " echo authed-again")).output, "authed-again\n");
  EXPECT_EQ(sh("ls -A " + q(nobody + "/tmp") + " 2>/dev/null").output, "");
}

TEST(Registry, ErrorsLeaveNothingHalfWritten) {
  Registry reg(Registry::Mode::kPlain);
  std::string busybox = fixture("busybox");
  std::string ref = reg.host() + "/broken/busybox:1";
  ASSERT_EQ(sh(reg.env() + "dfrun push " + busybox + " " + ref).exit_code, 0);

  // An unknown tag.
  std::string store = fresh_store();
  Output unknown = sh(reg.env() + in_store(store, "dfrun pull " + reg.host() + "/broken/busybox:nope"));
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("manifest " + reg.host() + "/broken/busybox:nope: not found"), std::string::npos)
      << unknown.output;
  EXPECT_NE(unknown.output.find("MANIFEST_UNKNOWN"), std::string::npos) << unknown.output;
  expect_clean(store, "broken/busybox");

  // A blob tampered with on the registry's disk (same size, other bytes).
  std::string layer = trimmed(sh("ls -S " + q(reg.data()) +
                                 "/docker/registry/v2/blobs/sha256/*/*/data | head -1").output);
  ASSERT_FALSE(layer.empty());
  std::string saved = temp_dir("registry-saved-blob") + "/data";
  ASSERT_EQ(sh("cp " + q(layer) + " " + q(saved)).exit_code, 0);
  ASSERT_EQ(sh("printf XXXX | dd of=" + q(layer) + " bs=1 seek=100 conv=notrunc 2>/dev/null").exit_code, 0);
  std::string bad = layer.substr(0, layer.size() - 5);
  bad = "sha256:" + bad.substr(bad.rfind('/') + 1);
  Output tampered = sh(reg.env() + in_store(store, "dfrun pull " + ref));
  EXPECT_NE(tampered.exit_code, 0);
  EXPECT_NE(tampered.output.find("blob digest mismatch: expected " + bad), std::string::npos) << tampered.output;
  expect_clean(store, ref);
  EXPECT_EQ(sh("ls " + q(store + "/blobs/sha256/" + bad.substr(7))).exit_code, 2);

  // The blob restored: the same store pulls the image, and the layer it
  // refused is now there, verified.
  ASSERT_EQ(sh("cp " + q(saved) + " " + q(layer)).exit_code, 0);
  Output restored = sh(reg.env() + in_store(store, "dfrun pull " + ref));
  ASSERT_EQ(restored.exit_code, 0) << restored.output;
  EXPECT_EQ(sh("ls " + q(store + "/blobs/sha256/" + bad.substr(7))).exit_code, 0);
  EXPECT_EQ(sh(in_store(store, "dfrun run " + ref + " echo restored")).output, "restored\n");
  EXPECT_EQ(sh("ls -A " + q(store + "/tmp") + " 2>/dev/null").output, "");

  // The registry down: a clear error, after a few retries. (A store without
  // the image, so that the build below has to pull it.)
  std::string down_store = fresh_store();
  reg.stop();
  Output down = sh(reg.env() + in_store(down_store, "dfrun pull " + ref));
  EXPECT_NE(down.exit_code, 0);
  EXPECT_NE(down.output.find("cannot reach http"), std::string::npos) << down.output;
  EXPECT_NE(down.output.find("is the registry running?"), std::string::npos) << down.output;
  expect_clean(down_store, ref);

  // dfgen says which base image it could not get, and how to get it otherwise.
  std::string ctx = temp_dir("registry-down-ctx"), b = temp_dir("registry-down-b");
  write_file(ctx + "/Dockerfile", "FROM " + ref + "\nRUN echo rebuilt > /rebuilt\nCMD [\"cat\", \"/rebuilt\"]\n");
  Output gen = sh(reg.env() + in_store(down_store, "dfgen " + q(ctx) + " -B " + q(b) + " -t after-restart:1"));
  EXPECT_NE(gen.exit_code, 0);
  EXPECT_NE(gen.output.find("base image " + ref + " (" + ref + ") is not in the store"), std::string::npos)
      << gen.output;
  EXPECT_NE(gen.output.find("dfrun import FILE"), std::string::npos) << gen.output;
  expect_clean(down_store, "after-restart");

  // The registry back (same port, same storage): the same store's build pulls
  // the base and runs, and `dfrun pull` works again.
  reg.start();
  Output regen = sh(reg.env() + in_store(down_store, "dfgen " + q(ctx) + " -B " + q(b) + " -t after-restart:1"));
  ASSERT_EQ(regen.exit_code, 0) << regen.output;
  EXPECT_NE(regen.output.find("pulling " + ref), std::string::npos) << regen.output;
  Output built = sh(in_store(down_store, "ninja -C " + q(b)));
  ASSERT_EQ(built.exit_code, 0) << built.output;
  EXPECT_EQ(sh(in_store(down_store, "dfrun run after-restart:1")).output, "rebuilt\n");
  Output pulled = sh(reg.env() + in_store(down_store, "dfrun pull " + ref));
  EXPECT_EQ(pulled.exit_code, 0) << pulled.output;
  EXPECT_EQ(sh("ls -A " + q(down_store + "/tmp") + " 2>/dev/null").output, "");
}

// dfgen --compression=zstd: the image's own layers go to the registry as zstd
// (the base's stay as they are), skopeo reads their media types, and a fresh
// store pulls the image back and runs it.
TEST(Registry, ZstdLayersPushedPulledAndRun) {
  Registry reg(Registry::Mode::kPlain);
  std::string store = fresh_store(), ctx = temp_dir("registry-zstd-ctx"), b = temp_dir("registry-zstd-build");
  ASSERT_EQ(sh(in_store(store, "dfrun import " + q(fixture_archive("busybox")) + " -t zstd-base:1")).exit_code, 0);
  std::string app = reg.host() + "/app/zstd:1";
  write_file(ctx + "/Dockerfile", "FROM zstd-base:1\nRUN echo packed > /z\nCOPY f /f\nCMD [\"cat\", \"/z\", \"/f\"]\n");
  write_file(ctx + "/f", "file\n");
  Output gen = sh(reg.env() + in_store(store, "dfgen " + q(ctx) + " -B " + q(b) + " -t " + app +
                                                  " --compression=zstd,level=9 --output type=registry"));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  Output build = sh(reg.env() + in_store(store, "ninja -C " + q(b)));
  ASSERT_EQ(build.exit_code, 0) << build.output;
  Output types = sh("skopeo inspect --raw --tls-verify=false docker://" + app +
                    " | grep -o 'application/vnd.oci.image.layer.v1.tar[+a-z]*'");
  ASSERT_EQ(types.exit_code, 0) << types.output;
  EXPECT_EQ(types.output.substr(types.output.find('\n') + 1),
            "application/vnd.oci.image.layer.v1.tar+zstd\napplication/vnd.oci.image.layer.v1.tar+zstd\n")
      << types.output;
  std::string pull_store = fresh_store();
  Output pulled = sh(reg.env() + in_store(pull_store, "dfrun pull " + app));
  ASSERT_EQ(pulled.exit_code, 0) << pulled.output;
  Output ran = sh(in_store(pull_store, "dfrun run " + app));
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_EQ(ran.output, "packed\nfile\n");
}

}  // namespace
}  // namespace dfgen::e2e
