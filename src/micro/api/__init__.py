"""The API gateway: HTTP/JSON to RPC for every endpoint of every service (Micro's ``micro api``)."""
