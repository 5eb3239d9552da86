#include "trace/trace-hw_distmem.h"
