#include "runner/step/explain.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "core/fs.h"

namespace dfgen::step {
namespace {

std::string stem_of(const std::string& result_path) {
  constexpr std::string_view kSuffix = ".result";
  if (result_path.ends_with(kSuffix)) return result_path.substr(0, result_path.size() - kSuffix.size());
  return result_path;
}

// "sha256:0123456789ab" : enough to tell two digests apart on one line.
std::string short_digest(const std::string& d) {
  return d.starts_with("sha256:") && d.size() > 19 ? d.substr(0, 19) : d;
}

std::string short_json(const Json& j) {
  if (j.is_null()) return "(none)";
  std::string s = j.is_string() ? j.get<std::string>() : j.dump();
  return s.size() > 120 ? s.substr(0, 117) + "..." : s;
}

// "[build 2/3] RUN make" -> "[build 2/3]".
std::string label_of(const std::string& description) {
  if (!description.starts_with('[')) return description;
  auto close = description.find(']');
  return close == std::string::npos ? description : description.substr(0, close + 1);
}

// "K=V" entries -> K -> V.
std::map<std::string, std::string> env_map(const Json& env) {
  std::map<std::string, std::string> out;
  if (!env.is_array()) return out;
  for (const auto& e : env) {
    if (!e.is_string()) continue;
    std::string s = e.get<std::string>();
    auto eq = s.find('=');
    out[s.substr(0, eq)] = eq == std::string::npos ? "" : s.substr(eq + 1);
  }
  return out;
}

// The ARGs named by a RUN's created_by: "RUN |2 A=1 B=2 /bin/sh -c ..." (the
// history form BuildKit writes; only declared ARGs are listed there).
std::set<std::string> declared_args(const std::string& created_by) {
  std::set<std::string> out;
  std::istringstream in(created_by);
  std::string word;
  in >> word;   // RUN
  if (!(in >> word) || !word.starts_with('|')) return out;
  int n = std::atoi(word.c_str() + 1);
  for (int i = 0; i < n && in >> word; ++i) out.insert(word.substr(0, word.find('=')));
  return out;
}

void explain_env(const Json& prev, const Json& cur, std::vector<std::string>& lines) {
  auto a = env_map(prev.value("env", Json())), b = env_map(cur.value("env", Json()));
  std::set<std::string> args = declared_args(cur.value("created_by", ""));
  for (const auto& k : declared_args(prev.value("created_by", ""))) args.insert(k);
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  for (const auto& k : keys) {
    auto x = a.find(k), y = b.find(k);
    if (x != a.end() && y != b.end() && x->second == y->second) continue;
    lines.push_back(fmt::format("{} {}: {} -> {}", args.count(k) ? "ARG" : "ENV", k,
                                x == a.end() ? "(unset)" : x->second, y == b.end() ? "(unset)" : y->second));
  }
}

void explain_op(const Json& prev, const Json& cur, std::vector<std::string>& lines) {
  const Json& a = prev.value("op", Json::object());
  const Json& b = cur.value("op", Json::object());
  Json envs_a{{"env", a.value("env", Json())}, {"created_by", prev.value("created_by", "")}};
  Json envs_b{{"env", b.value("env", Json())}, {"created_by", cur.value("created_by", "")}};
  explain_env(envs_a, envs_b, lines);
  std::set<std::string> keys;
  for (const auto& [k, v] : a.items()) keys.insert(k);
  for (const auto& [k, v] : b.items()) keys.insert(k);
  for (const auto& k : keys) {
    if (k == "env") continue;
    Json x = a.value(k, Json()), y = b.value(k, Json());
    if (x != y) lines.push_back(fmt::format("op: {} changed: {} -> {}", k, short_json(x), short_json(y)));
  }
}

// Objects are compared key by key ("Labels.version"), an "Env" list entry by
// entry ("Env PATH"), anything else as a whole.
void explain_json(const std::string& path, const Json& a, const Json& b, std::vector<std::string>& lines) {
  if (a == b) return;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items()) keys.insert(k);
    for (const auto& [k, v] : b.items()) keys.insert(k);
    for (const auto& k : keys)
      explain_json(path.empty() ? k : path + "." + k, a.value(k, Json()), b.value(k, Json()), lines);
    return;
  }
  if (path == "Env" || path.ends_with(".Env")) {
    auto x = env_map(a), y = env_map(b);
    std::set<std::string> keys;
    for (const auto& [k, v] : x) keys.insert(k);
    for (const auto& [k, v] : y) keys.insert(k);
    for (const auto& k : keys) {
      auto i = x.find(k), j = y.find(k);
      if (i != x.end() && j != y.end() && i->second == j->second) continue;
      lines.push_back(fmt::format("config {} {}: {} -> {}", path, k, i == x.end() ? "(unset)" : i->second,
                                  j == y.end() ? "(unset)" : j->second));
    }
    return;
  }
  lines.push_back(fmt::format("config {}: {} -> {}", path, short_json(a), short_json(b)));
}

