#include "CMeshXattr.h"
