// NVMe in-band authentication (TP 8006, NVMe Base "Authentication" and the Fabrics
// Authentication Send/Receive commands): the command fields and the DH-HMAC-CHAP
// messages. Plain little-endian structs; no logic.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nvmf::spec {

// Authentication Send / Receive (Fabrics command types 05h / 06h).
struct AuthSqe {
  uint8_t opc;  // kFabricsCommand
  uint8_t reserved1;
  uint16_t cid;
  uint8_t fctype;  // kFctypeAuthSend or kFctypeAuthReceive
  uint8_t reserved2[19];
  uint8_t sgl1[16];
  uint8_t reserved3;
  uint8_t spsp0;  // 01h
  uint8_t spsp1;  // 01h
  uint8_t secp;   // kAuthSecp
  uint32_t length;  // Send: transfer length; Receive: allocation length
  uint8_t reserved4[16];
};
static_assert(sizeof(AuthSqe) == 64);
static_assert(offsetof(AuthSqe, secp) == 43);
static_assert(offsetof(AuthSqe, length) == 44);

inline constexpr uint8_t kAuthSecp = 0xE9;  // NVMe in-band authentication
inline constexpr uint8_t kAuthSpsp = 0x01;

// Connect response, dword 0 bits 31:16 (AUTHREQ).
inline constexpr uint16_t kAuthreqAtr = 1u << 1;   // authentication transaction required
inline constexpr uint16_t kAuthreqAscr = 1u << 2;  // secure channel concatenation required

// "Authentication Required": command specific status 91h.
inline constexpr uint8_t kScAuthRequired = 0x91;

// Message types (auth_type) and identifiers (auth_id).
inline constexpr uint8_t kAuthTypeCommon = 0x00;
inline constexpr uint8_t kAuthTypeDhchap = 0x01;
inline constexpr uint8_t kAuthIdNegotiate = 0x00;   // common
inline constexpr uint8_t kAuthIdFailure2 = 0xF0;    // common: host to controller
inline constexpr uint8_t kAuthIdFailure1 = 0xF1;    // common: controller to host
inline constexpr uint8_t kAuthIdChallenge = 0x01;   // DH-HMAC-CHAP
inline constexpr uint8_t kAuthIdReply = 0x02;
inline constexpr uint8_t kAuthIdSuccess1 = 0x03;
inline constexpr uint8_t kAuthIdSuccess2 = 0x04;

// Failure reason code explanations (with reason code 01h, "authentication failure").
enum AuthFailure : uint8_t {
  kAuthFailed = 0x01,
  kAuthProtocolUnusable = 0x02,
  kAuthConcatMismatch = 0x03,
  kAuthHashUnusable = 0x04,
  kAuthDhGroupUnusable = 0x05,
  kAuthIncorrectPayload = 0x06,
  kAuthIncorrectMessage = 0x07,
};

inline constexpr uint8_t kAuthProtocolDhchap = 0x01;

// AUTH_Negotiate, host to controller, followed by napd protocol descriptors.
struct AuthNegotiate {
  uint8_t auth_type;  // common
  uint8_t auth_id;    // negotiate
  uint16_t reserved1;
  uint16_t t_id;
  uint8_t sc_c;  // secure channel concatenation; 0
  uint8_t napd;  // protocol descriptors that follow
};
static_assert(sizeof(AuthNegotiate) == 8);

struct AuthProtocolDescriptor {
  uint8_t authid;  // kAuthProtocolDhchap
  uint8_t reserved;
  uint8_t halen;        // hash identifiers in idlist[0..29]
  uint8_t dhlen;        // DH group identifiers in idlist[30..59]
  uint8_t idlist[60];
};
static_assert(sizeof(AuthProtocolDescriptor) == 64);

// DH-HMAC-CHAP_Challenge, controller to host; then cval[hl], then dhv[dhvlen].
struct DhchapChallenge {
  uint8_t auth_type;
  uint8_t auth_id;
  uint16_t reserved1;
  uint16_t t_id;
  uint8_t hl;
  uint8_t reserved2;
  uint8_t hashid;
  uint8_t dhgid;
  uint16_t dhvlen;
  uint32_t seqnum;
};
static_assert(sizeof(DhchapChallenge) == 16);

// DH-HMAC-CHAP_Reply, host to controller; then rval[hl], cval[hl], dhv[dhvlen].
struct DhchapReply {
  uint8_t auth_type;
  uint8_t auth_id;
  uint16_t reserved1;
  uint16_t t_id;
  uint8_t hl;
  uint8_t reserved2;
  uint8_t cvalid;  // 1: cval is the host's challenge to the controller
  uint8_t reserved3;
  uint16_t dhvlen;
  uint32_t seqnum;  // the host's, for the controller's response
};
static_assert(sizeof(DhchapReply) == 16);

// DH-HMAC-CHAP_Success1, controller to host; then rval[hl].
struct DhchapSuccess1 {
  uint8_t auth_type;
  uint8_t auth_id;
  uint16_t reserved1;
  uint16_t t_id;
  uint8_t hl;
  uint8_t reserved2;
  uint8_t rvalid;  // 1: rval is the controller's response
  uint8_t reserved3[7];
};
static_assert(sizeof(DhchapSuccess1) == 16);

// DH-HMAC-CHAP_Success2, host to controller.
struct DhchapSuccess2 {
  uint8_t auth_type;
  uint8_t auth_id;
  uint16_t reserved1;
  uint16_t t_id;
  uint8_t reserved2[10];
};
static_assert(sizeof(DhchapSuccess2) == 16);

// AUTH_Failure1 (controller to host) and AUTH_Failure2 (host to controller).
struct AuthFailureMsg {
  uint8_t auth_type;  // common
  uint8_t auth_id;    // kAuthIdFailure1 or kAuthIdFailure2
  uint16_t reserved1;
  uint16_t t_id;
  uint8_t rescode;      // 01h: authentication failure
  uint8_t rescode_exp;  // AuthFailure
  uint8_t reserved2[8];
};
static_assert(sizeof(AuthFailureMsg) == 16);

}  // namespace nvmf::spec
