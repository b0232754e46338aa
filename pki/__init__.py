"""Certificates: a small CA, serving and client certificates, for the local control plane's
API server and for the mutual TLS between virt-controller, virt-api and virt-handler."""

from pki.authority import KeyPair, issue, load, new_ca, save

__all__ = ["KeyPair", "issue", "load", "new_ca", "save"]
