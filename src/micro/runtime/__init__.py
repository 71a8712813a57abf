"""The runtime block: runs services from source as local processes."""
