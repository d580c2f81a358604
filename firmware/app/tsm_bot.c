#include "tsm_bot.h"

#include "tsm_finder.h"

static uint32_t tsm_bot_stamp(tsm_bot_clock_fn_t clock)
{
    return clock != 0 ? (uint32_t)clock() : 0u;
}

/* width x height gray pixels through the table into m->input, each repeated per channel. */
static void tsm_bot_map_input(const tsm_app_model_t *m, const uint8_t *pixels)
{
    uint32_t n = m->width * m->height;
    for (uint32_t i = 0; i < n; ++i) {
        int8_t v = m->pixel_to_input[pixels[i]];
        for (uint32_t c = 0; c < m->channels; ++c) {
            m->input[i * m->channels + c] = v;
        }
    }
}

static int32_t tsm_bot_classify(const tsm_app_model_t *m, tsm_bot_result_t *r,
                                tsm_bot_clock_fn_t clock)
{
    m->invoke(m->input, m->output);
    r->smile = (int32_t)m->output[m->smile_index] >= m->smile_threshold ? 1 : 0;
    r->stamps[2] = tsm_bot_stamp(clock);
    return r->smile;
}

static void tsm_bot_clear(tsm_bot_result_t *r)
{
    r->face = TSM_BOT_FACE_NONE;
    r->score = 0;
    r->x = r->y = r->w = r->h = 0;
    r->square.x = r->square.y = r->square.side = 0;
    r->smile = 0;
    r->stamps[0] = r->stamps[1] = r->stamps[2] = 0u;
}

/* Detect: the frame area-resized to the finder's input, its pixel table, the finder, the
 * best cell decoded. Returns 0 when the finder found no face. */
static int32_t tsm_bot_detect(const tsm_app_model_t *m, const uint8_t *frame,
                              tsm_bot_result_t *r)
{
    const tsm_app_finder_t *f = m->finder;
    uint32_t n = f->width * f->height;
    tsm_image_resize_area(frame, m->camera_width, m->camera_width, m->camera_height, m->pixels,
                          f->width, f->height);
    for (uint32_t i = 0; i < n; ++i) {
        f->input[i] = f->pixel_to_input[m->pixels[i]];
    }
    f->invoke(f->input, f->output);
    tsm_face_t face = tsm_finder_decode(&f->decode, f->output);
    r->score = face.score;
    if (!face.found) {
        return 0;
    }
    r->face = TSM_BOT_FACE_FOUND;
    r->x = face.x;
    r->y = face.y;
    r->w = face.w;
    r->h = face.h;
    r->square = tsm_image_frame_square(face.x, face.y, face.w, face.h, m->camera_width,
                                       m->camera_height, &m->framing);
    return 1;
}

int32_t tsm_bot_decide_frame(const tsm_app_model_t *m, const uint8_t *frame,
                             tsm_bot_result_t *r, tsm_bot_clock_fn_t clock)
{
    tsm_bot_clear(r);
    if (m->finder != 0) {
        int32_t found = tsm_bot_detect(m, frame, r);
        r->stamps[0] = tsm_bot_stamp(clock);
        if (!found) {
            r->stamps[1] = r->stamps[2] = r->stamps[0];
            return 0;
        }
    } else {
        uint32_t side = m->camera_width < m->camera_height ? m->camera_width : m->camera_height;
        r->face = TSM_BOT_FACE_GIVEN;
        r->square.x = (int32_t)((m->camera_width - side) / 2u);
        r->square.y = (int32_t)((m->camera_height - side) / 2u);
        r->square.side = (int32_t)side;
        r->x = r->square.x;
        r->y = r->square.y;
        r->w = r->h = r->square.side;
        r->stamps[0] = tsm_bot_stamp(clock);
    }
    /* Crop: the square is inside the frame (tsm_image_frame_square slides it back in). */
    const uint8_t *src = frame + (uint32_t)r->square.y * m->camera_width + (uint32_t)r->square.x;
    tsm_image_resize_area(src, m->camera_width, (uint32_t)r->square.side,
                          (uint32_t)r->square.side, m->pixels, m->width, m->height);
    tsm_bot_map_input(m, m->pixels);
    r->stamps[1] = tsm_bot_stamp(clock);
    return tsm_bot_classify(m, r, clock);
}

int32_t tsm_bot_decide_pixels(const tsm_app_model_t *m, const uint8_t *pixels,
                              tsm_bot_result_t *r, tsm_bot_clock_fn_t clock)
{
    tsm_bot_clear(r);
    r->face = TSM_BOT_FACE_GIVEN;
    r->w = r->square.side = (int32_t)m->width;
    r->h = (int32_t)m->height;
    r->stamps[0] = tsm_bot_stamp(clock);
    tsm_bot_map_input(m, pixels);
    r->stamps[1] = tsm_bot_stamp(clock);
    return tsm_bot_classify(m, r, clock);
}
