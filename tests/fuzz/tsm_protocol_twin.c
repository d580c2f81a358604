/* Feeds stdin through the device parser byte by byte (as the harness does) and prints each
 * frame delivered as "type seq hexpayload": the host parser must print the same. */
#include <stdio.h>

#include "tsm_protocol.h"

static tsm_parser_t tsm_parser;

int main(void)
{
    tsm_parser_init(&tsm_parser);
    int c;
    tsm_frame_t f;
    while ((c = getchar()) != EOF) {
        tsm_parser_push(&tsm_parser, (uint8_t)c);
        while (tsm_parser_next(&tsm_parser, &f)) {
            printf("%u %u ", (unsigned)f.type, (unsigned)f.seq);
            for (uint32_t i = 0; i < f.length; ++i) {
                printf("%02x", f.payload[i]);
            }
            printf("\n");
        }
    }
    return 0;
}
