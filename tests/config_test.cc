// ParseNvmetcliConfig (the nvmetcli JSON reader), and the nvmf-target daemon run as a
// separate process: ready line, clean stop on SIGTERM/SIGINT, exit code 2 on bad
// configuration.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nvmf/target.h"

namespace nvmf::target {
namespace {

using json = nlohmann::json;

std::string SamplePath() { return std::string(NVMF_SOURCE_DIR) + "/docs/nvmetcli-example.json"; }

std::string ReadSample() {
  std::ifstream in(SamplePath());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json Sample() { return json::parse(ReadSample()); }

// Parses and expects success.
TargetConfig ParseOk(const std::string& text) {
  TargetConfig tc;
  Status s = ParseNvmetcliConfig(text, &tc);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return tc;
}

// Parses and returns the error message (empty on success, which fails the test).
std::string ParseError(const std::string& text) {
  TargetConfig tc;
  Status s = ParseNvmetcliConfig(text, &tc);
  EXPECT_FALSE(s.ok()) << "parsed: " << text;
  if (s.ok()) return "";
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  return s.message();
}

std::string JsonError(const json& j) { return ParseError(j.dump()); }

// ---------------------------------------------------------------------------------------
// ParseNvmetcliConfig

TEST(NvmetcliConfig, SampleFile) {
  std::string text = ReadSample();
  ASSERT_FALSE(text.empty()) << SamplePath();
  TargetConfig tc = ParseOk(text);
  ASSERT_EQ(tc.ports.size(), 1u);
  EXPECT_EQ(tc.ports[0].portid, 1);
  EXPECT_EQ(tc.ports[0].addr, "127.0.0.1");
  EXPECT_EQ(tc.ports[0].port, 4420);
  EXPECT_EQ(tc.ports[0].subsystems, std::vector<std::string>{"nqn.2024-01.io.nvmf:example"});
  ASSERT_EQ(tc.subsystems.size(), 1u);
  const SubsystemConfig& sub = tc.subsystems[0];
  EXPECT_EQ(sub.nqn, "nqn.2024-01.io.nvmf:example");
  EXPECT_EQ(sub.serial, "5f0e2b7c91d4a3e8");
  EXPECT_EQ(sub.model, "nvmf example");
  EXPECT_FALSE(sub.allow_any_host);
  EXPECT_EQ(sub.allowed_hosts,
            std::vector<std::string>{
                "nqn.2014-08.org.nvmexpress:uuid:6b1d4f3e-2c8a-4e0b-9a57-3f1e8d2c4b61"});
  ASSERT_EQ(sub.namespaces.size(), 1u);
  EXPECT_EQ(sub.namespaces[0].nsid, 1u);
  EXPECT_EQ(sub.namespaces[0].backend, "mem:64M");
  EXPECT_EQ(sub.namespaces[0].uuid, "3c8f6a2e-9b41-4d7a-8e05-1f2d3c4b5a69");
  EXPECT_TRUE(sub.namespaces[0].enabled);
}

// What the sample describes, the target serves.
TEST(NvmetcliConfig, AnaGroupsAndNamespaceGroups) {
  json j = {{"subsystems", {{{"nqn", "nqn.2024-01.io.nvmf:a"},
                             {"namespaces", {{{"nsid", 1}, {"ana_grpid", 2}, {"device", {{"path", "mem:1M"}}}}}}}}},
            {"ports", {{{"portid", 1},
                        {"addr", {{"traddr", "127.0.0.1"}, {"trsvcid", "4420"}}},
                        {"ana_groups", {{{"grpid", 1}, {"ana", {{"state", "optimized"}}}},
                                        {{"grpid", 2}, {"ana", {{"state", "inaccessible"}}}}}},
                        {"subsystems", {"nqn.2024-01.io.nvmf:a"}}}}}};
  TargetConfig tc = ParseOk(j.dump());
  EXPECT_EQ(tc.subsystems[0].namespaces[0].ana_group, 2u);
  EXPECT_EQ(tc.ports[0].ana_states, (std::map<uint32_t, uint8_t>{{2, 0x03}}));  // optimized is the default
  j["ports"][0]["ana_groups"][1]["ana"]["state"] = "sleepy";
  EXPECT_EQ(JsonError(j),
            "port 1: ana_groups[1]: ANA state 'sleepy' is not optimized, non-optimized, inaccessible, "
            "persistent-loss or change");
  j["ports"][0]["ana_groups"][1]["grpid"] = 33;
  EXPECT_NE(JsonError(j).find("\"grpid\" must be between 1 and 32"), std::string::npos) << JsonError(j);
  j["ports"][0]["ana_groups"] = json::array();
  j["subsystems"][0]["namespaces"][0]["ana_grpid"] = 0;
  EXPECT_NE(JsonError(j).find("\"ana_grpid\" must be between 1 and 32"), std::string::npos) << JsonError(j);
}

TEST(NvmetcliConfig, TlsPortsRoundTrip) {
  json j = {{"subsystems", {{{"nqn", "nqn.2024-01.io.nvmf:a"}, {"namespaces", {{{"nsid", 1}, {"device", {{"path", "mem:1M"}}}}}}}}},
            {"ports", {{{"portid", 1},
                        {"addr", {{"traddr", "127.0.0.1"}, {"trsvcid", "4420"}, {"tsas", "tls1.3"}, {"treq", "required"}}},
                        {"subsystems", {"nqn.2024-01.io.nvmf:a"}}},
                       {{"portid", 2},
                        {"addr", {{"traddr", "127.0.0.1"}, {"trsvcid", "4421"}, {"addr_tsas", "tls1.3"}, {"addr_treq", "not required"}}},
                        {"subsystems", {"nqn.2024-01.io.nvmf:a"}}},
                       {{"portid", 3},
                        {"addr", {{"traddr", "127.0.0.1"}, {"trsvcid", "4422"}, {"treq", "not specified"}}},
                        {"subsystems", {"nqn.2024-01.io.nvmf:a"}}}}}};
  TargetConfig tc = ParseOk(j.dump());
  ASSERT_EQ(tc.ports.size(), 3u);
  EXPECT_EQ(tc.ports[0].tls, SecureChannel::kRequired);
  EXPECT_EQ(tc.ports[1].tls, SecureChannel::kOptional);
  EXPECT_EQ(tc.ports[2].tls, SecureChannel::kNone);
  TargetConfig again = ParseOk(FormatNvmetcliConfig(tc));
  for (size_t i = 0; i < 3; i++) EXPECT_EQ(again.ports[i].tls, tc.ports[i].tls) << i;
  EXPECT_EQ(FormatNvmetcliConfig(tc).find("psk"), std::string::npos);
  j["ports"][0]["addr"]["tsas"] = "tls1.2";
  EXPECT_NE(JsonError(j).find("must be none or tls1.3"), std::string::npos) << JsonError(j);
  j["ports"][0]["addr"]["tsas"] = "none";
  EXPECT_NE(JsonError(j).find("required needs"), std::string::npos) << JsonError(j);
}

TEST(NvmetcliConfig, SampleFileStartsTarget) {
  TargetConfig tc = ParseOk(ReadSample());
  ASSERT_EQ(tc.ports.size(), 1u);
  tc.ports[0].port = 0;  // not 4420: other tests may run at the same time
  tc.log = [](const std::string&) {};
  std::unique_ptr<Target> target;
  Status s = Target::Start(tc, &target);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(target->ports().size(), 1u);
  EXPECT_NE(target->ports()[0], 0);
  target->Stop();
}

TEST(NvmetcliConfig, OnlyPortsAndSubsystemsAreReplaced) {
  TargetConfig tc;
  tc.threads = 3;
  tc.max_io_queues = 5;
  tc.ports.resize(4);
  ASSERT_TRUE(ParseNvmetcliConfig(ReadSample(), &tc).ok());
  EXPECT_EQ(tc.threads, 3);
  EXPECT_EQ(tc.max_io_queues, 5);
  EXPECT_EQ(tc.ports.size(), 1u);
}

TEST(NvmetcliConfig, ErrorLeavesOutputUnchanged) {
  TargetConfig tc;
  tc.ports.resize(2);
  tc.ports[1].addr = "10.0.0.1";
  json j = Sample();
  j["ports"][0]["addr"]["trtype"] = "fc";
  EXPECT_FALSE(ParseNvmetcliConfig(j.dump(), &tc).ok());
  ASSERT_EQ(tc.ports.size(), 2u);
  EXPECT_EQ(tc.ports[1].addr, "10.0.0.1");
  EXPECT_TRUE(tc.subsystems.empty());
}

TEST(NvmetcliConfig, EmptyObjectAndEmptyLists) {
  TargetConfig tc = ParseOk("{}");
  EXPECT_TRUE(tc.ports.empty());
  EXPECT_TRUE(tc.subsystems.empty());
  tc = ParseOk(R"({"hosts": [], "ports": [], "subsystems": []})");
  EXPECT_TRUE(tc.ports.empty());
}

TEST(NvmetcliConfig, UnknownKeysAreIgnored) {
  json j = Sample();
  j["something_new"] = {{"a", 1}};
  j["ports"][0]["ana_groups"] = json::array({{{"ana", {{"state", "optimized"}}}, {"grpid", 1}}});
  j["ports"][0]["addr"]["future"] = 7;
  j["subsystems"][0]["passthru"] = {{"enable", 0}};
  j["subsystems"][0]["attr"]["qid_max"] = "128";
  j["subsystems"][0]["namespaces"][0]["ana_grpid"] = 1;
  j["subsystems"][0]["namespaces"][0]["device"]["p2pmem"] = "auto";
  j["hosts"][0]["dhchap_key"] = "";
  TargetConfig tc = ParseOk(j.dump());
  EXPECT_EQ(tc.ports.size(), 1u);
  EXPECT_EQ(tc.subsystems.size(), 1u);
}

TEST(NvmetcliConfig, DevicePathBecomesFileBackend) {
  json j = Sample();
  j["subsystems"][0]["namespaces"][0]["device"]["path"] = "/dev/nvme0n1";
  EXPECT_EQ(ParseOk(j.dump()).subsystems[0].namespaces[0].backend, "file:/dev/nvme0n1");
  j["subsystems"][0]["namespaces"][0]["device"]["path"] = "/var/lib/disk.img";
  EXPECT_EQ(ParseOk(j.dump()).subsystems[0].namespaces[0].backend, "file:/var/lib/disk.img");
}

// Our extension: a path that is already a backend spec is used as is.
TEST(NvmetcliConfig, BackendSpecPathsAreUsedAsIs) {
  for (const char* spec : {"mem:64M", "null:1G", "file:/tmp/x.img"}) {
    json j = Sample();
    j["subsystems"][0]["namespaces"][0]["device"]["path"] = spec;
    EXPECT_EQ(ParseOk(j.dump()).subsystems[0].namespaces[0].backend, spec);
  }
  // Only those prefixes: anything else is a file name.
  json j = Sample();
  j["subsystems"][0]["namespaces"][0]["device"]["path"] = "memory:64M";
  EXPECT_EQ(ParseOk(j.dump()).subsystems[0].namespaces[0].backend, "file:memory:64M");
}

TEST(NvmetcliConfig, AllowAnyHostForms) {
  struct Case {
    json value;
    bool want;
  };
  const Case cases[] = {{"1", true}, {"0", false}, {true, true}, {false, false}, {1, true}, {0, false}};
  for (const Case& c : cases) {
    json j = Sample();
    j["subsystems"][0]["attr"]["allow_any_host"] = c.value;
    EXPECT_EQ(ParseOk(j.dump()).subsystems[0].allow_any_host, c.want) << c.value.dump();
  }
  // Absent: Linux's default for a new subsystem, 0.
  json j = Sample();
  j["subsystems"][0]["attr"].erase("allow_any_host");
  EXPECT_FALSE(ParseOk(j.dump()).subsystems[0].allow_any_host);
  j["subsystems"][0].erase("attr");
  EXPECT_FALSE(ParseOk(j.dump()).subsystems[0].allow_any_host);

  for (json bad : {json("yes"), json(2), json("true"), json(json::array())}) {
    json k = Sample();
    k["subsystems"][0]["attr"]["allow_any_host"] = bad;
    EXPECT_EQ(JsonError(k),
              "subsystems[0]: \"attr.allow_any_host\" must be \"1\" or \"0\" (or true/false), not " +
                  bad.dump());
  }
}

TEST(NvmetcliConfig, Ipv6) {
  json j = Sample();
  j["ports"][0]["addr"]["adrfam"] = "ipv6";
  j["ports"][0]["addr"]["traddr"] = "::1";
  TargetConfig tc = ParseOk(j.dump());
  ASSERT_EQ(tc.ports.size(), 1u);
  EXPECT_EQ(tc.ports[0].addr, "::1");
  j["ports"][0]["addr"]["traddr"] = "fe80::1%lo";
  EXPECT_EQ(ParseOk(j.dump()).ports[0].addr, "fe80::1%lo");
  j["ports"][0]["addr"]["traddr"] = "::";
  EXPECT_EQ(ParseOk(j.dump()).ports[0].addr, "::");

  j["ports"][0]["addr"]["traddr"] = "127.0.0.1";
  EXPECT_EQ(JsonError(j), "port 1: \"addr.traddr\" '127.0.0.1' is not an IPv6 address");
  j["ports"][0]["addr"]["adrfam"] = "ipv4";
  j["ports"][0]["addr"]["traddr"] = "::1";
  EXPECT_EQ(JsonError(j), "port 1: \"addr.traddr\" '::1' is not an IPv4 address");
  // No address family: taken from the address.
  j["ports"][0]["addr"].erase("adrfam");
  EXPECT_EQ(ParseOk(j.dump()).ports[0].addr, "::1");
  j["ports"][0]["addr"]["traddr"] = "target.example";
  EXPECT_EQ(JsonError(j), "port 1: \"addr.traddr\" 'target.example' is not an IPv4 or IPv6 address");
  j["ports"][0]["addr"]["adrfam"] = "fc";
  EXPECT_EQ(JsonError(j), "port 1: address family fc is not supported (ipv4 or ipv6)");
}

TEST(NvmetcliConfig, TransportTypes) {
  json j = Sample();
  json port2 = j["ports"][0];
  port2["portid"] = 2;
  port2["addr"]["trtype"] = "rdma";
  port2["addr"]["trsvcid"] = "4421";
  j["ports"].push_back(port2);
  TargetConfig tc = ParseOk(j.dump());
  ASSERT_EQ(tc.ports.size(), 2u);
  EXPECT_EQ(tc.ports[0].trtype, TransportType::kTcp);
  EXPECT_EQ(tc.ports[1].trtype, TransportType::kRdma);
  EXPECT_EQ(tc.ports[1].port, 4421);
  j["ports"][1]["addr"]["trtype"] = "loop";
  EXPECT_EQ(JsonError(j), "port 2: transport loop is not supported (tcp or rdma)");
  j["ports"][1]["addr"]["trtype"] = "fc";
  EXPECT_EQ(JsonError(j), "port 2: transport fc is not supported (tcp or rdma)");
  // No trtype: TCP.
  j["ports"][1]["addr"].erase("trtype");
  tc = ParseOk(j.dump());
  ASSERT_EQ(tc.ports.size(), 2u);
  EXPECT_EQ(tc.ports[1].portid, 2);
  EXPECT_EQ(tc.ports[1].trtype, TransportType::kTcp);
}

TEST(NvmetcliConfig, Trsvcid) {
  json j = Sample();
  j["ports"][0]["addr"]["trsvcid"] = "0";
  EXPECT_EQ(ParseOk(j.dump()).ports[0].port, 0);
  j["ports"][0]["addr"]["trsvcid"] = "65535";
  EXPECT_EQ(ParseOk(j.dump()).ports[0].port, 65535);
  j["ports"][0]["addr"]["trsvcid"] = 4430;  // a number is accepted too
  EXPECT_EQ(ParseOk(j.dump()).ports[0].port, 4430);
  for (const char* bad : {"65536", "44x", "", "-1", " 4420", "100000"}) {
    j["ports"][0]["addr"]["trsvcid"] = bad;
    EXPECT_EQ(JsonError(j), std::string("port 1: \"addr.trsvcid\" must be a TCP port number "
                                         "(0-65535), not '") + bad + "'");
  }
  j["ports"][0]["addr"]["trsvcid"] = 70000;
  EXPECT_EQ(JsonError(j), "port 1: \"addr.trsvcid\" must be between 0 and 65535, not 70000");
  j["ports"][0]["addr"]["trsvcid"] = json::array();
  EXPECT_EQ(JsonError(j), "port 1: \"addr.trsvcid\" must be a string, not array");
}

TEST(NvmetcliConfig, PortWithoutSubsystemsDoesNotListen) {
  json j = Sample();
  json port2 = j["ports"][0];
  port2["portid"] = 2;
  port2["subsystems"] = json::array();
  j["ports"].push_back(port2);
  TargetConfig tc = ParseOk(j.dump());
  ASSERT_EQ(tc.ports.size(), 1u);
  EXPECT_EQ(tc.ports[0].portid, 1);
}

TEST(NvmetcliConfig, NamespaceDefaults) {
  json j = Sample();
  json& ns = j["subsystems"][0]["namespaces"][0];
  ns.erase("nsid");
  ns.erase("enable");
  ns["device"].erase("uuid");
  ns["device"].erase("nguid");
  TargetConfig tc = ParseOk(j.dump());
  const NamespaceConfig& n = tc.subsystems[0].namespaces[0];
  EXPECT_EQ(n.nsid, 0u);  // the next free one
  EXPECT_TRUE(n.enabled);
  EXPECT_EQ(n.uuid, "");
  // A disabled namespace needs no device.
  j["subsystems"][0]["namespaces"][0] = {{"nsid", 3}, {"enable", 0}, {"device", {{"path", ""}}}};
  tc = ParseOk(j.dump());
  EXPECT_FALSE(tc.subsystems[0].namespaces[0].enabled);
  EXPECT_EQ(tc.subsystems[0].namespaces[0].nsid, 3u);
}

// Each error names the place.
TEST(NvmetcliConfig, Errors) {
  EXPECT_EQ(ParseError("[]"), "the configuration must be a JSON object, not array");
  EXPECT_EQ(ParseError("null"), "the configuration must be a JSON object, not null");
  std::string m = ParseError("{\"ports\": [ }");
  EXPECT_EQ(m.rfind("not valid JSON: parse error at line 1, column 13", 0), 0u) << m;
  m = ParseError("");
  EXPECT_EQ(m.rfind("not valid JSON: ", 0), 0u) << m;
  m = ParseError(ReadSample() + "x");
  EXPECT_EQ(m.rfind("not valid JSON: ", 0), 0u) << m;

  EXPECT_EQ(ParseError(R"({"ports": {}})"), "configuration: \"ports\" must be an array, not object");
  EXPECT_EQ(ParseError(R"({"subsystems": "x"})"),
            "configuration: \"subsystems\" must be an array, not string");
  EXPECT_EQ(ParseError(R"({"hosts": [3]})"), "hosts[0]: must be an object, not number");
  EXPECT_EQ(ParseError(R"({"hosts": [{}]})"), "hosts[0]: missing \"nqn\"");

  json j = Sample();
  j["subsystems"][0].erase("nqn");
  EXPECT_EQ(JsonError(j), "subsystems[0]: missing \"nqn\"");
  j = Sample();
  j["subsystems"][0]["nqn"] = 5;
  EXPECT_EQ(JsonError(j), "subsystems[0]: \"nqn\" must be a string, not number");
  j["subsystems"][0]["nqn"] = "";
  EXPECT_EQ(JsonError(j), "subsystems[0]: \"nqn\" is empty");
  j = Sample();
  j["subsystems"][0] = "nqn.x";
  EXPECT_EQ(JsonError(j), "subsystems[0]: must be an object, not string");
  j = Sample();
  j["subsystems"][0]["attr"] = json::array();
  EXPECT_EQ(JsonError(j), "subsystems[0]: \"attr\" must be an object, not array");
  j = Sample();
  j["subsystems"][0]["attr"]["serial"] = 1234;
  EXPECT_EQ(JsonError(j), "subsystems[0]: \"attr.serial\" must be a string, not number");
  j = Sample();
  j["subsystems"][0]["attr"]["model"] = false;
  EXPECT_EQ(JsonError(j), "subsystems[0]: \"attr.model\" must be a string, not boolean");
  j = Sample();
  j["subsystems"][0]["allowed_hosts"] = "nqn.h";
  EXPECT_EQ(JsonError(j), "subsystems[0]: \"allowed_hosts\" must be an array, not string");
  j["subsystems"][0]["allowed_hosts"] = {"nqn.h", 7};
  EXPECT_EQ(JsonError(j), "subsystems[0].allowed_hosts[1]: must be a host NQN string, not number");

  // Namespaces, in a second subsystem.
  json sub2 = Sample()["subsystems"][0];
  sub2["nqn"] = "nqn.2024-01.io.nvmf:second";
  auto with_ns = [&](const json& ns) {
    json k = Sample();
    json s2 = sub2;
    s2["namespaces"] = json::array({ns});
    k["subsystems"].push_back(s2);
    return k;
  };
  json ns = sub2["namespaces"][0];
  json bad = ns;
  bad["nsid"] = "1";
  EXPECT_EQ(JsonError(with_ns(bad)), "subsystems[1].namespaces[0]: \"nsid\" must be a number, not string");
  bad["nsid"] = 1.5;
  EXPECT_EQ(JsonError(with_ns(bad)),
            "subsystems[1].namespaces[0]: \"nsid\" must be a whole number between 1 and 1024, not 1.5");
  bad["nsid"] = -1;
  EXPECT_EQ(JsonError(with_ns(bad)),
            "subsystems[1].namespaces[0]: \"nsid\" must be a whole number between 1 and 1024, not -1");
  bad["nsid"] = 0;
  EXPECT_EQ(JsonError(with_ns(bad)),
            "subsystems[1].namespaces[0]: \"nsid\" must be between 1 and 1024, not 0");
  bad["nsid"] = 4294967295ull;
  EXPECT_EQ(JsonError(with_ns(bad)),
            "subsystems[1].namespaces[0]: \"nsid\" must be between 1 and 1024, not 4294967295");
  bad = ns;
  bad["enable"] = "on";
  EXPECT_EQ(JsonError(with_ns(bad)),
            "subsystems[1].namespaces[0]: \"enable\" must be \"1\" or \"0\" (or true/false), not \"on\"");
  bad = ns;
  bad["device"] = "/dev/x";
  EXPECT_EQ(JsonError(with_ns(bad)), "subsystems[1].namespaces[0]: \"device\" must be an object, not string");
  bad = ns;
  bad["device"]["path"] = 3;
  EXPECT_EQ(JsonError(with_ns(bad)),
            "subsystems[1].namespaces[0]: \"device.path\" must be a string, not number");
  bad = ns;
  bad["device"].erase("path");
  EXPECT_EQ(JsonError(with_ns(bad)),
            "subsystems[1].namespaces[0]: missing \"device.path\" (an enabled namespace needs one)");
  bad = ns;
  bad.erase("device");
  EXPECT_EQ(JsonError(with_ns(bad)),
            "subsystems[1].namespaces[0]: missing \"device.path\" (an enabled namespace needs one)");
  bad = ns;
  bad["device"]["uuid"] = "not-a-uuid";
  EXPECT_EQ(JsonError(with_ns(bad)),
            "subsystems[1].namespaces[0]: \"device.uuid\" 'not-a-uuid' is not a UUID (8-4-4-4-12 "
            "hexadecimal digits)");
  bad = 5;
  EXPECT_EQ(JsonError(with_ns(bad)), "subsystems[1].namespaces[0]: must be an object, not number");
  {
    json k = Sample();
    json s2 = sub2;
    s2["namespaces"].push_back(ns);  // nsid 1 twice
    k["subsystems"].push_back(s2);
    EXPECT_EQ(JsonError(k),
              "subsystems[1].namespaces[1]: nsid 1 is also used by subsystems[1].namespaces[0]");
  }
  {
    json k = Sample();
    k["subsystems"].push_back(k["subsystems"][0]);
    EXPECT_EQ(JsonError(k),
              "subsystems[1]: subsystem nqn.2024-01.io.nvmf:example is also defined by subsystems[0]");
  }

  // Ports.
  j = Sample();
  j["ports"][0].erase("portid");
  EXPECT_EQ(JsonError(j), "ports[0]: missing \"portid\"");
  j["ports"][0]["portid"] = "1";
  EXPECT_EQ(JsonError(j), "ports[0]: \"portid\" must be a number, not string");
  j["ports"][0]["portid"] = 65536;
  EXPECT_EQ(JsonError(j), "ports[0]: \"portid\" must be between 0 and 65535, not 65536");
  j = Sample();
  j["ports"][0] = json::array();
  EXPECT_EQ(JsonError(j), "ports[0]: must be an object, not array");
  j = Sample();
  j["ports"][0].erase("addr");
  EXPECT_EQ(JsonError(j), "port 1: missing \"addr\"");
  j = Sample();
  j["ports"][0]["addr"].erase("traddr");
  EXPECT_EQ(JsonError(j), "port 1: missing \"addr.traddr\"");
  j = Sample();
  j["ports"][0]["addr"]["traddr"] = nullptr;
  EXPECT_EQ(JsonError(j), "port 1: missing \"addr.traddr\"");
  j = Sample();
  j["ports"][0]["addr"].erase("trsvcid");
  EXPECT_EQ(JsonError(j), "port 1: missing \"addr.trsvcid\"");
  j = Sample();
  j["ports"][0]["addr"]["trtype"] = 3;
  EXPECT_EQ(JsonError(j), "port 1: \"addr.trtype\" must be a string, not number");
  j = Sample();
  j["ports"][0]["subsystems"] = {"nqn.2024-01.io.nvmf:example", "nqn.2024-01.io.nvmf:nope"};
  EXPECT_EQ(JsonError(j),
            "port 1: subsystems[1]: subsystem nqn.2024-01.io.nvmf:nope is not defined under "
            "\"subsystems\"");
  j["ports"][0]["subsystems"] = {1};
  EXPECT_EQ(JsonError(j), "port 1: subsystems[0]: must be a subsystem NQN string, not number");
  j = Sample();
  j["ports"].push_back(j["ports"][0]);
  EXPECT_EQ(JsonError(j), "ports[1]: portid 1 is also used by ports[0]");
}

// Whatever the input, an error, never an exception or a crash.
TEST(NvmetcliConfig, NeverThrows) {
  std::string text = ReadSample();
  for (size_t n = 0; n < text.size(); n++) {
    TargetConfig tc;
    EXPECT_NO_THROW((void)ParseNvmetcliConfig(text.substr(0, n), &tc));
  }
  // Every value of the sample replaced by values of other types.
  const json others[] = {nullptr, true, -3, 2.5, "s", json::array(), json::object(), 99999999999};
  std::vector<json::json_pointer> pointers;
  json flat = Sample().flatten();
  for (auto& [key, value] : flat.items()) {
    json::json_pointer p(key);
    while (!p.empty()) {
      pointers.push_back(p);
      p = p.parent_pointer();
    }
  }
  for (const auto& p : pointers) {
    for (const json& o : others) {
      json j = Sample();
      j[p] = o;
      TargetConfig tc;
      EXPECT_NO_THROW((void)ParseNvmetcliConfig(j.dump(), &tc)) << p.to_string();
    }
  }
  EXPECT_NO_THROW((void)ParseNvmetcliConfig(std::string("{\"a\":\"\xff\xfe\"}"), nullptr));
  TargetConfig tc;
  EXPECT_FALSE(ParseNvmetcliConfig(std::string("{\"a\":\"\xff\xfe\"}"), &tc).ok());
}

// ---------------------------------------------------------------------------------------
// The nvmf-target daemon, run as a process.

class Daemon {
 public:
  explicit Daemon(std::vector<std::string> args) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      std::vector<char*> argv;
      static std::string bin = NVMF_TARGET_BIN;
      argv.push_back(bin.data());
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }
  ~Daemon() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
  }

