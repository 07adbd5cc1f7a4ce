// Reading and writing DH-HMAC-CHAP messages as the packed structs of nvmf/spec/auth.h.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "nvmf/spec/auth.h"

namespace nvmf::auth {

// The struct at the start of p (the caller has checked that sizeof(T) bytes are there).
template <typename T>
T ReadHeader(const uint8_t* p) {
  T h;
  std::memcpy(&h, p, sizeof(T));
  return h;
}

template <typename T>
void AppendHeader(std::vector<uint8_t>* out, const T& h) {
  const size_t at = out->size();
  out->resize(at + sizeof(T));
  std::memcpy(out->data() + at, &h, sizeof(T));
}

// AUTH_Failure1 (controller to host) or AUTH_Failure2 (host to controller): reason code
// 01h (authentication failure) with the explanation.
inline spec::AuthFailureMsg FailureMessage(uint8_t auth_id, uint16_t t_id, uint8_t explanation) {
  spec::AuthFailureMsg f{};
  f.auth_type = spec::kAuthTypeCommon;
  f.auth_id = auth_id;
  f.t_id = t_id;
  f.rescode = 1;
  f.rescode_exp = explanation;
  return f;
}

}  // namespace nvmf::auth
