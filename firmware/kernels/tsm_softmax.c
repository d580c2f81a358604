#include "tsm_softmax.h"

#include "tsm_common.h"
#include "tsm_fixedpoint.h"

/* The sum of exps is Q12.19: 12 integer bits of headroom for the row. */
#define TSM_SOFTMAX_ACCUM_INTEGER_BITS 12

void tsm_softmax(const tsm_softmax_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *in = input + r * p->depth;
        int8_t *out = output + r * p->depth;
        int32_t max_in_row = -128;
        int32_t sum_of_exps = 0;
        int32_t num_bits_over_unit;
        int32_t reciprocal;
        int32_t exponent;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = TSM_MAX(max_in_row, (int32_t)in[c]);
        }
        /* Each Q0 exp is below 2^31, so each Q12 term is at most 2^19 and 511 of them
         * stay below 2^28: no overflow, and the shift below stays within 31. */
        for (c = 0; c < p->depth; ++c) {
            const int32_t e = p->exp_table[max_in_row - (int32_t)in[c]];
            /* Q0 -> Q12 is a rounding shift right by 12 */
            sum_of_exps += tsm_rounding_divide_by_pot(e, TSM_SOFTMAX_ACCUM_INTEGER_BITS);
        }
        /* The maximum itself contributes exp(0) ~ 1, so the sum is positive. */
        reciprocal = tsm_get_reciprocal(sum_of_exps, TSM_SOFTMAX_ACCUM_INTEGER_BITS,
                                        &num_bits_over_unit);
        /* reciprocal * exp is Q0 in [0, 1); 2^(31 - 8) brings it to 1/256 steps. */
        exponent = num_bits_over_unit + 31 - 8;
        /* The maximum and the sum are known; each in[c] is read before out[c] is written,
         * so input and output may be the same buffer. */
        for (c = 0; c < p->depth; ++c) {
            const int32_t e = p->exp_table[max_in_row - (int32_t)in[c]];
            const int32_t unsat = tsm_rounding_divide_by_pot(
                tsm_sat_rounding_doubling_high_mul(reciprocal, e), exponent);
            out[c] = (int8_t)tsm_clamp(unsat - 128, -128, 127);
        }
    }
}
