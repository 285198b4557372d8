// The registry client against a fake transport: naming, auth challenges,
// manifest lists, verification, retries, mirrors, credentials.
#include "core/registry.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <mutex>

#include "core/fs.h"
#include "core/sha256.h"

namespace dfgen::registry {
namespace {

// Answers "METHOD URL" from a table; records every request.
class FakeTransport : public Transport {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  void on(const std::string& method_url, Handler h) { routes_[method_url] = std::move(h); }
  void on(const std::string& method_url, int status, std::string body,
          std::multimap<std::string, std::string> headers = {}) {
    on(method_url, [=](const HttpRequest&) {
      HttpResponse r;
      r.status = status;
      r.body = body;
      r.headers = headers;
      return r;
    });
  }
  HttpResponse send(const HttpRequest& req) override {
    std::string key = req.method + " " + req.url;
    Handler h;
    {
      std::lock_guard<std::mutex> lock(mu_);
      log_.push_back(req);
      auto it = routes_.find(key);
      if (it == routes_.end()) {
        HttpResponse r;
        r.status = 404;
        r.body = R"({"errors":[{"code":"NOT_FOUND","message":"no route"}]})";
        return r;
      }
      h = it->second;
    }
    HttpResponse r = h(req);
    if (req.sink && r.status >= 200 && r.status < 300) {
      if (!req.sink(r.body.data(), r.body.size())) {
        r.failure = HttpResponse::Failure::kAborted;
        r.failure_message = "aborted by sink";
      }
      r.body.clear();
    }
    return r;
  }
  std::vector<HttpRequest> log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  int count(const std::string& method_url) {
    int n = 0;
    for (const auto& r : log()) n += (r.method + " " + r.url) == method_url;
    return n;
  }

