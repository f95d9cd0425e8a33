"""Test helpers shared across tiers (tests/t0, t1, t2): plain modules, no fixtures and no tests.

conftest.py files hold fixtures (and fixture hooks) only and import what they need from here; a test
module imports helpers from here, never from another test module or another tier's conftest."""
