// Reading and writing DH-HMAC-CHAP messages as the packed structs of nvmf/spec/auth.h.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

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

}  // namespace nvmf::auth
