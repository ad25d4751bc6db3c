// Thread pool on wasm atomics.
//
// Thread 0 is the caller (the JS thread that calls the kernels); threads
// 1..n-1 are workers, each a JS worker that instantiated this module on the
// same memory and called pool_worker_main(i), which never returns until
// pool_shutdown(). A job is published by filling `job` and bumping
// `generation`; workers spin briefly, then sleep on `generation` with
// memory.atomic.wait32. Everyone claims work items from `next_item`; the last
// worker to finish wakes the caller sleeping on `busy_workers`.
#include "kernels.h"

// Spins before sleeping: long enough to catch the next job of a decode step
// (a few microseconds apart), short enough not to burn a core between tokens.
#define SPIN_ITERATIONS 20000

static struct {
    pool_task_fn task;
    const void *args;
    int n_items;
} job;

static int n_threads = 1;

// Work items each thread ran since the last pool_items_taken() read (diagnostics).
#define MAX_COUNTED_THREADS 64
static volatile int items_taken[MAX_COUNTED_THREADS];
static volatile int generation;      // bumped once per job
static volatile int next_item;       // next unclaimed work item
static volatile int busy_workers;    // workers still inside the current job
static volatile int shutting_down;

INLINE int atomic_load(volatile int *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
INLINE void atomic_store(volatile int *p, int v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
INLINE int atomic_add(volatile int *p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }

INLINE void wait_while_equal(volatile int *p, int value) {
    for (int spin = 0; spin < SPIN_ITERATIONS; spin++)
        if (atomic_load(p) != value) return;
    while (atomic_load(p) == value) __builtin_wasm_memory_atomic_wait32((int *)p, value, -1);
}

INLINE void wake_all(volatile int *p) { __builtin_wasm_memory_atomic_notify((int *)p, (unsigned)-1); }

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
    atomic_store(&busy_workers, 0);
    atomic_store(&shutting_down, 0);
}

int pool_thread_count(void) { return n_threads; }

EXPORT void pool_worker_main(int thread_index) {
    int seen = 0;  // generation at pool_init; a job published before we got here is still run
    for (;;) {
        wait_while_equal(&generation, seen);
        seen = atomic_load(&generation);
        if (atomic_load(&shutting_down)) {
            atomic_add(&busy_workers, -1);
            wake_all(&busy_workers);
            return;
        }
        run_items(thread_index);
        if (atomic_add(&busy_workers, -1) == 1) wake_all(&busy_workers);
    }
}

// Wakes every worker and lets it return from pool_worker_main.
EXPORT void pool_shutdown(void) {
    if (n_threads <= 1) return;
    atomic_store(&busy_workers, n_threads - 1);
    atomic_store(&shutting_down, 1);
    atomic_add(&generation, 1);
    wake_all(&generation);
    // Workers that never started would never decrement: bounded wait only.
    for (int tries = 0; tries < 100; tries++) {
        int busy = atomic_load(&busy_workers);
        if (busy <= 0) break;
        __builtin_wasm_memory_atomic_wait32((int *)&busy_workers, busy, 1000000);  // 1 ms
    }
    n_threads = 1;
}

void pool_run(pool_task_fn task, const void *args, int n_items) {
    if (n_items <= 0) return;
    if (n_threads <= 1 || n_items == 1) {
        for (int i = 0; i < n_items; i++) task(args, i, 0);
        return;
    }
    job.task = task;
    job.args = args;
    job.n_items = n_items;
    atomic_store(&next_item, 0);
    atomic_store(&busy_workers, n_threads - 1);
    atomic_add(&generation, 1);  // publishes the job (seq_cst orders the stores above)
    wake_all(&generation);
    run_items(0);
    for (;;) {
        int busy = atomic_load(&busy_workers);
        if (busy == 0) break;
        wait_while_equal(&busy_workers, busy);
    }
}
