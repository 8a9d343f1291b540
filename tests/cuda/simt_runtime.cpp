// simt_runtime.cpp — the scheduler behind simt.h: runs a kernel launch on the
// CPU, one fiber (ucontext) per GPU thread, switching only at barriers.
//
// A launch runs its blocks one after another. A block runs in rounds:
//
//     round: run every runnable thread, in the chosen order, until it reaches
//            a barrier or returns;
//     then:  release each warp whose non-exited lanes (named in the mask) all
//            wait at a warp primitive, and the block when all its threads wait
//            at __syncthreads(); what is released runs in the next round.
//
// So the code between two barriers runs thread after thread, never
// interleaved, in forward, reverse or random order. Errors a GPU would hang on
// or silently get wrong are reported instead (an exception in Python, via
// simt_launch's return value and message):
//
//   - a thread returns while others of its block wait at __syncthreads();
//   - threads wait at different __syncthreads() calls, or at a barrier nobody
//     else reaches (deadlock);
//   - a warp primitive called by a lane missing from its own mask.
//
// Shared memory: simt.h turns __shared__ into thread_local, and before each
// block this file fills the library's thread-local storage block with 0xFF.
#include "simt.h"

#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <numeric>
#include <random>
#include <string>
#include <vector>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace simt {
namespace {

enum State { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, EXITED, FAILED };

struct Fiber {
    ucontext_t context;
    uint3 index;        // threadIdx
    unsigned linear;    // x + bx*(y + by*z): warps are consecutive runs of 32
    State state;
    Where where;        // the barrier it waits at
    const char* name;   // ... and that barrier's name
    int op;             // BlockOp or WarpOp
    unsigned mask;      // warp primitives: the lanes named
    std::uint64_t payload;
    int src;
    std::uint64_t result;  // what the barrier hands back on release
};

// The one launch in progress. The Python side serialises launches per library.
struct Launch {
    void (*entry)(void**);
    void** args;
    std::vector<Fiber> fibers;
    Fiber* current = nullptr;
    ucontext_t scheduler;
    std::string error;
} launch;

// Stacks: one region per fiber, with an inaccessible guard page below each (a
// stack grows down), kept between launches and grown when a block is larger.
constexpr std::size_t kStackBytes = 256 * 1024;
std::size_t page_bytes() { return (std::size_t)sysconf(_SC_PAGESIZE); }

struct Stacks {
    char* base = nullptr;
    std::size_t count = 0;

    char* get(std::size_t i) { return base + i * (kStackBytes + page_bytes()) + page_bytes(); }

    bool reserve(std::size_t n)
    {
        if (n <= count) return true;
        if (base) munmap(base, count * (kStackBytes + page_bytes()));
        const std::size_t bytes = n * (kStackBytes + page_bytes());
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            base = nullptr;
            count = 0;
            return false;
        }
        base = static_cast<char*>(p);
        count = n;
        for (std::size_t i = 0; i < n; ++i) mprotect(get(i) - page_bytes(), page_bytes(), PROT_NONE);
        return true;
    }
} stacks;

std::string format(const char* fmt, ...)
{
    char buffer[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buffer, sizeof buffer, fmt, ap);
    va_end(ap);
    return buffer;
}

std::string describe_thread(const Fiber& f)
{
    return format("(%u,%u,%u)", f.index.x, f.index.y, f.index.z);
}

std::string describe_where(const Fiber& f)
{
    const char* slash = std::strrchr(f.where.file, '/');
    return format("%s at %s:%d", f.name, slash ? slash + 1 : f.where.file, f.where.line);
}

// "32 threads from (0,0,0) to (31,0,0)" (or "thread (5,0,0)") for the fibers selected by `pick`.
template <class Pick>
std::string describe_threads(Pick pick)
{
    const Fiber* first = nullptr;
    const Fiber* last = nullptr;
    std::size_t n = 0;
    for (const Fiber& f : launch.fibers)
        if (pick(f)) {
            if (!first) first = &f;
            last = &f;
            ++n;
        }
    if (n == 0) return "no threads";
    if (n == 1) return "thread " + describe_thread(*first);
    return format("%zu threads from %s to %s", n, describe_thread(*first).c_str(), describe_thread(*last).c_str());
}

// --- the fiber side: wait at a barrier until the scheduler releases it ---------

