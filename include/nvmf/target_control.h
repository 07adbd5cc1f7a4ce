// The control interface of a running target: JSON-RPC 2.0 over a Unix stream socket, one
// request per line, one response line per request (none for a notification, a request
// without "id"). docs/nvmf-target.md lists the methods; nvmf-targetctl is its client.
//
//   {"jsonrpc":"2.0","id":1,"method":"add_namespace","params":{"nqn":"nqn...","backend":"mem:64M"}}
//   {"jsonrpc":"2.0","id":1,"result":{"nsid":2}}
//
// Errors are JSON-RPC errors: -32700 not JSON, -32600 not a request (also a batch, or a
// line over 1 MiB, which closes the connection), -32601 no such method, -32602 bad or
// missing parameters, -32001 not found, -32002 already exists, -32003 not supported,
// -32000 any other failure; "message" says what and where. A failed change changes
// nothing.
//
// Threads: the server has its own thread, which makes the changes (Target's methods
// serialise them); the target's loops never wait for it. At most kMaxClients
// connections at once; one idle for a minute is closed.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "nvmf/status.h"
#include "nvmf/target.h"

namespace nvmf::target {

class ControlServer {
 public:
  static constexpr int kMaxClients = 16;

  // Listens on path with the given mode. A socket file left by a process that is gone
  // is replaced; a live one (something answers) or any other file is an error.
  static Status Start(Target* target, const std::string& path, mode_t mode,
                      std::unique_ptr<ControlServer>* out);
  virtual ~ControlServer() = default;  // stops the thread, removes the socket file
};

// What the server answers to one request line (without the newline); empty for a
// notification. Exposed for tests and fuzzing.
std::string HandleControlRequest(Target* target, const std::string& line);

}  // namespace nvmf::target
