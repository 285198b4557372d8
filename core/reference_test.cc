#include "core/reference.h"

#include <gtest/gtest.h>

#include "core/sha256.h"

namespace dfgen {
namespace {

const std::string kDigest = sha256_digest("x");

struct Good {
  std::string input, registry, repository, tag, digest, str, familiar;
};

TEST(Reference, NormalizesLikeDocker) {
  const Good cases[] = {
      {"golang", "docker.io", "library/golang", "latest", "", "docker.io/library/golang:latest", "golang:latest"},
      {"golang:1.21", "docker.io", "library/golang", "1.21", "", "docker.io/library/golang:1.21", "golang:1.21"},
      {"library/golang", "docker.io", "library/golang", "latest", "", "docker.io/library/golang:latest", "golang:latest"},
      {"docker.io/golang", "docker.io", "library/golang", "latest", "", "docker.io/library/golang:latest", "golang:latest"},
      {"index.docker.io/library/golang:1", "docker.io", "library/golang", "1", "", "docker.io/library/golang:1", "golang:1"},
      {"user/app:v2", "docker.io", "user/app", "v2", "", "docker.io/user/app:v2", "user/app:v2"},
      {"ghcr.io/o/r/sub:t", "ghcr.io", "o/r/sub", "t", "", "ghcr.io/o/r/sub:t", "ghcr.io/o/r/sub:t"},
      {"localhost/app", "localhost", "app", "latest", "", "localhost/app:latest", "localhost/app:latest"},
      {"localhost:5000/app:dev", "localhost:5000", "app", "dev", "", "localhost:5000/app:dev", "localhost:5000/app:dev"},
      {"127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", "latest", "", "127.0.0.1:5000/a/b:latest", "127.0.0.1:5000/a/b:latest"},
      {"myhost:5000/x", "myhost:5000", "x", "latest", "", "myhost:5000/x:latest", "myhost:5000/x:latest"},
      {"Registry/x", "Registry", "x", "latest", "", "Registry/x:latest", "Registry/x:latest"},
      {"golang@" + kDigest, "docker.io", "library/golang", "", kDigest, "docker.io/library/golang@" + kDigest, "golang@" + kDigest},
      {"golang:1.21@" + kDigest, "docker.io", "library/golang", "1.21", kDigest, "docker.io/library/golang:1.21@" + kDigest, "golang:1.21@" + kDigest},
      {"localhost:5000/x@" + kDigest, "localhost:5000", "x", "", kDigest, "localhost:5000/x@" + kDigest, "localhost:5000/x@" + kDigest},
      {"a-b__c_d/f--g.h:T_a.g-1", "docker.io", "a-b__c_d/f--g.h", "T_a.g-1", "", "docker.io/a-b__c_d/f--g.h:T_a.g-1", "a-b__c_d/f--g.h:T_a.g-1"},
      {"[::1]:5000/x", "[::1]:5000", "x", "latest", "", "[::1]:5000/x:latest", "[::1]:5000/x:latest"},
  };
  for (const Good& c : cases) {
    auto r = parse_reference(c.input);
    ASSERT_TRUE(r.ok()) << c.input << ": " << r.error().message;
    EXPECT_EQ(r->registry, c.registry) << c.input;
    EXPECT_EQ(r->repository, c.repository) << c.input;
    EXPECT_EQ(r->tag, c.tag) << c.input;
    EXPECT_EQ(r->digest, c.digest) << c.input;
    EXPECT_EQ(r->str(), c.str) << c.input;
    EXPECT_EQ(r->familiar(), c.familiar) << c.input;
    // Normalizing a normalized string changes nothing.
    auto again = parse_reference(r->str());
    ASSERT_TRUE(again.ok()) << r->str();
    EXPECT_EQ(again->str(), c.str);
  }
}

TEST(Reference, NameWithoutTag) {
  auto r = parse_reference("localhost:5000/a/b:1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name(), "localhost:5000/a/b");
}

struct Bad {
  std::string input, message;
};

TEST(Reference, RejectsWithClearErrors) {
  const Bad cases[] = {
      {"", "invalid reference format: empty reference"},
      {"Golang", "invalid reference format \"Golang\": repository name \"Golang\" must be lowercase"},
      {"user/App", "invalid reference format \"user/App\": repository name \"user/App\" must be lowercase"},
      {"golang:", "invalid reference format \"golang:\": invalid tag \"\""},
      {"golang:.x", "invalid reference format \"golang:.x\": invalid tag \".x\""},
      {"golang:" + std::string(129, 'a'), "invalid reference format \"golang:" + std::string(129, 'a') +
                                              "\": invalid tag \"" + std::string(129, 'a') + "\""},
      {":tag", "invalid reference format \":tag\": missing repository name"},
      {"golang@sha256:abc", "invalid reference format \"golang@sha256:abc\": invalid digest \"sha256:abc\" (want sha256:<64 lowercase hex>)"},
      {"golang@md5:abc", "invalid reference format \"golang@md5:abc\": unsupported digest \"md5:abc\" (want sha256:<64 hex>)"},
      {"a//b", "invalid reference format \"a//b\": empty path component"},
      {"a/", "invalid reference format \"a/\": empty path component"},
      {"-a", "invalid reference format \"-a\": invalid repository name component \"-a\""},
      {"a_", "invalid reference format \"a_\": invalid repository name component \"a_\""},
      {"a___b", "invalid reference format \"a___b\": invalid repository name component \"a___b\""},
      {"a b", "invalid reference format \"a b\": invalid repository name component \"a b\""},
      {"localhost:/x", "invalid reference format \"localhost:/x\": invalid registry \"localhost:\""},
      {"-bad.io/x", "invalid reference format \"-bad.io/x\": invalid registry \"-bad.io\""},
      {"host:port/x", "invalid reference format \"host:port/x\": invalid registry \"host:port\""},
      {"ghcr.io/", "invalid reference format \"ghcr.io/\": missing repository name"},
      {std::string(256, 'a'), "invalid reference format \"" + std::string(256, 'a') +
                                  "\": repository name longer than 255 characters"},
  };
  for (const Bad& c : cases) {
    auto r = parse_reference(c.input);
    ASSERT_FALSE(r.ok()) << c.input << " parsed as " << r->str();
    EXPECT_EQ(r.error().message, c.message) << c.input;
  }
}

}  // namespace
}  // namespace dfgen
