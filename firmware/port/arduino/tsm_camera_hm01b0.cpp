/* The HM01B0 camera (SparkFun Edge connector) through SparkFun's HM01B0 Arduino library:
 * 324 x 244 8-bit gray frames. Compiled only for boards whose file names this driver. */
#include <Arduino.h>
#include <string.h>

#include "hm01b0_arduino.h"

extern "C" {
#include "tsm_port.h"
}

static HM01B0 tsm_camera;
static int tsm_camera_ready;

int32_t tsm_port_camera_capture(uint8_t *buf, uint32_t size)
{
    if (!tsm_camera_ready) {
        if (tsm_camera.begin() != HM01B0_ERR_OK) {
            return -1;
        }
        /* Auto exposure settles over a few frames; a dark first frame would decide "no smile". */
        tsm_camera.calibrateAutoExposure();
        tsm_camera_ready = 1;
    }
    if (size > (uint32_t)HM01B0::frameBufferSize || tsm_camera.capture() != HM01B0_ERR_OK) {
        return -1;
    }
    memcpy(buf, tsm_camera.frameBuffer, size);
    return (int32_t)size;
}