  // Reads output until stdout holds `needle`, both pipes end, or the time is up.
  bool WaitFor(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out_.find(needle) == std::string::npos) {
      if (out_fd_ < 0 && err_fd_ < 0) return false;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      Pump(static_cast<int>(left.count()));
    }
    return true;
  }

  // Reads the rest of the output and waits for the process; its exit code, or -1 (killed
  // by a signal, or still running when the time was up).
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out_fd_ >= 0 || err_fd_ >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return -1;
      Pump(static_cast<int>(left.count()));
    }
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      if (std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void Signal(int sig) { kill(pid_, sig); }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  void Pump(int timeout_ms) {
    pollfd fds[2];
    int n = 0;
    if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
    if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
    if (poll(fds, n, std::min(timeout_ms, 100)) <= 0) return;
    for (int i = 0; i < n; i++) {
      if (fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t r = read(fds[i].fd, buf, sizeof(buf));
      bool is_out = fds[i].fd == out_fd_;
      if (r > 0) {
        (is_out ? out_ : err_).append(buf, static_cast<size_t>(r));
      } else {
        close(fds[i].fd);
        (is_out ? out_fd_ : err_fd_) = -1;
      }
    }
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool exited_ = false;
  std::string out_;
  std::string err_;
};

// Runs the daemon to the end: its exit code.
int RunDaemon(const std::vector<std::string>& args, std::string* out, std::string* err) {
  Daemon d(args);
  int rc = d.Wait();
  *out = d.out();
  *err = d.err();
  return rc;
}

// The port after the first "ADDR:" in the text at or after `from`, or -1.
int PortAfter(const std::string& text, const std::string& addr, size_t from = 0) {
  size_t at = text.find(addr + ":", from);
  if (at == std::string::npos) return -1;
  size_t i = at + addr.size() + 1;
  size_t digits = 0;
  while (i + digits < text.size() && std::isdigit(static_cast<unsigned char>(text[i + digits]))) {
    digits++;
  }
  if (digits == 0 || digits > 5) return -1;
  return std::stoi(text.substr(i, digits));
}

// "YYYY-MM-DD HH:MM:SS.mmm nvmf-target: " at the start.
bool StartsWithTimestamp(const std::string& line) {
  const std::string pattern = "dddd-dd-dd dd:dd:dd.ddd nvmf-target: ";
  if (line.size() < pattern.size()) return false;
  for (size_t i = 0; i < pattern.size(); i++) {
    if (pattern[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(line[i])) : line[i] != pattern[i]) {
      return false;
    }
  }
  return true;
}

// Connects to a listener and checks that an NVMe/TCP target answers there.
bool CanConnect(int family, const char* addr, int port) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, addr, &a->sin_addr);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, addr, &a->sin6_addr);
    len = sizeof(*a);
  }
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
  if (ok) {
    // Send a bad PDU header and wait for the target to end the connection, so that no
    // connection is half set up when the test stops the target. (A handshake still in
    // progress when the target stops leaks; reported, see src/tcp/handshake.cc.)
    const char zeros[8] = {};
    ok = send(fd, zeros, sizeof(zeros), MSG_NOSIGNAL) == sizeof(zeros);
    pollfd p{fd, POLLIN, 0};
    char buf[256];
    while (ok) {
      if (poll(&p, 1, 10000) != 1) {
        ok = false;
        break;
      }
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;  // closed (or reset): the target answered and hung up
    }
  }
  close(fd);
  return ok;
}

