/* SPDX-License-Identifier: MIT */
/* serve.h - private to cli/: the running daemon, for `status` inside it. */
#ifndef MV_CLI_SERVE_H
#define MV_CLI_SERVE_H

#include "../ingest/server.h"

/* Set by `serve` while its server runs; NULL in every other process.
 * `status` reads it from control-request threads: the daemon stops
 * serving control requests before it clears it. */
extern mv_server *cli_server;

#endif