 private:
  std::mutex mu_;
  std::map<std::string, Handler> routes_;
  std::vector<HttpRequest> log_;
};

bool has_header(const HttpRequest& r, const std::string& h) {
  return std::find(r.headers.begin(), r.headers.end(), h) != r.headers.end();
}

Config test_config() {
  Config c;
  c.backoff_ms = 1;
  return c;
}

// A small image: one layer, a config, an OCI manifest, and an index that
// lists it for linux/amd64 beside an arm64 one.
struct FakeImage {
  std::string layer = "layer bytes, not a real tar";
  std::string config, manifest, index;
  std::string layer_digest, config_digest, manifest_digest, index_digest;
  FakeImage() {
    layer_digest = sha256_digest(layer);
    config = Json{{"architecture", "amd64"}, {"os", "linux"},
                  {"rootfs", {{"type", "layers"}, {"diff_ids", {sha256_digest("uncompressed")}}}}}.dump();
    config_digest = sha256_digest(config);
    manifest = Json{{"schemaVersion", 2}, {"mediaType", kOciManifest},
                    {"config", {{"mediaType", kOciConfig}, {"digest", config_digest}, {"size", config.size()}}},
                    {"layers", {{{"mediaType", kOciLayerGzip}, {"digest", layer_digest}, {"size", layer.size()}}}}}
                   .dump();
    manifest_digest = sha256_digest(manifest);
    index = Json{{"schemaVersion", 2}, {"mediaType", kOciIndex},
                 {"manifests", {{{"mediaType", kOciManifest}, {"digest", sha256_digest("arm")}, {"size", 3},
                                 {"platform", {{"os", "linux"}, {"architecture", "arm64"}}}},
                                {{"mediaType", kOciManifest}, {"digest", manifest_digest}, {"size", manifest.size()},
                                 {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}}}}
                .dump();
    index_digest = sha256_digest(index);
  }
  // Serves it as `repo` under base ("https://host").
  void serve(FakeTransport& t, const std::string& base, const std::string& repo, const std::string& tag) const {
    std::string v2 = base + "/v2/" + repo;
    t.on("GET " + v2 + "/manifests/" + tag, 200, index, {{"content-type", kOciIndex}});
    t.on("GET " + v2 + "/manifests/" + index_digest, 200, index, {{"content-type", kOciIndex}});
    t.on("GET " + v2 + "/manifests/" + manifest_digest, 200, manifest, {{"content-type", kOciManifest}});
    t.on("GET " + v2 + "/blobs/" + config_digest, 200, config);
    t.on("GET " + v2 + "/blobs/" + layer_digest, 200, layer);
  }
};

struct StoreFixture : ::testing::Test {
  TempDir dir = std::move(TempDir::create("/tmp", "registry-test").value());
  Store store = std::move(Store::open(dir.path() + "/store").value());
  std::shared_ptr<FakeTransport> net = std::make_shared<FakeTransport>();
};

TEST(Challenge, BearerWithQuotedCommas) {
  auto c = parse_challenge(R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/golang:pull,push")");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.docker.io/token");
  EXPECT_EQ(c->params["service"], "registry.docker.io");
  EXPECT_EQ(c->params["scope"], "repository:library/golang:pull,push");
}

TEST(Challenge, Basic) {
  auto c = parse_challenge(R"(Basic realm="dfgen-test")");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->scheme, "basic");
  EXPECT_EQ(c->params["realm"], "dfgen-test");
  EXPECT_FALSE(parse_challenge("").has_value());
}

TEST(Names, HostsAndInsecure) {
  EXPECT_EQ(registry_host("docker.io"), "registry-1.docker.io");
  EXPECT_EQ(registry_host("index.docker.io"), "registry-1.docker.io");
  EXPECT_EQ(registry_host("ghcr.io"), "ghcr.io");
  Config c;
  c.insecure = {"lan.example:5000"};
  EXPECT_TRUE(is_insecure(c, "localhost:5000"));
  EXPECT_TRUE(is_insecure(c, "127.0.0.1:41234"));
  EXPECT_TRUE(is_insecure(c, "[::1]:5000"));
  EXPECT_TRUE(is_insecure(c, "lan.example:5000"));
  EXPECT_FALSE(is_insecure(c, "lan.example:5001"));
  EXPECT_FALSE(is_insecure(c, "docker.io"));
}

TEST(ConfigFile, MirrorsInsecureCa) {
  auto c = parse_config(R"({"ca_file": "/etc/ca.pem", "insecure": ["a:5000"],
                            "mirrors": {"docker.io": ["https://mirror.example/"]}})", "registries.json");
  ASSERT_TRUE(c.ok()) << c.error().render();
  EXPECT_EQ(c->ca_file, "/etc/ca.pem");
  EXPECT_EQ(c->insecure, std::vector<std::string>{"a:5000"});
  EXPECT_EQ(c->mirrors["docker.io"], std::vector<std::string>{"https://mirror.example"});
  auto bad = parse_config(R"({"mirrors": {"docker.io": ["mirror.example"]}})", "registries.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            "registries.json: mirror \"mirror.example\" of docker.io must start with https:// or http://");
}

TEST(Credentials, AuthsAndHelpers) {
  auto dir = TempDir::create("/tmp", "registry-creds");
  ASSERT_TRUE(dir.ok());
  Config c;
  c.docker_config_dir = dir->path();
  ASSERT_TRUE(write_file_atomic(dir->path() + "/config.json",
                                R"({"auths": {"https://index.docker.io/v1/": {"auth": ")" +
                                    base64_encode("hubuser:hubpass") + R"("},
                                              "reg.example:5000": {"auth": ")" + base64_encode("u:p:with:colons") +
                                    R"("}},
                                    "credHelpers": {"helped.example": "dfgentest"}})")
                  .ok());
  auto hub = find_credentials(c, "docker.io");
  ASSERT_TRUE(hub.ok()) << hub.error().render();
  EXPECT_EQ(hub->username, "hubuser");
  EXPECT_EQ(hub->password, "hubpass");
  auto reg = find_credentials(c, "reg.example:5000");
  ASSERT_TRUE(reg.ok());
  EXPECT_EQ(reg->username, "u");
  EXPECT_EQ(reg->password, "p:with:colons");
  EXPECT_TRUE(find_credentials(c, "other.example").value().empty());

  // A credential helper: docker-credential-dfgentest on PATH reads the server on stdin.
  ASSERT_TRUE(write_file_atomic(dir->path() + "/docker-credential-dfgentest",
                                "#!/bin/sh\nread server\n"
                                "printf '{\"Username\":\"helper-user\",\"Secret\":\"for-%s\"}' \"$server\"\n",
                                0755)
                  .ok());
  std::string path = dir->path() + ":" + std::getenv("PATH");
  ::setenv("PATH", path.c_str(), 1);
  auto helped = find_credentials(c, "helped.example");
  ASSERT_TRUE(helped.ok()) << helped.error().render();
  EXPECT_EQ(helped->username, "helper-user");
  EXPECT_EQ(helped->password, "for-helped.example");
}