// A listening socket on a free loopback port, held for the test.
struct HeldPort {
  int fd = -1;
  int port = 0;
  HeldPort() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(fd, 1) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::abort();
    }
    port = ntohs(a.sin_port);
  }
  ~HeldPort() { close(fd); }
};

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/nvmf-config-test-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) std::abort();
  if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) std::abort();
  close(fd);
  return path;
}

TEST(NvmfTargetCli, ReadyThenSigtermStops) {
  Daemon d({"--listen", "127.0.0.1:0", "--ns", "mem:1M", "--ns", "null:1G"});
  ASSERT_TRUE(d.WaitFor("\n")) << d.out() << d.err();
  EXPECT_NE(d.out().find("nvmf-target: ready: nqn.2024-01.io.nvmf:target on 127.0.0.1:"), std::string::npos)
      << d.out();
  EXPECT_NE(d.out().find("(2 namespaces, 1.0 GiB)"), std::string::npos) << d.out();
  int port = PortAfter(d.out(), "127.0.0.1");
  ASSERT_GT(port, 0) << d.out();
  EXPECT_TRUE(CanConnect(AF_INET, "127.0.0.1", port));
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.err();
  EXPECT_NE(d.out().find("nvmf-target: stopped"), std::string::npos) << d.out();
  EXPECT_NE(d.err().find("SIGTERM"), std::string::npos) << d.err();
  // Log lines carry a time stamp: "YYYY-MM-DD HH:MM:SS.mmm nvmf-target: ...".
  EXPECT_TRUE(StartsWithTimestamp(d.err())) << d.err();
}

