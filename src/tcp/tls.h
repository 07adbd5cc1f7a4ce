// TlsSession: TLS 1.3 with an external PSK (NVMe/TCP secure channels, TP 8011) over a
// non-blocking socket, in user space with OpenSSL.
//
// Shape. The session reads through a socket BIO (read-ahead on, so a record costs one
// read, not two) and writes through a BIO of its own that always accepts: a record goes
// to the socket at once, and what the socket does not take waits in the session until
// Flush. So Write never asks to be retried with the same bytes, and the caller may count
// plaintext as sent (and give its memory back) as soon as Write returns; the ciphertext
// held back is bounded by what one Write takes, since callers only write more once
// Flush reported the socket took everything. Corked (Cork), records all wait for Flush.
//
// Ciphers: the two suites the NVMe/TCP specification names, TLS_AES_128_GCM_SHA256 (for a
// SHA-256 PSK) and TLS_AES_256_GCM_SHA384 (SHA-384). A client offers the one its PSK's hash
// goes with. A server reads the hash of the client's PSK binder before choosing, keeps
// the suites of that hash, and gives the PSK the suite negotiated, so that a peer that
// computes a SHA-384 PSK's binder with SHA-256 (GnuTLS before 3.8.11: Linux's tlshd) still
// gets in; for such a peer, which offers no other SHA-256 suite, a server also takes
// TLS_CHACHA20_POLY1305_SHA256. psk_dhe_ke (ephemeral (EC)DHE with the PSK) is what a client offers;
// a server also accepts psk_ke. No certificates, no session tickets, no resumption.
//
// Threads: a session belongs to the thread of the socket's event loop. The server's
// PSK lookup runs inside Handshake, on that thread. Key bytes never reach a log.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nvmf/status.h"
#include "tcp/psk.h"

typedef struct ssl_st SSL;

namespace nvmf::tcp {

class TlsSession {
 public:
  // Server: finds the TLS PSK for an identity the client offered; false: unknown.
  using PskLookup = std::function<bool(std::string_view identity, TlsPsk* out)>;

  // fd stays the caller's: the session never closes it.
  // sha256_binder: a SHA-384 PSK is offered as Linux's tlshd 1.0 (GnuTLS 3.8.9) offers
  // and expects it, with a SHA-256 binder and TLS_CHACHA20_POLY1305_SHA256, the one
  // SHA-256 suite tlshd allows for such a key; otherwise as the specification says.
  static Status Client(int fd, const TlsPsk& psk, bool sha256_binder,
                       std::unique_ptr<TlsSession>* out);
  static Status Server(int fd, PskLookup lookup, std::unique_ptr<TlsSession>* out);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Drives the handshake. kWantRead/kWantWrite: call again when the socket is readable /
  // writable; kError: *err says why.
  enum class Step { kDone, kWantRead, kWantWrite, kError };
  Step Handshake(Status* err);

  // Plaintext in: >0 bytes read; 0 the peer closed (close_notify or EOF); -1 with errno
  // EAGAIN (nothing now) or EIO (a TLS or socket error: see error()).
  ssize_t Read(void* buf, size_t len);
  // Encrypts all len bytes (false: the connection failed, see error()).
  bool Write(const void* buf, size_t len);
  // Sends ciphertext held back: 1 all gone, 0 some waits for the socket, -1 error.
  int Flush();
  bool HasUnsent() const { return out_off_ < out_.size(); }
  // Corked, records wait in the session until Flush, so that a batch of them leaves in
  // one send rather than one send per record (a copy of the ciphertext costs less than
  // the system calls).
  void Cork(bool on) { corked_ = on; }
  // Records or plaintext buffered that the socket's readiness will not announce.
  bool HasBuffered() const;
  // Best effort close_notify.
  void Shutdown();

  const std::string& error() const { return error_; }
  const std::string& identity() const { return identity_; }  // the PSK identity used
  std::string CipherName() const;
  // Server: the host NQN of the identity looked up (also when it failed), for counting.
  const std::string& peer_host() const { return peer_host_; }

 private:
  TlsSession(int fd, SSL* ssl);
  static int WriteToSocket(TlsSession* s, const char* data, size_t len);
  friend struct TlsGlue;

  int fd_;
  SSL* ssl_;
  TlsPsk psk_;          // client: the PSK offered
  bool sha256_binder_ = false;
  PskLookup lookup_;    // server
  std::string identity_;
  std::string peer_host_;
  std::string error_;
  std::vector<uint8_t> out_;  // ciphertext the socket has not taken
  size_t out_off_ = 0;
  int sock_errno_ = 0;
  bool corked_ = false;
};

}  // namespace nvmf::tcp
