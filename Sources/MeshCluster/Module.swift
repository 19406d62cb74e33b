// The manager and node agent: see issue 8.
