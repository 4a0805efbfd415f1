/* SPDX-License-Identifier: MIT */
/*
 * server/notify.h - telling the service manager how vigild is doing
 * (sd_notify(3) protocol: READY=1, STATUS=..., WATCHDOG=1, STOPPING=1).
 *
 * With libsystemd (VIGIL_HAVE_SYSTEMD) these call sd_notify() and
 * sd_watchdog_enabled(); without it they speak the protocol themselves: one
 * datagram to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or
 * "@name" for an abstract socket). Either way a Type=notify unit learns
 * that vigild is ready: a build without libsystemd never hangs its start.
 */
#ifndef VIGIL_SERVER_NOTIFY_H
#define VIGIL_SERVER_NOTIFY_H

#include <stdint.h>

/* Sends state ("READY=1\nSTATUS=serving", newline-separated assignments).
 * Returns 1 if sent, 0 if $NOTIFY_SOCKET is unset (not run by a service
 * manager), a negative errno if it could not be sent. Never logs. */
int srv_notify(const char *state);

/* The protocol written directly, whatever the build: srv_notify() without
 * libsystemd, and what tests/deploy/test_notify.c checks. Same returns. */
int srv_notify_direct(const char *state);

/* The watchdog interval the manager asked for ($WATCHDOG_USEC, for this
 * process if $WATCHDOG_PID is set): 1 and *ret_usec set if enabled, 0 if
 * not (*ret_usec untouched), a negative errno if the variables are bad. */
int srv_notify_watchdog(uint64_t *ret_usec);
int srv_notify_watchdog_direct(uint64_t *ret_usec);

#endif
