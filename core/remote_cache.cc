// Remote step cache: export and lazy import (core/remote_cache.h).
#include "core/remote_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <ctime>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "core/fs.h"
#include "core/reference.h"
#include "core/registry.h"
#include "core/sha256.h"

namespace dfgen::remote_cache {
namespace {

Result<Json> parse_kv(std::string_view text, const std::string& flag) {
  Json out = Json::object();
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string kv(text.substr(start, end - start));
    auto eq = kv.find('=');
    if (eq == std::string::npos)
      return Error(fmt::format("invalid {} \"{}\": expected key=value, got \"{}\"", flag, text, kv));
    std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    // cache-mounts= may be repeated (a `;` list must be quoted in a shell).
    if (key == "cache-mounts" && out.contains(key)) value = out[key].get<std::string>() + ";" + value;
    out[key] = value;
    start = end + 1;
  }
  return out;
}

// "a;b;a" -> ["a", "b"]: the cache mount ids of cache-mounts=, sorted, once each.
Result<Json> mount_ids(const std::string& list, std::string_view text) {
  std::set<std::string> ids;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = std::min(list.find(';', start), list.size());
    std::string id = list.substr(start, end - start);
    if (id.empty())
      return Error(fmt::format("invalid --cache-to \"{}\": cache-mounts= takes ids separated by ';'", text));
    ids.insert(id);
    start = end + 1;
  }
  return Json(std::vector<std::string>(ids.begin(), ids.end()));
}

std::string absolute(const std::string& dir, const std::string& cwd) {
  return !dir.empty() && dir.front() == '/' ? dir : path_join(cwd, dir);
}

// The map and layer list of the artifact.
struct Artifact {
  Json config;                      // {"version":1,"steps":{...}[,"mounts":{...}]}
  std::vector<Descriptor> layers;   // sorted by digest, unique
};

Result<Artifact> artifact_of(const std::vector<Entry>& entries, const std::vector<Entry>& mounts) {
  Artifact a;
  a.config = Json{{"version", 1}, {"steps", Json::object()}};
  std::map<std::string, Descriptor> layers;
  auto add = [&](const Entry& e, const char* section) -> Status {
    Json layer = e.entry.value("layer", Json());
    a.config[section][e.key] = Json{{"layer", layer}};
    if (layer.is_null()) return ok_status();
    DFGEN_TRY(Descriptor d, Descriptor::from_json(layer));
    layers.emplace(d.digest, d);
    return ok_status();
  };
  for (const auto& e : entries) DFGEN_CHECK(add(e, "steps"));
  for (const auto& m : mounts) {
    if (m.entry.value("layer", Json()).is_null()) return Error(fmt::format("cache mount {}: no layer", m.key));
    DFGEN_CHECK(add(m, "mounts"));
  }
  for (auto& [digest, d] : layers) a.layers.push_back(d);
  return a;
}

// The manifest (its bytes are stored as a blob; the config blob too).
Result<Descriptor> write_manifest(Store& store, const Artifact& a) {
  DFGEN_TRY(Descriptor config, store.put_blob(canonical_json(a.config), kConfigMediaType));
  Json layers = Json::array();
  for (const auto& l : a.layers) layers.push_back(l.to_json());
  Json m{{"schemaVersion", 2},
         {"mediaType", kOciManifest},
         {"artifactType", kArtifactType},
         {"config", config.to_json()},
         {"layers", layers},
         {"annotations", {{"dev.dfgen.cache.version", "1"}}}};
  return store.put_blob(m.dump(2), kOciManifest);
}

// Copies a verified store blob into an OCI layout's blobs/sha256 (skipped when there).
Status copy_blob_out(const Store& store, const std::string& digest, const std::string& dir) {
  std::string dest = path_join(dir, "blobs/sha256/" + std::string(digest_hex(digest)));
  if (path_exists(dest)) return ok_status();
  DFGEN_TRY(std::string bytes, store.read_blob(digest));
  return write_file_atomic(dest, bytes);
}

