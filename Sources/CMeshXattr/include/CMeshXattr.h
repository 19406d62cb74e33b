// sys/xattr.h is not part of Swift's Glibc module: MeshImage needs lsetxattr/lgetxattr for
// overlayfs' opaque directories and a layer's pax xattrs.
#pragma once
#include <sys/types.h>
#include <sys/xattr.h>
