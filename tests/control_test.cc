// The control interface: JSON-RPC 2.0 requests and their errors (HandleControlRequest),
// and the Unix socket server (ControlServer): its mode, a stale or live socket file,
// malformed and oversized requests answered with errors while the target keeps serving.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "nvmf/host_sync.h"
#include "nvmf/target.h"
#include "nvmf/target_control.h"

namespace nvmf::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kNqn = "nqn.2024-01.io.nvmf:control";

class Control : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nvmf-control-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
    sock = dir + "/t.sock";
    target::TargetConfig cfg;
    cfg.ports.push_back(target::PortConfig{1, "127.0.0.1", 0, {}});
    target::SubsystemConfig s;
    s.nqn = kNqn;
    s.namespaces = {{1, "mem:4M", "", true}};
    cfg.subsystems.push_back(s);
    cfg.log = [](const std::string&) {};
    ASSERT_TRUE(target::Target::Start(cfg, &tgt).ok());
  }
  void TearDown() override {
    server.reset();
    tgt->Stop();
    std::remove((dir + "/saved.json").c_str());
    std::remove(sock.c_str());
    rmdir(dir.c_str());
  }
  json Call(const std::string& line) {
    std::string out = target::HandleControlRequest(tgt.get(), line);
    return out.empty() ? json() : json::parse(out);
  }
  int ErrorCode(const std::string& line) { return Call(line)["error"].value("code", 0); }
  // Connects to the socket, sends text, reads until `lines` newlines or the server closes.
  std::string Exchange(const std::string& text, int lines, bool* closed = nullptr) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock.c_str());
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (size_t done = 0; done < text.size();) {
      ssize_t n = send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    std::string in;
    char buf[4096];
    int seen = 0;
    while (seen < lines) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; i++) seen += buf[i] == '\n';
      in.append(buf, static_cast<size_t>(n));
    }
    if (closed != nullptr) {  // an end, or a reset (the server closed with our bytes unread)
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      *closed = n == 0 || (n < 0 && errno == ECONNRESET);
    }
    close(fd);
    return in;
  }
  bool HostDoesIo() {
    host::SyncController c;
    host::ConnectOptions o;
    o.trsvcid = tgt->ports()[0];
    o.subnqn = kNqn;
    o.hostnqn = "nqn.2024-01.io.nvmf:a-host";
    if (!c.Connect(o).ok()) return false;
    std::vector<uint8_t> b(4096, 3), r(4096);
    return c.Write(1, 0, 8, 512, b.data()).ok() && c.Read(1, 0, 8, 512, r.data()).ok() && r == b;
  }

  std::string dir, sock;
  std::unique_ptr<target::Target> tgt;
  std::unique_ptr<target::ControlServer> server;
};

TEST_F(Control, MethodsChangeTheTargetAndReportErrorsByCode) {
  json r = Call(R"({"jsonrpc":"2.0","id":1,"method":"add_namespace","params":{"nqn":"nqn.2024-01.io.nvmf:control","backend":"null:1G"}})");
  EXPECT_EQ(r["id"], 1);
  EXPECT_EQ(r["result"]["nsid"], 2);
  r = Call(R"({"jsonrpc":"2.0","id":"x","method":"get_subsystems"})");
  EXPECT_EQ(r["id"], "x");
  ASSERT_EQ(r["result"][0]["namespaces"].size(), 2u);
  EXPECT_EQ(r["result"][0]["namespaces"][1]["backend"], "null:1G");
  EXPECT_EQ(Call(R"({"jsonrpc":"2.0","id":2,"method":"resize_namespace","params":{"nqn":"nqn.2024-01.io.nvmf:control","nsid":2,"size":"2G"}})")["result"],
            true);
  EXPECT_EQ(Call(R"({"jsonrpc":"2.0","id":3,"method":"remove_namespace","params":{"nqn":"nqn.2024-01.io.nvmf:control","nsid":2}})")["result"],
            true);
  // A notification gets no answer, but is carried out.
  EXPECT_TRUE(Call(R"({"jsonrpc":"2.0","method":"add_host","params":{"nqn":"nqn.2024-01.io.nvmf:control","host":"nqn.2024-01.io.nvmf:h"}})").is_null());
  EXPECT_EQ(Call(R"({"jsonrpc":"2.0","id":4,"method":"get_config"})")["result"]["hosts"][0]["nqn"],
            "nqn.2024-01.io.nvmf:h");
  EXPECT_EQ(Call(R"({"jsonrpc":"2.0","id":5,"method":"add_subsystem","params":{"nqn":"nqn.2024-01.io.nvmf:s2","hosts":["nqn.2024-01.io.nvmf:h"],"allow_any_host":false}})")["result"],
            true);
  r = Call(R"({"jsonrpc":"2.0","id":6,"method":"get_subsystems"})");
  ASSERT_EQ(r["result"].size(), 2u);
  EXPECT_EQ(r["result"][1]["hosts"][0], "nqn.2024-01.io.nvmf:h");
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":7,"method":"add_subsystem","params":{"nqn":"nqn.2024-01.io.nvmf:s3","hosts":[1]}})"),
            -32602);
  EXPECT_EQ(Call(R"({"jsonrpc":"2.0","id":8,"method":"remove_subsystem","params":{"nqn":"nqn.2024-01.io.nvmf:s2"}})")["result"],
            true);

  EXPECT_EQ(ErrorCode("{not json"), -32700);
  EXPECT_EQ(ErrorCode("[1,2]"), -32600);
  EXPECT_EQ(ErrorCode("42"), -32600);
  EXPECT_EQ(ErrorCode(R"({"id":1,"method":"get_ports"})"), -32600);  // no "jsonrpc"
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":"format_everything"})"), -32601);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":"add_namespace","params":[1]})"), -32602);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":"add_namespace","params":{"nqn":"nqn.2024-01.io.nvmf:control"}})"),
            -32602);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":"remove_namespace","params":{"nqn":"nqn.2024-01.io.nvmf:control","nsid":-1}})"),
            -32602);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":"remove_namespace","params":{"nqn":"nqn.2024-01.io.nvmf:control","nsid":9}})"),
            -32001);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":"add_namespace","params":{"nqn":"nqn.2024-01.io.nvmf:control","backend":"mem:1M","nsid":1}})"),
            -32002);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":"resize_namespace","params":{"nqn":"nqn.2024-01.io.nvmf:control","nsid":1,"size":"8M"}})"),
            -32003);
  EXPECT_EQ(ErrorCode(R"({"jsonrpc":"2.0","id":1,"method":"add_namespace","params":{"nqn":"nqn.2014-08.org.nvmexpress.discovery","backend":"mem:1M"}})"),
            -32602);
  json e = Call(R"({"jsonrpc":"2.0","id":7,"method":"remove_namespace","params":{"nqn":"nqn.2024-01.io.nvmf:control","nsid":9}})");
  EXPECT_EQ(e["id"], 7);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("namespace 9"), std::string::npos) << e.dump();
  // Nothing a refused request named has changed.
  r = Call(R"({"jsonrpc":"2.0","id":1,"method":"get_subsystems"})");
  EXPECT_EQ(r["result"][0]["namespaces"].size(), 1u);
}

