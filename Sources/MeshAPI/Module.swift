// The Docker-Engine-compatible API: see issue 8.
