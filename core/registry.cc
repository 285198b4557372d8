// The registry client: endpoints, auth, pull and push (core/registry.h).
#include "core/registry.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "core/json.h"
#include "core/sha256.h"

namespace dfgen::registry {

struct Client::Endpoint {
  std::string registry;        // the name credentials are looked up by
  std::string base;            // "https://registry-1.docker.io"
  bool verify_tls = true;
  bool http_fallback = false;  // may switch to http:// when the server does not speak TLS
  std::mutex mu;               // guards what follows
  std::string basic;           // "Basic ..." once the registry asked for it
  std::map<std::string, std::string> tokens;   // scopes -> "Bearer ..."
  std::optional<Credentials> creds;
};

namespace {

constexpr const char* kAccept =
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

bool is_index_type(std::string_view mt) { return mt == kOciIndex || mt == kDockerManifestList; }
bool is_manifest_type(std::string_view mt) { return mt == kOciManifest || mt == kDockerManifest; }

std::string url_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string with_query(const std::string& url, const std::string& kv) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + kv;
}

// The registry's own words: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}.
std::string error_detail(const HttpResponse& r) {
  auto j = Json::parse(r.body, nullptr, false);
  std::string out;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array())
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      if (!out.empty()) out += "; ";
      out += e.value("code", "") + (e.contains("message") ? ": " + e.value("message", "") : "");
    }
  if (out.empty() && !r.body.empty() && r.body.size() < 300 && r.body.find('<') == std::string::npos) {
    out = r.body;
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  }
  return out;
}

Error http_error(const HttpResponse& r, const std::string& what) {
  std::string detail = error_detail(r);
  std::string msg = fmt::format("{}: HTTP {}{}", what, r.status, detail.empty() ? "" : " (" + detail + ")");
  if (r.status == 401) return Error(msg, SourceRange{}, "check the credentials in $DOCKER_CONFIG/config.json (docker login)");
  if (r.status == 403) return Error(msg + ": access denied");
  return Error(msg);
}

std::string failure_text(const HttpResponse& r, const std::string& url) {
  using F = HttpResponse::Failure;
  switch (r.failure) {
    case F::kResolve: return fmt::format("cannot resolve the host of {}: {}", url, r.failure_message);
    case F::kConnect: return fmt::format("cannot reach {}: {} (is the registry running?)", url, r.failure_message);
    case F::kTlsVerify:
      return fmt::format("TLS certificate of {} is not trusted: {} (trust its CA with DFGEN_REGISTRY_CA or "
                         "\"ca_file\" in registries.json)", url, r.failure_message);
    case F::kTlsHandshake: return fmt::format("TLS handshake with {} failed: {}", url, r.failure_message);
    default: return fmt::format("request {} failed: {}", url, r.failure_message);
  }
}

bool retryable(const HttpResponse& r) {
  if (r.failure == HttpResponse::Failure::kConnect) return true;
  return r.status == 429 || r.status == 502 || r.status == 503 || r.status == 504 || r.status == 500;
}

std::string scopes_key(const std::vector<std::string>& scopes) {
  std::string k;
  for (const auto& s : scopes) k += s + " ";
  return k;
}

// Runs fn(0..n-1) on up to `threads` threads; the first error stops the rest.
Status for_each_parallel(size_t n, int threads, const std::function<Status(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::optional<Error> first;
  auto work = [&] {
    while (!stop) {
      size_t i = next++;
      if (i >= n) return;
      auto st = fn(i);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (!first) first = st.error();
        stop = true;
      }
    }
  };
  std::vector<std::thread> pool;
  size_t count = std::min<size_t>(n, static_cast<size_t>(std::max(1, threads)));
  for (size_t i = 1; i < count; ++i) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (first) return *first;
  return ok_status();
}

Result<Descriptor> amd64_of(const Json& index, const std::string& what) {
  if (!index.contains("manifests") || !index["manifests"].is_array())
    return Error(what + ": image index has no \"manifests\" array");
  std::vector<std::string> have;
  for (const Json& m : index["manifests"]) {
    auto p = m.find("platform");
    if (p == m.end() || !p->is_object()) continue;
    if (p->value("os", "") == "linux" && p->value("architecture", "") == "amd64") return Descriptor::from_json(m);
    have.push_back(p->value("os", "?") + "/" + p->value("architecture", "?"));
  }
  std::string list;
  for (const auto& h : have) list += (list.empty() ? "" : ", ") + h;
  return Error(fmt::format("{}: no linux/amd64 image in the index (it has: {})", what, list));
}

