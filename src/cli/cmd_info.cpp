// `rbm info FILE...`: what an rbm HDF5 file holds, for people.
#include <iostream>

#include "cli/commands.hpp"
#include "io/file_info.hpp"
#include "util/check.hpp"

namespace rbm::cli {

int run_info(const std::vector<std::string>& args) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << "usage: rbm info FILE...\n"
                     "Describes rbm checkpoints, metrics, samples and features files (HDF5).\n";
        return args.empty() ? 2 : 0;
    }
    // Every file is described that can be: one bad file among many does not hide the rest,
    // and the exit status says whether any failed.
    int status = 0;
    for (const std::string& path : args) {
        if (args.size() > 1) std::cout << "== " << path << "\n";
        try {
            describe_file(path, std::cout);
        } catch (const Error& e) {
            if (args.size() == 1) throw;
            std::cout.flush();
            std::cerr << "rbm: error: " << e.what() << std::endl;
            status = 1;
        }
    }
    return status;
}

}  // namespace rbm::cli
