// The image edge: config + manifest from the last step's result, tags in the
// store, and the requested outputs.
#include <cstdio>
#include <map>
#include <optional>

#include "core/fs.h"
#include "core/registry.h"
#include "core/remote_cache.h"
#include "runner/image/image.h"
#include "runner/step/executors.h"
#include "runner/step/explain.h"
#include "runner/step/mounts.h"
#include "runner/step/spec_field.h"

namespace dfgen::step {

namespace {

// An image whose manifest, config and layers are all still in the store.
bool image_complete(const Store& store, const Descriptor& manifest) {
  auto rec = load_image(store, manifest);
  if (!rec.ok()) return false;
  for (const auto& l : rec->layers)
    if (!store.has_blob(l.digest)) return false;
  return true;
}

// The same layers, history, config and creation time give the same image:
// without SOURCE_DATE_EPOCH the creation time is the first build's, so a
// rebuild from cache (a fresh build dir, `ninja -t clean`) keeps the digest.
Result<Descriptor> cached_or_new_image(Store& store, const StepResult& parent,
                                       const image::ImageInput& input, const Json& op) {
  Json layers = Json::array();
  for (const auto& l : input.layers) layers.push_back(l.blob.digest);
  Json key_parts{{"v", 1}, {"kind", "image"}, {"parent", parent.key}, {"layers", layers},
                 {"history", input.history}, {"config", input.config}, {"created", op.value("created", Json())}};
  if (!input.author.empty()) key_parts["author"] = input.author;   // only then: other keys stay as they were
  std::string key = sha256_digest(canonical_json(key_parts));
  DFGEN_TRY(FileLock lock, store.lock("step-" + std::string(digest_hex(key))));
  DFGEN_TRY(auto cached, store.get_cache(key));
  if (cached && cached->contains("manifest")) {
    auto desc = Descriptor::from_json((*cached)["manifest"]);
    if (desc.ok() && image_complete(store, *desc)) return *desc;
  }
  DFGEN_TRY(Descriptor manifest, image::write_image(store, input));
  DFGEN_CHECK(store.put_cache(key, Json{{"version", 1}, {"layer", nullptr}, {"manifest", manifest.to_json()}}));
  return manifest;
}

// --cache-to ...,cache-mounts=ID1;ID2: each id's cache mount dir as a layer
// (mounts.h), packed once per image edge however many destinations name it.
// An id no RUN of this store has used is skipped with a warning.
Result<std::vector<remote_cache::Entry>> mount_entries(Store& store, const std::vector<std::string>& ids,
                                                       std::map<std::string, std::optional<Layer>>& packed) {
  std::vector<remote_cache::Entry> out;
  for (const auto& id : ids) {
    if (!packed.count(id)) {
      DFGEN_TRY(packed[id], snapshot_cache_mount(store, id));
      if (!packed[id])
        std::fprintf(stderr, "dfrun: warning: cache mount %s: not exported, no RUN of this store has used it\n",
                     id.c_str());
    }
    const auto& layer = packed[id];
    if (!layer) continue;
    Json l = layer->blob.to_json();
    l["diff_id"] = layer->diff_id;
    out.push_back({id, Json{{"layer", l}}});
  }
  return out;
}

// "(3 steps)" or "(3 steps, cache mounts: gobuild)".
std::string exported_summary(size_t steps, const std::vector<remote_cache::Entry>& mounts) {
  std::string ids;
  for (const auto& m : mounts) ids += (ids.empty() ? "" : ", ") + m.key;
  return mounts.empty() ? fmt::format("({} steps)", steps) : fmt::format("({} steps, cache mounts: {})", steps, ids);
}

// dfgen --cache-to: the spec's "cache" section lists the destinations and,
// per mode, the result files of the steps to export (mode=min: the target
// stage's chain, max: every stage). Outside "op": never part of a key.
Status export_caches(Store& store, const Spec& spec) {
  DFGEN_TRY(Json j, read_json_file(spec.path));
  DFGEN_TRY(Json::object_t cache_fields, spec_field(j, "", "cache", Json::object_t()));
  const Json cache(std::move(cache_fields));
  DFGEN_TRY(Json::array_t dests, spec_field(cache, "cache", "to", Json::array_t()));
  std::map<std::string, std::optional<Layer>> packed;
  for (size_t i = 0; i < dests.size(); ++i) {
    const Json& dest = dests[i];
    std::string where = item_path("cache.to", i);
    DFGEN_TRY(std::string mode, spec_field(dest, where, "mode", "min"));
    DFGEN_TRY(std::string ref, spec_field(dest, where, "ref", ""));
    DFGEN_TRY(std::string dir, spec_field(dest, where, "dir", ""));
    DFGEN_TRY(auto files, spec_field(cache, "cache", mode, std::vector<std::string>()));
    std::vector<std::string> keys;
    for (const auto& file : files) {
      if (!path_exists(file)) continue;   // a step of a stage this target skips
      DFGEN_TRY(StepResult r, read_result(file));
      keys.push_back(r.key);
    }
    DFGEN_TRY(auto entries, remote_cache::entries_of(store, keys));
    DFGEN_TRY(auto ids, spec_field(dest, where, "mounts", std::vector<std::string>()));
    DFGEN_TRY(auto mounts, mount_entries(store, ids, packed));
    DFGEN_TRY(Descriptor d, remote_cache::export_cache(store, entries, dest, mounts));
    std::printf("cache %s %s %s\n", ref.empty() ? dir.c_str() : ref.c_str(), d.digest.c_str(),
                exported_summary(entries.size(), mounts).c_str());
  }
  return ok_status();
}

}  // namespace

Status execute_image(Store& store, const Spec& spec, const StepResult& parent) {
  const Json& op = spec.op;
  image::ImageInput input;
  DFGEN_TRY(Json::object_t config, spec_field(op, "op", "config", Json::object_t()));
  input.config = std::move(config);
  DFGEN_TRY(int64_t created, spec_field(op, "op", "created", int64_t{-1}));
  DFGEN_TRY(auto tags, spec_field(op, "op", "tags", std::vector<std::string>()));
  DFGEN_TRY(Json::array_t outputs, spec_field(op, "op", "outputs", Json::array_t()));
  for (const auto& l : parent.layers) input.layers.push_back({l.blob, l.diff_id});
  input.history = parent.history;
  for (const auto& h : spec.history) input.history.push_back(h);
  if (op.contains("created") && !op["created"].is_null()) input.created = created;
  DFGEN_TRY(input.author, spec_field(op, "op", "author", std::string()));
  DFGEN_TRY(Descriptor manifest, cached_or_new_image(store, parent, input, op));

  for (const auto& t : tags) DFGEN_CHECK(store.set_tag(t, manifest));
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::string where = item_path("op.outputs", i);
    DFGEN_TRY(std::string type, spec_field(outputs[i], where, "type", ""));
    DFGEN_TRY(std::string dest, spec_field(outputs[i], where, "dest", ""));
    DFGEN_TRY(bool tar, spec_field(outputs[i], where, "tar", true));
    if (type == "docker") DFGEN_CHECK(image::export_docker_archive(store, manifest, tags, dest));
    else if (type == "oci" && tar) DFGEN_CHECK(image::export_oci_archive(store, manifest, tags, dest));
    else if (type == "oci") DFGEN_CHECK(image::export_oci_layout(store, manifest, tags, dest));
    else if (type == "local") DFGEN_CHECK(image::export_rootfs(store, manifest, dest));
    else if (type == "registry") DFGEN_CHECK(registry::push_tags(store, manifest, tags));
    else return Error(fmt::format("unsupported output type \"{}\"", type));
  }
  DFGEN_CHECK(export_caches(store, spec));
  Json result{{"version", 1}, {"manifest", manifest.to_json()}, {"tags", tags}};
  DFGEN_CHECK(make_dirs(dirname_of(spec.result)));
  auto wrote = write_file_if_changed(spec.result, result.dump(2) + "\n");
  if (!wrote.ok()) return std::move(wrote).error();
  // What the image was made of, for `dfrun explain` (explain.h).
  Json layers = Json::array();
  for (const auto& l : parent.layers) layers.push_back(Json{{"digest", l.blob.digest}, {"diff_id", l.diff_id}});
  DFGEN_CHECK(record_inputs(spec, image_record(spec, manifest.digest, parent.key, layers, input.history)));
  std::printf("%s %s\n", manifest.digest.c_str(), tags.empty() ? "" : tags.front().c_str());
  return ok_status();
}

}  // namespace dfgen::step