// The image config as the runtime sees it ("config" of the OCI config) is
// named without its prefix: "config Cmd", "config architecture".
void explain_config(const Json& a, const Json& b, std::vector<std::string>& lines) {
  Json x = a.is_object() ? a : Json::object(), y = b.is_object() ? b : Json::object();
  explain_json("", x.value("config", Json::object()), y.value("config", Json::object()), lines);
  x.erase("config");
  y.erase("config");
  explain_json("", x, y, lines);
}

std::string created_by(const Json& h) { return h.is_object() ? h.value("created_by", "") : std::string(); }
bool empty_layer(const Json& h) { return h.is_object() && h.value("empty_layer", false); }

// An image record's layers, and its history lines that did not make a layer
// that is already named.
void explain_layers(const Json& prev, const Json& cur, std::vector<std::string>& lines) {
  const Json a = prev.value("layers", Json::array()), b = cur.value("layers", Json::array());
  const Json ha = prev.value("history", Json::array()), hb = cur.value("history", Json::array());
  // The history line of each layer of `cur`: the non-empty entries in order.
  std::vector<std::string> made_by;
  for (const auto& h : hb)
    if (!empty_layer(h)) made_by.push_back(created_by(h));
  auto digest = [](const Json& list, size_t i) { return list[i].value("digest", ""); };
  std::set<size_t> changed;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    std::string by = i < made_by.size() && !made_by[i].empty() ? " (" + short_json(made_by[i]) + ")" : "";
    if (i >= a.size())
      lines.push_back(fmt::format("layer {}/{} added: {}{}", i + 1, b.size(), short_digest(digest(b, i)), by));
    else if (i >= b.size())
      lines.push_back(fmt::format("layer {}/{} removed: {}", i + 1, a.size(), short_digest(digest(a, i))));
    else if (digest(a, i) != digest(b, i))
      lines.push_back(fmt::format("layer {}/{}: {} -> {}{}", i + 1, b.size(), short_digest(digest(a, i)),
                                  short_digest(digest(b, i)), by));
    else
      continue;
    changed.insert(i);
  }
  if (ha.size() != hb.size()) {
    lines.push_back(fmt::format("history: {} entries -> {}", ha.size(), hb.size()));
    return;
  }
  for (size_t i = 0, layer = 0; i < hb.size(); ++i) {
    bool named = !empty_layer(hb[i]) && changed.count(layer);
    if (!empty_layer(hb[i])) ++layer;
    if (named || created_by(ha[i]) == created_by(hb[i])) continue;
    lines.push_back(fmt::format("history {}/{}: {} -> {}", i + 1, hb.size(), short_json(created_by(ha[i])),
                                short_json(created_by(hb[i]))));
  }
}

