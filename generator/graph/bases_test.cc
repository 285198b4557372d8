#include "generator/graph/bases.h"

#include <gtest/gtest.h>

#include "core/fs.h"

namespace dfgen::graph {
namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');

TEST(BuildContexts, DockerImageAndOciLayout) {
  auto dir = TempDir::create("/tmp", "bases");
  ASSERT_TRUE(dir.ok());
  auto m = parse_build_contexts({"golang:1.21=docker-image://fixtures/go:bookworm",
                                 "alpine=oci-layout://" + dir->path() + ":v1"});
  ASSERT_TRUE(m.ok()) << m.error().render();
  const BaseSource& go = m->at("docker.io/library/golang:1.21");
  EXPECT_EQ(go.id(), "docker-image://docker.io/fixtures/go:bookworm");
  EXPECT_EQ(m->at("docker.io/library/golang").ref, go.ref);
  const BaseSource& alpine = m->at("docker.io/library/alpine");
  EXPECT_EQ(alpine.kind, BaseSource::Kind::kOciLayout);
  EXPECT_EQ(alpine.tag, "v1");
  EXPECT_EQ(alpine.id(), "oci-layout://" + dir->path() + ":v1");
}

TEST(BuildContexts, Errors) {
  EXPECT_EQ(parse_build_contexts({"x"}).error().message, "invalid --build-context \"x\": expected NAME=SOURCE");
  auto dir = parse_build_contexts({"x=./somewhere"});
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("docker-image://REF or oci-layout://PATH[:TAG]"), std::string::npos);
  auto missing = parse_build_contexts({"x=oci-layout:///no/such/layout"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("is not an OCI layout directory"), std::string::npos);
}

TEST(PickImported, ByTagOrTheOnlyImage) {
  BaseSource src{.kind = BaseSource::Kind::kOciLayout, .path = "/l", .tag = "v2"};
  std::string out = "docker.io/library/l:v1 " + kA + "\ndocker.io/library/l:v2 " + kB + "\n";
  EXPECT_EQ(*pick_imported(out, src), kB);
  src.tag = "v3";
  EXPECT_EQ(pick_imported(out, src).error().message,
            "oci-layout:///l:v3: no image tagged \"v3\" in the layout (it holds: docker.io/library/l:v1, "
            "docker.io/library/l:v2)");
  src.tag = "";
  EXPECT_FALSE(pick_imported(out, src).ok());
  EXPECT_EQ(*pick_imported("docker.io/library/l:v1 " + kA + "\n", src), kA);
}

TEST(Pins, RoundTripAndMalformed) {
  auto dir = TempDir::create("/tmp", "pins");
  ASSERT_TRUE(dir.ok());
  EXPECT_TRUE(read_pins(dir->path())->empty());
  Pins pins{{"golang:1.21", {"docker-image://docker.io/library/golang:1.21", kA}}};
  ASSERT_TRUE(write_pins(dir->path(), pins).ok());
  auto back = read_pins(dir->path());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->at("golang:1.21").digest, kA);
  EXPECT_EQ(back->at("golang:1.21").source, "docker-image://docker.io/library/golang:1.21");
  ASSERT_TRUE(write_file_atomic(pins_path(dir->path()), R"({"version": 2})").ok());
  EXPECT_NE(read_pins(dir->path()).error().message.find("not a version 1 pins file"), std::string::npos);
}

}  // namespace
}  // namespace dfgen::graph
