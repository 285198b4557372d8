// echo-server PORT: answers each line on 127.0.0.1:PORT with "echo: LINE".
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "net.h"

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 7000;
  int fd = monorepo::listen_loopback(port);
  if (fd < 0) {
    std::perror("echo-server: listen");
    return 1;
  }
  std::fprintf(stderr, "echo-server: listening on 127.0.0.1:%d\n", port);
  for (;;) {
    int conn = ::accept(fd, nullptr, nullptr);
    if (conn < 0) continue;
    std::string line;
    while (monorepo::read_line(conn, line))
      if (!monorepo::write_all(conn, "echo: " + line + "\n")) break;
    ::close(conn);
  }
}
