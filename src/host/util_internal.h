// Small helpers shared by the host's sources.
#pragma once

#include <string>

#include "nvmf/spec/nvme.h"
#include "nvmf/status.h"

namespace nvmf::host::internal {

// The same status with "prefix: " put before its message.
Status WithContext(const Status& s, const std::string& prefix);

// Fabrics Property Get and Set commands.
spec::Sqe PropertyGetCommand(uint32_t offset, bool eight_bytes);
spec::Sqe PropertySetCommand(uint32_t offset, bool eight_bytes, uint64_t value);

}  // namespace nvmf::host::internal
