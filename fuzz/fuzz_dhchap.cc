// Fuzzes DH-HMAC-CHAP's message logic (src/auth): the controller's transaction fed any
// sequence of Authentication Send payloads and Receive lengths, and the host's
// transaction fed any challenge and Success1. Both sides start from an honest exchange
// when the input asks, so that later messages reach the deeper states.
//
// Input: [mode u8] then records [op u8][len u16][len bytes, for a Send or a host message].
// A crash means memory misuse, a message longer than the receive length allowed, a
// transaction that reports authenticated without a right response, or a Receive that
// returns data together with an error status.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "auth/dhchap.h"
#include "auth/dhchap_controller.h"
#include "auth/dhchap_host.h"
#include "nvmf/spec/nvme.h"
#include "support.h"

namespace {

using namespace nvmf;
using fuzz::Reader;

const char* kHost = "nqn.2014-08.org.nvmexpress:uuid:fuzz-host";
const char* kSub = "nqn.2024-01.io.nvmf:fuzz";

auth::Secret MakeSecret(uint8_t fill) {
  auth::Secret s;
  s.key = auth::SecretBytes(std::vector<uint8_t>(32, fill));
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  const uint8_t mode = in.U8();
  static const auth::ControllerAuthConfig kNull{MakeSecret(1), MakeSecret(2), auth::Hash::kSha256,
                                                auth::DhGroup::kNull};
  static const auth::ControllerAuthConfig kDh{MakeSecret(1), {}, auth::Hash::kSha384,
                                              auth::DhGroup::kFfdhe2048};
  const auth::ControllerAuthConfig& cc = (mode & 1) ? kDh : kNull;
  auth::ControllerTransaction ct(cc, kHost, kSub, 7);
  const auth::HostAuthConfig hc{MakeSecret((mode & 4) ? 9 : 1), (mode & 8) ? MakeSecret(2) : auth::Secret{}};
  auth::HostTransaction ht(hc, kHost, kSub, static_cast<uint16_t>(mode >> 4));
  std::vector<uint8_t> out, msg;
  if (mode & 2) {  // an honest start: negotiate and take the challenge
    msg = ht.Negotiate();
    ct.Send(msg.data(), msg.size());
    if (ct.Receive(4096, &out) == spec::kStatusSuccess) {
      if (ht.OnChallenge(out.data(), out.size(), &msg).ok()) ct.Send(msg.data(), msg.size());
    }
  }
  for (int steps = 0; !in.empty() && steps < 16; steps++) {
    const uint8_t op = in.U8();
    const size_t len = in.U16() % 2048;
    std::vector<uint8_t> bytes(len);
    if (op % 4 != 1) in.Bytes(bytes.data(), len);
    switch (op % 4) {
      case 0: ct.Send(bytes.data(), bytes.size()); break;
      case 1: {
        const uint16_t st = ct.Receive(len, &out);
        if (out.size() > len) __builtin_trap();  // longer than the host allowed
        if (st != spec::kStatusSuccess && !out.empty()) __builtin_trap();
        break;
      }
      case 2: ht.OnChallenge(bytes.data(), bytes.size(), &msg); break;
      case 3: ht.OnSuccess1(bytes.data(), bytes.size(), &msg); break;
    }
    // Only the host's right secret authenticates: mode bit 2 gives the host another one.
    if (ct.authenticated() && (mode & 4)) __builtin_trap();
  }
  return 0;
}
