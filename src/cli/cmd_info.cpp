// `rbm info FILE...`: what an rbm HDF5 file holds, for people.
#include <iostream>

#include "cli/commands.hpp"
#include "io/file_info.hpp"
#include "util/check.hpp"

namespace rbm::cli {

int run_info(const std::vector<std::string>& args) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << "usage: rbm info FILE...\n"
                     "Describes rbm checkpoints, metrics and samples files (HDF5).\n";
        return args.empty() ? 2 : 0;
    }
    for (const std::string& path : args) {
        if (args.size() > 1) std::cout << "== " << path << "\n";
        describe_file(path, std::cout);
    }
    return 0;
}

}  // namespace rbm::cli
