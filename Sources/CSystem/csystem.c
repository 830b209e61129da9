#define _GNU_SOURCE
#include <stdatomic.h>
#include "csystem.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#endif

static int rename_flags(const char *a, const char *b, unsigned int flags) {
#if defined(__linux__) && defined(SYS_renameat2)
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
#else
    (void)a; (void)b; (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

// macOS has both since 10.12: renamex_np with RENAME_SWAP and RENAME_EXCL. Without them a replace would fall back
// to moving the old directory aside and the new one in, and between the two renames the path names nothing.
int mlpkg_rename_exchange(const char *a, const char *b) {
#if defined(__linux__)
    return rename_flags(a, b, RENAME_EXCHANGE);
#elif defined(__APPLE__)
    return renamex_np(a, b, RENAME_SWAP);
#else
    return rename_flags(a, b, 0);
#endif
}

int mlpkg_rename_noreplace(const char *from, const char *to) {
#if defined(__linux__)
    return rename_flags(from, to, RENAME_NOREPLACE);
#elif defined(__APPLE__)
    return renamex_np(from, to, RENAME_EXCL);
#else
    return rename_flags(from, to, 0);
#endif
}

// ---- Temporaries to remove when the process is interrupted (SIGINT, SIGTERM, SIGHUP) or an input is truncated
// under it (SIGBUS). Everything below runs in a signal handler, so it uses only system calls.

#define MLPKG_TEMPORARY_SLOTS 16
static char temporary_paths[MLPKG_TEMPORARY_SLOTS][4096];
static atomic_int temporary_used[MLPKG_TEMPORARY_SLOTS];

int mlpkg_register_temporary(const char *path) {
    size_t length = strlen(path);
    if (length >= sizeof temporary_paths[0]) return -1;
    for (int i = 0; i < MLPKG_TEMPORARY_SLOTS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&temporary_used[i], &expected, 2)) {  // 2: being written
            memcpy(temporary_paths[i], path, length + 1);
            atomic_store(&temporary_used[i], 1);
            return i;
        }
    }
    return -1;
}

void mlpkg_unregister_temporary(int slot) {
    if (slot >= 0 && slot < MLPKG_TEMPORARY_SLOTS) atomic_store(&temporary_used[slot], 0);
}

#ifdef __linux__
struct mlpkg_dirent64 {
    unsigned long long d_ino;
    long long d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};
#endif

/// Removes `name` under `dirfd`: a file, or a directory and everything in it (at most 8 levels: mlpkg's
/// temporaries are at most 3 deep).
static void remove_tree(int dirfd, const char *name, int depth) {
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return;
#ifdef __linux__
    if (depth >= 8) return;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    char buffer[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buffer, sizeof buffer);
        if (n <= 0) break;
        for (long offset = 0; offset < n;) {
            struct mlpkg_dirent64 *entry = (struct mlpkg_dirent64 *)(buffer + offset);
            offset += entry->d_reclen;
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            remove_tree(fd, entry->d_name, depth + 1);
        }
    }
    close(fd);
    unlinkat(dirfd, name, AT_REMOVEDIR);
#else
    (void)depth;
#endif
}

void mlpkg_remove_temporaries(void) {
    for (int i = 0; i < MLPKG_TEMPORARY_SLOTS; i++) {
        if (atomic_load(&temporary_used[i]) == 1) remove_tree(AT_FDCWD, temporary_paths[i], 0);
    }
}

// ---- Batch mode: the models of `convert … --output-dir` run in child processes (one crash cannot take down the
// others). An interrupt then only forwards SIGTERM to the children and is recorded: the batch reports exactly which
// packages were written before it stopped.

#define MLPKG_CHILD_SLOTS 64
static atomic_int child_pids[MLPKG_CHILD_SLOTS];
static atomic_int batch_mode;
static atomic_int batch_interrupt;

void mlpkg_begin_batch(void) { atomic_store(&batch_mode, 1); }

int mlpkg_batch_interrupted(void) { return atomic_load(&batch_interrupt); }

static void forward_to_children(void) {
    for (int i = 0; i < MLPKG_CHILD_SLOTS; i++) {
        int pid = atomic_load(&child_pids[i]);
        if (pid > 0) kill(pid, SIGTERM);
    }
}

int mlpkg_pipe_cloexec(int fds[2]) {
#ifdef __linux__
    return pipe2(fds, O_CLOEXEC);
#else
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}

int mlpkg_spawn_child(const char *path, char *const argv[], char *const envp[], int out_fd, int err_fd, int *slot) {
    *slot = -1;
    for (int i = 0; i < MLPKG_CHILD_SLOTS && *slot < 0; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&child_pids[i], &expected, -1)) *slot = i;  // -1: reserved
    }
    if (*slot < 0) { errno = EAGAIN; return -1; }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
    pid_t pid = 0;
    int status = posix_spawn(&pid, path, &actions, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    if (status != 0) {
        atomic_store(&child_pids[*slot], 0);
        *slot = -1;
        errno = status;
        return -1;
    }
    atomic_store(&child_pids[*slot], (int)pid);
    // An interrupt that came before the registration did not see this child: stop it here.
    if (atomic_load(&batch_interrupt)) kill(pid, SIGTERM);
    return (int)pid;
}

void mlpkg_child_finished(int slot) {
    if (slot >= 0 && slot < MLPKG_CHILD_SLOTS) atomic_store(&child_pids[slot], 0);
}

static atomic_flag interrupt_reported = ATOMIC_FLAG_INIT;

static void on_interrupt(int signal_number) {
    if (atomic_load(&batch_mode)) {
        int expected = 0;
        atomic_compare_exchange_strong(&batch_interrupt, &expected, signal_number);
        forward_to_children();
        return;
    }
    if (atomic_flag_test_and_set(&interrupt_reported)) {
        for (;;) pause();
    }
    mlpkg_remove_temporaries();
    static const char message[] = "error: interrupted; nothing was written (temporary output removed)\n";
    ssize_t ignored = write(2, message, sizeof message - 1);
    (void)ignored;
    _exit(128 + signal_number);
}

// ---- The runtime's own messages. A failed allocation makes the Swift runtime print "Fatal error: failed to allocate
// N bytes …" with fputs on stdio's `stderr`, then abort; the backtracer's report (on by default on Linux) would
// follow from its SIGABRT handler. mlpkg writes its own output to file descriptor 2 directly, never through stdio, so
// `stderr` (a plain variable in the GNU C library) is pointed at a buffer: a fatal signal folds the runtime's line into
// its one `error:` line, and at a normal exit whatever was buffered (a library's warning) goes to fd 2 unchanged.

#define MLPKG_CAPTURE_BYTES 65536
static char captured[MLPKG_CAPTURE_BYTES];
static atomic_size_t captured_length;

static void write_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data += n;
        size -= (size_t)n;
    }
}

static void flush_captured(void) {
    size_t length = atomic_exchange(&captured_length, 0);
    write_all(2, captured, length);
}

#ifdef __linux__
// stdio locks the stream around each call, so writers never run this at the same time.
static ssize_t capture_write(void *cookie, const char *data, size_t size) {
    (void)cookie;
    size_t length = atomic_load(&captured_length);
    if (length + size > sizeof captured) {
        flush_captured();  // more than a fatal message: earlier text goes out as it would have
        length = 0;
        if (size > sizeof captured) {
            write_all(2, data, size);
            return (ssize_t)size;
        }
    }
    memcpy(captured + length, data, size);
    atomic_store(&captured_length, length + size);
    return (ssize_t)size;
}
#endif

int mlpkg_capture_runtime_messages(void) {
#ifdef __linux__
    cookie_io_functions_t functions = {.read = NULL, .write = capture_write, .seek = NULL, .close = NULL};
    FILE *stream = fopencookie(NULL, "w", functions);
    if (stream == NULL) return -1;
    setvbuf(stream, NULL, _IONBF, 0);
    fflush(stderr);
    stderr = stream;
    atexit(flush_captured);
    return 0;
#else
    return -1;
#endif
}

/// Appends to `line` (bounded by `end`) the runtime's message: the last captured line that says "Fatal error", else
/// the first non-empty one, with control characters as spaces and at most 300 bytes. Returns the new end.
static char *append_runtime_message(char *line, char *end) {
    size_t length = atomic_load(&captured_length);
    if (length > sizeof captured) length = sizeof captured;
    const char *chosen = NULL;
    size_t chosen_length = 0;
    for (size_t start = 0; start < length;) {
        size_t stop = start;
        while (stop < length && captured[stop] != '\n') stop++;
        int fatal = 0;
        for (size_t k = start; k + 11 <= stop && !fatal; k++) fatal = memcmp(captured + k, "Fatal error", 11) == 0;
        if (stop > start && (fatal || chosen == NULL)) {
            chosen = captured + start;
            chosen_length = stop - start;
        }
        start = stop + 1;
    }
    if (chosen == NULL) return line;
    if (chosen_length > 300) chosen_length = 300;
    for (size_t k = 0; k < chosen_length && line < end; k++) {
        unsigned char c = (unsigned char)chosen[k];
        *line++ = (c < 0x20 || c == 0x7F) ? ' ' : (char)c;
    }
    return line;
}

static atomic_flag fatal_reported = ATOMIC_FLAG_INIT;

static void append(char **line, char *end, const char *text) {
    while (*text && *line < end) *(*line)++ = *text++;
}

static void on_fatal(int signal_number) {
    if (atomic_flag_test_and_set(&fatal_reported)) {
        for (;;) pause();
    }
    mlpkg_remove_temporaries();
    static char line[1024];
    char *cursor = line, *end = line + sizeof line - 1;
    append(&cursor, end, "error: mlpkg stopped: out of memory or an internal error (");
    char *message = cursor;
    cursor = append_runtime_message(cursor, end);
    if (cursor == message) append(&cursor, end, signal_number == SIGSEGV ? "segmentation fault" : "aborted");
    append(&cursor, end, "); nothing was written (temporary output removed). If `ulimit -v` is set, raise it; "
                         "MLPKG_BACKTRACE=1 keeps the crash report\n");
    *cursor = 0;
    write_all(2, line, (size_t)(cursor - line));
    _exit(1);
}

void mlpkg_install_fatal_handlers(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_fatal;
    sigemptyset(&action.sa_mask);
    int signals[] = {SIGABRT, SIGILL, SIGTRAP, SIGSEGV, SIGFPE};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaction(signals[i], &action, NULL);
}

void mlpkg_install_interrupt_handlers(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGINT);
    sigaddset(&action.sa_mask, SIGTERM);
    sigaddset(&action.sa_mask, SIGHUP);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
}

static char bus_error_message[1024];
static size_t bus_error_length;

static atomic_flag bus_error_reported = ATOMIC_FLAG_INIT;

static void on_bus_error(int signal_number) {
    (void)signal_number;
    // Several threads can fault on the same truncated mapping at once: the first writes the one line and exits, the
    // others wait for that exit (lock-free, so safe in a signal handler).
    if (atomic_flag_test_and_set(&bus_error_reported)) {
        for (;;) pause();
    }
    mlpkg_remove_temporaries();
    ssize_t ignored = write(2, bus_error_message, bus_error_length);
    (void)ignored;
    _exit(1);
}

void mlpkg_install_bus_error_handler(const char *message) {
    size_t length = strlen(message);
    if (length > sizeof bus_error_message - 2) length = sizeof bus_error_message - 2;
    memcpy(bus_error_message, message, length);
    bus_error_message[length] = '\n';
    bus_error_length = length + 1;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_bus_error;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, NULL);
}