TEST_F(Control, SaveWritesWhatConfigLoadsBack) {
  json r = Call(R"({"jsonrpc":"2.0","id":1,"method":"add_namespace","params":{"nqn":"nqn.2024-01.io.nvmf:control","backend":"null:64M","nsid":3}})");
  ASSERT_EQ(r["result"]["nsid"], 3);
  const std::string path = dir + "/saved.json";
  r = Call(json{{"jsonrpc", "2.0"}, {"id", 2}, {"method", "save"}, {"params", {{"path", path}}}}.dump());
  ASSERT_EQ(r["result"]["path"], path) << r.dump();
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  target::TargetConfig back;
  Status s = target::ParseNvmetcliConfig(text, &back);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(back.subsystems.size(), 1u);
  ASSERT_EQ(back.subsystems[0].namespaces.size(), 2u);
  EXPECT_EQ(back.subsystems[0].namespaces[1].nsid, 3u);
  EXPECT_EQ(back.subsystems[0].namespaces[1].backend, "null:64M");
  EXPECT_EQ(target::FormatNvmetcliConfig(back), text);
  r = Call(R"({"jsonrpc":"2.0","id":3,"method":"save","params":{"path":"/nonexistent-dir/x.json"}})");
  EXPECT_EQ(r["error"]["code"], -32000);
}

TEST_F(Control, SocketRefusesMalformedRequestsAndTheTargetKeepsServing) {
  ASSERT_TRUE(target::ControlServer::Start(tgt.get(), sock, 0600, &server).ok());
  struct stat st {};
  ASSERT_EQ(stat(sock.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  std::string out = Exchange(
      "garbage\n\n"
      R"({"jsonrpc":"2.0","id":1,"method":"add_namespace","params":{"nqn":"nqn.2024-01.io.nvmf:control","backend":"mem:1M"}})"
      "\n",
      2);
  auto nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos) << out;
  EXPECT_EQ(json::parse(out.substr(0, nl))["error"]["code"], -32700);
  EXPECT_EQ(json::parse(out.substr(nl + 1))["result"]["nsid"], 2);

  // A line over 1 MiB: an error, and the connection closes; memory stays bounded.
  bool closed = false;
  out = Exchange(std::string(2 << 20, 'x'), 1, &closed);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(json::parse(out.substr(0, out.find('\n')))["error"]["code"], -32600);
  EXPECT_TRUE(closed);

  EXPECT_TRUE(HostDoesIo());
  // Still answering.
  out = Exchange(R"({"jsonrpc":"2.0","id":9,"method":"get_ports"})" "\n", 1);
  EXPECT_EQ(json::parse(out)["result"][0]["trsvcid"], std::to_string(tgt->ports()[0]));
}

TEST_F(Control, SocketFileLeftBehindIsReplacedALiveOneIsNot) {
  ASSERT_TRUE(target::ControlServer::Start(tgt.get(), sock, 0600, &server).ok());
  std::unique_ptr<target::ControlServer> second;
  Status s = target::ControlServer::Start(tgt.get(), sock, 0600, &second);
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists) << s.ToString();
  server.reset();  // removes its file
  EXPECT_NE(access(sock.c_str(), F_OK), 0);

  // A socket file nobody listens on (a crashed target's) is replaced.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  close(fd);
  ASSERT_TRUE(target::ControlServer::Start(tgt.get(), sock, 0600, &server).ok());
  server.reset();

  // Any other file is left alone.
  std::ofstream(sock) << "not a socket";
  s = target::ControlServer::Start(tgt.get(), sock, 0600, &second);
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists) << s.ToString();
}

}  // namespace
}  // namespace nvmf::test
