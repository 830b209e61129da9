#ifndef MLPKG_CSYSTEM_H
#define MLPKG_CSYSTEM_H

/// Atomically exchanges the directory entries `a` and `b` (Linux renameat2 with RENAME_EXCHANGE).
/// Returns 0, or -1 with errno set (ENOSYS/EINVAL where the kernel or file system cannot do it).
int mlpkg_rename_exchange(const char *a, const char *b);

/// Renames `from` to `to` only if `to` does not exist (RENAME_NOREPLACE). Returns 0, or -1 with errno set.
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

/// SIGABRT, SIGILL, SIGTRAP, SIGSEGV and SIGFPE (a failed allocation under `ulimit -v` aborts in the Swift
/// runtime) remove the registered temporaries, add one `error:` line and exit with status 1.
void mlpkg_install_fatal_handlers(void);

/// libFuzzer's driver, linked only into fuzz builds (make fuzz), where the fuzz targets' entry points call it.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif

