/* SPDX-License-Identifier: MIT */
/* fuzz_frame.c - libFuzzer target: the control protocol's decoders
 * (lib/frame.h) over arbitrary bytes, as the daemon and the client see
 * them: a request, then the same bytes as a stream of response frames. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../lib/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mv_frame_request req = {0};
    size_t need = 0;
    if (mv_frame_request_decode(data, size, &req, &need, NULL) == MV_OK) {
        if (need == 0) {
            /* whole: it re-encodes to the same bytes */
            mv_buf b = MV_BUF_INIT;
            if (req.size > size || !req.argv || req.argv[req.argc] ||
                mv_frame_request_encode(req.flags, req.argc, req.argv, &b, NULL) != MV_OK ||
                b.len != req.size || memcmp(b.data, data, b.len) != 0)
                __builtin_trap();
            mv_buf_free(&b);
            mv_frame_request_free(&req);
        } else if (need <= size || need > MV_FRAME_REQUEST_MAX) {
            __builtin_trap();
        }
    }
    size_t pos = 0;
    while (pos < size) {
        mv_frame f;
        if (mv_frame_decode(data + pos, size - pos, &f, &need, NULL) != MV_OK || need)
            break;
        if (f.size != MV_FRAME_HDR + (size_t)f.len || f.len > MV_FRAME_DATA_MAX)
            __builtin_trap();
        pos += f.size;
        if (f.type == MV_FRAME_EXIT)
            break;
    }
    return 0;
}