void fiber_start()
{
    launch.entry(launch.args);
    launch.current->state = EXITED;
    // Returning resumes the scheduler (uc_link).
}

void wait_here(Fiber& self)
{
    swapcontext(&self.context, &launch.scheduler);
}

}  // namespace

[[noreturn]] void fail(Where where, const char* message)
{
    Fiber& self = *launch.current;
    const char* slash = std::strrchr(where.file, '/');
    launch.error = format("thread %s at %s:%d: %s", describe_thread(self).c_str(),
                          slash ? slash + 1 : where.file, where.line, message);
    self.state = FAILED;
    wait_here(self);
    __builtin_unreachable();  // a failed fiber is never resumed
}

int block_barrier(Where where, const char* name, BlockOp op, int pred)
{
    Fiber& self = *launch.current;
    self.state = AT_BLOCK_BARRIER;
    self.where = where;
    self.name = name;
    self.op = op;
    self.payload = (std::uint64_t)pred;
    wait_here(self);
    return (int)self.result;
}

std::uint64_t warp_collective(Where where, const char* name, WarpOp op, unsigned mask, std::uint64_t payload, int src)
{
    Fiber& self = *launch.current;
    if (!(mask & (1u << (self.linear % warpSize)))) {
        char message[160];
        std::snprintf(message, sizeof message, "%s called by lane %u, which is not in its own mask 0x%08x", name,
                      self.linear % warpSize, mask);
        fail(where, message);
    }
    self.state = AT_WARP_BARRIER;
    self.where = where;
    self.name = name;
    self.op = op;
    self.mask = mask;
    self.payload = payload;
    self.src = src;
    wait_here(self);
    return self.result;
}

unsigned active_mask()
{
    const Fiber& self = *launch.current;
    const std::size_t first = self.linear / warpSize * warpSize;
    unsigned mask = 0;
    for (std::size_t t = first; t < first + warpSize && t < launch.fibers.size(); ++t)
        if (launch.fibers[t].state != EXITED) mask |= 1u << (t - first);
    return mask;
}

namespace {

// --- the scheduler side ---------------------------------------------------------

// Fill this library's thread-local storage (every __shared__ variable, static
// or dynamic) with 0xFF: find our own module among the loaded ones and ask
// for the calling thread's copy of its PT_TLS segment.
thread_local char tls_anchor;  // touching it makes sure our TLS block exists in this thread

struct TlsBlock {
    void* data = nullptr;
    std::size_t size = 0;
};

int find_tls(struct dl_phdr_info* info, std::size_t, void* out)
{
    Dl_info self;
    if (!dladdr((void*)&find_tls, &self)) return 0;
    if ((void*)info->dlpi_addr != self.dli_fbase) return 0;
    for (int i = 0; i < info->dlpi_phnum; ++i)
        if (info->dlpi_phdr[i].p_type == PT_TLS) {
            auto* block = static_cast<TlsBlock*>(out);
            block->data = info->dlpi_tls_data;
            block->size = info->dlpi_phdr[i].p_memsz;
        }
    return 1;
}

TlsBlock shared_memory()
{
    volatile char* anchor = &tls_anchor;
    *anchor = 0;
    TlsBlock block;
    dl_iterate_phdr(find_tls, &block);
    return block;
}

// The order in which a round visits the block's threads.
struct Order {
    int kind;  // 0 forward, 1 reverse, 2 random
    std::mt19937_64 rng;
    std::vector<unsigned> visit;

