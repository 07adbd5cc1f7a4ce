// TlsSession over OpenSSL 3 (see tls.h).
#include "tcp/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace nvmf::tcp {

namespace {

constexpr char kSuite256[] = "TLS_AES_128_GCM_SHA256";
constexpr char kSuite384[] = "TLS_AES_256_GCM_SHA384";
// A server that sees a SHA-256 binder takes these (see ClientHello below).
constexpr char kSuites256Server[] = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";

// The length of the first PSK binder in a ClientHello's pre_shared_key extension (RFC
// 8446 4.2.11): the hash the client computed it with. 0 when there is none.
size_t FirstBinderLength(const unsigned char* p, size_t n) {
  auto u16 = [&](size_t at) { return static_cast<size_t>(p[at]) << 8 | p[at + 1]; };
  if (n < 2) return 0;
  const size_t ids = u16(0);
  if (2 + ids + 3 > n) return 0;
  return p[2 + ids + 2];  // binders<..>: uint16 length, then uint8 length of the first
}
// Read-ahead: several records per read(). A host has few connections, each busy; a
// target may have thousands.
constexpr int kClientReadBuffer = 256 * 1024;
constexpr int kServerReadBuffer = 64 * 1024;

std::string TakeErrors(const char* what) {
  std::string s = what;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof(buf));
    s += std::string(": ") + buf;
  }
  return s;
}

const SSL_CIPHER* CipherFor(SSL* ssl, PskHash h) {
  static const unsigned char k256[] = {0x13, 0x01}, k384[] = {0x13, 0x02};
  return SSL_CIPHER_find(ssl, h == PskHash::kSha384 ? k384 : k256);
}

const SSL_CIPHER* Chacha20(SSL* ssl) {
  static const unsigned char id[] = {0x13, 0x03};
  return SSL_CIPHER_find(ssl, id);
}

SSL_SESSION* PskSession(const Secret& key, const SSL_CIPHER* cipher) {
  SSL_SESSION* s = SSL_SESSION_new();
  if (s == nullptr) return nullptr;
  if (SSL_SESSION_set1_master_key(s, key.bytes().data(), key.size()) != 1 ||
      SSL_SESSION_set_cipher(s, cipher) != 1 ||
      SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
    SSL_SESSION_free(s);
    return nullptr;
  }
  return s;
}

}  // namespace

// OpenSSL's C callbacks, with access to the session's members.
struct TlsGlue {
  static TlsSession* Of(SSL* ssl) { return static_cast<TlsSession*>(SSL_get_app_data(ssl)); }

  static int BioWrite(BIO* b, const char* data, size_t len, size_t* written) {
    BIO_clear_retry_flags(b);
    auto* s = static_cast<TlsSession*>(BIO_get_data(b));
    if (s == nullptr) return 0;
    int n = TlsSession::WriteToSocket(s, data, len);
    if (n < 0) return 0;
    *written = len;
    return 1;
  }

  static long BioCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

