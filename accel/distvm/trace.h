#include "trace/trace-accel_distvm.h"
