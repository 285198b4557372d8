// A step spec with a field of the wrong type is refused with a message that
// names the field (runner/step/spec_field.h), before any executor runs: one
// table of specs, each with one bad field, through dfrun step's entry point.
#include "runner/step/spec_field.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/fs.h"
#include "core/store.h"
#include "runner/step/step.h"

namespace dfgen::step {
namespace {

TEST(SpecField, ReadsTypedFieldsAndFallsBack) {
  Json j = Json::parse(R"({"s": "x", "b": true, "i": 7, "n": null, "a": [1], "o": {}, "l": ["p", "q"]})");
  EXPECT_EQ(*spec_field(j, "op", "s", "d"), "x");
  EXPECT_EQ(*spec_field(j, "op", "missing", "d"), "d");
  EXPECT_EQ(*spec_field(j, "op", "n", "d"), "d");   // null: as if missing
  EXPECT_TRUE(*spec_field(j, "op", "b", false));
  EXPECT_EQ(*spec_field(j, "op", "i", int64_t{0}), 7);
  EXPECT_EQ(spec_field(j, "op", "a", Json::array_t())->size(), 1u);
  EXPECT_EQ((*spec_field(j, "op", "l", std::vector<std::string>())), (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(*spec_field(Json(), "op", "s", "d"), "d");   // a missing object: every field missing
}

TEST(SpecField, WrongTypesNameTheField) {
  Json j = Json::parse(R"({"s": 5, "b": "yes", "i": 1.5, "l": ["p", 2], "m": {"x": 1}})");
  auto message = [](auto r) { return r.ok() ? std::string("(ok)") : r.error().message; };
  EXPECT_EQ(message(spec_field(j, "op", "s", "")), "step spec: field \"op.s\" must be a string");
  EXPECT_EQ(message(spec_field(j, "op", "b", false)), "step spec: field \"op.b\" must be a boolean");
  EXPECT_EQ(message(spec_field(j, "op", "i", int64_t{0})), "step spec: field \"op.i\" must be an integer");
  EXPECT_EQ(message(spec_field(j, "op", "l", std::vector<std::string>())),
            "step spec: field \"op.l\" must be an array of strings");
  EXPECT_EQ(message(spec_field(j, "op", "s", Json::array_t())), "step spec: field \"op.s\" must be an array");
  EXPECT_EQ(message(spec_field(j, "op", "s", Json::object_t())), "step spec: field \"op.s\" must be an object");
  EXPECT_EQ(message(spec_field(j, "io", "m", std::map<std::string, std::string>())),
            "step spec: field \"io.m\" must be an object of strings");
  EXPECT_EQ(message(spec_field(Json(3), item_path("op.files", 2), "path", "")),
            "step spec: field \"op.files[2]\" must be an object");
}

struct BadSpec {
  const char* name;
  const char* spec;       // "io.result" is added
  const char* message;    // after "SPEC: "
};

const BadSpec kBadSpecs[] = {
    {"op_not_object", R"({"op": 5})", R"(step spec: field "op" must be an object)"},
    {"kind", R"({"op": {"kind": 3}})", R"(step spec: field "op.kind" must be a string)"},
    {"link", R"({"op": {"kind": "copy", "link": "yes"}})", R"(step spec: field "op.link" must be a boolean)"},
    {"epoch", R"({"op": {"kind": "copy", "source_date_epoch": "1"}})",
     R"(step spec: field "op.source_date_epoch" must be an integer)"},
    {"dest", R"({"op": {"kind": "copy", "dest": 5}})", R"(step spec: field "op.dest" must be a string)"},
    {"sources", R"({"op": {"kind": "add", "sources": "a"}})", R"(step spec: field "op.sources" must be an array)"},
    {"source_item", R"({"op": {"kind": "copy", "sources": [{"context": "a"}, 4]}})",
     R"(step spec: field "op.sources[1]" must be an object)"},
    {"source_context", R"({"op": {"kind": "copy", "sources": [{"context": ["a"]}]}})",
     R"(step spec: field "op.sources[0].context" must be a string)"},
    {"unpack", R"({"op": {"kind": "add", "unpack": "true"}})", R"(step spec: field "op.unpack" must be a boolean)"},
    {"exclude", R"({"op": {"kind": "copy", "exclude": ["a", 1]}})",
     R"(step spec: field "op.exclude" must be an array of strings)"},
    {"ignore", R"({"op": {"kind": "run", "args": ["true"], "ignore": "x"}})",
     R"(step spec: field "op.ignore" must be an array of strings)"},
    {"args", R"({"op": {"kind": "run", "args": "true"}})", R"(step spec: field "op.args" must be an array of strings)"},
    {"env", R"({"op": {"kind": "run", "args": ["true"], "env": [1]}})",
     R"(step spec: field "op.env" must be an array of strings)"},
    {"network", R"({"op": {"kind": "run", "network": false}})", R"(step spec: field "op.network" must be a string)"},
    {"file_mode", R"({"op": {"kind": "run", "files": [{"path": "/dev/pipes/a", "mode": "644"}]}})",
     R"(step spec: field "op.files[0].mode" must be an integer)"},
    {"mount_readonly", R"({"op": {"kind": "run", "mounts": [{"type": "tmpfs"}, {"type": "bind", "readonly": "no"}]}})",
     R"(step spec: field "op.mounts[1].readonly" must be a boolean)"},
    {"mount_target", R"({"op": {"kind": "run", "mounts": [{"type": "cache", "target": 1}]}})",
     R"(step spec: field "op.mounts[0].target" must be a string)"},
    {"mount_from", R"({"op": {"kind": "run", "mounts": [{"from": "stage"}]}})",
     R"(step spec: field "op.mounts[0].from" must be an object)"},
    {"workdir_path", R"({"op": {"kind": "workdir", "path": 1}})", R"(step spec: field "op.path" must be a string)"},
    {"tags", R"({"op": {"kind": "image", "tags": [1]}})", R"(step spec: field "op.tags" must be an array of strings)"},
    {"output_tar", R"({"op": {"kind": "image", "outputs": [{"type": "oci", "tar": 0}]}})",
     R"(step spec: field "op.outputs[0].tar" must be a boolean)"},
    {"config", R"({"op": {"kind": "image", "config": []}})", R"(step spec: field "op.config" must be an object)"},
    {"history", R"({"op": {"kind": "copy"}, "history": {}})", R"(step spec: field "history" must be an array)"},
    {"history_item", R"({"op": {"kind": "copy"}, "history": [{}, 2]})",
     R"(step spec: field "history[1]" must be an object)"},
    {"parent", R"({"op": {"kind": "copy"}, "io": {"parent": 1}})", R"(step spec: field "io.parent" must be a string)"},
    {"from", R"({"op": {"kind": "copy"}, "io": {"from": {"x": 1}}})",
     R"(step spec: field "io.from" must be an object of strings)"},
    {"secret_src", R"({"op": {"kind": "run"}, "io": {"secrets": {"tok": {"src": 1}}}})",
     R"(step spec: field "io.secrets.tok.src" must be a string)"},
    {"ssh_entry", R"({"op": {"kind": "run"}, "io": {"ssh": {"default": "agent"}}})",
     R"(step spec: field "io.ssh.default" must be an object)"},
    {"ui", R"({"op": {"kind": "copy"}, "ui": {"location": 12}})", R"(step spec: field "ui.location" must be a string)"},
    {"cache_from", R"({"op": {"kind": "copy"}, "cache": {"from": {}}})",
     R"(step spec: field "cache.from" must be an array)"},
    {"cache_to_mode", R"({"op": {"kind": "image"}, "cache": {"to": [{"mode": 1}]}})",
     R"(step spec: field "cache.to[0].mode" must be a string)"},
};

class BadSpecTest : public ::testing::TestWithParam<BadSpec> {};

TEST_P(BadSpecTest, IsRefusedNamingTheField) {
  auto tmp = TempDir::create(std::filesystem::temp_directory_path().string(), "spec-field");
  ASSERT_TRUE(tmp.ok());
  auto store = Store::open(tmp->path() + "/store");
  ASSERT_TRUE(store.ok()) << store.error().message;
  Json spec = Json::parse(GetParam().spec);
  spec["version"] = 1;
  if (!spec.contains("io")) spec["io"] = Json::object();
  if (spec["io"].is_object()) spec["io"]["result"] = tmp->path() + "/out.result";
  std::string path = tmp->path() + "/step.spec";
  ASSERT_TRUE(write_file_atomic(path, spec.dump()).ok());
  Status st = execute_spec(*store, path);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, path + ": " + GetParam().message);
  EXPECT_FALSE(path_exists(tmp->path() + "/out.result"));
}

INSTANTIATE_TEST_SUITE_P(Specs, BadSpecTest, ::testing::ValuesIn(kBadSpecs),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace dfgen::step
