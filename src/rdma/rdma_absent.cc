// Built instead of the NVMe/RDMA transport when rdma-core (libibverbs, librdmacm) was not
// found at configure time: the registry then has no RDMA transport, and asking for one
// says so.
#include "transport/transport_internal.h"

namespace nvmf {

Transport* BuiltinRdmaTransport() { return nullptr; }

}  // namespace nvmf
