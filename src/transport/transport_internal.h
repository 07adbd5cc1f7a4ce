// The transport-internal interface: what each transport implements behind the public
// API of nvmf/transport.h. The public functions check nothing and dispatch here; each
// transport subclasses Qpair and Capsule and registers a Transport.
#pragma once

#include "nvmf/transport.h"

namespace nvmf {

// What a transport's set-up hands to its AllocateQpair. Each transport subclasses it; the
// destructor releases whatever was not taken by a queue pair.
class TransportConnection {
 public:
  explicit TransportConnection(TransportType type) : type_(type) {}
  virtual ~TransportConnection() = default;
  TransportType type() const { return type_; }

 private:
  TransportType type_;
};

class Capsule {
 public:
  Qpair* qpair() const { return qp_; }
  bool is_command() const { return is_command_; }
  const spec::Sqe& sqe() const { return sqe_; }
  const spec::Cqe& cqe() const { return cqe_; }
  bool sqhd_valid() const { return sqhd_valid_; }

 protected:
  Capsule() = default;
  ~Capsule() = default;
  // Clears what this class holds, for a capsule handed out again by qp.
  void ResetBase(Qpair* qp, bool command) {
    qp_ = qp;
    is_command_ = command;
    sqhd_valid_ = true;
    sqe_ = {};
    cqe_ = {};
    data_ = MemDesc();
    data_len_ = 0;
    data_send_ = false;
    data_done_ = nullptr;
  }

  // Set by the transport when it hands the capsule out.
  Qpair* qp_ = nullptr;
  bool is_command_ = false;
  bool sqhd_valid_ = true;
  spec::Sqe sqe_{};
  spec::Cqe cqe_{};

  // Host: the data appended to a command.
  MemDesc data_;
  size_t data_len_ = 0;
  bool data_send_ = false;
  DataCallback data_done_;

  friend Capsule* AllocateCommand(Qpair*, const spec::Sqe&);
  friend Capsule* AllocateResponse(Qpair*, const spec::Cqe&);
  friend void AppendData(Capsule*, const MemDesc&, size_t, bool, DataCallback);
};

class Qpair {
 public:
  Qpair(TransportType type, Role role, bool admin) : type_(type), role_(role), admin_(admin) {}
  TransportType type() const { return type_; }
  Role role() const { return role_; }
  bool admin() const { return admin_; }

  virtual void Free() = 0;
  virtual Capsule* AllocateCapsule(bool command) = 0;
  virtual void FreeCapsule(Capsule* c) = 0;
  virtual Status Transmit(Capsule* c) = 0;
  virtual void AbortData(Capsule* c) = 0;
  virtual uint64_t MaxTransferSize() const = 0;
  virtual std::string PeerName() const = 0;
  // The host and subsystem NQNs a secure channel's key was bound to; false without one.
  virtual bool SecureChannelNqns(std::string* /*hostnqn*/, std::string* /*subnqn*/) const {
    return false;
  }
  virtual ControllerTransportValues ControllerValues() const = 0;
  virtual bool DigestsSentData() const = 0;
  virtual bool HeaderDigests() const = 0;
  virtual uint8_t ValidateCommand(const Capsule* c) const = 0;
  virtual size_t DataLength(const Capsule* c) const = 0;
  virtual void ReceiveData(Capsule* c, uint32_t offset, const MemDesc& mem, size_t len,
                           DataCallback on_done) = 0;
  virtual uint16_t SendData(Capsule* c, uint32_t offset, const MemDesc& mem, size_t len,
                            DataCallback on_sent) = 0;

 protected:
  virtual ~Qpair() = default;

 private:
  TransportType type_;
  Role role_;
  bool admin_;
};

// One transport implementation.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual Status AllocateQpair(EventLoop* loop, Role role, const QpairParams& params,
                               ErrorCallback on_error, ReceiveCallback on_receive,
                               Qpair** out) = 0;
  virtual void Connect(EventLoop* loop, const TransportAddress& addr,
                       const HostConnectParams& params, ConnectCallback cb) = 0;
  virtual Status Listen(EventLoop* loop, const TransportAddress& addr, const ListenParams& params,
                        TransportListener::AcceptCallback cb,
                        std::unique_ptr<TransportListener>* out) = 0;
};

// Registers a transport for a type; AllocateQpair uses the registered transport of the
// type with the highest priority. The transport must outlive every use. Thread-safe.
void RegisterTransport(TransportType type, int priority, Transport* t);
void UnregisterTransport(Transport* t);
// The built-in transports are registered on first use of the registry.
Transport* FindTransport(TransportType type);

// The built-in transports (builtin.cc lists them): each returns its singleton, or nullptr
// when this build leaves it out.
Transport* BuiltinTcpTransport();
Transport* BuiltinRdmaTransport();

}  // namespace nvmf
