/* The status page's files, compiled in (server/observe/web/, turned into arrays by
 * server/observe/web/embed.sh at build time, uPlot from npm): one psod binary
 * serves its page with nothing to install beside it. */
#ifndef PSOD_WEB_H
#define PSOD_WEB_H

#include <stddef.h>

struct web_asset {
    const char *path; /* URL path, e.g. "/page.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
};
/* Ends with an entry whose path is NULL. */
extern const struct web_asset web_assets[];

#endif