    const std::vector<unsigned>& next(std::size_t n)
    {
        visit.resize(n);
        std::iota(visit.begin(), visit.end(), 0u);
        if (kind == 1) std::reverse(visit.begin(), visit.end());
        if (kind == 2) std::shuffle(visit.begin(), visit.end(), rng);
        return visit;
    }
};

void run(Fiber& f)
{
    launch.current = &f;
    threadIdx = f.index;
    swapcontext(&launch.scheduler, &f.context);
}

// Release the lanes of warp `w` that wait with mask `mask`, if every
// non-exited lane it names is waiting there. Returns true when released, and
// sets launch.error when the lanes disagree.
bool release_warp_group(std::size_t w, unsigned mask)
{
    const std::size_t first = w * warpSize;
    const std::size_t end = std::min(first + warpSize, launch.fibers.size());
    const Fiber* leader = nullptr;
    for (std::size_t t = first; t < end; ++t) {
        const Fiber& f = launch.fibers[t];
        if (!(mask & (1u << (t - first))) || f.state == EXITED) continue;
        if (f.state != AT_WARP_BARRIER) return false;  // not there yet (or at __syncthreads: see deadlock)
        if (f.mask != mask) return false;              // another group; if nobody moves, that is a deadlock
        if (!leader) leader = &f;
        if (f.op != leader->op || std::strcmp(f.name, leader->name) != 0) {
            launch.error = format("warp %zu: lanes %u and %u meet at different warp primitives (%s and %s) with the "
                                  "same mask 0x%08x",
                                  w, leader->linear % warpSize, f.linear % warpSize, describe_where(*leader).c_str(),
                                  describe_where(f).c_str(), mask);
            return false;
        }
    }
    if (!leader) return false;
    // Everyone is here: hand out results, read from the payloads before anyone moves on.
    unsigned ballot = 0;
    for (std::size_t t = first; t < end; ++t) {
        const Fiber& f = launch.fibers[t];
        if ((mask & (1u << (t - first))) && f.state == AT_WARP_BARRIER && f.payload) ballot |= 1u << (t - first);
    }
    for (std::size_t t = first; t < end; ++t) {
        Fiber& f = launch.fibers[t];
        if (!(mask & (1u << (t - first))) || f.state != AT_WARP_BARRIER) continue;
        if (f.op == WARP_SHFL) {
            const std::size_t src = first + (std::size_t)f.src;
            const bool took_part = f.src >= 0 && f.src < warpSize && src < end && (mask & (1u << f.src)) &&
                                   launch.fibers[src].state == AT_WARP_BARRIER;
            f.result = took_part ? launch.fibers[src].payload : ~std::uint64_t(0);  // undefined on a GPU: NaN here
        } else {
            f.result = ballot;
        }
    }
    for (std::size_t t = first; t < end; ++t) {
        Fiber& f = launch.fibers[t];
        if ((mask & (1u << (t - first))) && f.state == AT_WARP_BARRIER) f.state = RUNNABLE;
    }
    return true;
}

bool release_warps()
{
    bool released = false;
    const std::size_t warps = (launch.fibers.size() + warpSize - 1) / warpSize;
    for (std::size_t w = 0; w < warps && launch.error.empty(); ++w)
        for (std::size_t t = w * warpSize; t < std::min((w + 1) * warpSize, launch.fibers.size()); ++t) {
            const Fiber& f = launch.fibers[t];
            if (f.state == AT_WARP_BARRIER && release_warp_group(w, f.mask)) released = true;
        }
    return released;
}

bool release_block()
{
    const Fiber* waiting = nullptr;
    for (const Fiber& f : launch.fibers) {
        if (f.state == RUNNABLE || f.state == AT_WARP_BARRIER) return false;
        if (f.state == AT_BLOCK_BARRIER && !waiting) waiting = &f;
    }
    if (!waiting) return false;  // everyone has exited
    for (const Fiber& f : launch.fibers)
        if (f.state == EXITED) {
            launch.error = format(
                "%s returned, with %s waiting at %s; every thread of a block must reach every __syncthreads() "
                "(an early `return` for out-of-range threads before a barrier?)",
                describe_threads([](const Fiber& g) { return g.state == EXITED; }).c_str(),
                describe_threads([](const Fiber& g) { return g.state == AT_BLOCK_BARRIER; }).c_str(),
                describe_where(*waiting).c_str());
            return false;
        }
    for (const Fiber& f : launch.fibers)
        if (f.where.line != waiting->where.line || std::strcmp(f.where.file, waiting->where.file) != 0) {
            launch.error = format("threads of one block wait at different barriers: thread %s at %s, thread %s at %s",
                                  describe_thread(*waiting).c_str(), describe_where(*waiting).c_str(),
                                  describe_thread(f).c_str(), describe_where(f).c_str());
            return false;
        }
    int count = 0;
    for (const Fiber& f : launch.fibers) count += f.payload ? 1 : 0;
    for (Fiber& f : launch.fibers) {
        f.result = (std::uint64_t)count;
        f.state = RUNNABLE;
    }
    return true;
}

bool same_place(const Fiber& a, const Fiber& b)
{
    return a.state == b.state && a.where.line == b.where.line && std::strcmp(a.where.file, b.where.file) == 0 &&
           (a.state != AT_WARP_BARRIER || a.mask == b.mask);
}

// Nobody can run and no barrier can complete: say who waits where.
std::string describe_deadlock()
{
    std::string text = "deadlock: no barrier can complete;";
    std::vector<const Fiber*> places;
    for (const Fiber& f : launch.fibers) {
        if (f.state != AT_BLOCK_BARRIER && f.state != AT_WARP_BARRIER) continue;
        if (std::any_of(places.begin(), places.end(), [&f](const Fiber* p) { return same_place(*p, f); })) continue;
        places.push_back(&f);
        text += " at " + describe_where(f) + (f.state == AT_WARP_BARRIER ? format(" (mask 0x%08x)", f.mask) : "") +
                ": " + describe_threads([&f](const Fiber& g) { return same_place(g, f); }) + ";";
    }
    if (std::any_of(launch.fibers.begin(), launch.fibers.end(), [](const Fiber& f) { return f.state == EXITED; }))
        text += " exited: " + describe_threads([](const Fiber& g) { return g.state == EXITED; });
    return text;
}

bool run_block(Order& order, const TlsBlock& shared)
{
    // Fresh shared memory: all bits set (NaN for floats).
    if (shared.data) std::memset(shared.data, 0xFF, shared.size);
    ucontext_t blank;
    getcontext(&blank);
    for (std::size_t t = 0; t < launch.fibers.size(); ++t) {
        Fiber& f = launch.fibers[t];
        f.context = blank;
        f.context.uc_stack.ss_sp = stacks.get(t);
        f.context.uc_stack.ss_size = kStackBytes;
        f.context.uc_link = &launch.scheduler;
        makecontext(&f.context, fiber_start, 0);
        f.state = RUNNABLE;
        f.mask = 0;
        f.where = Where{"", 0};
        f.name = "";
    }
    for (;;) {
        for (unsigned t : order.next(launch.fibers.size())) {
            Fiber& f = launch.fibers[t];
            if (f.state != RUNNABLE) continue;
            run(f);
            if (f.state == FAILED) return false;
        }
        bool all_exited = true;
        for (const Fiber& f : launch.fibers) all_exited = all_exited && f.state == EXITED;
        if (all_exited) return true;
        const bool released = release_warps() || release_block();
        if (!launch.error.empty()) return false;
        if (!released) {
            launch.error = describe_deadlock();
            return false;
        }
    }
}

}  // namespace
}  // namespace simt

