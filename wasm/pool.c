// Thread pool on wasm atomics.
//
// Thread 0 is the caller (the JS thread that calls the kernels); threads
// 1..n-1 are workers, each a JS worker that instantiated this module on the
// same memory and called pool_worker_main(i), which never returns until
// pool_shutdown(). A job is published by filling `job`, opening `roster` for
// its generation and bumping `generation`; workers spin briefly, then sleep on
// `generation` with memory.atomic.wait32. A worker joins the job on the roster
// (compare-and-swap), then everyone claims work items from `next_item`.
//
// When the caller runs out of items it closes the roster and waits only for
// the workers that joined. A worker still waking up (or descheduled: other
// browser threads share these cores) then finds the roster closed and goes
// back to sleep, instead of making the caller wait for it to arrive only to
// find no work left: that wait was a large share of decode's matmul time.
#include "kernels.h"

// Spins before sleeping: long enough to catch the next job of a decode step
// (the caller runs norms, RoPE and the KV store in between), short enough not to
// burn a core between tokens (20,000 spins let the worker sleep and wake per job;
// 1,000,000 gained nothing over 200,000: docs/perf-log.md, "Kernel choices").
#define SPIN_ITERATIONS 200000

static struct {
    pool_task_fn task;
    const void *args;
    int n_items;
} job;

static int n_threads = 1;

// Work items each thread ran since the last pool_items_taken() read (diagnostics).
#define MAX_COUNTED_THREADS 64
static volatile int items_taken[MAX_COUNTED_THREADS];
static volatile int generation;       // bumped once per job
static volatile int next_item;        // next unclaimed work item
static volatile uint64_t roster;      // generation << 32 | ROSTER_CLOSED if closed | workers joined
static volatile int finished_workers; // joined workers done with the current job
static volatile int exited_workers;   // workers that returned after pool_shutdown
static volatile int shutting_down;

#define ROSTER_CLOSED ((uint64_t)1 << 31)

INLINE int atomic_load(volatile int *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
INLINE void atomic_store(volatile int *p, int v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
INLINE int atomic_add(volatile int *p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }

INLINE void wait_while_equal(volatile int *p, int value) {
    for (int spin = 0; spin < SPIN_ITERATIONS; spin++)
        if (atomic_load(p) != value) return;
    while (atomic_load(p) == value) __builtin_wasm_memory_atomic_wait32((int *)p, value, -1);
}

INLINE void wake_all(volatile int *p) { __builtin_wasm_memory_atomic_notify((int *)p, (unsigned)-1); }

// Joins the job of generation `gen` if its roster is still open.
static int join_job(int gen) {
    uint64_t r = __atomic_load_n(&roster, __ATOMIC_SEQ_CST);
    for (;;) {
        if ((uint32_t)(r >> 32) != (uint32_t)gen || (r & ROSTER_CLOSED)) return 0;
        if (__atomic_compare_exchange_n(&roster, (uint64_t *)&r, r + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return 1;
    }
}

// Closes the roster; returns how many workers joined.
static int close_roster(void) {
    uint64_t r = __atomic_fetch_or(&roster, ROSTER_CLOSED, __ATOMIC_SEQ_CST);
    return (int)(r & (ROSTER_CLOSED - 1));
}

static void run_items(int thread_index) {
    pool_task_fn task = job.task;
    const void *args = job.args;
    int n_items = job.n_items;
    for (;;) {
        int item = atomic_add(&next_item, 1);
        if (item >= n_items) break;
        task(args, item, thread_index);
        if (thread_index < MAX_COUNTED_THREADS) items_taken[thread_index]++;
    }
}

// Items thread `thread_index` ran since the previous call (then resets its count).
EXPORT int pool_items_taken(int thread_index) {
    if (thread_index < 0 || thread_index >= MAX_COUNTED_THREADS) return 0;
    return __atomic_exchange_n(&items_taken[thread_index], 0, __ATOMIC_SEQ_CST);
}

// Called once by the caller thread before any worker starts.
EXPORT void pool_init(int threads) {
    n_threads = threads < 1 ? 1 : threads;
    atomic_store(&generation, 0);
    __atomic_store_n(&roster, ROSTER_CLOSED, __ATOMIC_SEQ_CST);
    atomic_store(&finished_workers, 0);
    atomic_store(&exited_workers, 0);
    atomic_store(&shutting_down, 0);
}

int pool_thread_count(void) { return n_threads; }

EXPORT void pool_worker_main(int thread_index) {
    int seen = 0;  // generation at pool_init; a job published before we got here is still run
    for (;;) {
        wait_while_equal(&generation, seen);
        seen = atomic_load(&generation);
        if (atomic_load(&shutting_down)) {
            atomic_add(&exited_workers, 1);
            wake_all(&exited_workers);
            return;
        }
        // Too late for this job (the caller did all of it): sleep until the next one.
        if (!join_job(seen)) continue;
        run_items(thread_index);
        atomic_add(&finished_workers, 1);
        wake_all(&finished_workers);
    }
}

// Wakes every worker and lets it return from pool_worker_main.
EXPORT void pool_shutdown(void) {
    if (n_threads <= 1) return;
    atomic_store(&shutting_down, 1);
    atomic_add(&generation, 1);
    wake_all(&generation);
    // Workers that never started would never report: bounded wait only.
    for (int tries = 0; tries < 100; tries++) {
        int exited = atomic_load(&exited_workers);
        if (exited >= n_threads - 1) break;
        __builtin_wasm_memory_atomic_wait32((int *)&exited_workers, exited, 1000000);  // 1 ms
    }
    n_threads = 1;
}

void pool_run(pool_task_fn task, const void *args, int n_items) {
    if (n_items <= 0) return;
    if (n_threads <= 1 || n_items == 1) {
        for (int i = 0; i < n_items; i++) task(args, i, 0);
        return;
    }
    // No worker of the previous job is still running (we waited for every one that
    // joined), and none can join it any more (closed): the job can be rewritten.
    job.task = task;
    job.args = args;
    job.n_items = n_items;
    atomic_store(&next_item, 0);
    atomic_store(&finished_workers, 0);
    int gen = atomic_load(&generation) + 1;
    __atomic_store_n(&roster, (uint64_t)(uint32_t)gen << 32, __ATOMIC_SEQ_CST);
    atomic_store(&generation, gen);  // publishes the job (seq_cst orders the stores above)
    wake_all(&generation);
    run_items(0);
    int joined = close_roster();
    for (;;) {
        int finished = atomic_load(&finished_workers);
        if (finished >= joined) break;
        wait_while_equal(&finished_workers, finished);
    }
}
