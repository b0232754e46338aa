"""openAPIV3Schema of the kubevirt.io/v1 kinds, built from small typed pieces.

The CRD manifests in deploy/crds/ are generated from here (``python -m
kubevirt_api.schema``) so the VMI spec is written once and shared by the VMI,
the VM template and the replica set template.
"""