void explain_image(const Json& prev, const Json& cur, std::vector<std::string>& lines) {
  explain_layers(prev, cur, lines);
  const Json a = prev.value("op", Json::object()), b = cur.value("op", Json::object());
  explain_config(a.value("config", Json()), b.value("config", Json()), lines);
  std::set<std::string> keys;
  for (const auto& [k, v] : a.items()) keys.insert(k);
  for (const auto& [k, v] : b.items()) keys.insert(k);
  for (const auto& k : keys) {
    if (k == "config") continue;
    Json x = a.value(k, Json()), y = b.value(k, Json());
    if (x != y) lines.push_back(fmt::format("op: {} changed: {} -> {}", k, short_json(x), short_json(y)));
  }
}

// A file's record is [mode] or [mode, digest or link target].
std::string file_state(const Json& entry) {
  if (!entry.is_array() || entry.size() < 2 || !entry[1].is_string()) return "";
  return entry[1].get<std::string>();
}

void explain_files(const Json& prev, const Json& cur, std::vector<std::string>& lines) {
  const Json& a = prev.value("files", Json::object());
  const Json& b = cur.value("files", Json::object());
  std::set<std::string> names;
  for (const auto& [k, v] : a.items()) names.insert(k);
  for (const auto& [k, v] : b.items()) names.insert(k);
  for (const auto& name : names) {
    if (!a.contains(name)) { lines.push_back(name + ": added"); continue; }
    if (!b.contains(name)) { lines.push_back(name + ": removed"); continue; }
    const Json &x = a[name], &y = b[name];
    if (x == y) continue;
    if (!x.empty() && !y.empty() && x[0].is_number() && y[0].is_number() && x[0] != y[0])
      lines.push_back(fmt::format("{}: mode {:o} -> {:o}", name, x[0].get<unsigned>(), y[0].get<unsigned>()));
    std::string s = file_state(x), t = file_state(y);
    if (s == t) continue;
    if (s.starts_with("sha256:") && t.starts_with("sha256:"))
      lines.push_back(fmt::format("{}: content {} -> {}", name, short_digest(s), short_digest(t)));
    else
      lines.push_back(fmt::format("{}: link {} -> {}", name, s, t));
  }
}

// A parent or `from` result whose key changed: a base image re-resolved, or another step.
std::string explain_source(std::string what, const Json& prev, const Json& cur, const ResultNamer& namer) {
  std::string key = cur.value("key", ""), file = cur.value("file", "");
  // A stage's base is named as such ("base image golang:1.21 ..."), a --from image with its flag.
  if (what == "parent ") what.clear();
  if (std::string base = namer.base_name(key); !base.empty())
    return fmt::format("{}base image {} re-resolved to a new digest ({} -> {})", what, base,
                       short_digest(prev.value("key", "")), short_digest(key));
  if (basename_of(file).starts_with("base-"))
    return fmt::format("{}base image re-resolved to a new digest ({} -> {})", what,
                       short_digest(prev.value("key", "")), short_digest(key));
  std::string label = namer.step_label(file);
  if (what.empty()) what = "parent ";
  return fmt::format("{}step {} changed", what, label.empty() ? file : label);
}

Result<std::optional<Json>> read_record(const std::string& path) {
  if (!path_exists(path)) return std::optional<Json>();
  DFGEN_TRY(Json j, read_json_file(path));
  if (!j.is_object() || j.value("version", 0) != 1) return Error(fmt::format("{}: not a version 1 inputs record", path));
  return std::optional<Json>(std::move(j));
}

// The causes of one step's last change; empty when there is no earlier record.
Result<std::vector<std::string>> explain_step(const std::string& build_dir, const std::string& result_rel,
                                              std::string* description) {
  std::string result = path_join(build_dir, result_rel);
  DFGEN_TRY(auto cur, read_record(inputs_path(result)));
  DFGEN_TRY(auto prev, read_record(prev_inputs_path(result)));
  if (!cur || !prev) return std::vector<std::string>();
  if (description) *description = cur->value("description", result_rel);
  return explain_change(*prev, *cur, ResultNamer{build_dir});
}

