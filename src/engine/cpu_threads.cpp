// The loop threads (see cpu_threads.hpp): n - 1 workers that spin briefly and then sleep
// on a futex between passes, and a generation-counting barrier.
#include "engine/cpu_threads.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace rbm::cpu {

namespace {

thread_local int t_thread_index = 0;  // this thread's t in the loop threads

// Waits until `a` differs from `old`: spins for up to about 200 microseconds (the other
// threads are usually a few microseconds away), then sleeps in the kernel (futex), so an
// idle team costs nothing. The spin is plain loads, without PAUSE: in a virtual machine
// a loop of PAUSEs makes the hypervisor take the core away (pause-loop exiting), and the
// thread then answers hundreds of microseconds late.
template <typename T>
void wait_change(const std::atomic<T>& a, T old) {
    using Clock = std::chrono::steady_clock;
    const auto until = Clock::now() + std::chrono::microseconds(200);
    for (;;) {
        for (int i = 0; i < 4096; ++i)
            if (a.load(std::memory_order_acquire) != old) return;
        if (Clock::now() > until) break;
    }
    while (a.load(std::memory_order_acquire) == old) a.wait(old, std::memory_order_acquire);
}

// n - 1 workers and the caller; run() starts a job on all, barrier() meets them.
class Team {
public:
    explicit Team(int n) : n_(n) {
        for (int t = 1; t < n; ++t) workers_.emplace_back([this, t] { work(t); });
    }
    ~Team() {
        stop_.store(true, std::memory_order_relaxed);
        start_.fetch_add(1, std::memory_order_release);
        start_.notify_all();
        for (auto& w : workers_) w.join();
    }
    int size() const { return n_; }

    void run(void (*fn)(void*, int, int), void* ctx) {
        fn_ = fn;
        ctx_ = ctx;
        pending_.store(n_ - 1, std::memory_order_relaxed);
        start_.fetch_add(1, std::memory_order_release);
        start_.notify_all();
        fn(ctx, 0, n_);
        for (uint32_t left; (left = pending_.load(std::memory_order_acquire)) != 0;) wait_change(pending_, left);
    }

    void barrier() {
        const uint32_t generation = barrier_generation_.load(std::memory_order_acquire);
        if (arrived_.fetch_add(1, std::memory_order_acq_rel) == uint32_t(n_ - 1)) {
            arrived_.store(0, std::memory_order_relaxed);
            barrier_generation_.fetch_add(1, std::memory_order_release);
            barrier_generation_.notify_all();
        } else {
            wait_change(barrier_generation_, generation);
        }
    }

private:
    void work(int t) {
        t_thread_index = t;
        uint32_t seen = 0;
        for (;;) {
            wait_change(start_, seen);
            seen = start_.load(std::memory_order_acquire);
            if (stop_.load(std::memory_order_relaxed)) return;
            fn_(ctx_, t, n_);
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_all();
        }
    }

    const int n_;
    std::vector<std::thread> workers_;
    void (*fn_)(void*, int, int) = nullptr;
    void* ctx_ = nullptr;
    alignas(64) std::atomic<uint32_t> start_{0};
    alignas(64) std::atomic<uint32_t> pending_{0};
    alignas(64) std::atomic<uint32_t> arrived_{0};
    alignas(64) std::atomic<uint32_t> barrier_generation_{0};
    std::atomic<bool> stop_{false};
};

std::unique_ptr<Team> g_team;  // null: one thread
int g_threads = 1;

}  // namespace

void set_threads(int n) {
    n = std::max(1, n);
    if (n == g_threads) return;
    g_team.reset();
    if (n > 1) g_team = std::make_unique<Team>(n);
    g_threads = n;
}

int threads() { return g_threads; }

void adopt_blas_threads() {
    const int n = openblas_get_num_threads();
    if (n > 1) {
        openblas_set_num_threads(1);
        set_threads(n);
    }
}

void parallel_raw(void (*fn)(void* ctx, int t, int n), void* ctx) {
    if (g_team) g_team->run(fn, ctx);
    else fn(ctx, 0, 1);
}

void barrier() {
    if (g_team) g_team->barrier();
}

std::pair<std::size_t, std::size_t> share(std::size_t n, int t, int parts) {
    auto edge = [&](int i) {
        if (i >= parts) return n;
        const std::size_t at = (n * std::size_t(i) / std::size_t(parts) + 8) / 16 * 16;
        return std::min(at, n);
    };
    return {edge(t), edge(t + 1)};
}

int thread_index() { return t_thread_index; }

}  // namespace rbm::cpu
