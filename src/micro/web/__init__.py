"""The web dashboard: explore, call and operate every service from the browser."""
