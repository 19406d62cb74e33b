// Callers of the kernel speak in addresses and prefixes: they come with it, as NIOPosix users get
// NIOCore's values. Modules that need only the values import MeshValues and link no C library.
@_exported import MeshValues
