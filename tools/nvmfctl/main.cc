// nvmfctl: an NVMe over Fabrics host tool. One subcommand per file; see common.h.
#include <cstdio>
#include <exception>

#include "common.h"

int main(int argc, char** argv) {
  using namespace nvmfctl;
  CLI::App app{"nvmfctl: NVMe over Fabrics (NVMe/TCP) host tool"};
  app.name("nvmfctl");
  app.require_subcommand(1);
  Runner run;
  RegisterDiscover(app, &run);
  RegisterIdentify(app, &run);
  RegisterList(app, &run);
  RegisterReadWrite(app, &run);
  RegisterVerify(app, &run);
  RegisterPerf(app, &run);
  RegisterKeys(app, &run);
  RegisterResv(app, &run);
  if (argc == 1) {
    std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    if (argc > 1 && argv[1][0] != '-' && app.get_subcommands().empty()) {
      std::fprintf(stderr,
                   "nvmfctl: unknown subcommand '%s' (discover, identify, list, read, write, "
                   "verify, perf, gen-dhchap-key, resv-register, resv-acquire, resv-release, "
                   "resv-report; --help for more)\n",
                   argv[1]);
    } else {
      std::fprintf(stderr, "nvmfctl: %s\n", e.what());
    }
    return kExitUsage;
  }
  try {
    return run ? run() : kExitUsage;
  } catch (const Failure& f) {
    std::fprintf(stderr, "nvmfctl: %s\n", f.message.c_str());
    return f.code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nvmfctl: %s\n", e.what());
    return kExitError;
  }
}
