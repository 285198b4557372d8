// Typed access to the fields of a step spec (the JSON dfgen writes and
// `dfrun step` reads). A spec is trusted to come from dfgen, but one edited by
// hand or damaged must fail with a message naming the field,
//   step spec: field "op.mounts[1].readonly" must be a boolean
// and never with a json exception thrown from deep inside an executor.
// A missing or null field gives the caller's fallback; any other field of a
// different type is an error.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/result.h"

namespace dfgen::step {

// The JSON types a spec field may be read as, with their names for messages.
template <typename T>
struct FieldType;
template <>
struct FieldType<std::string> {
  static constexpr const char* name = "a string";
  static bool is(const Json& j) { return j.is_string(); }
};
template <>
struct FieldType<bool> {
  static constexpr const char* name = "a boolean";
  static bool is(const Json& j) { return j.is_boolean(); }
};
template <>
struct FieldType<int64_t> {
  static constexpr const char* name = "an integer";
  static bool is(const Json& j) { return j.is_number_integer(); }
};
template <>
struct FieldType<Json::array_t> {
  static constexpr const char* name = "an array";
  static bool is(const Json& j) { return j.is_array(); }
};
template <>
struct FieldType<Json::object_t> {
  static constexpr const char* name = "an object";
  static bool is(const Json& j) { return j.is_object(); }
};
template <>
struct FieldType<std::vector<std::string>> {
  static constexpr const char* name = "an array of strings";
  static bool is(const Json& j) {
    if (!j.is_array()) return false;
    for (const auto& e : j)
      if (!e.is_string()) return false;
    return true;
  }
};

template <>
struct FieldType<std::map<std::string, std::string>> {
  static constexpr const char* name = "an object of strings";
  static bool is(const Json& j) {
    if (!j.is_object()) return false;
    for (const auto& [k, v] : j.items())
      if (!v.is_string()) return false;
    return true;
  }
};

// "op" + "dest" -> "op.dest"; "" + "op" -> "op".
inline std::string field_path(std::string_view where, std::string_view name) {
  return where.empty() ? std::string(name) : fmt::format("{}.{}", where, name);
}
// "op.sources" + 2 -> "op.sources[2]".
inline std::string item_path(std::string_view where, size_t index) { return fmt::format("{}[{}]", where, index); }

inline Error field_error(std::string_view path, std::string_view type) {
  return Error(fmt::format("step spec: field \"{}\" must be {}", path, type));
}

// The field `name` of the object `obj`, found at `where` in the spec (a path
// as field_path() and item_path() build it: "op", "op.mounts[1]"). `obj`
// itself must be an object (or null: every field missing).
template <typename T>
Result<T> spec_field(const Json& obj, std::string_view where, std::string_view name, T fallback) {
  if (obj.is_null()) return fallback;
  if (!obj.is_object()) return field_error(where, "an object");
  auto it = obj.find(std::string(name));
  if (it == obj.end() || it->is_null()) return fallback;
  if (!FieldType<T>::is(*it)) return field_error(field_path(where, name), FieldType<T>::name);
  return it->template get<T>();
}

// The string fallback spelled as a literal: spec_field(op, "op", "dest", "/").
inline Result<std::string> spec_field(const Json& obj, std::string_view where, std::string_view name,
                                      const char* fallback) {
  return spec_field<std::string>(obj, where, name, std::string(fallback));
}

}  // namespace dfgen::step