Status export_local(Store& store, const Descriptor& manifest, const Artifact& a, const std::string& dir) {
  DFGEN_CHECK(make_dirs(path_join(dir, "blobs/sha256")));
  for (const auto& l : a.layers) DFGEN_CHECK(copy_blob_out(store, l.digest, dir));
  DFGEN_TRY(Json m, store.read_json_blob(manifest.digest));
  DFGEN_CHECK(copy_blob_out(store, m["config"]["digest"].get<std::string>(), dir));
  DFGEN_CHECK(copy_blob_out(store, manifest.digest, dir));
  Json desc = manifest.to_json();
  desc["annotations"] = {{"org.opencontainers.image.ref.name", kLocalTag}};
  Json index{{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", Json::array({desc})}};
  DFGEN_CHECK(write_file_atomic(path_join(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}\n"));
  return write_file_atomic(path_join(dir, "index.json"), index.dump(2) + "\n");
}

// Brings a blob of an OCI layout into the store, verified against desc.
Status fetch_local_blob(Store& store, const std::string& dir, const Descriptor& desc) {
  if (store.has_blob(desc.digest)) return ok_status();
  if (!is_sha256_digest(desc.digest)) return Error(fmt::format("{}: unsupported digest \"{}\"", dir, desc.digest));
  std::string path = path_join(dir, "blobs/sha256/" + std::string(digest_hex(desc.digest)));
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Error::sys("open " + path);
  DFGEN_TRY(BlobWriter w, store.blob_writer());
  DFGEN_CHECK(read_chunks(fd.get(), path, [&](const char* data, size_t n) { return w.write(data, n); }));
  auto committed = w.commit(desc.media_type, desc.digest);
  if (!committed.ok()) return std::move(committed).error().context("import " + path);
  return ok_status();
}

// A source's manifest: fetched (registry) or read (layout), kept in the store.
Result<Descriptor> source_manifest(Store& store, const Json& source, registry::Client* client) {
  if (source.value("type", "") == "local") {
    std::string dir = source.value("dir", "");
    DFGEN_TRY(Json index, read_json_file(path_join(dir, "index.json")));
    for (const auto& m : index.value("manifests", Json::array())) {
      if (m.value("annotations", Json::object()).value("org.opencontainers.image.ref.name", "") != kLocalTag)
        continue;
      DFGEN_TRY(Descriptor d, Descriptor::from_json(m));
      DFGEN_CHECK(fetch_local_blob(store, dir, d));
      return d;
    }
    return Error(fmt::format("{}: no cache manifest tagged {} in index.json", dir, kLocalTag));
  }
  DFGEN_TRY(Reference ref, parse_reference(source.value("ref", "")));
  DFGEN_TRY(registry::Manifest m, client->get_manifest(ref));
  if (!store.has_blob(m.digest)) { DFGEN_TRY(Descriptor d, store.put_blob(m.bytes, m.media_type)); }
  return Descriptor{m.media_type, m.digest, static_cast<int64_t>(m.bytes.size())};
}

Status fetch_source_blob(Store& store, const Json& source, registry::Client* client, const Descriptor& d) {
  if (source.value("type", "") == "local") return fetch_local_blob(store, source.value("dir", ""), d);
  DFGEN_TRY(Reference ref, parse_reference(source.value("ref", "")));
  return client->fetch_blob(store, ref, d);
}

// The map of a source: the config blob of its manifest.
Result<Json> source_map(Store& store, const Json& source, registry::Client* client) {
  DFGEN_TRY(Descriptor manifest, source_manifest(store, source, client));
  DFGEN_TRY(Json m, store.read_json_blob(manifest.digest));
  std::string what = "cache manifest " + manifest.digest;
  if (!m.is_object() || !m.contains("config")) return Error(what + ": no config");
  DFGEN_TRY(Descriptor config, Descriptor::from_json(m["config"]));
  if (config.media_type != kConfigMediaType)
    return Error(fmt::format("{}: not a dfgen cache (config media type \"{}\")", what, config.media_type));
  DFGEN_CHECK(fetch_source_blob(store, source, client, config));
  DFGEN_TRY(Json map, store.read_json_blob(config.digest));
  if (!map.is_object() || map.value("version", 0) != 1 || !map.contains("steps") || !map["steps"].is_object() ||
      (map.contains("mounts") && !map["mounts"].is_object()))
    return Error(what + ": not a version 1 step map");
  return map;
}

// A registry source whose reading failed slowly (the client's retries: ~2 s
// for a refused connection, up to minutes for a host that drops packets) is
// remembered in the store for kUnreachableFor, so that the other steps of the
// build (each its own dfrun) get the error at once instead of paying the
// retries again. A quick failure (a tag not pushed yet: 404) is not
// remembered: it costs nothing to ask again, and the tag may appear. A marker
// older than kUnreachableFor is ignored and the source asked again.
constexpr int64_t kUnreachableFor = 60;
constexpr auto kSlowFailure = std::chrono::milliseconds(500);

std::string unreachable_marker(const Store& store, const Json& source) {
  std::string ref = source.value("ref", "");
  return path_join(store.root(), "cache/unreachable/" + std::string(digest_hex(sha256_digest(ref))).substr(0, 32));
}

std::optional<Error> remembered_failure(const Store& store, const Json& source) {
  if (source.value("type", "") != "registry") return std::nullopt;
  std::string marker = unreachable_marker(store, source);
  struct stat st;
  if (::stat(marker.c_str(), &st) != 0 || ::time(nullptr) - st.st_mtime >= kUnreachableFor) return std::nullopt;
  auto message = read_file(marker);
  if (!message.ok()) return std::nullopt;
  return Error(fmt::format("{} (remembered from an earlier step: not asked again for {} s)", *message,
                           kUnreachableFor));
}

void remember_failure(const Store& store, const Json& source, const Error& e) {
  if (source.value("type", "") != "registry") return;
  std::string marker = unreachable_marker(store, source);
  // Best effort: without the marker the next step only asks again.
  if (make_dirs(dirname_of(marker)).ok()) (void)write_file_atomic(marker, e.message);
}

// `key` in the `section` ("steps" or "mounts") of the first source that has
// it: the entry {"layer": ...}, its layer blob fetched into the store. A
// source that cannot be read (a branch's tag not pushed yet, a registry down)
// does not hide the ones after it: the next source is asked, and the first
// such error is returned only when no source has the key.
Result<std::optional<Json>> lookup(Store& store, const std::vector<Json>& sources, const char* section,
                                   std::string_view key, const std::string& name) {
  std::optional<registry::Client> client;
  std::optional<Error> first_error;
  auto failed = [&](Error e) {
    if (!first_error) first_error = std::move(e);
  };
  for (const auto& source : sources) {
    if (source.value("type", "") == "registry" && !client) {
      DFGEN_TRY(registry::Config config, registry::load_config());
      client.emplace(std::move(config), registry::curl_transport());
    }
    registry::Client* c = client ? &*client : nullptr;
    std::string what = "cache " + source.value("ref", source.value("dir", ""));
    if (auto remembered = remembered_failure(store, source)) {
      failed(std::move(*remembered));
      continue;
    }
    auto asked = std::chrono::steady_clock::now();
    auto map = source_map(store, source, c);
    if (!map.ok()) {
      Error e = std::move(map).error().context(what);
      if (std::chrono::steady_clock::now() - asked >= kSlowFailure) remember_failure(store, source, e);
      failed(std::move(e));
      continue;
    }
    Json entries = map->value(section, Json::object());
    auto it = entries.find(std::string(key));
    if (it == entries.end()) continue;
    Json layer = it->value("layer", Json());
    if (!layer.is_null()) {
      auto d = Descriptor::from_json(layer);
      if (!d.ok() || !is_sha256_digest(layer.value("diff_id", ""))) {
        failed(Error(fmt::format("{}: {} {}: malformed layer", what, name, key)));
        continue;
      }
      auto fetched = fetch_source_blob(store, source, c, *d);
      if (!fetched.ok()) {
        failed(std::move(fetched).error().context(what));
        continue;
      }
    }
    return std::optional<Json>(Json{{"layer", layer}});
  }
  if (first_error) return std::move(*first_error);
  return std::optional<Json>();
}

}  // namespace

Result<Json> parse_spec(std::string_view text, bool to, const std::string& cwd) {
  std::string flag = to ? "--cache-to" : "--cache-from";
  DFGEN_TRY(Json kv, parse_kv(text, flag));
  std::string type = kv.value("type", "");
  std::string mode = kv.value("mode", "min");
  if (mode != "min" && mode != "max")
    return Error(fmt::format("invalid {} \"{}\": mode must be min or max", flag, text));
  Json out{{"type", type}};
  if (to) out["mode"] = mode;
  if (kv.contains("cache-mounts")) {
    if (!to) return Error(fmt::format("invalid {} \"{}\": cache-mounts= belongs to --cache-to", flag, text));
    DFGEN_TRY(out["mounts"], mount_ids(kv["cache-mounts"].get<std::string>(), text));
  }
  if (type == "registry") {
    if (!kv.contains("ref")) return Error(fmt::format("invalid {} \"{}\": ref= is required", flag, text));
    auto ref = parse_reference(kv["ref"].get<std::string>());
    if (!ref.ok()) return std::move(ref).error().context(flag + " " + std::string(text));
    if (to && (ref->tag.empty() || !ref->digest.empty()))
      return Error(fmt::format("invalid {} \"{}\": the ref needs a tag (and no digest)", flag, text));
    out["ref"] = ref->str();
    return out;
  }
  if (type == "local") {
    const char* key = to ? "dest" : "src";
    if (!kv.contains(key)) return Error(fmt::format("invalid {} \"{}\": {}= is required", flag, text, key));
    out["dir"] = absolute(kv[key].get<std::string>(), cwd);
    return out;
  }
  return Error(fmt::format("invalid {} \"{}\": type must be registry or local", flag, text));
}

Result<std::vector<Entry>> entries_of(const Store& store, const std::vector<std::string>& keys) {
  std::vector<Entry> out;
  for (const auto& key : keys) {
    if (std::any_of(out.begin(), out.end(), [&](const Entry& e) { return e.key == key; })) continue;
    DFGEN_TRY(auto cached, store.get_cache(key));
    if (!cached) continue;
    Json layer = cached->value("layer", Json());
    if (!layer.is_null() && !store.has_blob(layer.value("digest", ""))) continue;
    out.push_back({key, Json{{"layer", layer}}});
  }
  return out;
}

Result<Descriptor> export_cache(Store& store, const std::vector<Entry>& entries, const Json& dest,
                                const std::vector<Entry>& mounts) {
  DFGEN_TRY(Artifact a, artifact_of(entries, mounts));
  DFGEN_TRY(Descriptor manifest, write_manifest(store, a));
  if (dest.value("type", "") == "local") {
    DFGEN_CHECK(export_local(store, manifest, a, dest.value("dir", "")));
    return manifest;
  }
  DFGEN_TRY(Reference ref, parse_reference(dest.value("ref", "")));
  DFGEN_TRY(registry::Config config, registry::load_config());
  registry::Client client(std::move(config), registry::curl_transport());
  auto pushed = client.push(store, manifest, ref);
  if (!pushed.ok()) return std::move(pushed).error().context("export the build cache");
  return *pushed;
}

Result<std::optional<Json>> import_entry(Store& store, const std::vector<Json>& sources, std::string_view key) {
  DFGEN_TRY(auto found, lookup(store, sources, "steps", key, "step"));
  if (!found) return found;
  return std::optional<Json>(Json{{"version", 1}, {"layer", (*found)["layer"]}});
}

Result<std::optional<Json>> import_mount(Store& store, const std::vector<Json>& sources, std::string_view id) {
  DFGEN_TRY(auto found, lookup(store, sources, "mounts", id, "cache mount"));
  if (!found || (*found)["layer"].is_null()) return std::optional<Json>();
  return std::optional<Json>((*found)["layer"]);
}

}  // namespace dfgen::remote_cache
