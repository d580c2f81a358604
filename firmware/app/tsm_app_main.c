#include "tsm_app.h"
#include "tsm_port.h"

int main(void)
{
    tsm_port_init();
    tsm_app_run();
    return 0;
}
