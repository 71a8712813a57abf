"""The dashboard's pages, one module per section; each has ``ROUTES``."""
