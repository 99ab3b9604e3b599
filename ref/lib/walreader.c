/* walreader.c — incremental WAL verifier (see walsim/walreader.h).  Implementation follows. */
#include "walsim/walreader.h"
