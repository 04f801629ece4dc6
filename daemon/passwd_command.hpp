// `mqttd passwd FILE USERNAME [--attribute NAME=VALUE]...`: adds or replaces a user in a password
// file (authn/password_file.hpp) with a salted scrypt hash of the password read from standard input.
#pragma once

namespace mqttd {

// argv[1] is "passwd". Returns the exit code: 0, 1 (the file cannot be read or written), 2 (usage).
int passwd_command(int argc, char** argv);

}  // namespace mqttd
