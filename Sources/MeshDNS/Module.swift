// MeshDNS: see the module's files.
enum MeshDNSModule {}