  static BIO_METHOD* OutMethod() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "nvmf-tls-out");
      BIO_meth_set_write_ex(bm, BioWrite);
      BIO_meth_set_ctrl(bm, BioCtrl);
      return bm;
    }();
    return m;
  }

  static int ClientPsk(SSL* ssl, const EVP_MD* md, const unsigned char** id, size_t* idlen,
                       SSL_SESSION** sess) {
    TlsSession* s = Of(ssl);
    *sess = nullptr;
    const SSL_CIPHER* cipher = s->sha256_binder_ && s->psk_.hash == PskHash::kSha384
                                   ? Chacha20(ssl)
                                   : CipherFor(ssl, s->psk_.hash);
    if (cipher == nullptr) return 0;
    if (md != nullptr && EVP_MD_get_type(md) != EVP_MD_get_type(SSL_CIPHER_get_handshake_digest(cipher))) {
      return 1;  // a retry for another hash: this PSK does not go with it
    }
    *sess = PskSession(s->psk_.key, cipher);
    if (*sess == nullptr) return 0;
    *id = reinterpret_cast<const unsigned char*>(s->psk_.identity.data());
    *idlen = s->psk_.identity.size();
    return 1;
  }

  static int ServerPsk(SSL* ssl, const unsigned char* id, size_t idlen, SSL_SESSION** sess) {
    TlsSession* s = Of(ssl);
    *sess = nullptr;
    std::string_view identity(reinterpret_cast<const char*>(id), idlen);
    PskIdentityParts parts;
    if (ParsePskIdentity(identity, &parts)) s->peer_host_ = parts.hostnqn;
    TlsPsk psk;
    if (!s->lookup_ || !s->lookup_(identity, &psk)) {
      s->error_ = "no PSK for identity '" + std::string(identity) + "'";
      return 1;  // unknown: no session, the handshake fails
    }
    // The suite is chosen already; the PSK's binder is checked with its hash.
    const SSL_CIPHER* cipher = SSL_get_pending_cipher(ssl);
    if (cipher == nullptr) cipher = CipherFor(ssl, psk.hash);
    *sess = PskSession(psk.key, cipher);
    if (*sess == nullptr) return 0;
    s->identity_ = std::string(identity);
    return 1;
  }

  // Before the suite is chosen: a PSK binder's length says the hash the client used, and
  // the suites offered are cut to those of that hash, so that the PSK can be used. Linux's
  // tlshd (GnuTLS 3.8.9) makes SHA-256 binders for SHA-384 PSKs too and then offers, of
  // SHA-256 suites, only CHACHA20-POLY1305, which is why that suite is accepted here.
  static int ClientHello(SSL* ssl, int*, void*) {
    const unsigned char* ext = nullptr;
    size_t len = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &ext, &len) == 1) {
      const size_t binder = FirstBinderLength(ext, len);
      if (binder == 32) SSL_set_ciphersuites(ssl, kSuites256Server);
      if (binder == 48) SSL_set_ciphersuites(ssl, kSuite384);
    }
    return SSL_CLIENT_HELLO_SUCCESS;
  }

  static SSL_CTX* NewCtx(bool server) {
    SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == nullptr) return nullptr;
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    // No tickets or resumption; a peer's close without close_notify reads as EOF (the
    // NVMe/TCP framing tells a clean close from a truncated PDU).
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 (server ? SSL_OP_ALLOW_NO_DHE_KEX : 0));
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_ciphersuites(ctx, (std::string(kSuite384) + ":" + kSuite256).c_str());
    if (server) {
      SSL_CTX_set_psk_find_session_callback(ctx, ServerPsk);
      SSL_CTX_set_client_hello_cb(ctx, ClientHello, nullptr);
    } else {
      SSL_CTX_set_psk_use_session_callback(ctx, ClientPsk);
    }
    return ctx;
  }

  static SSL_CTX* Ctx(bool server) {
    static SSL_CTX* client = NewCtx(false);  // thread-safe statics; used until exit
    static SSL_CTX* srv = NewCtx(true);
    return server ? srv : client;
  }

  static Status New(int fd, bool server, std::unique_ptr<TlsSession>* out) {
    SSL_CTX* ctx = Ctx(server);
    SSL* ssl = ctx != nullptr ? SSL_new(ctx) : nullptr;
    if (ssl == nullptr) return Status::IoError(TakeErrors("TLS: cannot make a session"));
    std::unique_ptr<TlsSession> s(new TlsSession(fd, ssl));
    BIO* rbio = BIO_new_socket(fd, BIO_NOCLOSE);
    BIO* wbio = BIO_new(OutMethod());
    if (rbio == nullptr || wbio == nullptr) {
      BIO_free(rbio);
      BIO_free(wbio);
      return Status::IoError(TakeErrors("TLS: cannot make a BIO"));
    }
    BIO_set_data(wbio, s.get());
    BIO_set_init(wbio, 1);
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_app_data(ssl, s.get());
    SSL_set_read_ahead(ssl, 1);
    SSL_set_default_read_buffer_len(ssl, server ? kServerReadBuffer : kClientReadBuffer);
    if (server) {
      SSL_set_accept_state(ssl);
    } else {
      SSL_set_connect_state(ssl);
    }
    *out = std::move(s);
    return Status::OK();
  }
};

TlsSession::TlsSession(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}

TlsSession::~TlsSession() { SSL_free(ssl_); }

