/* SPDX-License-Identifier: MIT */
/* clock.c - the wall clock, alone in its file: the test build links
 * tests/tools/testclock.c in its place (an injectable clock for retention
 * tests), so the shipped binary has no way to be told another time. */
#include <time.h>

#include "util.h"

int64_t mv_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mv_now(void)
{
    return mv_now_us() / 1000000;
}
