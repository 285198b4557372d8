// Registry configuration, credentials and auth challenges (core/registry.h).
#include <openssl/evp.h>
#include <sys/wait.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "core/fs.h"
#include "core/json.h"
#include "core/registry.h"

namespace dfgen::registry {
namespace {

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::move(fallback);
}

std::string home() { return env_or("HOME", "/root"); }

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string item(text.substr(start, end - start));
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(0, 1);
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

// "host:port" of a registry key as config.json writes it: "https://host/v1/", "host".
std::string key_host(std::string key) {
  if (auto p = key.find("://"); p != std::string::npos) key = key.substr(p + 3);
  if (auto p = key.find('/'); p != std::string::npos) key = key.substr(0, p);
  return key;
}

bool is_docker_hub(std::string_view host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
}

std::string base64_decode(const std::string& in) {
  std::string out(in.size() / 4 * 3 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return "";
  out.resize(static_cast<size_t>(n));
  size_t pad = 0;
  for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) ++pad;
  out.resize(out.size() - std::min(pad, out.size()));
  return out;
}

// Runs `docker-credential-NAME get` with the server URL on stdin.
Result<Credentials> from_helper(const std::string& helper, const std::string& server) {
  for (char c : helper)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return Error(fmt::format("credential helper name \"{}\" is not valid", helper));
  for (char c : server)
    if (c == '\'' || c == '\\') return Error("registry name \"" + server + "\" is not valid");
  std::string cmd = "printf '%s' '" + server + "' | docker-credential-" + helper + " get 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return Error::sys("run docker-credential-" + helper);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  if (status != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (out.find("credentials not found") != std::string::npos) return Credentials{};
    return Error(fmt::format("docker-credential-{} get {}: {}", helper, server, out));
  }
  DFGEN_TRY(Json j, parse_json(out, "docker-credential-" + helper + " output"));
  if (!j.is_object()) return Error("docker-credential-" + helper + " output is not a JSON object");
  return Credentials{j.value("Username", ""), j.value("Secret", "")};
}

}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out((in.size() + 2) / 3 * 4 + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<Config> parse_config(std::string_view text, const std::string& what) {
  Config c;
  DFGEN_TRY(Json j, parse_json(text, what));
  if (!j.is_object()) return Error(what + ": not a JSON object");
  try {
    c.ca_file = j.value("ca_file", "");
    const Json insecure = j.value("insecure", Json::array()), mirrors = j.value("mirrors", Json::object());
    for (const auto& h : insecure) c.insecure.push_back(h.get<std::string>());
    for (const auto& [reg, list] : mirrors.items())
      for (const auto& m : list) {
        std::string url = m.get<std::string>();
        if (!url.starts_with("https://") && !url.starts_with("http://"))
          return Error(fmt::format("{}: mirror \"{}\" of {} must start with https:// or http://", what, url, reg));
        while (url.ends_with("/")) url.pop_back();
        c.mirrors[reg].push_back(url);
      }
  } catch (const Json::exception& e) {
    return Error(fmt::format("{}: {}", what, e.what()));
  }
  return c;
}

Result<Config> load_config() {
  std::string path = env_or("DFGEN_REGISTRIES_CONFIG",
                            path_join(env_or("XDG_CONFIG_HOME", path_join(home(), ".config")),
                                      "dfgen/registries.json"));
  Config c;
  if (path_exists(path)) {
    DFGEN_TRY(std::string text, read_file(path));
    DFGEN_TRY(c, parse_config(text, path));
  }
  if (const char* ca = std::getenv("DFGEN_REGISTRY_CA"); ca && *ca) c.ca_file = ca;
  if (const char* list = std::getenv("DFGEN_INSECURE_REGISTRIES"))
    for (auto& h : split_list(list)) c.insecure.push_back(h);
  if (const char* chunk = std::getenv("DFGEN_REGISTRY_CHUNK_SIZE"); chunk && std::atoll(chunk) > 0)
    c.chunk_size = std::atoll(chunk);
  c.docker_config_dir = env_or("DOCKER_CONFIG", path_join(home(), ".docker"));
  if (!c.ca_file.empty() && !path_exists(c.ca_file))
    return Error(fmt::format("registry CA file {} does not exist", c.ca_file));
  return c;
}

std::string registry_host(std::string_view registry) {
  if (is_docker_hub(registry)) return "registry-1.docker.io";
  return std::string(registry);
}

bool is_insecure(const Config& config, std::string_view registry) {
  std::string host(registry);
  std::string bare = host;
  if (bare.starts_with("[")) bare = bare.substr(0, bare.find(']') + 1);
  else if (auto colon = bare.rfind(':'); colon != std::string::npos) bare = bare.substr(0, colon);
  if (bare == "localhost" || bare == "127.0.0.1" || bare == "[::1]") return true;
  for (const auto& h : config.insecure)
    if (h == host || h == bare) return true;
  return false;
}

Result<Credentials> find_credentials(const Config& config, const std::string& registry) {
  if (config.docker_config_dir.empty()) return Credentials{};
  std::string path = path_join(config.docker_config_dir, "config.json");
  if (!path_exists(path)) return Credentials{};
  DFGEN_TRY(std::string text, read_file(path));
  DFGEN_TRY(Json j, parse_json(text, path));
  if (!j.is_object()) return Error(path + ": not a JSON object");
  bool hub = is_docker_hub(registry);
  std::string server = hub ? "https://index.docker.io/v1/" : registry;
  auto matches = [&](const std::string& key) {
    std::string h = key_host(key);
    return hub ? is_docker_hub(h) : h == registry;
  };
  if (auto helpers = j.find("credHelpers"); helpers != j.end() && helpers->is_object())
    for (const auto& [key, helper] : helpers->items())
      if (matches(key) && helper.is_string()) return from_helper(helper.get<std::string>(), server);
  if (auto store = j.find("credsStore"); store != j.end() && store->is_string() && !store->get<std::string>().empty()) {
    auto creds = from_helper(store->get<std::string>(), server);
    if (!creds.ok() || !creds->empty()) return creds;
  }
  if (auto auths = j.find("auths"); auths != j.end() && auths->is_object())
    for (const auto& [key, entry] : auths->items()) {
      if (!matches(key) || !entry.is_object()) continue;
      std::string user = entry.value("username", ""), pass = entry.value("password", "");
      if (std::string auth = entry.value("auth", ""); !auth.empty()) {
        std::string plain = base64_decode(auth);
        auto colon = plain.find(':');
        if (colon == std::string::npos) return Error(fmt::format("{}: auths[\"{}\"].auth is not base64 of user:password", path, key));
        user = plain.substr(0, colon);
        pass = plain.substr(colon + 1);
      }
      if (std::string token = entry.value("identitytoken", ""); !token.empty() && pass.empty()) pass = token;
      return Credentials{user, pass};
    }
  return Credentials{};
}

std::optional<Challenge> parse_challenge(std::string_view h) {
  size_t i = 0;
  while (i < h.size() && std::isspace(static_cast<unsigned char>(h[i]))) ++i;
  size_t start = i;
  while (i < h.size() && !std::isspace(static_cast<unsigned char>(h[i]))) ++i;
  if (i == start) return std::nullopt;
  Challenge c;
  for (size_t k = start; k < i; ++k) c.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(h[k])));
  while (i < h.size()) {
    while (i < h.size() && (std::isspace(static_cast<unsigned char>(h[i])) || h[i] == ',')) ++i;
    size_t key_start = i;
    while (i < h.size() && h[i] != '=' && h[i] != ',') ++i;
    std::string key(h.substr(key_start, i - key_start));
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    if (i >= h.size() || h[i] != '=') break;
    ++i;
    std::string value;
    if (i < h.size() && h[i] == '"') {
      for (++i; i < h.size() && h[i] != '"'; ++i) {
        if (h[i] == '\\' && i + 1 < h.size()) ++i;
        value += h[i];
      }
      ++i;
    } else {
      while (i < h.size() && h[i] != ',') value += h[i++];
    }
    for (char& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!key.empty()) c.params[key] = value;
  }
  return c;
}

}  // namespace dfgen::registry
