#include "runner/step/step.h"

#include <cstdio>

#include "core/fs.h"
#include "core/remote_cache.h"
#include "core/sha256.h"
#include "core/store_check.h"
#include "runner/step/executors.h"
#include "runner/step/explain.h"
#include "runner/step/mounts.h"
#include "runner/step/spec_field.h"

namespace dfgen::step {
namespace {

// Part of every step key. Bump it whenever the runner changes what it makes of
// the same op and inputs (a COPY rule, a layer format detail), so that cache
// entries written by an older dfrun are not taken for the new behaviour.
constexpr int kRunnerVersion = 3;   // 3: COPY follows a named source symlink, keeps hard links, owns the dirs it creates

Result<Json> no_inputs(const StepInput&) { return Json::array(); }

// COPY --link: the layer is built in an empty root, so its key leaves the
// parent out and an edit of an earlier step does not re-run it.
bool independent_of_parent(const Spec& spec) { return spec.link; }

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

// The type of every field a spec may hold, checked once when it is read so
// that no executor (nor core/context.cc's selection) meets a field of another
// type. A rule applies to the op kinds listed ("*": all). In a path, "a[]"
// is each object of the array a, "a{}" each object value of the object a.
struct FieldRule {
  const char* kinds;
  const char* path;
  bool (*is)(const Json&);
  const char* type;
};

template <typename T>
constexpr FieldRule rule(const char* kinds, const char* path) {
  return {kinds, path, FieldType<T>::is, FieldType<T>::name};
}
using Str = std::string;
using Strings = std::vector<std::string>;

const FieldRule kFieldRules[] = {
    rule<Str>("*", "op.kind"),
    rule<bool>("*", "op.link"),
    rule<int64_t>("*", "op.source_date_epoch"),
    rule<Str>("*", "op.compression"),
    rule<Strings>("*", "op.ignore"),
    rule<Json::array_t>("*", "history"),
    rule<Str>("*", "io.parent"),
    rule<Str>("*", "io.context"),
    rule<Str>("*", "io.result"),
    rule<std::map<std::string, std::string>>("*", "io.from"),
    rule<Str>("*", "io.secrets{}.src"),
    rule<Str>("*", "io.secrets{}.env"),
    rule<Str>("*", "io.ssh{}.src"),
    rule<Str>("*", "io.ssh{}.env"),
    rule<Str>("*", "ui.description"),
    rule<Str>("*", "ui.location"),
    rule<Json::array_t>("*", "cache.from"),
    rule<Str>("*", "cache.to[].mode"),
    rule<Str>("*", "cache.to[].ref"),
    rule<Str>("*", "cache.to[].dir"),
    rule<Strings>("*", "cache.to[].mounts"),
    rule<Strings>("*", "cache.min"),
    rule<Strings>("*", "cache.max"),
    rule<Strings>("run", "op.args"),
    rule<Strings>("run", "op.env"),
    rule<Str>("run", "op.cwd"),
    rule<Str>("run", "op.stdin"),
    rule<Str>("run", "op.network"),
    rule<Str>("run", "op.security"),
    rule<Str>("run workdir", "op.user"),
    rule<Str>("run", "op.files[].path"),
    rule<Str>("run", "op.files[].content"),
    rule<int64_t>("run", "op.files[].mode"),
    rule<Str>("run", "op.mounts[].type"),
    rule<Str>("run", "op.mounts[].target"),
    rule<Str>("run", "op.mounts[].source"),
    rule<Str>("run", "op.mounts[].id"),
    rule<Str>("run", "op.mounts[].sharing"),
    rule<Str>("run", "op.mounts[].mode"),
    rule<Str>("run", "op.mounts[].uid"),
    rule<Str>("run", "op.mounts[].gid"),
    rule<Str>("run", "op.mounts[].size"),
    rule<Str>("run", "op.mounts[].env"),
    rule<bool>("run", "op.mounts[].readonly"),
    rule<bool>("run", "op.mounts[].required"),
    rule<Json::object_t>("run", "op.mounts[].from"),
    rule<Str>("copy add", "op.sources[].context"),
    rule<Str>("copy add", "op.sources[].url"),
    rule<Str>("copy add", "op.sources[].path"),
    rule<Str>("copy add", "op.sources[].pivot"),
    rule<Str>("copy add", "op.sources[].heredoc"),
    rule<Str>("copy add", "op.sources[].name"),
    rule<Json::object_t>("copy add", "op.from"),
    rule<Str>("copy add", "op.dest"),
    rule<Str>("copy add", "op.chown"),
    rule<Str>("copy add", "op.chmod"),
    rule<Str>("copy add", "op.checksum"),
    rule<bool>("copy add", "op.parents"),
    rule<bool>("copy add", "op.keep_git_dir"),
    rule<bool>("copy add", "op.unpack"),
    rule<Strings>("copy add", "op.exclude"),
    rule<Str>("workdir", "op.path"),
    rule<Json::object_t>("image", "op.config"),
    rule<int64_t>("image", "op.created"),
    rule<Strings>("image", "op.tags"),
    rule<Str>("image", "op.outputs[].type"),
    rule<Str>("image", "op.outputs[].dest"),
    rule<bool>("image", "op.outputs[].tar"),
};

bool rule_applies(std::string_view kinds, std::string_view kind) {
  if (kinds == "*") return true;
  while (!kinds.empty()) {
    size_t sp = kinds.find(' ');
    if (kinds.substr(0, sp) == kind) return true;
    kinds = sp == std::string_view::npos ? std::string_view() : kinds.substr(sp + 1);
  }
  return false;
}

// Checks `rest` of a rule's path below `j` (found at `where`); a missing or
// null field on the way passes.
Status check_rule(const Json& j, const std::string& where, std::string_view rest, const FieldRule& r) {
  size_t dot = rest.find('.');
  std::string_view seg = rest.substr(0, dot);
  std::string_view tail = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  bool each_item = seg.ends_with("[]"), each_value = seg.ends_with("{}");
  if (each_item || each_value) seg.remove_suffix(2);
  if (!j.is_object()) return field_error(where, "an object");
  auto it = j.find(std::string(seg));
  if (it == j.end() || it->is_null()) return ok_status();
  std::string path = field_path(where, seg);
  if (tail.empty()) return r.is(*it) ? ok_status() : Status(field_error(path, r.type));
  if (each_item) {
    if (!it->is_array()) return field_error(path, "an array");
    for (size_t i = 0; i < it->size(); ++i) DFGEN_CHECK(check_rule((*it)[i], item_path(path, i), tail, r));
  } else if (each_value) {
    if (!it->is_object()) return field_error(path, "an object");
    for (const auto& [name, v] : it->items()) DFGEN_CHECK(check_rule(v, field_path(path, name), tail, r));
  } else {
    DFGEN_CHECK(check_rule(*it, path, tail, r));
  }
  return ok_status();
}

Status check_fields(const Json& spec, std::string_view kind) {
  for (const auto& r : kFieldRules)
    if (rule_applies(r.kinds, kind)) DFGEN_CHECK(check_rule(spec, "", r.path, r));
  return ok_status();
}

Result<Spec> read_spec(const std::string& path) {
  DFGEN_TRY(Json j, read_json_file(path));
  auto version = j.is_object() ? j.find("version") : j.end();
  if (version == j.end() || !version->is_number_integer() || *version != 1 || !j.contains("op"))
    return Error(fmt::format("{}: not a version 1 step spec", path));
  auto fields = [&]() -> Result<Spec> {
    Spec s;
    s.path = path;
    s.op = j["op"];
    if (!s.op.is_object()) return field_error("op", "an object");
    DFGEN_TRY(s.kind, spec_field(s.op, "op", "kind", ""));
    DFGEN_CHECK(check_fields(j, s.kind));
    DFGEN_TRY(s.link, spec_field(s.op, "op", "link", false));
    DFGEN_TRY(Json::array_t history, spec_field(j, "", "history", Json::array_t()));
    for (size_t i = 0; i < history.size(); ++i)
      if (!history[i].is_object()) return field_error(item_path("history", i), "an object");
    s.history = std::move(history);
    const Json& io = j["io"];
    DFGEN_TRY(s.parent, spec_field(io, "io", "parent", ""));
    DFGEN_TRY(s.from, spec_field(io, "io", "from", std::map<std::string, std::string>()));
    DFGEN_TRY(s.context, spec_field(io, "io", "context", ""));
    DFGEN_TRY(s.result, spec_field(io, "io", "result", ""));
    const Json& ui = j["ui"];
    DFGEN_TRY(s.description, spec_field(ui, "ui", "description", ""));
    DFGEN_TRY(s.location, spec_field(ui, "ui", "location", ""));
    return s;
  };
  auto s = fields();
  if (!s.ok()) return std::move(s).error().context(path);
  if (s->result.empty()) return Error(fmt::format("{}: spec names no result file", path));
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
  DFGEN_TRY(Json::object_t cache, spec_field(j, "", "cache", Json::object_t()));
  DFGEN_TRY(Json::array_t sources, spec_field(Json(std::move(cache)), "cache", "from", Json::array_t()));
  if (sources.empty()) return std::optional<Json>();
  auto entry = remote_cache::import_entry(store, sources, key);
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
      Json{{"v", kRunnerVersion}, {"parent", independent_of_parent(spec) ? Json() : Json(parent.key)},
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
  if (independent_of_parent(spec))
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
  // dfgen --compression (checked there); absent: gzip.
  it = spec.op.find("compression");
  if (it != spec.op.end() && it->is_string())
    if (auto c = layer::parse_compression(it->get<std::string>(), opts); c.ok()) opts = *c;
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
  const std::string& kind = spec.kind;
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
