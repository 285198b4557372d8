#include "core/fs.h"
#include "runner/step/step.h"

namespace dfgen::step {

Json StepResult::to_json() const {
  Json layers_json = Json::array();
  for (const auto& l : layers) {
    Json d = l.blob.to_json();
    d["diff_id"] = l.diff_id;
    layers_json.push_back(std::move(d));
  }
  return Json{{"version", 1}, {"key", key}, {"layers", layers_json}, {"history", history}};
}

Result<StepResult> StepResult::from_json(const Json& j, const std::string& what) {
  // Every field type-checked: json's value() throws on a mismatch.
  auto version = j.is_object() ? j.find("version") : j.end();
  if (!j.is_object() || version == j.end() || !version->is_number_integer() || *version != 1)
    return Error(fmt::format("{}: not a version 1 step result", what));
  StepResult r;
  if (auto key = j.find("key"); key != j.end() && key->is_string()) r.key = *key;
  if (j.contains("history") && j["history"].is_array()) r.history = j["history"];
  if (j.contains("layers")) {
    if (!j["layers"].is_array()) return Error(fmt::format("{}: layers is not an array", what));
    for (const auto& lj : j["layers"]) {
      DFGEN_TRY(Descriptor d, Descriptor::from_json(lj));
      auto id = lj.find("diff_id");
      std::string diff_id = id != lj.end() && id->is_string() ? id->get<std::string>() : "";
      if (!is_sha256_digest(diff_id)) return Error(fmt::format("{}: layer without a valid diff_id", what));
      r.layers.push_back({std::move(d), std::move(diff_id)});
    }
  }
  return r;
}

Result<StepResult> read_result(const std::string& path) {
  DFGEN_TRY(Json j, read_json_file(path));
  return StepResult::from_json(j, path);
}

Status write_result(const std::string& path, const StepResult& result) {
  DFGEN_CHECK(make_dirs(dirname_of(path)));
  auto wrote = write_file_if_changed(path, result.to_json().dump(2) + "\n");
  if (!wrote.ok()) return std::move(wrote).error();
  return ok_status();
}

}  // namespace dfgen::step