// The inputs of the phony target NAME in build.ninja ("build NAME: phony A B").
Result<std::vector<std::string>> phony_inputs(const std::string& build_dir, const std::string& name) {
  std::string path = path_join(build_dir, "build.ninja");
  auto text = read_file(path);
  if (!text) return std::move(text).error().context("read build.ninja (is -C the build dir?)");
  std::istringstream in(*text);
  std::string prefix = "build " + name + ": phony";
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(prefix) || (line.size() > prefix.size() && line[prefix.size()] != ' ')) continue;
    std::vector<std::string> out;
    std::istringstream words(line.substr(prefix.size()));
    for (std::string w; words >> w;) out.push_back(w);
    return out;
  }
  return Error(fmt::format("{}: no target \"{}\" (an image or stage name, or a step like s0-1)", path, name));
}

// The fs steps a result depends on, in build order (parents and sources first).
Status collect_chain(const std::string& build_dir, const std::string& result_rel, std::set<std::string>& seen,
                     std::vector<std::string>& order) {
  if (!seen.insert(result_rel).second) return ok_status();
  std::string spec_path = path_join(build_dir, stem_of(result_rel) + ".spec");
  if (!path_exists(spec_path)) return ok_status();   // a base image or scratch
  DFGEN_TRY(Json spec, read_json_file(spec_path));
  const Json& io = spec.value("io", Json::object());
  if (io.contains("parent") && io["parent"].is_string())
    DFGEN_CHECK(collect_chain(build_dir, io["parent"], seen, order));
  const Json from = io.value("from", Json::object());   // a named copy: items() does not own it
  for (const auto& [name, file] : from.items())
    DFGEN_CHECK(collect_chain(build_dir, file.get<std::string>(), seen, order));
  order.push_back(result_rel);   // an image edge comes after its whole chain
  return ok_status();
}

bool is_step_name(const std::string& what) {
  return what.size() > 1 && what[0] == 's' && what.find('-') != std::string::npos &&
         what.find_first_not_of("0123456789-", 1) == std::string::npos;
}

}  // namespace

std::string inputs_path(const std::string& result_path) { return stem_of(result_path) + ".inputs.json"; }
std::string prev_inputs_path(const std::string& result_path) { return stem_of(result_path) + ".inputs.prev.json"; }

Json inputs_record(const Spec& spec, const std::string& key, const std::string& parent_key, const Json& inputs,
                   const Json& from_keys) {
  Json files = Json::object();
  for (const auto& entry : inputs)
    if (entry.is_array() && !entry.empty() && entry[0].is_string()) {
      Json rest = Json::array();
      for (size_t i = 1; i < entry.size(); ++i) rest.push_back(entry[i]);
      files[entry[0].get<std::string>()] = rest;
    }
  Json from = Json::object();
  for (const auto& [name, k] : from_keys.items()) {
    auto it = spec.from.find(name);
    from[name] = Json{{"key", k}, {"file", it == spec.from.end() ? "" : it->second}};
  }
  std::string created_by;
  if (spec.history.is_array() && !spec.history.empty() && spec.history.back().is_object())
    created_by = spec.history.back().value("created_by", "");
  return Json{{"version", 1},
              {"key", key},
              {"parent", {{"key", parent_key}, {"file", spec.parent}}},
              {"op", spec.op},
              {"files", files},
              {"from", from},
              {"description", spec.description},
              {"location", spec.location},
              {"created_by", created_by}};
}

Json image_record(const Spec& spec, const std::string& manifest_digest, const std::string& parent_key,
                  const Json& layers, const Json& history) {
  return Json{{"version", 1},
              {"key", manifest_digest},
              {"parent", {{"key", parent_key}, {"file", spec.parent}}},
              {"op", spec.op},
              {"layers", layers},
              {"history", history},
              {"description", spec.description},
              {"location", spec.location}};
}

