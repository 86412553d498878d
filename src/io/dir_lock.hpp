// One rbm train per run directory: two runs writing the same checkpoints, metrics and
// config.ini would replace each other's files (a second `--resume` started while the first
// still runs, a requeued job whose old allocation has not ended). The lock is a POSIX
// record lock on DIR/.rbm-lock, so the kernel (or the NFS lock manager) drops it when the
// process ends, however it ends; the file names the holder for the message.
#pragma once

#include <string>

namespace rbm {

class DirLock {
public:
    // Locks `dir` (which must exist). Fails, naming the holder, when another process holds
    // it; where the file system cannot lock at all, says so in `warning` and holds nothing.
    DirLock(const std::string& dir, std::string& warning);
    ~DirLock();
    DirLock(const DirLock&) = delete;
    DirLock& operator=(const DirLock&) = delete;
    bool held() const { return fd_ >= 0; }
    // Who holds `dir`'s lock now ("rbm train, pid N on HOST"), or "" where no process does
    // (or the file system cannot say); asks without creating or taking anything (rbm info).
    static std::string holder(const std::string& dir);
    // Fails as the constructor would, where another process holds the lock or the lock
    // file cannot be opened for writing, taking nothing (rbm train --dry-run).
    static void check_can_lock(const std::string& dir);

private:
    int fd_ = -1;
};

}  // namespace rbm
