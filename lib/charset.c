/* SPDX-License-Identifier: MIT */
/* charset.c - pinned iconv converters (see charset.h). */
#include "charset.h"

#include <iconv.h>
#include <pthread.h>
#include <string.h>

typedef struct pin {
    char to[MV_ICONV_NAME_MAX + 1], from[MV_ICONV_NAME_MAX + 1];
    int ok;
    iconv_t cd; /* kept open on purpose: it holds the converter loaded */
} pin;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pin table[MV_ICONV_PINNED];
static unsigned used;

int mv_iconv_usable(const char *to, const char *from)
{
    if (!to || !from)
        return 0;
    size_t tl = strlen(to), fl = strlen(from);
    int cacheable = tl <= MV_ICONV_NAME_MAX && fl <= MV_ICONV_NAME_MAX;
    if (cacheable) {
        pthread_mutex_lock(&mu);
        for (unsigned i = 0; i < used; i++)
            if (!strcmp(table[i].from, from) && !strcmp(table[i].to, to)) {
                int ok = table[i].ok;
                pthread_mutex_unlock(&mu);
                return ok;
            }
        pthread_mutex_unlock(&mu);
    }
    /* opened outside the lock: loading a converter reads files */
    iconv_t cd = iconv_open(to, from);
    int ok = cd != (iconv_t)-1;
    if (cacheable) {
        pthread_mutex_lock(&mu);
        int dup = 0;
        for (unsigned i = 0; i < used && !dup; i++)
            dup = !strcmp(table[i].from, from) && !strcmp(table[i].to, to);
        if (!dup && used < MV_ICONV_PINNED) {
            pin *p = &table[used++];
            memcpy(p->to, to, tl + 1);
            memcpy(p->from, from, fl + 1);
            p->ok = ok;
            p->cd = cd;
            cd = (iconv_t)-1; /* now the table's */
        }
        pthread_mutex_unlock(&mu);
    }
    if (cd != (iconv_t)-1)
        iconv_close(cd);
    return ok;
}