TEST(NvmfTargetCli, DefaultNamespaceAndSigint) {
  Daemon d({"--listen", "127.0.0.1:0", "--quiet", "--threads", "2"});
  ASSERT_TRUE(d.WaitFor("\n")) << d.out() << d.err();
  EXPECT_NE(d.out().find("(1 namespace, 256 MiB)"), std::string::npos) << d.out();
  d.Signal(SIGINT);
  EXPECT_EQ(d.Wait(), 0) << d.err();
  EXPECT_NE(d.out().find("nvmf-target: stopped"), std::string::npos) << d.out();
  EXPECT_EQ(d.err(), "");  // --quiet
}

TEST(NvmfTargetCli, SeveralListenersShowTheirPorts) {
  Daemon d({"--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--allow-host",
            "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001", "--nqn",
            "nqn.2024-01.io.nvmf:cli"});
  ASSERT_TRUE(d.WaitFor("\n")) << d.out() << d.err();
  const std::string head = "ready: nqn.2024-01.io.nvmf:cli on 127.0.0.1:";
  size_t at = d.out().find(head);
  ASSERT_NE(at, std::string::npos) << d.out();
  int port1 = PortAfter(d.out(), "127.0.0.1", at);
  size_t second = d.out().find(", 127.0.0.1:", at);
  ASSERT_NE(second, std::string::npos) << d.out();
  int port2 = PortAfter(d.out(), "127.0.0.1", second);
  ASSERT_GT(port1, 0) << d.out();
  ASSERT_GT(port2, 0) << d.out();
  EXPECT_NE(port1, port2);
  EXPECT_TRUE(CanConnect(AF_INET, "127.0.0.1", port1));
  EXPECT_TRUE(CanConnect(AF_INET, "127.0.0.1", port2));
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.err();
}

