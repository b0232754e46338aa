"""kubevirt.io/v1 API: kinds, phases, labels, CRD schemas and object helpers.

What every component shares about the objects users write. Nothing here talks to
a cluster; it only knows what the objects mean.
"""
