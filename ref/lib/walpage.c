/* walpage.c — WAL page headers (see walsim/walpage.h).  Implementation follows. */
#include "walsim/walpage.h"
