/* waldir.c — end of valid WAL in a directory (see walsim/waldir.h).  Implementation follows. */
#include "walsim/waldir.h"