// The descriptors an image manifest references: config first, then the layers.
Result<std::vector<Descriptor>> blobs_of(const Json& manifest, const std::string& what) {
  std::vector<Descriptor> out;
  if (!manifest.is_object() || !manifest.contains("config")) return Error(what + ": manifest has no config");
  DFGEN_TRY(Descriptor config, Descriptor::from_json(manifest["config"]));
  out.push_back(config);
  for (const Json& l : manifest.value("layers", Json::array())) {
    DFGEN_TRY(Descriptor d, Descriptor::from_json(l));
    out.push_back(d);
  }
  for (const auto& d : out)
    if (!is_sha256_digest(d.digest)) return Error(fmt::format("{}: unsupported blob digest \"{}\"", what, d.digest));
  return out;
}

std::string manifest_media_type(const Json& j, const HttpResponse& r) {
  if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string()) return j["mediaType"];
  std::string ct = r.header("content-type");
  if (auto semi = ct.find(';'); semi != std::string::npos) ct = ct.substr(0, semi);
  if (!ct.empty() && ct != "application/json") return ct;
  return j.is_object() && j.contains("manifests") ? kOciIndex : kOciManifest;
}

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

Client::Client(Config config, std::shared_ptr<Transport> transport)
    : config_(std::move(config)), transport_(std::move(transport)) {}

Client::~Client() = default;

Result<Client::Endpoint*> Client::endpoint(const std::string& base_url, const std::string& registry) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = endpoints_[base_url.empty() ? "registry " + registry : base_url];
  if (slot) return slot.get();
  auto ep = std::make_unique<Endpoint>();
  ep->registry = registry;
  bool insecure = is_insecure(config_, registry);
  if (base_url.empty()) {
    ep->base = "https://" + registry_host(registry);
    ep->http_fallback = insecure;
  } else {
    if (base_url.starts_with("http://") && !insecure)
      return Error(fmt::format("mirror {}: plain HTTP is allowed only for localhost and insecure registries", base_url));
    ep->base = base_url;
  }
  // Listed insecure registries may present any certificate; localhost's is verified.
  ep->verify_tls = !insecure || registry.starts_with("localhost") || registry.starts_with("127.0.0.1") ||
                   registry.starts_with("[::1]");
  slot = std::move(ep);
  return slot.get();
}

Result<std::vector<Client::Endpoint*>> Client::pull_endpoints(const std::string& registry) {
  std::vector<Endpoint*> out;
  if (auto it = config_.mirrors.find(registry); it != config_.mirrors.end())
    for (const auto& url : it->second) {
      std::string host = url.substr(url.find("://") + 3);
      host = host.substr(0, host.find('/'));
      DFGEN_TRY(Endpoint* ep, endpoint(url, host));
      out.push_back(ep);
    }
  DFGEN_TRY(Endpoint* ep, endpoint("", registry));
  out.push_back(ep);
  return out;
}

std::string Client::cached_auth(Endpoint& ep, const Scopes& scopes) {
  std::lock_guard<std::mutex> lock(ep.mu);
  if (!ep.basic.empty()) return ep.basic;
  auto it = ep.tokens.find(scopes_key(scopes));
  return it == ep.tokens.end() ? "" : it->second;
}

