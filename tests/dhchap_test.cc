// DH-HMAC-CHAP without a transport: secrets, the response formula (vectors computed
// independently with Python's hmac and zlib), and the host's and the controller's
// transactions run against each other, honest and tampered with.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "auth/dhchap.h"
#include "auth/dhchap_controller.h"
#include "auth/dhchap_host.h"
#include "nvmf/spec/auth.h"
#include "nvmf/spec/nvme.h"

namespace nvmf::auth {
namespace {

const char* kSecret00 = "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
const char* kSecret01 = "DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:";
const char* kSecret02 =
    "DHHC-1:02:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vcSEgBQ==:";
const char* kHost = "nqn.2014-08.org.nvmexpress:uuid:host1";
const char* kSub = "nqn.2024-01.io.nvmf:sub";

std::string Hex(const std::vector<uint8_t>& b) {
  std::string s;
  char t[3];
  for (uint8_t x : b) {
    std::snprintf(t, sizeof(t), "%02x", x);
    s += t;
  }
  return s;
}

Secret Parse(const std::string& text) {
  Secret s;
  Status st = ParseSecret(text, &s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

TEST(DhchapSecret, ParsesAndFormatsTheRepresentation) {
  Secret s = Parse(kSecret00);
  EXPECT_EQ(s.transform, Hash::kNone);
  ASSERT_EQ(s.key.size(), 32u);
  EXPECT_EQ(s.key.bytes()[31], 31);
  EXPECT_EQ(FormatSecret(s), kSecret00);
  Secret s2 = Parse(kSecret02);
  EXPECT_EQ(s2.transform, Hash::kSha384);
  EXPECT_EQ(s2.key.size(), 48u);
  EXPECT_EQ(FormatSecret(s2), kSecret02);
}

TEST(DhchapSecret, RefusesBadSecretsWithoutEchoingThem) {
  const std::string good = kSecret00;
  std::string bad_crc = good;
  bad_crc[12] = bad_crc[12] == 'A' ? 'B' : 'A';
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"DHHC-2:00:" + good.substr(10), "form"},
      {"DHHC-1:04:" + good.substr(10), "transform"},
      {bad_crc, "CRC"},
      {"DHHC-1:00:AAECAwQFBgcICQoL:", "32, 48 or 64"},
      {"DHHC-1:02:" + good.substr(10), "length does not match"},
      {"DHHC-1:00:!!!!" + good.substr(14), "base64"},
      {good.substr(0, good.size() - 1), "form"},
  };
  for (const auto& [text, why] : cases) {
    Secret s;
    Status st = ParseSecret(text, &s);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << text;
    EXPECT_NE(st.message().find(why), std::string::npos) << text << ": " << st.message();
    EXPECT_EQ(st.message().find(text.substr(10, 20)), std::string::npos) << "the key was echoed";
  }
}

TEST(DhchapSecret, TransformIsHmacOfTheNqn) {
  EXPECT_EQ(Hex(TransformedKey(Parse(kSecret01), kHost).bytes()),
            "fdcad060ff6bcc863028e0585d4266d095bdd9552424d0ba529a81d95c87ce42");
  EXPECT_EQ(Hex(TransformedKey(Parse(kSecret02), kHost).bytes()),
            "27dbe6e5d8ac3f35333efb2e56d84831681f21ea34f47972687116055568011c1d59d33bc2653514fcf9ac5daeeb47ff");
  EXPECT_EQ(TransformedKey(Parse(kSecret00), kHost), Parse(kSecret00).key);
}

TEST(DhchapSecret, FilesMustBePrivate) {
  char path[] = "/tmp/dhchap_testXXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  { std::ofstream(path) << kSecret00 << "\n"; }
  Secret s;
  chmod(path, 0644);
  Status st = LoadSecret(std::string("@") + path, &s);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("chmod 600"), std::string::npos) << st.ToString();
  chmod(path, 0600);
  ASSERT_TRUE(LoadSecret(std::string("@") + path, &s).ok());
  EXPECT_EQ(FormatSecret(s), kSecret00);
  std::remove(path);
}

TEST(DhchapSecret, GeneratedSecretsParse) {
  for (Hash h : {Hash::kNone, Hash::kSha256, Hash::kSha384, Hash::kSha512}) {
    Secret s;
    ASSERT_TRUE(GenerateSecret(h, 32, &s).ok());
    Secret back = Parse(FormatSecret(s));
    EXPECT_EQ(back.key, s.key);
    EXPECT_EQ(back.transform, h);
    EXPECT_EQ(s.key.size(), h == Hash::kNone ? 32u : HashLength(h));
  }
  Secret s;
  EXPECT_FALSE(GenerateSecret(Hash::kNone, 40, &s).ok());
}

TEST(DhchapResponse, MatchesTheFormula) {
  const Secret s = Parse(kSecret00);
  const std::vector<uint8_t> c(32, 0xA5);
  EXPECT_EQ(Hex(ChallengeResponse(Hash::kSha256, s.key, c.data(), c.size(), 7, 3, "HostHost", kHost,
                                  kSub, SecretBytes())),
            "4e57a748d50763878e3bb18de77d0761f1d7671f77363c66f80d501c169736d1");
  // Augmented with a DH shared value, and the controller's role.
  EXPECT_EQ(Hex(ChallengeResponse(Hash::kSha256, s.key, c.data(), c.size(), 7, 3, "Controller", kSub,
                                  kHost, SecretBytes(std::vector<uint8_t>(256, 0x11)))),
            "5ccfb311123ebc3d0ffd303d3de067e7c85c117cc62d5bb575d913c0db54edd4");
}

TEST(DhchapDh, BothSidesDeriveTheSameValueAndBadValuesAreRefused) {
  DhKey a, b;
  ASSERT_TRUE(a.Generate(DhGroup::kFfdhe2048).ok());
  ASSERT_TRUE(b.Generate(DhGroup::kFfdhe2048).ok());
  ASSERT_EQ(a.public_value().size(), 256u);
  SecretBytes sa, sb;
  ASSERT_TRUE(a.Derive(b.public_value().data(), 256, &sa).ok());
  ASSERT_TRUE(b.Derive(a.public_value().data(), 256, &sb).ok());
  EXPECT_EQ(sa.size(), 256u);
  EXPECT_EQ(sa, sb);
  std::vector<uint8_t> one(256, 0);
  one[255] = 1;  // would make the shared value 1
  EXPECT_FALSE(a.Derive(one.data(), one.size(), &sa).ok());
  std::vector<uint8_t> ff(256, 0xFF);  // above p
  EXPECT_FALSE(a.Derive(ff.data(), ff.size(), &sa).ok());
  EXPECT_FALSE(a.Derive(b.public_value().data(), 255, &sa).ok());
}

// Runs a whole transaction between the two sides; returns the host's result.
struct Outcome {
  Status host;
  ControllerTransaction::State ctrl;
  std::string ctrl_failure;
};

using Tamper = std::function<void(std::vector<uint8_t>*)>;

Outcome Authenticate(const HostAuthConfig& hc, ControllerTransaction* ct,
                 uint16_t tid = 1, Tamper tamper_reply = nullptr) {
  HostTransaction ht(hc, kHost, kSub, tid);
  std::vector<uint8_t> msg = ht.Negotiate(), got, send;
  auto done = [&](Status s) { return Outcome{s, ct->state(), ct->failure()}; };
  EXPECT_EQ(ct->Send(msg.data(), msg.size()), spec::kStatusSuccess);
  EXPECT_EQ(ct->Receive(4096, &got), spec::kStatusSuccess);
  Status s = ht.OnChallenge(got.data(), got.size(), &msg);
  if (!s.ok()) return done(s);
  if (tamper_reply) tamper_reply(&msg);
  EXPECT_EQ(ct->Send(msg.data(), msg.size()), spec::kStatusSuccess);
  EXPECT_EQ(ct->Receive(4096, &got), spec::kStatusSuccess);
  s = ht.OnSuccess1(got.data(), got.size(), &send);
  if (!send.empty()) {
    EXPECT_EQ(ct->Send(send.data(), send.size()), spec::kStatusSuccess);
  }
  return done(s);
}

TEST(DhchapTransaction, EveryHashAndGroupUniAndBidirectional) {
  for (Hash h : {Hash::kSha256, Hash::kSha384, Hash::kSha512}) {
    for (DhGroup g : {DhGroup::kNull, DhGroup::kFfdhe2048, DhGroup::kFfdhe3072, DhGroup::kFfdhe8192}) {
      for (bool bidi : {false, true}) {
        ControllerAuthConfig cc{Parse(kSecret01), bidi ? Parse(kSecret02) : Secret{}, h, g};
        HostAuthConfig hc{Parse(kSecret01), bidi ? Parse(kSecret02) : Secret{}};
        ControllerTransaction ct(cc, kHost, kSub, 100);
        Outcome r = Authenticate(hc, &ct);
        const std::string what = std::string(HashName(h)) + " " + DhGroupName(g) + (bidi ? " bidi" : "");
        EXPECT_TRUE(r.host.ok()) << what << ": " << r.host.ToString();
        EXPECT_TRUE(ct.authenticated()) << what << ": " << r.ctrl_failure;
        EXPECT_EQ(ct.hash(), h);
        EXPECT_EQ(ct.dhgroup(), g);
        EXPECT_EQ(ct.bidirectional(), bidi);
      }
    }
  }
}

TEST(DhchapTransaction, AWrongHostSecretIsRefusedWithFailure1) {
  ControllerAuthConfig cc{Parse(kSecret00), {}, Hash::kSha256, DhGroup::kFfdhe2048};
  Secret other;
  ASSERT_TRUE(GenerateSecret(Hash::kNone, 32, &other).ok());
  HostAuthConfig hc{other, {}};
  ControllerTransaction ct(cc, kHost, kSub, 1);
  Outcome r = Authenticate(hc, &ct);
  EXPECT_EQ(r.host.code(), Status::Code::kAuthFailed) << r.host.ToString();
  EXPECT_NE(r.host.message().find("authentication failed"), std::string::npos) << r.host.ToString();
  EXPECT_EQ(r.ctrl, ControllerTransaction::State::kFailed);
  EXPECT_NE(r.ctrl_failure.find("response is wrong"), std::string::npos) << r.ctrl_failure;
  EXPECT_FALSE(ct.authenticated());
}

TEST(DhchapTransaction, TheSameSecretForAnotherHostNqnIsRefused) {
  // A transformed secret binds the host NQN: the key alone does not authenticate another name.
  ControllerAuthConfig cc{Parse(kSecret01), {}, Hash::kSha256, DhGroup::kNull};
  HostAuthConfig hc{Parse(kSecret01), {}};
  ControllerTransaction ct(cc, "nqn.2014-08.org.nvmexpress:uuid:other", kSub, 1);
  EXPECT_EQ(Authenticate(hc, &ct).host.code(), Status::Code::kAuthFailed);
}

TEST(DhchapTransaction, AControllerWithoutTheControllerSecretIsRefusedByTheHost) {
  Secret wrong;
  ASSERT_TRUE(GenerateSecret(Hash::kSha384, 0, &wrong).ok());
  ControllerAuthConfig cc{Parse(kSecret00), wrong, Hash::kSha256, DhGroup::kNull};
  HostAuthConfig hc{Parse(kSecret00), Parse(kSecret02)};
  ControllerTransaction ct(cc, kHost, kSub, 1);
  Outcome r = Authenticate(hc, &ct);
  EXPECT_EQ(r.host.code(), Status::Code::kAuthFailed) << r.host.ToString();
  EXPECT_EQ(r.ctrl, ControllerTransaction::State::kFailed) << "Failure2 reached the controller";
  // A controller with no controller secret at all refuses the host's request itself.
  ControllerAuthConfig none{Parse(kSecret00), {}, Hash::kSha256, DhGroup::kNull};
  ControllerTransaction ct2(none, kHost, kSub, 1);
  EXPECT_EQ(Authenticate(hc, &ct2).host.code(), Status::Code::kAuthFailed);
}

TEST(DhchapTransaction, ATamperedReplyFails) {
  ControllerAuthConfig cc{Parse(kSecret00), {}, Hash::kSha256, DhGroup::kFfdhe2048};
  HostAuthConfig hc{Parse(kSecret00), {}};
  const std::vector<std::pair<std::string, Tamper>> tampers = {
      {"response bit", [](std::vector<uint8_t>* m) { (*m)[16] ^= 1; }},
      {"DH value bit", [](std::vector<uint8_t>* m) { m->back() ^= 1; }},
      {"truncated", [](std::vector<uint8_t>* m) { m->resize(m->size() - 1); }},
      {"t_id", [](std::vector<uint8_t>* m) { (*m)[4] ^= 1; }},
      {"hash length", [](std::vector<uint8_t>* m) { (*m)[6] = 48; }},
      {"type", [](std::vector<uint8_t>* m) { (*m)[1] = spec::kAuthIdSuccess2; }},
  };
  for (const auto& [what, t] : tampers) {
    ControllerTransaction ct(cc, kHost, kSub, 1);
    Outcome r = Authenticate(hc, &ct, 1, t);
    EXPECT_FALSE(r.host.ok()) << what;
    EXPECT_FALSE(ct.authenticated()) << what;
    EXPECT_EQ(r.ctrl, ControllerTransaction::State::kFailed) << what;
  }
}

TEST(DhchapTransaction, NegotiationRefusesWhatTheHostDoesNotOffer) {
  ControllerAuthConfig cc{Parse(kSecret00), {}, Hash::kSha256, DhGroup::kFfdhe4096};
  HostTransaction ht(HostAuthConfig{Parse(kSecret00), {}}, kHost, kSub, 1);
  std::vector<uint8_t> neg = ht.Negotiate(), got, reply;
  neg[8 + 3] = 1;  // dhlen: the host offers only the null group
  ControllerTransaction ct(cc, kHost, kSub, 1);
  EXPECT_EQ(ct.Send(neg.data(), neg.size()), spec::kStatusSuccess);
  ASSERT_EQ(ct.Receive(4096, &got), spec::kStatusSuccess);
  Status s = ht.OnChallenge(got.data(), got.size(), &reply);
  EXPECT_EQ(s.code(), Status::Code::kAuthFailed);
  EXPECT_NE(s.message().find("Diffie-Hellman"), std::string::npos) << s.ToString();
  // Secure channel concatenation is not offered.
  neg = ht.Negotiate();
  neg[6] = 1;
  ControllerTransaction ct2(cc, kHost, kSub, 1);
  ct2.Send(neg.data(), neg.size());
  ct2.Receive(4096, &got);
  EXPECT_EQ(ht.OnChallenge(got.data(), got.size(), &reply).code(), Status::Code::kAuthFailed);
}

TEST(DhchapTransaction, OutOfOrderMessagesAreSequenceErrors) {
  ControllerAuthConfig cc{Parse(kSecret00), {}, Hash::kSha256, DhGroup::kNull};
  ControllerTransaction ct(cc, kHost, kSub, 1);
  std::vector<uint8_t> got;
  const uint16_t seq = spec::MakeStatus(spec::kSctGeneric, spec::kScCommandSequenceError, true);
  EXPECT_EQ(ct.Receive(4096, &got), seq);
  EXPECT_TRUE(ct.failed());
  ControllerTransaction ct2(cc, kHost, kSub, 1);
  HostTransaction ht(HostAuthConfig{Parse(kSecret00), {}}, kHost, kSub, 1);
  std::vector<uint8_t> neg = ht.Negotiate();
  ct2.Send(neg.data(), neg.size());
  EXPECT_EQ(ct2.Send(neg.data(), neg.size()), seq) << "a Send where the challenge was due";
}

TEST(DhchapTransaction, ReauthenticationRunsANewTransaction) {
  ControllerAuthConfig cc{Parse(kSecret00), {}, Hash::kSha512, DhGroup::kFfdhe2048};
  HostAuthConfig hc{Parse(kSecret00), {}};
  ControllerTransaction ct(cc, kHost, kSub, 1);
  ASSERT_TRUE(Authenticate(hc, &ct, 1).host.ok());
  ASSERT_TRUE(Authenticate(hc, &ct, 2).host.ok());
  EXPECT_TRUE(ct.authenticated());
  Secret other;
  ASSERT_TRUE(GenerateSecret(Hash::kNone, 32, &other).ok());
  EXPECT_FALSE(Authenticate(HostAuthConfig{other, {}}, &ct, 3).host.ok());
  EXPECT_FALSE(ct.authenticated()) << "a failed re-authentication leaves the queue unauthenticated";
}

TEST(DhchapTransaction, AShortReceiveIsInvalidField) {
  ControllerAuthConfig cc{Parse(kSecret00), {}, Hash::kSha256, DhGroup::kFfdhe2048};
  ControllerTransaction ct(cc, kHost, kSub, 1);
  HostTransaction ht(HostAuthConfig{Parse(kSecret00), {}}, kHost, kSub, 1);
  std::vector<uint8_t> neg = ht.Negotiate(), got;
  ct.Send(neg.data(), neg.size());
  EXPECT_EQ(ct.Receive(64, &got), spec::MakeStatus(spec::kSctGeneric, spec::kScInvalidField, true));
  EXPECT_TRUE(got.empty());
}

}  // namespace
}  // namespace nvmf::auth
