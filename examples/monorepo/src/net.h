// Loopback TCP helpers shared by the echo server and its client.
#pragma once

#include <string>

namespace monorepo {

// A socket listening on 127.0.0.1:port, or -1.
int listen_loopback(int port);
// A socket connected to 127.0.0.1:port (retrying for up to `wait_ms`), or -1.
int connect_loopback(int port, int wait_ms);
// Reads one line (without the '\n'); false at end of stream.
bool read_line(int fd, std::string& line);
bool write_all(int fd, const std::string& data);

}  // namespace monorepo
