// The NVMe/TCP transport's entry in the transport registry.
#pragma once

#include "transport/transport_internal.h"

namespace nvmf::tcp {

Transport* BuiltinTransport();

}  // namespace nvmf::tcp
