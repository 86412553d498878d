// DirLock (see dir_lock.hpp): fcntl(F_SETLK) rather than flock, because NFS, where Slurm
// clusters keep their run directories, honours fcntl locks across nodes.
#include "io/dir_lock.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "util/check.hpp"

namespace rbm {
namespace {

std::string holder_of(int fd) {
    char text[256] = {};
    const ssize_t got = ::pread(fd, text, sizeof text - 1, 0);
    std::string holder = got > 0 ? std::string(text, std::size_t(got)) : std::string();
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    return holder.empty() ? "another process" : holder;
}

std::string this_process() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    return "rbm train, pid " + std::to_string(::getpid()) + " on " + host;
}

[[noreturn]] void refuse_in_use(const std::string& dir, const std::string& path, const std::string& holder) {
    fail("'", dir, "' is in use by ", holder, " (it holds ", path,
         "); two runs in one directory would replace each other's files: wait for it to end, or "
         "choose another --out");
}

std::string lock_path(const std::string& dir) { return (std::filesystem::path(dir) / ".rbm-lock").string(); }

}  // namespace

DirLock::DirLock(const std::string& dir, std::string& warning) {
    const std::string path = lock_path(dir);
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot create '", path, "' (the run directory's lock): ", std::strerror(errno));
    struct flock whole {};
    whole.l_type = F_WRLCK;
    whole.l_whence = SEEK_SET;
    if (::fcntl(fd_, F_SETLK, &whole) != 0) {
        const int err = errno;
        if (err == EAGAIN || err == EACCES) {
            const std::string holder = holder_of(fd_);
            ::close(std::exchange(fd_, -1));
            refuse_in_use(dir, path, holder);
        }
        warning = "cannot lock '" + path + "' (" + std::strerror(err) +
                  "): nothing stops a second rbm train from writing into this run directory";
        ::close(fd_);
        fd_ = -1;
        return;
    }
    const std::string me = this_process() + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != ssize_t(me.size()))
        warning = "cannot write '" + path + "': " + std::strerror(errno) + " (the lock holds; its note does not)";
}

std::string DirLock::holder(const std::string& dir) {
    const std::string path = lock_path(dir);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return "";  // no lock file: no run has held it
    if (fd < 0) fail("cannot read '", path, "' (the run directory's lock): ", std::strerror(errno));
    // Where F_GETLK fails (a file system without locks), no one can hold it: the start
    // then runs unlocked, with a warning.
    struct flock whole {};
    whole.l_type = F_WRLCK;
    whole.l_whence = SEEK_SET;
    const bool held = ::fcntl(fd, F_GETLK, &whole) == 0 && whole.l_type != F_UNLCK;
    std::string name = held ? holder_of(fd) : "";
    ::close(fd);
    return name;
}

void DirLock::check_can_lock(const std::string& dir) {
    const std::string path = lock_path(dir);
    if (const std::string name = holder(dir); !name.empty()) refuse_in_use(dir, path, name);
    std::error_code ec;
    if (std::filesystem::exists(path, ec) && ::access(path.c_str(), R_OK | W_OK) != 0)
        fail("cannot create '", path, "' (the run directory's lock): ", std::strerror(errno));
}

DirLock::~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace rbm