TEST_F(StoreFixture, DockerHubNamesAndIndexResolvedToAmd64) {
  FakeImage img;
  img.serve(*net, "https://registry-1.docker.io", "library/golang", "1.21");
  Client client(test_config(), net);
  auto ref = parse_reference("golang:1.21");
  ASSERT_TRUE(ref.ok());
  auto pulled = client.pull(store, *ref);
  ASSERT_TRUE(pulled.ok()) << pulled.error().render();
  EXPECT_EQ(pulled->digest, img.index_digest);
  auto tag = store.resolve_tag("docker.io/library/golang:1.21");
  ASSERT_TRUE(tag.ok() && tag->has_value());
  EXPECT_EQ((*tag)->digest, img.index_digest);
  auto rec = load_image(store, **tag);
  ASSERT_TRUE(rec.ok()) << rec.error().render();
  EXPECT_EQ(rec->manifest.digest, img.manifest_digest);
  EXPECT_TRUE(store.has_blob(img.layer_digest));
  // The arm64 image was never asked for.
  EXPECT_EQ(net->count("GET https://registry-1.docker.io/v2/library/golang/manifests/" + sha256_digest("arm")), 0);
  // Every manifest request accepts all four manifest types.
  for (const auto& r : net->log())
    if (r.url.find("/manifests/") != std::string::npos)
      EXPECT_NE(r.headers.front().find(kDockerManifestList), std::string::npos);
}

TEST_F(StoreFixture, BearerTokenFlow) {
  FakeImage img;
  std::string base = "https://reg.example";
  img.serve(*net, base, "team/app", "v1");
  // Without the token every registry request is refused with a challenge.
  auto guarded = [&](const std::string& key) {
    auto inner = std::make_shared<FakeTransport>();
    img.serve(*inner, base, "team/app", "v1");
    net->on(key, [=](const HttpRequest& req) {
      if (has_header(req, "Authorization: Bearer tok-123")) return inner->send(HttpRequest{req.method, req.url});
      HttpResponse r;
      r.status = 401;
      r.headers = {{"www-authenticate",
                    R"(Bearer realm="https://auth.example/token",service="reg.example",scope="repository:team/app:pull")"}};
      return r;
    });
  };
  guarded("GET " + base + "/v2/team/app/manifests/v1");
  guarded("GET " + base + "/v2/team/app/manifests/" + img.manifest_digest);
  guarded("GET " + base + "/v2/team/app/blobs/" + img.config_digest);
  guarded("GET " + base + "/v2/team/app/blobs/" + img.layer_digest);
  net->on("GET https://auth.example/token?service=reg.example&scope=repository%3Ateam%2Fapp%3Apull", 200,
          R"({"token": "tok-123"})");
  Client client(test_config(), net);
  auto pulled = client.pull(store, parse_reference("reg.example/team/app:v1").value());
  ASSERT_TRUE(pulled.ok()) << pulled.error().render();
  // One token for the whole pull: later requests carry it from the start.
  EXPECT_EQ(net->count("GET https://auth.example/token?service=reg.example&scope=repository%3Ateam%2Fapp%3Apull"), 1);
  EXPECT_EQ(net->count("GET " + base + "/v2/team/app/blobs/" + img.layer_digest), 1);
}

TEST_F(StoreFixture, TamperedBlobNeverEntersTheStore) {
  FakeImage img;
  std::string base = "https://reg.example";
  img.serve(*net, base, "x", "1");
  std::string evil = img.layer;
  evil[0] = 'L';
  net->on("GET " + base + "/v2/x/blobs/" + img.layer_digest, 200, evil);
  Client client(test_config(), net);
  auto pulled = client.pull(store, parse_reference("reg.example/x:1").value());
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.error().message,
            fmt::format("pull reg.example/x:1: fetch blob {} of x: blob digest mismatch: expected {}, got {}",
                        img.layer_digest, img.layer_digest, sha256_digest(evil)));
  EXPECT_FALSE(store.has_blob(img.layer_digest));
  EXPECT_FALSE(store.resolve_tag("reg.example/x:1").value().has_value());
  EXPECT_FALSE(store.has_blob(img.manifest_digest));
}

TEST_F(StoreFixture, ManifestDigestChecked) {
  FakeImage img;
  std::string base = "https://reg.example";
  img.serve(*net, base, "x", "1");
  net->on("GET " + base + "/v2/x/manifests/" + img.manifest_digest, 200, img.manifest + " ");
  Client client(test_config(), net);
  auto pulled = client.pull(store, parse_reference("reg.example/x:1").value());
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.error().message,
            fmt::format("pull reg.example/x:1: manifest reg.example/x:{}: digest mismatch: the registry sent {}",
                        img.manifest_digest, sha256_digest(img.manifest + " ")));
}

