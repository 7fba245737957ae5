"""Callback bodies as plain functions (tested without a browser) and their wiring."""