// Run kernel `entry` over grid x block. Returns 0, or 1 with a message in `error`.
// order: 0 forward, 1 reverse, 2 random (seeded by `seed`).
extern "C" SIMT_EXPORT int simt_launch(const char* kernel, void (*entry)(void**), void** args,
                                       const unsigned* grid, const unsigned* block, int order,
                                       unsigned long long seed, char* error, unsigned long error_size)
{
    using namespace simt;
    launch.entry = entry;
    launch.args = args;
    launch.error.clear();
    gridDim = dim3(grid[0], grid[1], grid[2]);
    blockDim = dim3(block[0], block[1], block[2]);
    const std::size_t threads = (std::size_t)block[0] * block[1] * block[2];
    if (!stacks.reserve(threads)) {
        std::snprintf(error, error_size, "%s: could not map stacks for %zu threads", kernel, threads);
        return 1;
    }
    launch.fibers.assign(threads, Fiber{});
    for (std::size_t t = 0; t < threads; ++t) {
        Fiber& f = launch.fibers[t];
        f.linear = (unsigned)t;
        f.index = uint3{(unsigned)(t % block[0]), (unsigned)(t / block[0] % block[1]), (unsigned)(t / block[0] / block[1])};
    }
    Order visit{order, std::mt19937_64(seed), {}};
    const TlsBlock shared = shared_memory();
    for (unsigned z = 0; z < grid[2]; ++z)
        for (unsigned y = 0; y < grid[1]; ++y)
            for (unsigned x = 0; x < grid[0]; ++x) {
                blockIdx = uint3{x, y, z};
                if (!run_block(visit, shared)) {
                    std::snprintf(error, error_size, "%s: block (%u,%u,%u): %s", kernel, x, y, z, launch.error.c_str());
                    launch.fibers.clear();
                    return 1;
                }
            }
    launch.fibers.clear();
    return 0;
}