TEST(NvmfTargetCli, Ipv6Listener) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool have_v6 = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  if (fd >= 0) close(fd);
  if (!have_v6) GTEST_SKIP() << "no IPv6 loopback here";
  Daemon d({"--listen", "[::1]:0"});
  ASSERT_TRUE(d.WaitFor("\n")) << d.out() << d.err();
  int port = PortAfter(d.out(), "[::1]");
  ASSERT_GT(port, 0) << d.out();
  EXPECT_TRUE(CanConnect(AF_INET6, "::1", port));
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.err();
}

TEST(NvmfTargetCli, ConfigFile) {
  json j = Sample();
  j["ports"][0]["addr"]["trsvcid"] = "0";
  std::string path = WriteTemp(j.dump(2));
  Daemon d({"--config", path});
  bool ready = d.WaitFor("\n");
  unlink(path.c_str());
  ASSERT_TRUE(ready) << d.out() << d.err();
  EXPECT_NE(d.out().find("ready: nqn.2024-01.io.nvmf:example on 127.0.0.1:"), std::string::npos)
      << d.out();
  EXPECT_NE(d.out().find("(1 namespace, 64 MiB)"), std::string::npos) << d.out();
  int port = PortAfter(d.out(), "127.0.0.1");
  EXPECT_GT(port, 0) << d.out();
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.err();
  EXPECT_NE(d.out().find("nvmf-target: stopped"), std::string::npos) << d.out();
}

