"""Invoke task modules: one module per collection, each doing one thing. tasks.py assembles them."""
