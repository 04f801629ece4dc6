#include "daemon/passwd_command.hpp"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "authn/password_file.hpp"

namespace mqttd {
namespace {

constexpr const char* kUsage = R"(usage: mqttd passwd FILE USERNAME [--attribute NAME=VALUE]...

Adds or replaces USERNAME in the password file FILE (a Password method's
<secrets-dir>/<secretRef>/passwords) with a salted scrypt hash of the password read from
standard input (asked twice on a terminal); attributes go to authorization as the principal's.
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "mqttd: " << message << "\n\n" << kUsage;
  std::exit(2);
}

}  // namespace

int passwd_command(int argc, char** argv) {
  if (argc < 4) usage_error("passwd needs FILE and USERNAME");
  std::string file = argv[2], username = argv[3];
  if (username.empty() || username.find_first_of(":\n\r") != std::string::npos)
    usage_error("a user name must not be empty or hold ':' or a line break");
  std::map<std::string, std::string> attributes;
  for (int i = 4; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg != "--attribute" || i + 1 >= argc) usage_error("passwd takes --attribute NAME=VALUE");
    std::string pair = argv[++i];
    auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0 || pair.find_first_of(",:\n") != std::string::npos)
      usage_error("an attribute is NAME=VALUE without ',' or ':'");
    attributes[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  auto read_secret = [](const char* prompt) {
    bool tty = ::isatty(STDIN_FILENO);
    termios saved{};
    if (tty) {
      std::cerr << prompt << std::flush;
      ::tcgetattr(STDIN_FILENO, &saved);
      termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::string line;
    std::getline(std::cin, line);
    if (tty) {
      ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
      std::cerr << "\n";
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  };
  std::string password = read_secret("Password: ");
  if (::isatty(STDIN_FILENO) && read_secret("Again: ") != password) {
    std::cerr << "mqttd passwd: the passwords differ\n";
    return 1;
  }
  if (password.empty()) {
    std::cerr << "mqttd passwd: empty password\n";
    return 1;
  }
  std::string text;
  if (std::ifstream in(file, std::ios::binary); in) {
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  try {
    authn::PasswordFile::parse(text, file);  // refuse to rewrite a file we cannot read
    text = authn::PasswordFile::upsert(text, username, authn::hash_password(password), attributes);
  } catch (const std::exception& e) {
    std::cerr << "mqttd passwd: " << e.what() << "\n";
    return 1;
  }
  std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) {
      std::cerr << "mqttd passwd: cannot write " << tmp << "\n";
      return 1;
    }
  }
  ::chmod(tmp.c_str(), 0600);
  if (std::rename(tmp.c_str(), file.c_str()) != 0) {
    std::cerr << "mqttd passwd: cannot replace " << file << "\n";
    return 1;
  }
  std::cerr << "mqttd passwd: " << username << " set in " << file << "\n";
  return 0;
}

}  // namespace mqttd