// Exit code 2 and one clear line on standard error, no ready line.
void ExpectConfigError(const std::vector<std::string>& args, const std::string& message) {
  std::string out, err;
  int rc = RunDaemon(args, &out, &err);
  EXPECT_EQ(rc, 2) << out << err;
  EXPECT_EQ(out.find("ready"), std::string::npos) << out;
  EXPECT_NE(err.find(message), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), err.size() - 1) << "more than one line: " << err;
  EXPECT_EQ(err.rfind("nvmf-target: ", 0), 0u) << err;
}

TEST(NvmfTargetCli, BadNamespace) {
  ExpectConfigError({"--listen", "127.0.0.1:0", "--ns", "mem:lots"}, "backend 'mem:lots': bad size");
  ExpectConfigError({"--listen", "127.0.0.1:0", "--ns", "disk:1G"}, "backend 'disk:1G': unknown kind");
  ExpectConfigError({"--listen", "127.0.0.1:0", "--ns", "file:/nonexistent/nvmf-test.img"},
                    "/nonexistent/nvmf-test.img");
}

TEST(NvmfTargetCli, PortInUse) {
  HeldPort held;
  ExpectConfigError({"--listen", "127.0.0.1:" + std::to_string(held.port)}, "Address already in use");
}

// This machine has no RDMA device (nor, in CI, /dev/infiniband): the target says so and
// exits, rather than crashing or listening on TCP alone.
TEST(NvmfTargetCli, RdmaWithoutDevice) {
  if (access("/dev/infiniband/rdma_cm", F_OK) == 0) GTEST_SKIP() << "this machine has RDMA";
  ExpectConfigError({"--listen", "rdma:127.0.0.1:0"}, "no RDMA device");
  ExpectConfigError({"--listen", "127.0.0.1:0", "--listen", "rdma:127.0.0.1:0"}, "no RDMA device");
}