Status Client::authorize(Endpoint& ep, const HttpResponse& resp, const Scopes& scopes) {
  auto challenge = parse_challenge(resp.header("www-authenticate"));
  if (!challenge) return http_error(resp, ep.base + " asks for authentication without a WWW-Authenticate challenge");
  std::unique_lock<std::mutex> lock(ep.mu);
  if (!ep.creds) {
    lock.unlock();
    DFGEN_TRY(Credentials c, find_credentials(config_, ep.registry));
    lock.lock();
    ep.creds = c;
  }
  Credentials creds = *ep.creds;
  lock.unlock();
  std::string basic = creds.empty() ? "" : "Basic " + base64_encode(creds.username + ":" + creds.password);
  if (challenge->scheme == "basic") {
    if (creds.empty())
      return Error(fmt::format("{} requires a user name and password: none found for {} in {}/config.json",
                               ep.base, ep.registry, config_.docker_config_dir),
                   SourceRange{}, "run `docker login " + ep.registry + "`");
    std::lock_guard<std::mutex> relock(ep.mu);
    ep.basic = basic;
    return ok_status();
  }
  if (challenge->scheme != "bearer") return Error(fmt::format("{}: unsupported auth scheme \"{}\"", ep.base, challenge->scheme));
  std::string realm = challenge->params["realm"];
  if (!realm.starts_with("https://") && !realm.starts_with("http://"))
    return Error(fmt::format("{}: bad token realm \"{}\"", ep.base, realm));
  std::string url = realm;
  if (!challenge->params["service"].empty()) url = with_query(url, "service=" + url_encode(challenge->params["service"]));
  Scopes wanted = scopes;
  if (wanted.empty() && !challenge->params["scope"].empty()) wanted.push_back(challenge->params["scope"]);
  for (const auto& s : wanted) url = with_query(url, "scope=" + url_encode(s));
  HttpRequest req;
  req.url = url;
  req.verify_tls = ep.verify_tls;
  req.ca_file = config_.ca_file;
  if (!basic.empty()) req.headers.push_back("Authorization: " + basic);
  HttpResponse tr;
  for (int attempt = 0;; ++attempt) {
    tr = transport_->send(req);
    if (!retryable(tr) || attempt + 1 >= config_.attempts) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(config_.backoff_ms << attempt));
  }
  if (tr.failure != HttpResponse::Failure::kNone) return Error(failure_text(tr, realm)).context("get a token");
  if (tr.status != 200) return http_error(tr, "get a token from " + realm + " for " + ep.registry);
  auto j = Json::parse(tr.body, nullptr, false);
  std::string token = j.is_object() ? j.value("token", j.value("access_token", "")) : "";
  if (token.empty()) return Error(fmt::format("token from {}: the answer holds no token", realm));
  std::lock_guard<std::mutex> relock(ep.mu);
  ep.tokens[scopes_key(scopes)] = "Bearer " + token;
  return ok_status();
}

Result<HttpResponse> Client::call(Endpoint& ep, HttpRequest req, const Scopes& scopes,
                                  const std::function<void()>& restart) {
  std::string target = req.url;
  bool authorized = false;
  for (int attempt = 0;;) {
    if (restart) restart();
    HttpRequest r = req;
    {
      std::lock_guard<std::mutex> lock(ep.mu);
      r.url = target.starts_with("/") ? ep.base + target : target;
    }
    r.verify_tls = ep.verify_tls;
    r.ca_file = config_.ca_file;
    if (std::string auth = cached_auth(ep, scopes); !auth.empty()) r.headers.push_back("Authorization: " + auth);
    HttpResponse resp = transport_->send(r);
    if (resp.failure == HttpResponse::Failure::kTlsHandshake && target.starts_with("/") &&
        r.url.starts_with("https://")) {
      // The server does not speak TLS: plain HTTP where allowed (another
      // thread may have switched already).
      std::lock_guard<std::mutex> lock(ep.mu);
      if (ep.base.starts_with("http://")) continue;
      if (ep.http_fallback) {
        ep.base = "http://" + ep.base.substr(8);
        continue;
      }
    }
    if (retryable(resp) && ++attempt < config_.attempts) {
      std::this_thread::sleep_for(std::chrono::milliseconds(config_.backoff_ms << (attempt - 1)));
      continue;
    }
    if (resp.failure != HttpResponse::Failure::kNone) {
      if (resp.failure == HttpResponse::Failure::kAborted) return Error(r.method + " " + r.url + ": aborted");
      return Error(failure_text(resp, r.url));
    }
    if (resp.status == 401 && !authorized) {
      DFGEN_CHECK(authorize(ep, resp, scopes));
      authorized = true;
      continue;
    }
    return resp;
  }
}

