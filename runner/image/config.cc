// write_image: the config blob and the OCI manifest.
#include <ctime>

#include "runner/image/image.h"

namespace dfgen::image {

std::string format_time(int64_t seconds_since_epoch) {
  std::time_t t = static_cast<std::time_t>(seconds_since_epoch);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

// History entries keep their own `created` (a base image's); the others get
// the image's. One entry without empty_layer per layer: entries missing for
// the bottom layers are added, more entries than layers is an error.
Result<Json> build_history(const Json& history, size_t layer_count, const std::string& created) {
  if (history.is_null()) return Json::array();
  if (!history.is_array()) return Error("image history is not a JSON array");
  Json out = Json::array();
  size_t non_empty = 0;
  for (const Json& entry : history) {
    if (!entry.is_object()) return Error("image history entry is not a JSON object");
    Json e = entry;
    if (!e.contains("created")) e["created"] = created;
    if (e.contains("empty_layer") && !e["empty_layer"].is_boolean())
      return Error("image history entry: empty_layer is not a boolean");
    if (e.value("empty_layer", false))
      e["empty_layer"] = true;
    else
      e.erase("empty_layer"), ++non_empty;
    out.push_back(std::move(e));
  }
  if (out.empty() || non_empty == layer_count) return out;
  if (non_empty > layer_count)
    return Error(fmt::format("image history has {} entries with a layer, but the image has {} layers",
                             non_empty, layer_count));
  // A base image without (complete) history: its layers come first, so the
  // missing entries are theirs (as BuildKit does).
  Json padded = Json::array();
  for (size_t i = non_empty; i < layer_count; ++i) padded.push_back({{"created", created}});
  for (Json& e : out) padded.push_back(std::move(e));
  return padded;
}

}  // namespace

Result<Descriptor> write_image(Store& store, const ImageInput& input) {
  if (!input.config.is_null() && !input.config.is_object())
    return Error("write image: config is not a JSON object");
  int64_t now = input.created ? *input.created : static_cast<int64_t>(std::time(nullptr));
  std::string created = format_time(now);

  Json diff_ids = Json::array();
  Json layers = Json::array();
  for (const LayerRef& l : input.layers) {
    if (!is_sha256_digest(l.diff_id) || !is_sha256_digest(l.blob.digest))
      return Error("write image: layer " + l.blob.digest + " has no valid digest / diff_id");
    if (l.blob.media_type.empty()) return Error("write image: layer " + l.blob.digest + " has no media type");
    diff_ids.push_back(l.diff_id);
    layers.push_back(l.blob.to_json());
  }
  Result<Json> history = build_history(input.history, input.layers.size(), created);
  if (!history.ok()) return std::move(history).error().context("write image");

  Json config = {
      {"architecture", input.architecture},
      {"os", input.os},
      {"created", created},
      {"config", input.config.is_null() ? Json::object() : input.config},
      {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
  };
  if (!history->empty()) config["history"] = *history;
  if (!input.author.empty()) config["author"] = input.author;
  DFGEN_TRY(Descriptor config_desc, store.put_blob(canonical_json(config), kOciConfig));

  Json manifest = {
      {"schemaVersion", 2},
      {"mediaType", kOciManifest},
      {"config", config_desc.to_json()},
      {"layers", layers},
  };
  return store.put_blob(canonical_json(manifest), kOciManifest);
}

}  // namespace dfgen::image