TEST(NvmfTargetCli, ListenTransportPrefix) {
  Daemon d({"--listen", "tcp:127.0.0.1:0"});
  ASSERT_TRUE(d.WaitFor("\n")) << d.out() << d.err();
  int port = PortAfter(d.out(), "127.0.0.1");
  EXPECT_TRUE(CanConnect(AF_INET, "127.0.0.1", port));
  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(), 0) << d.err();
  ExpectConfigError({"--listen", "udp:127.0.0.1:0"}, "--listen udp:127.0.0.1:0");
}

TEST(NvmfTargetCli, BadListen) {
  ExpectConfigError({"--listen", "::1:4420"}, "--listen ::1:4420: put an IPv6 address in brackets");
  ExpectConfigError({"--listen", "127.0.0.1:http"}, "port 'http' is not a number");
  ExpectConfigError({"--listen", "127.0.0.1:65536"}, "port 65536 is out of range");
  ExpectConfigError({"--listen", "[::1"}, "missing ']'");
  ExpectConfigError({"--listen", ":4420"}, "missing address");
}

TEST(NvmfTargetCli, BadFlags) {
  ExpectConfigError({"--threads", "0"}, "--threads");
  ExpectConfigError({"--no-such-flag"}, "--no-such-flag");
  ExpectConfigError({"--in-capsule", "100"}, "--in-capsule 100 is not a multiple of 16");
}

TEST(NvmfTargetCli, ConfigConflictsWithFlags) {
  std::string path = SamplePath();
  ExpectConfigError({"--config", path, "--nqn", "nqn.2024-01.io.nvmf:x"},
                    "--nqn cannot be used with --config");
  ExpectConfigError({"--config", path, "--ns", "mem:1M"}, "--ns cannot be used with --config");
  ExpectConfigError({"--config", path, "--allow-host", "nqn.2024-01.io.nvmf:h"},
                    "--allow-host cannot be used with --config");
}

TEST(NvmfTargetCli, BadConfigFile) {
  ExpectConfigError({"--config", "/nonexistent/nvmf.json"}, "cannot open /nonexistent/nvmf.json");
  std::string path = WriteTemp("{\"ports\": [");
  ExpectConfigError({"--config", path}, path + ": not valid JSON");
  unlink(path.c_str());
  json j = Sample();
  j["ports"][0]["addr"]["trtype"] = "fc";
  path = WriteTemp(j.dump());
  ExpectConfigError({"--config", path}, path + ": port 1: transport fc is not supported");
  unlink(path.c_str());
}

}  // namespace
}  // namespace nvmf::target
