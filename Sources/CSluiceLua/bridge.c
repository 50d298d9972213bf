#include "sluice_lua.h"
