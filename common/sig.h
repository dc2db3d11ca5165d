/* Stop signals for psod and psoworker: SIGINT and SIGTERM call a handler
 * that only sets a flag (the main loop acts on it), installed without
 * SA_RESTART so a blocking wait returns with EINTR and sees the flag;
 * SIGPIPE is ignored. */
#ifndef PSOD_SIG_H
#define PSOD_SIG_H

void sig_on_stop(void (*handler)(int));

#endif