Result<Manifest> Client::get_manifest_from(Endpoint& ep, const Reference& ref, const std::string& reference) {
  std::string what = fmt::format("manifest {}:{}", ref.name(), reference);
  HttpRequest req;
  req.url = "/v2/" + ref.repository + "/manifests/" + reference;
  req.headers.push_back(kAccept);
  DFGEN_TRY(HttpResponse resp, call(ep, req, {"repository:" + ref.repository + ":pull"}));
  if (resp.status == 404) {
    std::string detail = error_detail(resp);
    return Error(fmt::format("{}: not found on {}{}", what, ep.base, detail.empty() ? "" : " (" + detail + ")"));
  }
  if (resp.status != 200) return http_error(resp, "get " + what);
  Manifest m;
  m.bytes = std::move(resp.body);
  m.digest = sha256_digest(m.bytes);
  if (is_sha256_digest(reference) && m.digest != reference)
    return Error(fmt::format("{}: digest mismatch: the registry sent {}", what, m.digest));
  if (std::string claimed = resp.header("docker-content-digest"); is_sha256_digest(claimed) && claimed != m.digest)
    return Error(fmt::format("{}: digest mismatch: the registry says {}, the content is {}", what, claimed, m.digest));
  DFGEN_TRY(m.json, parse_json(m.bytes, what));
  m.media_type = manifest_media_type(m.json, resp);
  if (!is_index_type(m.media_type) && !is_manifest_type(m.media_type))
    return Error(fmt::format("{}: unsupported manifest media type \"{}\" (schema 1 images are not supported)", what,
                             m.media_type));
  return m;
}

Result<Manifest> Client::get_manifest(const Reference& ref) {
  DFGEN_TRY(auto endpoints, pull_endpoints(ref.registry));
  std::optional<Error> last;
  for (Endpoint* ep : endpoints) {
    auto m = get_manifest_from(*ep, ref, ref.digest.empty() ? ref.tag : ref.digest);
    if (m.ok()) return m;
    last = std::move(m).error();
  }
  return *last;
}

Status Client::fetch_blob(Store& store, const Reference& ref, const Descriptor& desc) {
  if (store.has_blob(desc.digest)) return ok_status();
  if (!is_sha256_digest(desc.digest)) return Error(fmt::format("fetch blob: unsupported digest \"{}\"", desc.digest));
  DFGEN_TRY(auto endpoints, pull_endpoints(ref.registry));
  std::optional<Error> last;
  for (Endpoint* ep : endpoints) {
    auto st = fetch_blob(*ep, store, ref.repository, desc);
    if (st.ok()) return st;
    last = std::move(st).error();
  }
  return *last;
}

Status Client::fetch_blob(Endpoint& ep, Store& store, const std::string& repo, const Descriptor& desc) {
  if (store.has_blob(desc.digest)) return ok_status();
  std::string what = fmt::format("blob {} of {}", desc.digest, repo);
  std::optional<BlobWriter> writer;
  std::optional<Error> write_error;
  bool too_long = false;
  auto restart = [&] {
    writer.reset();
    write_error.reset();
    too_long = false;
    auto w = store.blob_writer();
    if (w.ok()) writer.emplace(std::move(*w));
    else write_error = w.error();
  };
  HttpRequest req;
  req.url = "/v2/" + repo + "/blobs/" + desc.digest;
  req.sink = [&](const char* data, size_t len) {
    if (!writer) return false;
    if (writer->size() + static_cast<int64_t>(len) > desc.size) {
      too_long = true;
      return false;
    }
    auto st = writer->write(data, len);
    if (!st.ok()) write_error = st.error();
    return st.ok();
  };
  auto resp = call(ep, req, {"repository:" + repo + ":pull"}, restart);
  if (write_error) return std::move(*write_error).context("fetch " + what);
  if (too_long) return Error(fmt::format("fetch {}: the registry sent more than the {} bytes the manifest lists", what, desc.size));
  if (!resp.ok()) return std::move(resp).error().context("fetch " + what);
  if (resp->status != 200) return http_error(*resp, "fetch " + what);
  if (!writer) return Error("fetch " + what + ": no blob writer");
  if (writer->size() != desc.size)
    return Error(fmt::format("fetch {}: got {} bytes, the manifest lists {}", what, writer->size(), desc.size));
  auto committed = writer->commit(desc.media_type, desc.digest);
  if (!committed.ok()) return std::move(committed).error().context("fetch " + what);
  return ok_status();
}

Result<Descriptor> Client::pull_from(Endpoint& ep, Store& store, const Reference& ref) {
  DFGEN_TRY(Manifest top, get_manifest_from(ep, ref, ref.digest.empty() ? ref.tag : ref.digest));
  Manifest image = top;
  if (is_index_type(top.media_type)) {
    DFGEN_TRY(Descriptor child, amd64_of(top.json, "image index " + top.digest));
    DFGEN_TRY(image, get_manifest_from(ep, ref, child.digest));
    if (!is_manifest_type(image.media_type))
      return Error(fmt::format("manifest {}: expected an image manifest, got \"{}\"", child.digest, image.media_type));
  }
  DFGEN_TRY(auto blobs, blobs_of(image.json, "manifest " + image.digest));
  DFGEN_CHECK(for_each_parallel(blobs.size(), config_.parallel,
                                [&](size_t i) { return fetch_blob(ep, store, ref.repository, blobs[i]); }));
  // Manifests last, so a stored manifest never lacks its blobs.
  DFGEN_TRY(Descriptor image_desc, store.put_blob(image.bytes, image.media_type));
  Descriptor top_desc = image_desc;
  if (top.digest != image.digest) { DFGEN_TRY(top_desc, store.put_blob(top.bytes, top.media_type)); }
  DFGEN_TRY(ImageRecord rec, load_image(store, top_desc));
  // "name:tag@digest" names the digest; the tag may have moved on, so it is not set.
  if (!ref.tag.empty() && ref.digest.empty()) DFGEN_CHECK(store.set_tag(ref.str(), top_desc));
  return top_desc;
}

Result<Descriptor> Client::pull(Store& store, const Reference& ref) {
  DFGEN_TRY(auto endpoints, pull_endpoints(ref.registry));
  std::optional<Error> last;
  for (Endpoint* ep : endpoints) {
    auto d = pull_from(*ep, store, ref);
    if (d.ok()) return d;
    last = std::move(d).error();
  }
  return std::move(*last).context("pull " + ref.str());
}

Status Client::upload(Endpoint& ep, const Store& store, const std::string& repo, const Descriptor& desc,
                      std::string location, const Scopes& scopes) {
  std::string what = fmt::format("upload blob {} to {}", desc.digest, repo);
  std::string path = store.blob_path(desc.digest);
  auto next_location = [&](const HttpResponse& r) -> Result<std::string> {
    std::string loc = r.header("location");
    if (loc.empty()) return Error(what + ": the registry gave no upload location");
    return loc;
  };
  int64_t offset = 0;
  if (desc.size > config_.chunk_size) {
    for (; offset < desc.size;) {
      int64_t len = std::min<int64_t>(config_.chunk_size, desc.size - offset);
      HttpRequest req;
      req.method = "PATCH";
      req.url = location;
      req.headers = {"Content-Type: application/octet-stream",
                     fmt::format("Content-Range: {}-{}", offset, offset + len - 1)};
      req.body_file = path;
      req.body_offset = offset;
      req.body_length = len;
      DFGEN_TRY(HttpResponse r, call(ep, req, scopes));
      if (r.status != 202) return http_error(r, what + " (chunk at " + std::to_string(offset) + ")");
      DFGEN_TRY(location, next_location(r));
      offset += len;
    }
  }
  HttpRequest put;
  put.method = "PUT";
  put.url = with_query(location, "digest=" + url_encode(desc.digest));
  put.headers = {"Content-Type: application/octet-stream"};
  if (offset < desc.size) {
    put.body_file = path;
    put.body_offset = offset;
    put.body_length = desc.size - offset;
  }
  DFGEN_TRY(HttpResponse r, call(ep, put, scopes));
  if (r.status != 201 && r.status != 204) return http_error(r, what);
  return ok_status();
}

Status Client::push_blob(Endpoint& ep, const Store& store, const std::string& repo, const Descriptor& desc,
                         const std::string& mount_from, const Scopes& scopes) {
  std::string what = fmt::format("push blob {} to {}", desc.digest, repo);
  HttpRequest head;
  head.method = "HEAD";
  head.url = "/v2/" + repo + "/blobs/" + desc.digest;
  DFGEN_TRY(HttpResponse h, call(ep, head, scopes));
  if (h.status == 200) return ok_status();
  if (h.status != 404) return http_error(h, what);
  if (!store.has_blob(desc.digest)) return Error(what + ": the blob is not in the store " + store.root());
  HttpRequest post;
  post.method = "POST";
  post.url = "/v2/" + repo + "/blobs/uploads/";
  if (!mount_from.empty())
    post.url += "?mount=" + url_encode(desc.digest) + "&from=" + url_encode(mount_from);
  DFGEN_TRY(HttpResponse p, call(ep, post, scopes));
  if (p.status == 201 && !mount_from.empty()) return ok_status();   // mounted
  if (p.status != 202) return http_error(p, what);
  std::string location = p.header("location");
  if (location.empty()) return Error(what + ": the registry gave no upload location");
  return upload(ep, store, repo, desc, location, scopes);
}

