#include "runner/step/step.h"

#include <cstdio>

#include "core/fs.h"
#include "core/remote_cache.h"
#include "core/sha256.h"
#include "core/store_check.h"
#include "runner/step/executors.h"
#include "runner/step/explain.h"
#include "runner/step/mounts.h"

namespace dfgen::step {
namespace {

// Part of every step key. Bump it whenever the runner changes what it makes of
// the same op and inputs (a COPY rule, a layer format detail), so that cache
// entries written by an older dfrun are not taken for the new behaviour.
constexpr int kRunnerVersion = 2;

Result<Json> no_inputs(const StepInput&) { return Json::array(); }

// COPY --link: the layer is built in an empty root, so its key leaves the
// parent out and an edit of an earlier step does not re-run it.
bool independent_of_parent(const Json& op) { return op.value("link", false) == true; }

struct OpKind {
  const char* kind;
  InputDigests inputs;
  Execute execute;
};

const OpKind kOps[] = {
    {"run", run_inputs, execute_run},   // run_inputs: mounts.h
    {"copy", copy_inputs, execute_copy},
    {"add", copy_inputs, execute_copy},
    {"workdir", no_inputs, execute_workdir},
};

Result<Spec> read_spec(const std::string& path) {
  DFGEN_TRY(Json j, read_json_file(path));
  if (!j.is_object() || j.value("version", 0) != 1 || !j.contains("op"))
    return Error(fmt::format("{}: not a version 1 step spec", path));
  Spec s;
  s.path = path;
  s.op = j["op"];
  if (j.contains("history")) s.history = j["history"];
  const Json& io = j.value("io", Json::object());
  if (io.contains("parent") && io["parent"].is_string()) s.parent = io["parent"];
  if (io.contains("from"))
    for (auto& [name, file] : io["from"].items()) s.from[name] = file.get<std::string>();
  s.context = io.value("context", "");
  s.result = io.value("result", "");
  const Json& ui = j.value("ui", Json::object());
  s.description = ui.value("description", "");
  s.location = ui.value("location", "");
  if (s.result.empty()) return Error(fmt::format("{}: spec names no result file", path));
  return s;
}

Result<StepResult> read_parent(const Spec& spec) {
  if (spec.parent.empty()) return StepResult{.key = "scratch"};
  return read_result(spec.parent);
}

Result<std::optional<Layer>> cached_layer(const Json& entry) {
  if (!entry.contains("layer") || entry["layer"].is_null()) return std::optional<Layer>();
  DFGEN_TRY(Descriptor d, Descriptor::from_json(entry["layer"]));
  return std::optional<Layer>(Layer{d, entry["layer"].value("diff_id", "")});
}

// dfgen --cache-from: the step caches named by the spec's "cache" section
// (outside "op", so never part of the key; core/remote_cache.h). On a hit
// the layer is fetched and the entry kept in the local cache. A source that
// cannot be read is a warning: the step then runs as without it.
Result<std::optional<Json>> remote_entry(Store& store, const Spec& spec, const std::string& key) {
  DFGEN_TRY(Json j, read_json_file(spec.path));
  Json sources = j.value("cache", Json::object()).value("from", Json::array());
  if (!sources.is_array() || sources.empty()) return std::optional<Json>();
  auto entry = remote_cache::import_entry(store, sources.get<std::vector<Json>>(), key);
  if (!entry.ok()) {
    std::fprintf(stderr, "dfrun: warning: %s\n", entry.error().render().c_str());
    return std::optional<Json>();
  }
  if (*entry) DFGEN_CHECK(store.put_cache(key, **entry));
  return entry;
}

Status execute_fs_step(Store& store, const Spec& spec, const OpKind& kind) {
  DFGEN_TRY(StepResult parent, read_parent(spec));
  std::map<std::string, StepResult> from;
  for (const auto& [name, file] : spec.from) {
    DFGEN_TRY(StepResult r, read_result(file));
    from.emplace(name, std::move(r));
  }
  std::optional<StatCache> stat_cache;
  if (!spec.context.empty()) {
    DFGEN_TRY(StatCache c, StatCache::open(stat_cache_dir(store.root()), spec.context));
    stat_cache.emplace(std::move(c));
  }
  StepInput in{spec, parent, from, stat_cache ? &*stat_cache : nullptr};
  DFGEN_TRY(Json inputs, kind.inputs(in));
  if (stat_cache) DFGEN_CHECK(stat_cache->save());
  Json from_keys = Json::object();
  for (const auto& [name, r] : from) from_keys[name] = r.key;
  std::string key = sha256_digest(canonical_json(
      Json{{"v", kRunnerVersion}, {"parent", independent_of_parent(spec.op) ? Json() : Json(parent.key)},
           {"op", spec.op}, {"inputs", inputs}, {"from", from_keys}}));

  // One process at a time runs a given key: a second build that reaches the
  // same step waits and then finds the first one's result in the cache.
  DFGEN_TRY(FileLock key_lock, store.lock("step-" + std::string(digest_hex(key))));
  std::optional<Layer> layer;
  DFGEN_TRY(auto cached, store.get_cache(key));
  bool hit = false;
  if (cached) {
    DFGEN_TRY(layer, cached_layer(*cached));
    hit = !layer || store.has_blob(layer->blob.digest);
    if (hit) DFGEN_CHECK(touch_cache_entry(store, key));   // prune's LRU clock
  }
  if (!hit) {
    DFGEN_TRY(auto remote, remote_entry(store, spec, key));
    if (remote) {
      DFGEN_TRY(layer, cached_layer(*remote));
      hit = true;
    }
  }
  if (!hit) {
    DFGEN_TRY(layer, kind.execute(store, in));
    Json entry{{"version", 1}, {"layer", nullptr}};
    if (layer) {
      entry["layer"] = layer->blob.to_json();
      entry["layer"]["diff_id"] = layer->diff_id;
    }
    DFGEN_CHECK(store.put_cache(key, entry));
  }

  StepResult result = parent;
  result.key = key;
  // A --link layer's key leaves the parent out, but the state it leads to
  // does not: the next steps chain from both.
  if (independent_of_parent(spec.op))
    result.key = sha256_digest(canonical_json(Json{{"parent", parent.key}, {"layer", key}}));
  if (layer) result.layers.push_back(*layer);
  for (const auto& h : spec.history) result.history.push_back(h);
  if (!layer && !result.history.empty()) result.history.back()["empty_layer"] = true;
  DFGEN_CHECK(write_result(spec.result, result));
  // What the key was made of, for `dfrun explain` (explain.h); never part of the key.
  return record_inputs(spec, inputs_record(spec, key, parent.key, inputs, from_keys));
}

}  // namespace

layer::WriteOptions write_options(const Spec& spec) {
  layer::WriteOptions opts;
  auto it = spec.op.find("source_date_epoch");
  if (it != spec.op.end() && it->is_number_integer()) opts.source_date_epoch = it->get<int64_t>();
  return opts;
}

// "Dockerfile:12: RUN make: <message>", as BuildKit words a failed step: the
// "[stage 2/3] " progress label of the description is left out.
Error step_error(const Spec& spec, Error e) {
  if (spec.location.empty()) return e;
  std::string_view what = spec.description;
  if (what.starts_with('[')) {
    auto close = what.find("] ");
    if (close != std::string_view::npos) what.remove_prefix(close + 2);
  }
  e.message = fmt::format("{}: {}: {}", spec.location, what, e.message);
  return e;
}

Status execute_spec(Store& store, const std::string& spec_path) {
  // Shared with every other step of every build; `dfrun prune` and
  // `check --repair` take it exclusively (core/store_check.h).
  DFGEN_TRY(GcLock gc, GcLock::shared(store));
  DFGEN_TRY(Spec spec, read_spec(spec_path));
  std::string kind = spec.op.value("kind", "");
  if (kind == "image") {
    DFGEN_TRY(StepResult parent, read_parent(spec));
    return execute_image(store, spec, parent);
  }
  for (const auto& k : kOps) {
    if (kind == k.kind) {
      auto st = execute_fs_step(store, spec, k);
      if (!st.ok()) return step_error(spec, std::move(st).error());
      return st;
    }
  }
  return Error(fmt::format("{}: unknown step kind \"{}\"", spec_path, kind));
}

}  // namespace dfgen::step
