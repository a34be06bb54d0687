"""Plug-ins for the local OpenStack control plane of tests/cloud (see its README)."""
