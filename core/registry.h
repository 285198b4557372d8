// A client for the OCI Distribution API (Docker Registry HTTP API v2): pull
// images into the store, push images from it. Both tools use it: dfgen pulls
// a base image it cannot find in the store, dfrun pulls, pushes and serves
// `--output type=registry`. See docs/registry.md.
//
// Names: Docker's rules (core/reference.h); "docker.io" is served by
// registry-1.docker.io. Transport: HTTPS, verified, unless the registry is
// localhost / 127.0.0.1 / ::1 or listed as insecure (plain HTTP allowed, and for
// listed ones unverified TLS). Auth: the WWW-Authenticate challenge decides
// (Bearer: a token from the realm, Basic: the credentials), credentials come
// from ~/.docker/config.json (`auths`, `credHelpers`, `credsStore`).
//
// Every blob is written through Store::blob_writer and committed against its
// expected digest: a blob that does not match never enters the store. A tag is
// set only after the whole image (manifest, config, layers) is stored.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/reference.h"
#include "core/result.h"
#include "core/store.h"

namespace dfgen::registry {

// What the user configured: ${DFGEN_REGISTRIES_CONFIG:-${XDG_CONFIG_HOME:-~/.config}/dfgen/registries.json}
//   { "ca_file": "/etc/my-ca.pem",
//     "insecure": ["myreg.lan:5000"],
//     "mirrors": { "docker.io": ["https://mirror.example.com"] } }
// then the environment: DFGEN_REGISTRY_CA (replaces ca_file), DFGEN_INSECURE_REGISTRIES
// (comma-separated, added), DOCKER_CONFIG (the folder of config.json),
// DFGEN_REGISTRY_CHUNK_SIZE (bytes; blobs larger are uploaded in PATCH chunks).
struct Config {
  std::string ca_file;                                      // extra trusted CAs (PEM), besides the system's
  std::vector<std::string> insecure;                        // "host[:port]"
  std::map<std::string, std::vector<std::string>> mirrors;  // registry -> mirror base URLs (pulls only)
  std::string docker_config_dir;                            // where config.json is ("" = none)
  int attempts = 4;                                         // per request, with back-off
  int backoff_ms = 250;                                     // first wait; doubles each retry
  int parallel = 3;                                         // blobs fetched / pushed at once
  int64_t chunk_size = 32 << 20;                            // blobs above: chunked upload
};
Result<Config> load_config();
// Parses the registries.json text (for tests and load_config).
Result<Config> parse_config(std::string_view text, const std::string& what);

// The host that serves a registry name: "docker.io" -> "registry-1.docker.io".
std::string registry_host(std::string_view registry);
// localhost, 127.0.0.1, [::1] (any port), or listed in config.insecure.
bool is_insecure(const Config& config, std::string_view registry);

struct Credentials {
  std::string username, password;
  bool empty() const { return username.empty() && password.empty(); }
};
// From DOCKER_CONFIG/config.json: credHelpers[registry] or credsStore (runs
// `docker-credential-NAME get`), else auths[registry].auth (base64 user:pass).
// Docker Hub's key is "https://index.docker.io/v1/". No entry: empty credentials.
Result<Credentials> find_credentials(const Config& config, const std::string& registry);

// A WWW-Authenticate header: `Bearer realm="...",service="...",scope="..."`.
struct Challenge {
  std::string scheme;                         // lower case: "bearer", "basic"
  std::map<std::string, std::string> params;  // realm, service, scope, ...
};
std::optional<Challenge> parse_challenge(std::string_view header);
std::string base64_encode(std::string_view data);

// The network seam: one HTTP exchange. The client adds auth, retries and
// redirects' policy; a fake transport drives the unit tests.
struct HttpRequest {
  std::string method = "GET";                 // GET HEAD POST PUT PATCH
  std::string url;
  std::vector<std::string> headers;           // "Name: value"
  std::string body;                           // sent when body_file is empty
  std::string body_file;                      // else this file's [offset, offset+length)
  int64_t body_offset = 0, body_length = 0;
  // Receives a 2xx response's body instead of HttpResponse::body; returning
  // false aborts the transfer.
  std::function<bool(const char*, size_t)> sink;
  bool verify_tls = true;
  std::string ca_file;
};
struct HttpResponse {
  enum class Failure { kNone, kResolve, kConnect, kTlsHandshake, kTlsVerify, kAborted, kOther };
  Failure failure = Failure::kNone;           // set when no HTTP response was received
  std::string failure_message;
  int status = 0;
  std::multimap<std::string, std::string> headers;   // names in lower case
  std::string body;                                  // limited to a few MiB
  std::string header(const std::string& lower_name) const;
};
class Transport {
 public:
  virtual ~Transport() = default;
  // Thread-safe: blobs are fetched on several threads.
  virtual HttpResponse send(const HttpRequest& request) = 0;
};
std::shared_ptr<Transport> curl_transport();

// A manifest as fetched: the exact bytes (their sha256 is the digest).
struct Manifest {
  std::string bytes;
  std::string media_type;
  std::string digest;
  Json json;
};

class Client {
 public:
  Client(Config config, std::shared_ptr<Transport> transport);
  ~Client();

