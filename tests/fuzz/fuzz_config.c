/* SPDX-License-Identifier: MIT */
/* fuzz_config.c - libFuzzer target: mv_cfg_load_string over arbitrary text
 * against a small schema of every type; whatever loads must print as INI
 * that loads back to the same values. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/config.h"

static const mv_cfg_key schema[] = {
    {"a", "s", MV_CFG_STR, "x y", "string", 0, 0},  {"a", "b", MV_CFG_BOOL, "no", "bool", 0, 0},
    {"a", "u", MV_CFG_UINT, NULL, "uint", 2, 90},   {"a", "z", MV_CFG_SIZE, "1K", "size", 0, 0},
    {"a", "d", MV_CFG_DURATION, NULL, "dur", 0, 0}, {"a", "m", MV_CFG_MODE, "0640", "mode", 0, 0},
    {"l *", "w", MV_CFG_LIST, "p,q", "list", 0, 0}, {"l *", "s", MV_CFG_STR, NULL, "string", 0, 0},
};
#define N (sizeof schema / sizeof schema[0])

static int same(const mv_cfg *x, const mv_cfg *y, const char *name)
{
    for (size_t k = 0; k < N; k++) {
        if ((schema[k].section[0] == 'l') != (name != NULL))
            continue;
        const char *w = name ? "l" : "a", *vx = mv_cfg_str(x, w, name, schema[k].key),
                   *vy = mv_cfg_str(y, w, name, schema[k].key);
        if ((vx && (!vy || strcmp(vx, vy))) || (!vx && vy) ||
            mv_cfg_is_set(x, w, name, schema[k].key) != mv_cfg_is_set(y, w, name, schema[k].key))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size), *out = NULL;
    size_t len = 0, ni, nj;
    mv_cfg *c = mv_cfg_new(schema, N), *d = mv_cfg_new(schema, N);
    if (mv_cfg_load_string(c, text, "fuzz", NULL) == MV_OK) {
        FILE *f = open_memstream(&out, &len);
        mv_cfg_print(c, f);
        fclose(f);
        if (mv_cfg_load_string(d, out, "printed", NULL) != MV_OK || !same(c, d, NULL))
            __builtin_trap();
        const char *const *ni_names = mv_cfg_instances(c, "l", &ni);
        const char *const *nj_names = mv_cfg_instances(d, "l", &nj);
        if (ni != nj)
            __builtin_trap();
        for (size_t i = 0; i < ni; i++)
            if (strcmp(ni_names[i], nj_names[i]) || !same(c, d, ni_names[i]))
                __builtin_trap();
    }
    free(out);
    free(text);
    mv_cfg_free(c);
    mv_cfg_free(d);
    return 0;
}
