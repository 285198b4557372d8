#include "generator/graph/bake.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>

#include "core/json.h"

namespace dfgen::graph {
namespace {

bool valid_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

Result<std::string> string_of(const Json& v, const std::string& where) {
  if (!v.is_string()) return Error(fmt::format("{}: expected a string", where));
  return v.get<std::string>();
}

Result<std::vector<std::string>> strings_of(const Json& v, const std::string& where) {
  if (!v.is_array()) return Error(fmt::format("{}: expected a list of strings", where));
  std::vector<std::string> out;
  for (const auto& e : v) {
    DFGEN_TRY(std::string s, string_of(e, where));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::map<std::string, std::string>> map_of(const Json& v, const std::string& where) {
  if (!v.is_object()) return Error(fmt::format("{}: expected an object of strings", where));
  std::map<std::string, std::string> out;
  for (const auto& [k, e] : v.items()) {
    if (e.is_null()) continue;   // bake: a null arg is unset
    DFGEN_TRY(out[k], string_of(e, where + "." + k));
  }
  return out;
}

// cache-from / cache-to: strings in --cache-* syntax, or buildx's objects
// of string fields ({"type": "registry", "ref": "r/app:cache"}).
Result<std::vector<std::string>> cache_specs_of(const Json& v, const std::string& where) {
  if (!v.is_array()) return Error(fmt::format("{}: expected a list", where));
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (e.is_string()) {
      out.push_back(e.get<std::string>());
      continue;
    }
    DFGEN_TRY(auto fields, map_of(e, where));
    std::string spec;
    if (auto type = fields.find("type"); type != fields.end()) spec = "type=" + type->second;   // first, as written
    for (const auto& [k, val] : fields)
      if (k != "type") spec += (spec.empty() ? "" : ",") + k + "=" + val;
    out.push_back(spec);
  }
  return out;
}

// Applies the keys of one target's JSON over `t` (a parent's, or the defaults).
Status apply(const Json& j, const std::string& where, BakeTarget& t) {
  for (const auto& [key, v] : j.items()) {
    std::string at = where + "." + key;
    if (key == "context") { DFGEN_TRY(t.context, string_of(v, at)); }
    else if (key == "dockerfile") { DFGEN_TRY(t.dockerfile, string_of(v, at)); }
    else if (key == "target") { DFGEN_TRY(t.target, string_of(v, at)); }
    else if (key == "tags") { DFGEN_TRY(t.tags, strings_of(v, at)); }
    else if (key == "output") { DFGEN_TRY(t.outputs, strings_of(v, at)); }
    else if (key == "cache-from") { DFGEN_TRY(t.cache_from, cache_specs_of(v, at)); }
    else if (key == "cache-to") { DFGEN_TRY(t.cache_to, cache_specs_of(v, at)); }
    else if (key == "args" || key == "contexts") {
      DFGEN_TRY(auto m, map_of(v, at));
      auto& into = key == "args" ? t.args : t.contexts;
      for (auto& [k, val] : m) into[k] = std::move(val);
    } else if (key != "inherits") {
      return Error(fmt::format("{}: unknown key (known: context, dockerfile, target, args, tags, contexts, "
                               "output, cache-from, cache-to, inherits)", at));
    }
  }
  return ok_status();
}

// Lays `name`'s parents (in order, each with its own parents first), then its
// own keys, over `t`: a later key wins, args and contexts merge.
struct Inheritance {
  const Json& targets;
  const std::string& filename;
  std::vector<std::string> chain;   // the targets being applied, for cycles

  Status apply_chain(const std::string& name, BakeTarget& t) {
    std::string where = fmt::format("{}: target \"{}\"", filename, name);
    if (!targets.contains(name)) return Error(fmt::format("{}: no such target", where));
    if (std::find(chain.begin(), chain.end(), name) != chain.end())
      return Error(fmt::format("{}: inherits from itself", where));
    const Json& j = targets[name];
    if (!j.is_object()) return Error(fmt::format("{}: expected an object", where));
    chain.push_back(name);
    if (j.contains("inherits")) {
      DFGEN_TRY(auto parents, strings_of(j["inherits"], where + ".inherits"));
      for (const auto& p : parents) DFGEN_CHECK(apply_chain(p, t));
    }
    DFGEN_CHECK(apply(j, where, t));
    chain.pop_back();
    return ok_status();
  }
};

}  // namespace

Result<BakeFile> parse_bake(std::string_view text, const std::string& filename) {
  DFGEN_TRY(Json j, parse_json(text, filename));
  if (!j.is_object()) return Error(fmt::format("{}: expected an object with \"target\" (and \"group\")", filename));
  Json targets = j.value("target", Json::object());
  Json groups = j.value("group", Json::object());
  if (!targets.is_object() || targets.empty()) return Error(fmt::format("{}: no targets", filename));
  if (!groups.is_object()) return Error(fmt::format("{}: \"group\": expected an object", filename));
  for (const auto& [name, _] : targets.items())
    if (!valid_name(name))
      return Error(fmt::format("{}: target name \"{}\": use letters, digits, '_', '-' and '.'", filename, name));

  // A group's targets, groups within it expanded.
  std::set<std::string> in_group;
  std::function<Status(const std::string&, std::vector<std::string>&, int)> expand =
      [&](const std::string& name, std::vector<std::string>& out, int depth) -> Status {
    if (depth > 32) return Error(fmt::format("{}: group \"{}\" contains itself", filename, name));
    if (targets.contains(name)) {
      if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
      in_group.insert(name);
      return ok_status();
    }
    if (!groups.contains(name)) return Error(fmt::format("{}: no target or group \"{}\"", filename, name));
    DFGEN_TRY(auto members, strings_of(groups[name].value("targets", Json::array()),
                                       fmt::format("{}: group \"{}\".targets", filename, name)));
    for (const auto& m : members) DFGEN_CHECK(expand(m, out, depth + 1));
    return ok_status();
  };
  BakeFile file;
  for (const auto& [name, _] : groups.items()) {
    std::vector<std::string> members;
    DFGEN_CHECK(expand(name, members, 0));
    if (name == "default") file.default_images = members;
  }

  std::set<std::string> parents;
  for (const auto& [name, t] : targets.items())
    if (t.is_object() && t.contains("inherits") && t["inherits"].is_array())
      for (const auto& p : t["inherits"])
        if (p.is_string()) parents.insert(p.get<std::string>());
  Inheritance inh{targets, filename, {}};
  for (const auto& [name, _] : targets.items()) {
    BakeTarget t;
    DFGEN_CHECK(inh.apply_chain(name, t));
    t.name = name;
    if (in_group.count(name) || !parents.count(name)) file.images.push_back(std::move(t));
  }
  if (!groups.contains("default"))
    for (const auto& t : file.images) file.default_images.push_back(t.name);
  return file;
}

}  // namespace dfgen::graph
