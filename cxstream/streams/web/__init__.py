"""The worker's web: the HTTP API, the support console, users and credentials."""
