#define _GNU_SOURCE
#include <stdatomic.h>
#include "csystem.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
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

int mlpkg_rename_exchange(const char *a, const char *b) {
#ifdef __linux__
    return rename_flags(a, b, RENAME_EXCHANGE);
#else
    return rename_flags(a, b, 0);
#endif
}

int mlpkg_rename_noreplace(const char *from, const char *to) {
#ifdef __linux__
    return rename_flags(from, to, RENAME_NOREPLACE);
#else
    return rename_flags(from, to, 0);
#endif
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
