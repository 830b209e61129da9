#ifndef MLPKG_CSYSTEM_H
#define MLPKG_CSYSTEM_H

/// Atomically exchanges the directory entries `a` and `b` (Linux renameat2 with RENAME_EXCHANGE, macOS renamex_np
/// with RENAME_SWAP).
/// Returns 0, or -1 with errno set (ENOSYS/EINVAL where the kernel or file system cannot do it).
int mlpkg_rename_exchange(const char *a, const char *b);

/// Renames `from` to `to` only if `to` does not exist (RENAME_NOREPLACE; macOS RENAME_EXCL). Returns 0, or -1 with errno set.
int mlpkg_rename_noreplace(const char *from, const char *to);

#include <stddef.h>
#include <stdint.h>

/// Installs a SIGBUS handler that writes `message` (copied; one line) to stderr and exits with status 1. Reading a
/// memory-mapped input that another process truncated raises SIGBUS; this turns that into a clean failure.
void mlpkg_install_bus_error_handler(const char *message);

/// Registers a temporary output (file or directory) to remove if the process is interrupted or dies on SIGBUS.
/// Returns the slot to pass to `mlpkg_unregister_temporary`, or -1 when the table is full.
int mlpkg_register_temporary(const char *path);
void mlpkg_unregister_temporary(int slot);
/// Removes every registered temporary (async-signal-safe: system calls only).
void mlpkg_remove_temporaries(void);
/// SIGINT, SIGTERM and SIGHUP remove the registered temporaries, print one `error:` line and exit with 128 + signal.
void mlpkg_install_interrupt_handlers(void);

/// Batch mode (`convert … --output-dir`): from now on SIGINT, SIGTERM and SIGHUP are recorded (see
/// `mlpkg_batch_interrupted`) and forwarded as SIGTERM to the running children instead of ending the process, so
/// the batch can say which packages were written.
void mlpkg_begin_batch(void);
/// The first interrupting signal received in batch mode, or 0.
int mlpkg_batch_interrupted(void);
/// A pipe whose ends close on exec (a child started meanwhile by another thread must not hold them). 0 or -1.
int mlpkg_pipe_cloexec(int fds[2]);
/// Spawns `path` with `argv` and `envp` (NULL-terminated), stdin from /dev/null, stdout on `out_fd` and stderr on
/// `err_fd`, and registers it for interrupt forwarding in `*slot` (pass it to `mlpkg_child_finished` once it was
/// waited for). Returns the pid, or -1 with errno set.
int mlpkg_spawn_child(const char *path, char *const argv[], char *const envp[], int out_fd, int err_fd, int *slot);
void mlpkg_child_finished(int slot);

/// SIGABRT, SIGILL, SIGTRAP, SIGSEGV and SIGFPE (a failed allocation under `ulimit -v` aborts in the Swift
/// runtime) remove the registered temporaries, add one `error:` line and exit with status 1.
void mlpkg_install_fatal_handlers(void);

/// Points stdio's `stderr` at a buffer (mlpkg itself writes to fd 2 directly): the Swift runtime's fatal message then
/// becomes part of the fatal handlers' one line instead of a line above it; at a normal exit the buffered text goes
/// to fd 2. Returns 0, or -1 where it cannot (not Linux).
int mlpkg_capture_runtime_messages(void);

/// libFuzzer's driver, linked only into fuzz builds (make fuzz), where the fuzz targets' entry points call it.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif

