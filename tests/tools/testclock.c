/* SPDX-License-Identifier: MIT */
/* testclock.c - the clock of the test build (build/tests/mailvault-testclock,
 * never installed): MAILVAULT_TEST_NOW=2031-05-01T00:00:00Z (or UTC
 * seconds) sets the time at which the process starts; it then runs on at
 * the real pace, so records written in one run keep their order.  Unset,
 * it is the real clock.  Linked before libmv.a, whose lib/clock.c it
 * replaces. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/util.h"

static int64_t offset_us;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int64_t real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void init(void)
{
    const char *e = getenv("MAILVAULT_TEST_NOW");
    if (!e || !*e)
        return;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char *end = strptime(e, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int64_t t;
    if (end && !*end) {
        t = (int64_t)timegm(&tm);
    } else {
        t = strtoll(e, &end, 10);
        if (*end)
            abort(); /* a test that sets the clock wrong must not run on the real one */
    }
    offset_us = t * 1000000 - real_us();
}

int64_t mv_now_us(void)
{
    pthread_once(&once, init);
    return real_us() + offset_us;
}

int64_t mv_now(void)
{
    return mv_now_us() / 1000000;
}
