"""Nameko 2.14 RPC baseline: service and client run in bench/.venv-nameko; driver.py runs in the main venv."""