TEST_F(StoreFixture, RetriesServerErrorsWithBackoff) {
  FakeImage img;
  std::string base = "https://reg.example";
  img.serve(*net, base, "x", "1");
  int calls = 0;
  net->on("GET " + base + "/v2/x/blobs/" + img.layer_digest, [&](const HttpRequest&) {
    HttpResponse r;
    if (++calls < 3) {
      r.status = 503;
      return r;
    }
    r.status = 200;
    r.body = img.layer;
    return r;
  });
  Client client(test_config(), net);
  auto pulled = client.pull(store, parse_reference("reg.example/x:1").value());
  ASSERT_TRUE(pulled.ok()) << pulled.error().render();
  EXPECT_EQ(calls, 3);

  // Too many failures: the last answer is the error.
  Config once = test_config();
  once.attempts = 2;
  net->on("GET " + base + "/v2/y/manifests/1", 503, R"({"errors":[{"code":"UNAVAILABLE","message":"busy"}]})");
  Client impatient(once, net);
  auto failed = impatient.pull(store, parse_reference("reg.example/y:1").value());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "pull reg.example/y:1: get manifest reg.example/y:1: HTTP 503 (UNAVAILABLE: busy)");
  EXPECT_EQ(net->count("GET " + base + "/v2/y/manifests/1"), 2);
}

TEST_F(StoreFixture, MirrorFirstThenTheRegistry) {
  FakeImage img;
  img.serve(*net, "https://registry-1.docker.io", "library/busybox", "latest");
  Config c = test_config();
  c.mirrors["docker.io"] = {"https://mirror.example"};
  Client client(c, net);
  auto pulled = client.pull(store, parse_reference("busybox").value());
  ASSERT_TRUE(pulled.ok()) << pulled.error().render();
  EXPECT_EQ(net->count("GET https://mirror.example/v2/library/busybox/manifests/latest"), 1);

  // A mirror that has it serves everything.
  auto store2 = Store::open(dir.path() + "/store2");
  ASSERT_TRUE(store2.ok());
  auto mirror_net = std::make_shared<FakeTransport>();
  img.serve(*mirror_net, "https://mirror.example", "library/busybox", "latest");
  Client mirrored(c, mirror_net);
  ASSERT_TRUE(mirrored.pull(*store2, parse_reference("busybox").value()).ok());
  for (const auto& r : mirror_net->log()) EXPECT_TRUE(r.url.starts_with("https://mirror.example/")) << r.url;
}

