#include "tsm_harness.h"
#include "tsm_port.h"

int main(void)
{
    tsm_port_init();
    tsm_harness_run();
    return 0;
}