  // The manifest of `ref` (by digest if it has one, else by tag), verified.
  Result<Manifest> get_manifest(const Reference& ref);
  // Pulls ref into the store: the manifest (an index/manifest list is kept and
  // followed to linux/amd64), config and layers (missing ones, in parallel),
  // then tags it as ref (when it has a tag and no digest). Returns the top descriptor.
  Result<Descriptor> pull(Store& store, const Reference& ref);
  // Pushes the store's image `manifest` (an index: its linux/amd64 image) to
  // `dest`, which must carry a tag. Blobs the registry has are skipped, blobs
  // another repository of it holds (per the store's tags) are mounted.
  Result<Descriptor> push(const Store& store, const Descriptor& manifest, const Reference& dest);
  // Fetches one blob of ref's repository into the store, verified against
  // `desc` (size and digest); a no-op when the store has it. For lazy
  // imports of a remote step cache (core/remote_cache.h).
  Status fetch_blob(Store& store, const Reference& ref, const Descriptor& desc);

  // Endpoints and auth state, one per registry host (kept across requests).
  struct Endpoint;
 private:
  using Scopes = std::vector<std::string>;   // "repository:NAME:pull,push"
  // One request (url: "/v2/..." on the endpoint, or absolute): retries with
  // back-off, answers an auth challenge once, falls back to plain HTTP where
  // allowed. `restart` runs before every attempt (a fresh blob writer).
  Result<HttpResponse> call(Endpoint& ep, HttpRequest req, const Scopes& scopes,
                            const std::function<void()>& restart = {});
  Status authorize(Endpoint& ep, const HttpResponse& challenge_response, const Scopes& scopes);
  std::string cached_auth(Endpoint& ep, const Scopes& scopes);
  Result<Endpoint*> endpoint(const std::string& base_url, const std::string& registry);
  Result<std::vector<Endpoint*>> pull_endpoints(const std::string& registry);
  Result<Manifest> get_manifest_from(Endpoint& ep, const Reference& ref, const std::string& reference);
  Status fetch_blob(Endpoint& ep, Store& store, const std::string& repo, const Descriptor& desc);
  Result<Descriptor> pull_from(Endpoint& ep, Store& store, const Reference& ref);
  Status push_blob(Endpoint& ep, const Store& store, const std::string& repo, const Descriptor& desc,
                   const std::string& mount_from, const Scopes& scopes);
  Status upload(Endpoint& ep, const Store& store, const std::string& repo, const Descriptor& desc,
                std::string location, const Scopes& scopes);

  Config config_;
  std::shared_ptr<Transport> transport_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Endpoint>> endpoints_;
};

// Pushes the store's image to every tag (normalized references), for
// `--output type=registry`. Uses load_config() and curl_transport().
Status push_tags(const Store& store, const Descriptor& manifest, const std::vector<std::string>& tags);

}  // namespace dfgen::registry