Result<Descriptor> Client::push(const Store& store, const Descriptor& manifest, const Reference& dest) {
  std::string what = "push " + dest.str();
  if (dest.tag.empty() || !dest.digest.empty()) return Error(what + ": the destination needs a tag (and no digest)");
  DFGEN_TRY(std::string bytes, store.read_blob(manifest.digest));
  DFGEN_TRY(Json doc, parse_json(bytes, "manifest " + manifest.digest));
  std::string mt = doc.is_object() && doc.contains("mediaType") ? doc.value("mediaType", "") : manifest.media_type;
  if (mt.empty()) mt = doc.is_object() && doc.contains("manifests") ? kOciIndex : kOciManifest;
  if (is_index_type(mt)) {
    DFGEN_TRY(Descriptor child, amd64_of(doc, "image index " + manifest.digest));
    DFGEN_TRY(bytes, store.read_blob(child.digest));
    DFGEN_TRY(doc, parse_json(bytes, "manifest " + child.digest));
    mt = doc.value("mediaType", child.media_type.empty() ? std::string(kOciManifest) : child.media_type);
  }
  if (!is_manifest_type(mt)) return Error(fmt::format("{}: unsupported manifest media type \"{}\"", what, mt));
  DFGEN_TRY(auto blobs, blobs_of(doc, "manifest " + manifest.digest));

  // Blobs other repositories of the same registry hold (per the store's tags) are mounted.
  std::map<std::string, std::string> mounts;
  std::set<std::string> sources;
  DFGEN_TRY(auto tags, store.list_tags());
  for (const auto& [tag, desc] : tags) {
    auto r = parse_reference(tag);
    if (!r.ok() || r->registry != dest.registry || r->repository == dest.repository) continue;
    auto rec = load_image(store, desc);
    if (!rec.ok()) continue;
    std::vector<std::string> digests{rec->config_digest};
    for (const auto& l : rec->layers) digests.push_back(l.digest);
    for (const auto& d : digests)
      if (mounts.emplace(d, r->repository).second) sources.insert(r->repository);
  }
  Scopes scopes{"repository:" + dest.repository + ":pull,push"};
  for (const auto& b : blobs)
    if (auto it = mounts.find(b.digest); it != mounts.end()) scopes.push_back("repository:" + it->second + ":pull");
  std::sort(scopes.begin() + 1, scopes.end());
  scopes.erase(std::unique(scopes.begin(), scopes.end()), scopes.end());

  DFGEN_TRY(Endpoint* ep, endpoint("", dest.registry));
  DFGEN_CHECK(for_each_parallel(blobs.size(), config_.parallel, [&](size_t i) {
    auto it = mounts.find(blobs[i].digest);
    return push_blob(*ep, store, dest.repository, blobs[i], it == mounts.end() ? "" : it->second, scopes);
  }));
  HttpRequest put;
  put.method = "PUT";
  put.url = "/v2/" + dest.repository + "/manifests/" + dest.tag;
  put.headers = {"Content-Type: " + mt};
  put.body = bytes;
  DFGEN_TRY(HttpResponse r, call(*ep, put, scopes));
  if (r.status != 201 && r.status != 200) return http_error(r, what + ": put manifest");
  std::string digest = sha256_digest(bytes);
  if (std::string got = r.header("docker-content-digest"); is_sha256_digest(got) && got != digest)
    return Error(fmt::format("{}: the registry stored the manifest as {}, expected {}", what, got, digest));
  return Descriptor{mt, digest, static_cast<int64_t>(bytes.size())};
}

Status push_tags(const Store& store, const Descriptor& manifest, const std::vector<std::string>& tags) {
  DFGEN_TRY(Config config, load_config());
  Client client(std::move(config), curl_transport());
  for (const auto& t : tags) {
    DFGEN_TRY(Reference ref, parse_reference(t));
    DFGEN_CHECK(client.push(store, manifest, ref));
  }
  return ok_status();
}

}  // namespace dfgen::registry
