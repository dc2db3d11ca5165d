/* libFuzzer target: the message decoder (wire_decode), the code every byte
 * a peer sends goes through first.
 *
 * Input: frames (fuzz.h). Whatever decodes must also pack again and
 * decode to the same bytes: the daemon re-sends fields it received. */
#include <stdlib.h>

#include "common/wire.h"
#include "common/payload.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zmq_msg_t f[FUZZ_MAX_FRAMES];
    int n = fuzz_take_frames(&data, &size, FUZZ_MAX_FRAMES, f);
    struct wire_limits lim = {4096, 1 << 16};
    struct wire_msg m;
    struct wire_error err;
    memset(&m, 0, sizeof m);
    int extra = n > WIRE_MAX_FRAMES;
    int rc = wire_decode(f, extra ? WIRE_MAX_FRAMES : n, extra, &lim, &m, &err);
    if (rc == 0) {
        int f32 = m.command == PSOD__COMMAND__CMD_HELLO || m.command == PSOD__COMMAND__CMD_WELCOME;
        if (!m.meta || (f32 && m.has_payload && zmq_msg_size(&m.payload) % sizeof(float)))
            abort(); /* hello and welcome payloads are whole float32 vectors */
        size_t len = protobuf_c_message_get_packed_size(m.meta);
        uint8_t *buf = malloc(len ? len : 1);
        protobuf_c_message_pack(m.meta, buf);
        ProtobufCMessage *again = protobuf_c_message_unpack(m.meta->descriptor, NULL, len, buf);
        if (!again)
            abort(); /* what we decoded must survive a round trip */
        size_t len2 = protobuf_c_message_get_packed_size(again);
        uint8_t *buf2 = malloc(len2 ? len2 : 1);
        protobuf_c_message_pack(again, buf2);
        if (len2 != len || memcmp(buf, buf2, len) != 0)
            abort();
        if (m.has_payload) {
            uint32_t crc;
            payload_check(zmq_msg_data(&m.payload), zmq_msg_size(&m.payload) / 4, &crc);
        }
        protobuf_c_message_free_unpacked(again, NULL);
        free(buf);
        free(buf2);
    } else if (err.code <= 0 || !err.message[0] || m.meta || m.has_payload) {
        abort(); /* a refusal must say why and hold nothing */
    }
    wire_msg_clear(&m);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    return 0;
}