Status record_inputs(const Spec& spec, const Json& record) {
  std::string path = inputs_path(spec.result);
  if (path_exists(path)) {
    auto old = read_json_file(path);
    // An unreadable record is replaced; a different key moves the old one aside.
    if (old.ok() && old->is_object() && old->value("key", "") != record.value("key", "") &&
        ::rename(path.c_str(), prev_inputs_path(spec.result).c_str()) != 0)
      return Error::sys("rename " + path);
  }
  auto wrote = write_file_if_changed(path, record.dump(2) + "\n");
  if (!wrote.ok()) return std::move(wrote).error();
  return ok_status();
}

std::string ResultNamer::base_name(const std::string& manifest_digest) const {
  auto pins = read_json_file(path_join(build_dir, ".dfgen/pins.json"));
  if (!pins.ok() || !pins->is_object()) return "";
  const Json all = pins->value("pins", Json::object());
  for (const auto& [ref, pin] : all.items())
    if (pin.is_object() && pin.value("digest", "") == manifest_digest) return ref;
  return "";
}

std::string ResultNamer::step_label(const std::string& result_file) const {
  auto rec = read_json_file(path_join(build_dir, inputs_path(result_file)));
  if (!rec.ok() || !rec->is_object()) return "";
  return label_of(rec->value("description", ""));
}

std::vector<std::string> explain_change(const Json& prev, const Json& cur, const ResultNamer& namer) {
  std::vector<std::string> lines;
  if (cur.contains("layers")) {
    explain_image(prev, cur, lines);
    if (lines.empty() && prev.value("key", "") != cur.value("key", ""))
      lines.push_back("manifest changed: a field this dfrun does not name");
    return lines;
  }
  const Json &pa = prev.value("parent", Json::object()), &pb = cur.value("parent", Json::object());
  if (pa.value("key", "") != pb.value("key", "")) lines.push_back(explain_source("parent ", pa, pb, namer));
  explain_files(prev, cur, lines);
  explain_op(prev, cur, lines);
  const Json &fa = prev.value("from", Json::object()), &fb = cur.value("from", Json::object());
  for (const auto& [name, b] : fb.items()) {
    Json a = fa.value(name, Json::object());
    if (a.value("key", "") == b.value("key", "")) continue;
    std::string what = name == "source" ? "--from " : fmt::format("--mount {} from ", name.substr(5));
    lines.push_back(explain_source(what, a, b, namer));
  }
  if (lines.empty() && prev.value("key", "") != cur.value("key", ""))
    lines.push_back("key changed: a key format or input kind this dfrun does not name");
  return lines;
}

Result<std::vector<std::string>> explain(const std::string& build_dir, const std::string& what) {
  std::vector<std::string> out;
  if (is_step_name(what) || what.ends_with(".result") || what.ends_with(".spec")) {
    std::string rel = is_step_name(what) ? ".dfgen/" + what + ".result"
                      : what.ends_with(".spec") ? what.substr(0, what.size() - 5) + ".result" : what;
    if (!path_exists(path_join(build_dir, stem_of(rel) + ".spec")))
      return Error(fmt::format("{}: no step {} (a step is named like s0-1: .dfgen/s0-1.spec)", build_dir, what));
    DFGEN_TRY(out, explain_step(build_dir, rel, nullptr));
    if (out.empty()) out.push_back("no change recorded (built once, or its key never changed)");
    return out;
  }
  DFGEN_TRY(std::vector<std::string> roots, phony_inputs(build_dir, what));
  std::set<std::string> seen;
  std::vector<std::string> order;
  for (const auto& r : roots) DFGEN_CHECK(collect_chain(build_dir, r, seen, order));
  for (const auto& rel : order) {
    std::string description;
    DFGEN_TRY(std::vector<std::string> causes, explain_step(build_dir, rel, &description));
    if (causes.empty()) continue;
    out.push_back(description);
    for (const auto& c : causes) out.push_back("  " + c);
  }
  return out;
}

}  // namespace dfgen::step
