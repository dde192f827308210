"""Test double of pycuda (see ../README.md)."""
