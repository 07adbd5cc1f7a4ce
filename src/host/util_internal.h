// Small helpers shared by the host's sources.
#pragma once

#include <string>

#include "nvmf/status.h"

namespace nvmf::host::internal {

// The same status with "prefix: " put before its message.
Status WithContext(const Status& s, const std::string& prefix);

}  // namespace nvmf::host::internal