TEST_F(StoreFixture, PushSkipsPresentBlobsAndUploadsInChunks) {
  FakeImage img;
  ASSERT_TRUE(store.put_blob(img.layer, kOciLayerGzip).ok());
  ASSERT_TRUE(store.put_blob(img.config, kOciConfig).ok());
  auto manifest = store.put_blob(img.manifest, kOciManifest);
  ASSERT_TRUE(manifest.ok());
  std::string v2 = "https://reg.example/v2/team/app";
  net->on("HEAD " + v2 + "/blobs/" + img.config_digest, 200, "");   // already there
  net->on("POST " + v2 + "/blobs/uploads/", 202, "", {{"location", "/v2/team/app/blobs/uploads/u1?_state=0"}});
  std::vector<std::string> ranges;
  for (int i = 0; i < 3; ++i)
    net->on("PATCH https://reg.example/v2/team/app/blobs/uploads/u1?_state=" + std::to_string(i),
            [&, i](const HttpRequest& req) {
              ranges.push_back(req.headers[1] + fmt::format(" @{}+{}", req.body_offset, req.body_length));
              HttpResponse r;
              r.status = 202;
              r.headers = {{"location", "/v2/team/app/blobs/uploads/u1?_state=" + std::to_string(i + 1)}};
              return r;
            });
  std::string put = "PUT https://reg.example/v2/team/app/blobs/uploads/u1?_state=3&digest=sha256%3A" +
                    img.layer_digest.substr(7);
  net->on(put, 201, "");
  net->on("PUT " + v2 + "/manifests/v1", 201, "", {{"docker-content-digest", img.manifest_digest}});
  Config c = test_config();
  c.chunk_size = 10;   // the 27-byte layer goes up in three PATCHes
  Client client(c, net);
  auto pushed = client.push(store, *manifest, parse_reference("reg.example/team/app:v1").value());
  ASSERT_TRUE(pushed.ok()) << pushed.error().render();
  EXPECT_EQ(pushed->digest, img.manifest_digest);
  EXPECT_EQ(ranges, (std::vector<std::string>{"Content-Range: 0-9 @0+10", "Content-Range: 10-19 @10+10",
                                              "Content-Range: 20-26 @20+7"}));
  EXPECT_EQ(net->count(put), 1);
  EXPECT_EQ(net->count("POST " + v2 + "/blobs/uploads/"), 1);   // not for the config
  auto log = net->log();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back().method + " " + log.back().url, "PUT " + v2 + "/manifests/v1");
  EXPECT_EQ(log.back().body, img.manifest);
  EXPECT_TRUE(has_header(log.back(), std::string("Content-Type: ") + kOciManifest));
}

TEST_F(StoreFixture, PlainHttpOnlyForInsecureRegistries) {
  FakeImage img;
  auto handshake_fails = [](const HttpRequest&) {
    HttpResponse r;
    r.failure = HttpResponse::Failure::kTlsHandshake;
    r.failure_message = "wrong version number";
    return r;
  };
  net->on("GET https://127.0.0.1:5000/v2/x/manifests/1", handshake_fails);
  net->on("GET https://reg.example/v2/x/manifests/1", handshake_fails);
  img.serve(*net, "http://127.0.0.1:5000", "x", "1");
  Client client(test_config(), net);
  auto local = client.pull(store, parse_reference("127.0.0.1:5000/x:1").value());
  ASSERT_TRUE(local.ok()) << local.error().render();
  auto secure = client.pull(store, parse_reference("reg.example/x:1").value());
  ASSERT_FALSE(secure.ok());
  EXPECT_EQ(secure.error().message,
            "pull reg.example/x:1: TLS handshake with https://reg.example/v2/x/manifests/1 failed: wrong version number");
  for (const auto& r : net->log())
    EXPECT_FALSE(r.url.starts_with("http://reg.example")) << r.url;
}

}  // namespace
}  // namespace dfgen::registry
