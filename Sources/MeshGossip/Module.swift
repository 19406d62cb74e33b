// MeshGossip: see the module's files.
enum MeshGossipModule {}