Status TlsSession::Client(int fd, const TlsPsk& psk, bool sha256_binder,
                          std::unique_ptr<TlsSession>* out) {
  Status s = TlsGlue::New(fd, false, out);
  if (!s.ok()) return s;
  (*out)->psk_ = psk;
  (*out)->identity_ = psk.identity;
  (*out)->sha256_binder_ = sha256_binder;
  const char* suites = psk.hash == PskHash::kSha256 ? kSuite256
                       : sha256_binder            ? "TLS_CHACHA20_POLY1305_SHA256"
                                                  : kSuite384;
  SSL_set_ciphersuites((*out)->ssl_, suites);
  return Status::OK();
}

Status TlsSession::Server(int fd, PskLookup lookup, std::unique_ptr<TlsSession>* out) {
  Status s = TlsGlue::New(fd, true, out);
  if (!s.ok()) return s;
  (*out)->lookup_ = std::move(lookup);
  return Status::OK();
}

// The write BIO's sink: to the socket when nothing waits before it, else (and for what
// the socket does not take) into out_. -1 on a socket error.
int TlsSession::WriteToSocket(TlsSession* s, const char* data, size_t len) {
  if (s->sock_errno_ != 0) return -1;
  size_t sent = 0;
  if (!s->HasUnsent() && !s->corked_) {
    s->out_.clear();
    s->out_off_ = 0;
    while (sent < len) {
      ssize_t n = send(s->fd_, data + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      s->sock_errno_ = errno;
      s->error_ = std::string("send: ") + strerror(errno);
      return -1;
    }
  }
  if (sent < len) {
    if (!s->HasUnsent()) {
      s->out_.clear();
      s->out_off_ = 0;
    }
    s->out_.insert(s->out_.end(), data + sent, data + len);
  }
  return 0;
}

int TlsSession::Flush() {
  if (sock_errno_ != 0) {
    errno = sock_errno_;
    return -1;
  }
  while (out_off_ < out_.size()) {
    ssize_t n = send(fd_, out_.data() + out_off_, out_.size() - out_off_,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      out_off_ += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    sock_errno_ = errno;
    error_ = std::string("send: ") + strerror(errno);
    return -1;
  }
  out_.clear();
  out_off_ = 0;
  return 1;
}

TlsSession::Step TlsSession::Handshake(Status* err) {
  if (Flush() < 0) {
    *err = Status::IoError("TLS handshake: " + error_);
    return Step::kError;
  }
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  if (Flush() < 0) {
    *err = Status::IoError("TLS handshake: " + error_);
    return Step::kError;
  }
  if (r == 1) return HasUnsent() ? Step::kWantWrite : Step::kDone;
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) return HasUnsent() ? Step::kWantWrite : Step::kWantRead;
  if (e == SSL_ERROR_WANT_WRITE) return Step::kWantWrite;
  std::string why = TakeErrors("TLS handshake failed");
  if (!error_.empty()) why += " (" + error_ + ")";
  if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) why += " (connection closed)";
  *err = Status::ProtocolError(why);
  return Step::kError;
}

ssize_t TlsSession::Read(void* buf, size_t len) {
  ERR_clear_error();
  size_t n = 0;
  int r = SSL_read_ex(ssl_, buf, len, &n);
  if (r == 1) return static_cast<ssize_t>(n);
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
    return -1;
  }
  if (e == SSL_ERROR_ZERO_RETURN) return 0;
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0) return 0;
  error_ = TakeErrors("TLS read");
  errno = EIO;
  return -1;
}

bool TlsSession::Write(const void* buf, size_t len) {
  ERR_clear_error();
  size_t done = 0;
  while (done < len) {
    size_t n = 0;
    if (SSL_write_ex(ssl_, static_cast<const char*>(buf) + done, len - done, &n) != 1) {
      if (error_.empty()) error_ = TakeErrors("TLS write");
      ERR_clear_error();
      return false;
    }
    done += n;
  }
  return true;
}

bool TlsSession::HasBuffered() const { return SSL_has_pending(ssl_) != 0; }

void TlsSession::Shutdown() {
  ERR_clear_error();
  SSL_shutdown(ssl_);
  Flush();
  ERR_clear_error();
}

std::string TlsSession::CipherName() const {
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  return c != nullptr ? SSL_CIPHER_get_name(c) : "none";
}

}  // namespace nvmf::tcp
