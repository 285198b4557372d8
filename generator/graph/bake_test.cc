#include "generator/graph/bake.h"

#include <gtest/gtest.h>

namespace dfgen::graph {
namespace {

TEST(Bake, InheritsInOrderLaterKeysWinAndMapsMerge) {
  auto f = parse_bake(R"({
    "group": {"default": {"targets": ["app", "more"]}, "more": {"targets": ["tools"]}},
    "target": {
      "_common": {"args": {"A": "1", "B": "1"}, "tags": ["common"], "context": "c"},
      "_second": {"args": {"B": "2", "C": "2"}, "dockerfile": "D2"},
      "app": {"inherits": ["_common", "_second"], "args": {"C": "3"}, "target": "final"},
      "tools": {"context": "t", "tags": ["tools:1", "tools:latest"]}
    }})", "images.json");
  ASSERT_TRUE(f.ok()) << f.error().render();
  ASSERT_EQ(f->images.size(), 2u);   // the parents are abstract
  const BakeTarget& app = f->images[0];
  EXPECT_EQ(app.name, "app");
  EXPECT_EQ(app.args, (std::map<std::string, std::string>{{"A", "1"}, {"B", "2"}, {"C", "3"}}));
  EXPECT_EQ(app.tags, std::vector<std::string>{"common"});
  EXPECT_EQ(app.context, "c");
  EXPECT_EQ(app.dockerfile, "D2");
  EXPECT_EQ(app.target, "final");
  EXPECT_EQ(f->images[1].name, "tools");
  EXPECT_EQ(f->images[1].dockerfile, "Dockerfile");
  EXPECT_EQ(f->default_images, (std::vector<std::string>{"app", "tools"}));
}

TEST(Bake, ErrorsNameTheFileAndTarget) {
  EXPECT_EQ(parse_bake(R"({"target": {"a": {"inherits": ["b"]}, "b": {"inherits": ["a"]}}})", "x.json")
                .error().message,
            "x.json: target \"a\": inherits from itself");
  EXPECT_EQ(parse_bake(R"({"target": {"a": {"tag": ["x"]}}})", "x.json").error().message,
            "x.json: target \"a\".tag: unknown key (known: context, dockerfile, target, args, tags, contexts, "
            "output, cache-from, cache-to, inherits)");
  EXPECT_EQ(parse_bake(R"({"group": {"default": {"targets": ["nope"]}}, "target": {"a": {}}})", "x.json")
                .error().message,
            "x.json: no target or group \"nope\"");
}

TEST(Bake, CacheSpecsAreStringsOrObjectsAndAChildReplacesThem) {
  auto f = parse_bake(R"({"target": {
      "_ci": {"cache-from": ["type=registry,ref=r/app:cache"],
              "cache-to": [{"type": "local", "dest": "c", "cache-mounts": "gobuild"}]},
      "app": {"inherits": ["_ci"]},
      "tools": {"inherits": ["_ci"], "cache-to": []}}})", "x.json");
  ASSERT_TRUE(f.ok()) << f.error().render();
  ASSERT_EQ(f->images.size(), 2u);
  EXPECT_EQ(f->images[0].cache_from, std::vector<std::string>{"type=registry,ref=r/app:cache"});
  EXPECT_EQ(f->images[0].cache_to, std::vector<std::string>{"type=local,cache-mounts=gobuild,dest=c"});
  EXPECT_EQ(f->images[1].cache_from, f->images[0].cache_from);
  EXPECT_TRUE(f->images[1].cache_to.empty());
  EXPECT_EQ(parse_bake(R"({"target": {"a": {"cache-to": "type=local,dest=c"}}})", "x.json").error().message,
            "x.json: target \"a\".cache-to: expected a list");
}

TEST(Bake, NoDefaultGroupMeansEveryImage) {
  auto f = parse_bake(R"({"target": {"b": {}, "a": {"context": "x"}}})", "x.json");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->default_images, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace dfgen::graph
